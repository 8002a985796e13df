-- settle_documents applies a batch of settlements (document.Settlement,
-- as postgres.settleBatch encodes them: a JSON array) in one statement,
-- so that concurrent confirms commit together, with one WAL flush. Each
-- settlement moves one document to one of two targets the domain chose:
-- "charged" when its quota change fits (quota_fits), "refused" otherwise,
-- and writes the target's values as they are, its quota change and its
-- event. Nothing is written for a document whose row is no longer as the
-- settlement read it ("from"), or that is gone.
--
-- Locks go as every writer takes them: the document rows first, in id
-- order, then the quota rows, in user order, so a batch deadlocks with
-- neither single writers nor another batch. The settlements are then
-- applied one by one, in the batch's order: each sees the quota (and the
-- row) as the ones before it left them, so the fit of one user's charges
-- is checked in order and every outcome is exact, as if each had run
-- alone. An owner without a quota row (older than the rule that makes it
-- with the document) gets one with default_limit.
--
-- It answers a row per settlement: its index i, whether the document was
-- there (present) and the settlement applied, whether the charged target was
-- written, the owner's quota after it, and what its quota change absorbed
-- by not going below zero.
CREATE FUNCTION settle_documents(batch jsonb, default_limit bigint)
RETURNS TABLE (i integer, present boolean, applied boolean, charged boolean,
               used_bytes bigint, reserved_bytes bigint, limit_bytes bigint,
               used_clamped bigint, reserved_clamped bigint)
LANGUAGE plpgsql AS $fn$
#variable_conflict use_column
DECLARE
    s       jsonb;
    t       jsonb;
    d       documents%ROWTYPE;
    q       quotas%ROWTYPE;
    after   quotas%ROWTYPE;
    ids     uuid[];
    fits    boolean;
BEGIN
    ids := ARRAY(SELECT (e->>'id')::uuid FROM jsonb_array_elements(batch) e);
    PERFORM 1 FROM documents WHERE documents.id = ANY(ids) ORDER BY documents.id FOR UPDATE;
    INSERT INTO quotas (user_id, limit_bytes)
        SELECT DISTINCT documents.user_id, default_limit FROM documents
        WHERE documents.id = ANY(ids)
            AND NOT EXISTS (SELECT 1 FROM quotas WHERE quotas.user_id = documents.user_id)
        ON CONFLICT (user_id) DO NOTHING;
    PERFORM 1 FROM quotas
        WHERE quotas.user_id IN (SELECT documents.user_id FROM documents WHERE documents.id = ANY(ids))
        ORDER BY quotas.user_id FOR UPDATE;

    FOR s IN SELECT e FROM jsonb_array_elements(batch) WITH ORDINALITY AS x(e, n) ORDER BY n LOOP
        i := (s->>'i')::integer;
        SELECT * INTO d FROM documents WHERE documents.id = (s->>'id')::uuid;
        IF NOT FOUND THEN
            RETURN QUERY SELECT i, false, false, false, 0::bigint, 0::bigint, 0::bigint, 0::bigint, 0::bigint;
            CONTINUE;
        END IF;
        SELECT * INTO q FROM quotas WHERE quotas.user_id = d.user_id;
        IF d.status <> s->'from'->>'status' OR d.size_bytes <> (s->'from'->>'size_bytes')::bigint
            OR d.etag <> s->'from'->>'etag' OR d.reserved_bytes <> (s->'from'->>'reserved_bytes')::bigint THEN
            RETURN QUERY SELECT i, true, false, false, q.used_bytes, q.reserved_bytes, q.limit_bytes, 0::bigint, 0::bigint;
            CONTINUE;
        END IF;
        t := s->'charged';
        fits := jsonb_typeof(t) = 'object' AND quota_fits(q.used_bytes,
            GREATEST(0, q.reserved_bytes + (t->>'reserved_change')::bigint),
            (t->>'used_change')::bigint, q.limit_bytes);
        IF NOT fits THEN
            t := s->'refused';
        END IF;
        UPDATE quotas SET
            used_bytes = GREATEST(0, quotas.used_bytes + (t->>'used_change')::bigint),
            reserved_bytes = GREATEST(0, quotas.reserved_bytes + (t->>'reserved_change')::bigint)
        WHERE quotas.user_id = d.user_id
        RETURNING * INTO after;
        UPDATE documents SET
            status = t->>'status',
            reject_reason = t->>'reject_reason',
            size_bytes = (t->>'size_bytes')::bigint,
            etag = t->>'etag',
            reserved_bytes = (t->>'reserved_bytes')::bigint,
            confirmed_at = (t->>'confirmed_at')::timestamptz,
            updated_at = (t->>'updated_at')::timestamptz
        WHERE documents.id = d.id;
        IF jsonb_typeof(t->'msg_id') = 'string' THEN
            INSERT INTO outbox (msg_id, subject, payload, created_at)
            VALUES ((t->>'msg_id')::uuid, t->>'subject', t->'payload', (t->>'event_at')::timestamptz);
        END IF;
        RETURN QUERY SELECT i, true, true, fits, after.used_bytes, after.reserved_bytes, after.limit_bytes,
            GREATEST(0, -(t->>'used_change')::bigint - q.used_bytes),
            GREATEST(0, -(t->>'reserved_change')::bigint - q.reserved_bytes);
    END LOOP;
END
$fn$;
