-- Published events are deleted, not marked: JetStream keeps them, and the
-- outbox stays as small as its backlog (marked rows were never pruned).
--
-- published_at and its index stay for now. During a rolling deploy the
-- previous release's relays still run: they claim rows WHERE published_at
-- IS NULL, exactly as the new relays do, and mark what they publish. The
-- rows they mark in that window are left behind, harmless, for a later
-- release to delete together with the column, once no replica of the
-- previous release can run.
DELETE FROM outbox WHERE published_at IS NOT NULL;

-- The sweeper looks only for stale pending and rejected documents: an index
-- of those alone takes no entry when a confirm makes a document uploaded.
-- (The previous release's sweeper asks for status = 'pending' and still
-- finds this index with a custom plan.)
DROP INDEX documents_status_updated;
CREATE INDEX documents_unsettled_updated ON documents (status, updated_at)
    WHERE status IN ('pending', 'rejected');
