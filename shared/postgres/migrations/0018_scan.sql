-- The malware scan (issue 27). scan_status is where a stored document
-- stands with the scanner (document.ScanState): 'pending' from its confirm
-- while scanning is on, then 'clean', 'infected' (the document is then
-- rejected) or 'failed' (it could not be scanned), which an administrator
-- may turn 'released'; null for a document stored while scanning was off,
-- or not stored yet. scan_detail names the signature found, or why the
-- scan failed.
ALTER TABLE documents
    ADD COLUMN scan_status text CHECK (scan_status IN ('pending', 'clean', 'infected', 'failed', 'released')),
    ADD COLUMN scan_detail text NOT NULL DEFAULT '';

-- The stages a stored document waits for (document.Document.Waiting), one
-- index each, holding the waiting rows only: the scanner's recovery claims
-- from the first, the classifier's from the second (a document scanned
-- and found clean or released, or stored while scanning was off). Their predicates are
-- the claims' own (shared/postgres waitingFor), word for word, so the
-- planner uses them. classify_after is the end of either recovery's claim:
-- a document waits for one stage at a time. A document whose scan failed
-- stays uploaded for good and is in neither.
CREATE INDEX documents_user_unscanned ON documents (user_id, updated_at, id)
    WHERE status = 'uploaded' AND scan_status = 'pending';
CREATE INDEX documents_user_unclassified ON documents (user_id, updated_at, id)
    WHERE status = 'uploaded' AND (scan_status IS NULL OR scan_status IN ('clean', 'released'));
DROP INDEX documents_user_uploaded;

-- settle_documents as migration 0015 made it (its comment and 0014's say
-- what it does), writing the scan state of the target too: a confirm
-- while scanning is on stores its document 'pending'. A settlement of the
-- previous release sends none, and the scan state stays null.
CREATE OR REPLACE FUNCTION settle_documents(batch jsonb, default_limit bigint)
RETURNS TABLE (i integer, present boolean, applied boolean, charged boolean,
               used_bytes bigint, reserved_bytes bigint, limit_bytes bigint,
               used_clamped bigint, reserved_clamped bigint)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
    s       jsonb;
    t       jsonb;
    d       jsonb;
    q       jsonb;
    ids     uuid[];
    docs    jsonb;         -- id -> the document's owner and compared fields
    quota   jsonb;         -- user -> used, reserved and limit, as decided so far
    writes  jsonb := '{}'; -- id -> the target written (the last one applied)
    evts    jsonb := '[]'; -- the events of the targets applied
    fits    boolean;
    used    bigint;
    held    bigint;
    uc      bigint;
    rc      bigint;
BEGIN
    ids := ARRAY(SELECT (e->>'id')::uuid FROM jsonb_array_elements(batch) e);
    SELECT coalesce(jsonb_object_agg(x.id, jsonb_build_object('user_id', x.user_id, 'status', x.status,
               'size_bytes', x.size_bytes, 'etag', x.etag, 'reserved_bytes', x.reserved_bytes)), '{}')
        INTO docs
        FROM (SELECT documents.id, documents.user_id, documents.status, documents.size_bytes, documents.etag,
                     documents.reserved_bytes
              FROM documents WHERE documents.id = ANY(ids) ORDER BY documents.id FOR UPDATE) x;
    -- An owner older than the rule that makes the quota row with the
    -- document gets one; the insert (and its guard) only when one lacks it.
    IF EXISTS (SELECT 1 FROM jsonb_each(docs) e
               WHERE NOT EXISTS (SELECT 1 FROM quotas WHERE quotas.user_id = (e.value->>'user_id')::uuid)) THEN
        INSERT INTO quotas (user_id, limit_bytes)
            SELECT DISTINCT (e.value->>'user_id')::uuid, default_limit FROM jsonb_each(docs) e
            ON CONFLICT (user_id) DO NOTHING;
    END IF;
    SELECT coalesce(jsonb_object_agg(x.user_id, jsonb_build_object('used', x.used_bytes,
               'reserved', x.reserved_bytes, 'limit', x.limit_bytes)), '{}')
        INTO quota
        FROM (SELECT quotas.user_id, quotas.used_bytes, quotas.reserved_bytes, quotas.limit_bytes FROM quotas
              WHERE quotas.user_id IN (SELECT (e.value->>'user_id')::uuid FROM jsonb_each(docs) e)
              ORDER BY quotas.user_id FOR UPDATE) x;

    FOR s IN SELECT e FROM jsonb_array_elements(batch) WITH ORDINALITY AS x(e, n) ORDER BY n LOOP
        i := (s->>'i')::integer;
        d := docs->(s->>'id');
        used_clamped := 0;
        reserved_clamped := 0;
        IF d IS NULL THEN
            present := false; applied := false; charged := false;
            used_bytes := 0; reserved_bytes := 0; limit_bytes := 0;
            RETURN NEXT;
            CONTINUE;
        END IF;
        q := quota->(d->>'user_id');
        used := (q->>'used')::bigint;
        held := (q->>'reserved')::bigint;
        present := true;
        limit_bytes := (q->>'limit')::bigint;
        IF d->>'status' <> s->'from'->>'status' OR (d->>'size_bytes')::bigint <> (s->'from'->>'size_bytes')::bigint
            OR d->>'etag' <> s->'from'->>'etag'
            OR (d->>'reserved_bytes')::bigint <> (s->'from'->>'reserved_bytes')::bigint THEN
            applied := false; charged := false;
            used_bytes := used; reserved_bytes := held;
            RETURN NEXT;
            CONTINUE;
        END IF;
        t := s->'charged';
        fits := jsonb_typeof(t) = 'object' AND quota_fits(used,
            GREATEST(0, held + (t->>'reserved_change')::bigint), (t->>'used_change')::bigint, limit_bytes);
        IF NOT fits THEN
            t := s->'refused';
        END IF;
        uc := (t->>'used_change')::bigint;
        rc := (t->>'reserved_change')::bigint;
        used_clamped := GREATEST(0, -uc - used);
        reserved_clamped := GREATEST(0, -rc - held);
        used := GREATEST(0, used + uc);
        held := GREATEST(0, held + rc);
        quota := jsonb_set(quota, ARRAY[d->>'user_id'],
            jsonb_build_object('used', used, 'reserved', held, 'limit', limit_bytes));
        docs := jsonb_set(docs, ARRAY[s->>'id'], jsonb_build_object('user_id', d->'user_id', 'status', t->'status',
            'size_bytes', t->'size_bytes', 'etag', t->'etag', 'reserved_bytes', t->'reserved_bytes'));
        writes := jsonb_set(writes, ARRAY[s->>'id'], t);
        IF jsonb_typeof(t->'msg_id') = 'string' THEN
            evts := evts || jsonb_build_array(t);
        END IF;
        applied := true;
        charged := fits;
        used_bytes := used;
        reserved_bytes := held;
        RETURN NEXT;
    END LOOP;

    IF writes = '{}' THEN
        RETURN;
    END IF;
    UPDATE documents SET
        status = w.value->>'status',
        reject_reason = w.value->>'reject_reason',
        size_bytes = (w.value->>'size_bytes')::bigint,
        etag = w.value->>'etag',
        reserved_bytes = (w.value->>'reserved_bytes')::bigint,
        confirmed_at = (w.value->>'confirmed_at')::timestamptz,
        updated_at = (w.value->>'updated_at')::timestamptz,
        scan_status = nullif(w.value->>'scan_status', '')
    FROM jsonb_each(writes) w
    WHERE documents.id = w.key::uuid;
    UPDATE quotas SET
        used_bytes = (e.value->>'used')::bigint,
        reserved_bytes = (e.value->>'reserved')::bigint
    FROM jsonb_each(quota) e
    WHERE quotas.user_id = e.key::uuid
        AND (quotas.used_bytes, quotas.reserved_bytes)
            IS DISTINCT FROM ((e.value->>'used')::bigint, (e.value->>'reserved')::bigint);
    IF evts <> '[]' THEN
        INSERT INTO outbox (msg_id, subject, payload, created_at)
            SELECT (e->>'msg_id')::uuid, e->>'subject', e->'payload', (e->>'event_at')::timestamptz
            FROM jsonb_array_elements(evts) e;
    END IF;
END
$fn$;
