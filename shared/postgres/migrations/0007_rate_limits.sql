-- Per-user request counters for actions that write no row of their own
-- (reclassify): one fixed window per user and action, shared by every api
-- replica.
CREATE TABLE rate_limits (
    user_id      uuid        NOT NULL,
    action       text        NOT NULL,
    window_start timestamptz NOT NULL,
    count        integer     NOT NULL,
    PRIMARY KEY (user_id, action)
);
