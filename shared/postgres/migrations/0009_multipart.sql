-- Multipart uploads and quota reservations.
--
-- documents.upload_id, part_size: a multipart document's upload in the
-- object store (the sweeper and a delete abort it by its exact key and
-- this id: the store cannot list incomplete uploads by prefix) and the
-- size of its parts. NULL for a single PUT.
-- documents.reserved_bytes: what the document holds of its owner's quota
-- while pending (its declared size); 0 once it leaves pending.
-- quotas.reserved_bytes: the sum of the user's pending documents'
-- reserved_bytes. New uploads must fit used + reserved + size <= limit.
ALTER TABLE documents
    ADD COLUMN upload_id text,
    ADD COLUMN part_size bigint,
    ADD COLUMN reserved_bytes bigint NOT NULL DEFAULT 0 CHECK (reserved_bytes >= 0);
ALTER TABLE quotas
    ADD COLUMN reserved_bytes bigint NOT NULL DEFAULT 0 CHECK (reserved_bytes >= 0);

-- Documents pending with a declared size reserve it from now on.
UPDATE documents SET reserved_bytes = declared_size
WHERE status = 'pending' AND declared_size IS NOT NULL;
UPDATE quotas SET reserved_bytes = r.total
FROM (SELECT user_id, sum(reserved_bytes) AS total FROM documents
      WHERE status = 'pending' GROUP BY user_id) r
WHERE quotas.user_id = r.user_id;
