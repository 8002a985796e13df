-- count_request counts a request of action act by user who, made at
-- made_at, in the user's window for it (window_us microseconds long), and
-- answers the window: a stored window that is over starts again at made_at
-- with this request. The one home of the window rule, for takeRate's statement and
-- create_documents. The upsert locks the row until commit: one user's
-- requests of one action pass it one at a time, each counting on the
-- newest version. total counts every request the row ever counted; no
-- statement of this release reads it, but the previous release's create
-- statement does (its pending bound adds the creates that raced it from
-- total), so it keeps counting while both may run, in a rolling deploy.
-- PL/pgSQL rather than SQL: its plan is kept for the session.
CREATE FUNCTION count_request(who uuid, act text, made_at timestamptz, window_us bigint,
                              OUT window_start timestamptz, OUT count integer)
LANGUAGE plpgsql AS $fn$
BEGIN
    INSERT INTO rate_limits AS r (user_id, action, window_start, count, total)
    VALUES (who, act, made_at, 1, 1)
    ON CONFLICT (user_id, action) DO UPDATE SET
        window_start = CASE WHEN r.window_start <= made_at - window_us * interval '1 microsecond'
                            THEN made_at ELSE r.window_start END,
        count = CASE WHEN r.window_start <= made_at - window_us * interval '1 microsecond'
                     THEN 1 ELSE r.count + 1 END,
        total = r.total + 1
    RETURNING r.window_start, r.count INTO count_request.window_start, count_request.count;
END
$fn$;

-- create_documents applies a batch of creates (as postgres.createBatch
-- encodes them: a JSON array of document rows, each with its upload
-- limits) in one statement, so that concurrent upload-url requests commit
-- together, with one WAL flush. Each create inserts its pending document
-- only if its owner's limits allow it: the request is counted in the
-- user's 'upload' row of rate_limits (count_request; refused requests
-- count too) and must be within max_requests, the user's pending
-- documents must be fewer than max_pending (0 for either: no bound, and
-- with neither nothing is counted), and a reservation (reserve > 0) must
-- fit the quota (quota_fits), where it is reserved with the document. A
-- user's quota row is made on first use with default_limit.
--
-- The creates are applied user by user, in user order, and each user's in
-- the batch's order: users share no row, so every outcome is the one of
-- the batch's order, and each of a user's creates sees the ones before it
-- (its own writes: its requests, its pending documents, its reservations).
-- Per user, locks go as every writer of these rows takes them: a new quota
-- row (first use), the rate_limits row, then the quota row, which settle,
-- purge and the ledger check lock in user order too; so a batch deadlocks
-- with neither single writers nor another batch.
--
-- The rate_limits row lock puts one user's creates in a line until each
-- commits, across batches and processes. The pending documents are
-- counted by the statement after it, with a snapshot of its own (READ
-- COMMITTED takes one per statement of a volatile function): every
-- create that held the lock before has committed and is in it, so the
-- count is exact. (The single statement this replaces took its snapshot
-- before that lock and added the creates that committed meanwhile from
-- rate_limits.total, counting refused requests too.) The quota row is read
-- under its lock when a reservation is to be made, so its fit is checked
-- on the version it changes.
--
-- It answers a row per create, in no particular order: its index i (from
-- 0, in the batch), the window and count its request was counted in (null
-- and 0 when nothing is counted), the pending documents before it (0 with
-- no pending bound), the owner's quota before its reservation, and the
-- stored times of its document if it was created (null otherwise).
--
-- The statement fails as a whole if one insert does (a document id or
-- object key already taken): nothing of the batch is written, and its
-- caller sends each create alone.
CREATE FUNCTION create_documents(batch jsonb, default_limit bigint)
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
                                   created_at, updated_at, part_size, reserved_bytes)
            VALUES ((c->>'id')::uuid, who, c->>'filename', c->>'content_type', (c->>'declared_size')::bigint,
                    c->>'object_key', c->>'status', (c->>'created_at')::timestamptz,
                    (c->>'updated_at')::timestamptz, (c->>'part_size')::bigint, reserve)
            RETURNING documents.created_at, documents.updated_at INTO created_at, updated_at;
        END IF;
        RETURN NEXT;
    END LOOP;
END
$fn$;
