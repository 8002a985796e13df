-- A document's content checksum (issue 26): the one its client declared,
-- signed into its upload URL, so that MinIO stores no other bytes; once the
-- document is confirmed it is the stored bytes' checksum. Both null when
-- none was declared. checksum is the digest as S3 spells it (base64).
ALTER TABLE documents
    ADD COLUMN checksum_algorithm text,
    ADD COLUMN checksum text,
    ADD CONSTRAINT documents_checksum_whole CHECK ((checksum_algorithm IS NULL) = (checksum IS NULL));

-- An upload URL asked for with a checksum one of the user's stored
-- documents has is answered with that document (DocumentWithChecksum).
CREATE INDEX documents_user_checksum ON documents (user_id, checksum) WHERE checksum IS NOT NULL;

-- create_documents as migration 0016 made it (its comment there says what
-- it does; 'upload' is document.RateActionUpload), writing the checksum
-- too; a create of the previous release sends none, and both stay null.
CREATE OR REPLACE FUNCTION create_documents(batch jsonb, default_limit bigint)
RETURNS TABLE (i integer, window_start timestamptz, requests integer, pending integer,
               used_bytes bigint, reserved_bytes bigint, limit_bytes bigint,
               created_at timestamptz, updated_at timestamptz)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
    c            jsonb;
    n            bigint;
    who          uuid;
    last_user    uuid;
    reserve      bigint;
    max_requests integer;
    max_pending  integer;
    q            quotas%ROWTYPE;
    allowed      boolean;
BEGIN
    FOR c, n IN SELECT e, x.n FROM jsonb_array_elements(batch) WITH ORDINALITY AS x(e, n)
                ORDER BY (e->>'user_id')::uuid, x.n LOOP
        i := n - 1;
        who := (c->>'user_id')::uuid;
        reserve := (c->>'reserve')::bigint;
        max_requests := (c->>'max_requests')::integer;
        max_pending := (c->>'max_pending')::integer;
        window_start := NULL;
        requests := 0;
        pending := 0;
        created_at := NULL;
        updated_at := NULL;

        -- The user's quota row, on first use. Only when missing: an
        -- insert that meets a row another transaction is writing waits for
        -- it to end, and even one that inserts nothing runs the
        -- accounting guard.
        IF who IS DISTINCT FROM last_user THEN
            IF NOT EXISTS (SELECT 1 FROM quotas WHERE quotas.user_id = who) THEN
                INSERT INTO quotas (user_id, limit_bytes) VALUES (who, default_limit)
                    ON CONFLICT (user_id) DO NOTHING;
            END IF;
            last_user := who;
        END IF;
        IF max_requests > 0 OR max_pending > 0 THEN
            SELECT r.window_start, r.count INTO window_start, requests
            FROM count_request(who, 'upload', (c->>'now')::timestamptz, (c->>'window_us')::bigint) r;
        END IF;
        -- The status literal is the partial index documents_user_pending's
        -- predicate: a parameter would keep the planner off the index.
        IF max_pending > 0 THEN
            SELECT count(*) INTO pending FROM documents
            WHERE documents.user_id = who AND documents.status = 'pending';
        END IF;
        allowed := (max_requests = 0 OR requests <= max_requests)
            AND (max_pending = 0 OR pending < max_pending);

        IF allowed AND reserve > 0 THEN
            SELECT * INTO q FROM quotas WHERE quotas.user_id = who FOR UPDATE;
            allowed := quota_fits(q.used_bytes, q.reserved_bytes, reserve, q.limit_bytes);
            IF allowed THEN
                UPDATE quotas SET reserved_bytes = quotas.reserved_bytes + reserve
                WHERE quotas.user_id = who;
            END IF;
        ELSE
            SELECT * INTO q FROM quotas WHERE quotas.user_id = who;
        END IF;
        used_bytes := q.used_bytes;
        reserved_bytes := q.reserved_bytes;
        limit_bytes := q.limit_bytes;

        IF allowed THEN
            INSERT INTO documents (id, user_id, filename, content_type, declared_size, object_key, status,
                                   created_at, updated_at, part_size, reserved_bytes,
                                   checksum_algorithm, checksum)
            VALUES ((c->>'id')::uuid, who, c->>'filename', c->>'content_type', (c->>'declared_size')::bigint,
                    c->>'object_key', c->>'status', (c->>'created_at')::timestamptz,
                    (c->>'updated_at')::timestamptz, (c->>'part_size')::bigint, reserve,
                    c->>'checksum_algorithm', c->>'checksum')
            RETURNING documents.created_at, documents.updated_at INTO created_at, updated_at;
        END IF;
        RETURN NEXT;
    END LOOP;
END
$fn$;
