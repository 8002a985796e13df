-- What lets a sweep cost what it finds instead of listing the bucket.
--
-- object_removals: the objects of deleted documents, recorded in the
-- delete's transaction and forgotten once removed; a removal that failed
-- after commit is retried by the next sweep from here.
CREATE TABLE object_removals (
    object_key  text        PRIMARY KEY,
    recorded_at timestamptz NOT NULL
);
CREATE INDEX object_removals_recorded ON object_removals (recorded_at);

-- reconcile_cursor: one row, where the incremental reconciliation of the
-- bucket against the documents table stands (the last key checked of the
-- current pass, '' between passes) and when the current or last pass began.
CREATE TABLE reconcile_cursor (
    id           boolean     PRIMARY KEY DEFAULT true CHECK (id),
    after_key    text        NOT NULL,
    pass_started timestamptz
);
