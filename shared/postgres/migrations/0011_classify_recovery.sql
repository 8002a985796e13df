-- The classifier's recovery: a document that stays uploaded (its
-- document.uploaded event dropped by a full DOCUMENTS log, deferred by its
-- owner's budget, or lost with a classifier) is claimed from here, the
-- oldest of each user first. classify_after is the end of a recovery
-- claim (or of the pause after the classifier gave up for a while): no
-- other replica takes the document up before it.
ALTER TABLE documents ADD COLUMN classify_after timestamptz;

-- Only documents waiting for the classifier, in each user's order, so a
-- recovery pass reads the waiting rows and nothing else.
CREATE INDEX documents_user_uploaded ON documents (user_id, updated_at, id) WHERE status = 'uploaded';
