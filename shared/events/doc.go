// Package events owns DocuVault's use of NATS JetStream: connecting (and
// refusing servers too old for message schedules), the streams and their
// subjects, publishing document events from the outbox, and the MinIO
// bucket-notification payload.
package events
