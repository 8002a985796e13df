-- upload-url is counted per user in rate_limits (action 'upload'), like
-- reclassify, instead of from the user's documents: a delete no longer
-- gives a request back. total counts every upload request the row ever
-- counted and is never reset: the statement that creates a document locks
-- the row, and the growth of total between its snapshot and its lock is the
-- number of creates that raced it and are not in the snapshot's count of
-- pending documents, so MAX_PENDING_UPLOADS holds under concurrency too.
ALTER TABLE rate_limits ADD COLUMN total bigint NOT NULL DEFAULT 0;
