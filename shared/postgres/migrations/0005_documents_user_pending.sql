-- upload-url counts a user's pending documents (MAX_PENDING_UPLOADS): this
-- index holds only those, so the count never reads the user's other rows.
CREATE INDEX documents_user_pending ON documents (user_id) WHERE status = 'pending';
