// Package events owns DocuVault's use of NATS JetStream: connecting (and
// refusing servers too old for message schedules), the streams, the one
// consumer loop every durable consumer runs (Bus.Consume: fetch, redelivery
// counts, back-off, ack / nak / term from the handler's Outcome), publishing
// document events from the outbox (Relay), message schedules, and following
// one user's document events live. It knows no service: the subjects of
// document events are package document's, the sweeper's are the sweeper's.
package events
