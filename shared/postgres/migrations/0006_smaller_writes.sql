-- Published events are deleted, not marked: JetStream keeps them, and the
-- outbox stays as small as its backlog (marked rows were never pruned).
DELETE FROM outbox WHERE published_at IS NOT NULL;
DROP INDEX outbox_unpublished;
ALTER TABLE outbox DROP COLUMN published_at;

-- The sweeper looks only for stale pending and rejected documents: an index
-- of those alone takes no entry when a confirm makes a document uploaded.
DROP INDEX documents_status_updated;
CREATE INDEX documents_unsettled_updated ON documents (status, updated_at)
    WHERE status IN ('pending', 'rejected');
