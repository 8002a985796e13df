-- What the classifier found: the type detected from the bytes, how sure the
-- category is, and why classification failed (e.g. type_mismatch).
ALTER TABLE documents
    ADD COLUMN detected_type         text             NOT NULL DEFAULT '',
    ADD COLUMN confidence            double precision NOT NULL DEFAULT 0,
    ADD COLUMN classification_reason text             NOT NULL DEFAULT '';

CREATE INDEX documents_user_classification ON documents (user_id, classification, created_at DESC, id DESC)
    WHERE classification <> '';
