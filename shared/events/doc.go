// Package events owns DocuVault's use of NATS JetStream: connecting (and
// refusing servers too old for message schedules), what `docuvault setup`
// makes (Setup: the streams, the durable consumers, whose settings are
// written here only, and the sweeper's message schedule), the one consumer
// loop every durable consumer runs (Bus.Consume: bind, fetch, redelivery
// counts, back-off, ack / nak / term from the handler's Outcome),
// publishing document events from the outbox (Relay), and following one
// user's document events live. The roles never create or change a stream
// or consumer: they bind to setup's and say "run docuvault setup" when
// something is missing (nats.conf allows them nothing more). The subjects
// of document events are package document's; the sweeper's are written
// here, since setup makes the schedule and the consumer on them.
package events
