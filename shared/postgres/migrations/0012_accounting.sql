-- The quota accounting's version, and a guard that keeps every other
-- version's statements off the ledger.
--
-- accounting: one row, the version of the accounting (which statements
-- move quotas.used_bytes and reserved_bytes, and how documents hold them)
-- this database keeps. A release knows its own as postgres.AccountingVersion:
-- it refuses to start beside another (Migrate), and declares it on every
-- connection in the startup packet (the docuvault.accounting setting).
-- Version 2 is the accounting of the multipart release (b72a6a8:
-- reservations); version 1, before it, released no reservation.
CREATE TABLE accounting (
    id      boolean PRIMARY KEY DEFAULT true CHECK (id),
    version integer NOT NULL
);
INSERT INTO accounting (version) VALUES (2);

-- accounting_guard refuses a write to a table whose rows are the ledger
-- (quotas) or what it is recomputed from (documents) from a session that
-- did not declare the database's accounting version: a replica of another
-- release (an earlier one declares nothing) fails the statement, and its
-- request or message is retried or redelivered, reaching a replica of the
-- current release, instead of moving the ledger by rules that are no
-- longer the ledger's. SQLSTATE 57PDV is in the class every release maps
-- to "unavailable, try again". One row read per statement, not per row.
CREATE FUNCTION accounting_guard() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    declared text := current_setting('docuvault.accounting', true);
    kept integer;
BEGIN
    SELECT version INTO kept FROM accounting;
    IF declared IS DISTINCT FROM kept::text THEN
        RAISE EXCEPTION 'docuvault: write to % refused: this session keeps quota accounting version %, the database keeps version %', TG_TABLE_NAME, coalesce(nullif(declared, ''), 'none (an earlier release)'), kept
            USING ERRCODE = '57PDV',
                  HINT = 'A replica of another release is running: finish the rollout (see deploy/README.md, Upgrades).';
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER quotas_accounting BEFORE INSERT OR UPDATE OR DELETE ON quotas
    FOR EACH STATEMENT EXECUTE FUNCTION accounting_guard();
CREATE TRIGGER documents_accounting BEFORE INSERT OR UPDATE OR DELETE ON documents
    FOR EACH STATEMENT EXECUTE FUNCTION accounting_guard();

-- ledger_cursor: one row, where the incremental ledger check stands (the
-- last user of the current pass checked; NULL between passes).
CREATE TABLE ledger_cursor (
    id         boolean PRIMARY KEY DEFAULT true CHECK (id),
    after_user uuid
);
