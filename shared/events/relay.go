package events

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/shared/document"
	"github.com/docuvault/docuvault/shared/metrics"
)

// Relay publishes outbox messages to JetStream, each with Nats-Msg-Id set
// to its event id, and forgets them in the outbox once JetStream
// acknowledged them. Run one per process: it publishes what the process
// commits as soon as it commits, and claims from the table what any
// process left unpublished for longer than Grace. Replicas share the
// outbox safely.
type Relay struct {
	outbox document.Outbox
	js     jetstream.JetStream
	log    zerolog.Logger

	// BatchSize bounds the messages claimed per transaction, and the
	// published events forgotten per statement.
	BatchSize int
	// PollInterval is how often the table is checked for events left
	// unpublished (by a process that stopped, or while NATS was away).
	PollInterval time.Duration
	// Grace is how old an unpublished event must be before a claim takes
	// it: younger ones are in their own process's hands.
	Grace time.Duration
	// ForgetInterval is the longest a published event waits to be
	// forgotten in the outbox: the deletes of a busy relay go together.
	ForgetInterval time.Duration
	// AckTimeout bounds the wait for JetStream's acknowledgements.
	AckTimeout time.Duration
	// Metrics, when set, counts published events and their lag.
	Metrics *metrics.Metrics
}

// NewRelay returns a Relay with default settings that publishes on bus's
// connection.
func NewRelay(outbox document.Outbox, bus *Bus, log zerolog.Logger) *Relay {
	return &Relay{outbox: outbox, js: bus.js, log: log, BatchSize: 256, PollInterval: time.Second,
		Grace: 5 * time.Second, ForgetInterval: 100 * time.Millisecond, AckTimeout: 5 * time.Second}
}

// Run relays until ctx ends. Through a NATS or database outage the rows
// wait and Run retries with back-off; nothing is lost.
func (r *Relay) Run(ctx context.Context) error {
	var (
		published  []uuid.UUID // published, not yet forgotten
		forgetAt   time.Time   // when published must be forgotten
		pollAt     = time.Now()
		pollErrors = 0
	)
	forget := func(ctx context.Context) {
		if len(published) == 0 {
			return
		}
		if err := r.outbox.ForgetOutbox(ctx, published); err != nil {
			// They stay in the table; a claim past Grace republishes them,
			// and JetStream drops the duplicates.
			r.log.Warn().Err(err).Int("events", len(published)).Msg("outbox forget failed")
		}
		published = published[:0]
	}
	for ctx.Err() == nil {
		now := time.Now()
		if !now.Before(pollAt) {
			if err := r.claim(ctx, now.Add(-r.Grace)); err != nil && ctx.Err() == nil {
				pollErrors++
				backoff := min(r.PollInterval<<min(pollErrors, 4), 30*time.Second)
				r.log.Warn().Err(err).Dur("retry_in", backoff).Msg("outbox relay failed")
				pollAt = now.Add(backoff)
			} else {
				pollErrors, pollAt = 0, now.Add(r.PollInterval)
			}
		}
		wait := time.Until(pollAt)
		if len(published) > 0 {
			wait = min(wait, time.Until(forgetAt))
		}
		msgs := r.outbox.Committed(ctx, max(wait, 0))
		if len(msgs) > 0 {
			acked, err := r.publish(ctx, msgs)
			if err != nil && ctx.Err() == nil {
				r.log.Warn().Err(err).Int("events", len(msgs)-len(acked)).Msg("outbox publish failed; the events wait in the outbox")
			}
			if len(published) == 0 {
				forgetAt = time.Now().Add(r.ForgetInterval)
			}
			published = append(published, acked...)
		}
		if len(published) >= r.BatchSize || len(published) > 0 && !time.Now().Before(forgetAt) {
			forget(ctx)
		}
	}
	// What the process committed last is published now, not left for
	// another relay's claim past Grace; what was published is forgotten,
	// not republished by a claim.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.AckTimeout)
	defer cancel()
	if msgs := r.outbox.Committed(ctx, 0); len(msgs) > 0 {
		acked, err := r.publish(ctx, msgs)
		if err != nil {
			r.log.Warn().Err(err).Int("events", len(msgs)-len(acked)).Msg("outbox publish at stop failed; the events wait in the outbox")
		}
		published = append(published, acked...)
	}
	forget(ctx)
	return nil
}

// claim publishes the events recorded before before that are still in the
// outbox, a batch per transaction.
func (r *Relay) claim(ctx context.Context, before time.Time) error {
	for {
		n, err := r.outbox.RelayOutbox(ctx, before, r.BatchSize, r.publish)
		if err != nil || n < r.BatchSize {
			return err
		}
	}
}

// publish sends msgs asynchronously and returns the ids of those JetStream
// acknowledged.
func (r *Relay) publish(ctx context.Context, msgs []document.OutboxMessage) ([]uuid.UUID, error) {
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	var errs []error
	for _, m := range msgs {
		msg := nats.NewMsg(m.Subject)
		msg.Data = m.Payload
		f, err := r.js.PublishMsgAsync(msg, jetstream.WithMsgID(m.MsgID.String()))
		if err != nil {
			errs = append(errs, err)
			break
		}
		futures = append(futures, f)
	}
	timeout := time.NewTimer(r.AckTimeout)
	defer timeout.Stop()
	acked := make([]uuid.UUID, 0, len(futures))
	for i, f := range futures {
		select {
		case <-f.Ok():
			acked = append(acked, msgs[i].MsgID)
		case err := <-f.Err():
			errs = append(errs, err)
		case <-timeout.C:
			return r.count(msgs, acked), errors.Join(append(errs, errors.New("timed out waiting for JetStream acknowledgements"))...)
		case <-ctx.Done():
			return r.count(msgs, acked), ctx.Err()
		}
	}
	return r.count(msgs, acked), errors.Join(errs...)
}

// count records the published events acked, of msgs, in the metrics.
func (r *Relay) count(msgs []document.OutboxMessage, acked []uuid.UUID) []uuid.UUID {
	if len(acked) == 0 || r.Metrics == nil {
		return acked
	}
	r.Metrics.OutboxPublished.Add(float64(len(acked)))
	now := time.Now()
	ok := make(map[uuid.UUID]bool, len(acked))
	for _, id := range acked {
		ok[id] = true
	}
	for _, m := range msgs {
		if ok[m.MsgID] {
			r.Metrics.OutboxLag.Observe(now.Sub(m.CreatedAt).Seconds())
		}
	}
	return acked
}
