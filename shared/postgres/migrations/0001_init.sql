CREATE TABLE documents (
    id             uuid PRIMARY KEY,
    user_id        uuid        NOT NULL,
    filename       text        NOT NULL,
    content_type   text        NOT NULL,
    declared_size  bigint      CHECK (declared_size > 0),
    size_bytes     bigint      NOT NULL DEFAULT 0 CHECK (size_bytes >= 0),
    etag           text        NOT NULL DEFAULT '',
    object_key     text        NOT NULL UNIQUE,
    status         text        NOT NULL CHECK (status IN ('pending', 'uploaded', 'classified', 'classification_failed', 'rejected')),
    reject_reason  text        NOT NULL DEFAULT '',
    classification text        NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL,
    confirmed_at   timestamptz,
    updated_at     timestamptz NOT NULL
);

-- A user's listing, newest first, with keyset pagination.
CREATE INDEX documents_user_created ON documents (user_id, created_at DESC, id DESC);
-- The sweeper's scans: stale pending and old rejected documents.
CREATE INDEX documents_status_updated ON documents (status, updated_at);

CREATE TABLE quotas (
    user_id     uuid   PRIMARY KEY,
    used_bytes  bigint NOT NULL DEFAULT 0 CHECK (used_bytes >= 0),
    limit_bytes bigint NOT NULL CHECK (limit_bytes >= 0)
);

-- Transactional outbox: events written with the change they describe and
-- published to JetStream by a relay.
CREATE TABLE outbox (
    id           bigserial   PRIMARY KEY,
    msg_id       uuid        NOT NULL UNIQUE,
    subject      text        NOT NULL,
    payload      jsonb       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);

CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
