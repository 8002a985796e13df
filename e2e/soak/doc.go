// Package soak holds the event plane's soak test. It owns no production
// code: its test runs the real services on real PostgreSQL, NATS JetStream
// and MinIO with the streams made tiny, pushes many times their capacity
// through them — uploads settled by the client and by MinIO's notification
// alone, PUTs whose headers pad their notifications, and stray PUTs of
// deleted documents' URLs — and checks that nothing stops: every upload
// is settled by the notification door within seconds of its PUT, every
// stray object is removed, no stream grows past its limit, the outbox
// drains, and live events and the classifier still work at the end.
package soak
