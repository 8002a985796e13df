-- Relays are woken in-process by the commits of their own process (and
-- poll for rows another process left): NOTIFY woke every relay of every
-- replica on every commit and serialised committing transactions on the
-- notification queue's lock.
DROP TRIGGER outbox_notify ON outbox;
DROP FUNCTION outbox_notify();
