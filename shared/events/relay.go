package events

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/shared/document"
	"github.com/docuvault/docuvault/shared/metrics"
)

// Relay publishes outbox messages to JetStream, each with Nats-Msg-Id set
// to its event id, and marks them published once JetStream acknowledged
// them. Run one per process; replicas share the outbox safely.
type Relay struct {
	outbox document.Outbox
	js     jetstream.JetStream
	log    zerolog.Logger

	// BatchSize bounds the messages claimed per transaction.
	BatchSize int
	// PollInterval is the longest wait for a wake-up: the delay before rows
	// another process recorded and did not relay (it stopped) go out.
	PollInterval time.Duration
	// AckTimeout bounds the wait for JetStream's acknowledgements.
	AckTimeout time.Duration
	// Gather is how long a busy relay waits after a wake-up, so that
	// events committed meanwhile go out in the same batch.
	Gather time.Duration
	// Metrics, when set, counts published events and their lag.
	Metrics *metrics.Metrics
}

// NewRelay returns a Relay with default settings.
func NewRelay(outbox document.Outbox, js jetstream.JetStream, log zerolog.Logger) *Relay {
	return &Relay{outbox: outbox, js: js, log: log, BatchSize: 256, PollInterval: time.Second, AckTimeout: 5 * time.Second, Gather: time.Millisecond}
}

// Run relays until ctx ends. Through a NATS or database outage the rows
// wait and Run retries with back-off; nothing is lost.
func (r *Relay) Run(ctx context.Context) error {
	backoff := time.Duration(0)
	for ctx.Err() == nil {
		n, err := r.outbox.RelayOutbox(ctx, r.BatchSize, r.publish)
		switch {
		case err != nil && ctx.Err() == nil:
			backoff = min(max(2*backoff, 100*time.Millisecond), 5*time.Second)
			r.log.Warn().Err(err).Dur("retry_in", backoff).Msg("outbox relay failed")
			sleep(ctx, backoff)
			continue
		case n == r.BatchSize:
			continue // more may be waiting
		}
		backoff = 0
		if err := r.outbox.WaitOutbox(ctx, r.PollInterval); err != nil && ctx.Err() == nil {
			r.log.Warn().Err(err).Msg("outbox wait failed")
			sleep(ctx, r.PollInterval)
		}
		if n > 0 {
			// Busy: let a few more commits gather so that one transaction
			// publishes them together, at the cost of a millisecond.
			sleep(ctx, r.Gather)
		}
	}
	return nil
}

// publish sends msgs asynchronously and returns how many, from the first,
// JetStream acknowledged: order is kept, so a gap ends the count.
func (r *Relay) publish(ctx context.Context, msgs []document.OutboxMessage) (int, error) {
	futures := make([]jetstream.PubAckFuture, 0, len(msgs))
	var err error
	for _, m := range msgs {
		msg := nats.NewMsg(m.Subject)
		msg.Data = m.Payload
		var f jetstream.PubAckFuture
		f, err = r.js.PublishMsgAsync(msg, jetstream.WithMsgID(m.MsgID.String()))
		if err != nil {
			break
		}
		futures = append(futures, f)
	}
	timeout := time.NewTimer(r.AckTimeout)
	defer timeout.Stop()
	acked := 0
	for _, f := range futures {
		select {
		case <-f.Ok():
			acked++
			continue
		case perr := <-f.Err():
			err = perr
		case <-timeout.C:
			err = errors.New("timed out waiting for JetStream acknowledgements")
		case <-ctx.Done():
			err = ctx.Err()
		}
		break
	}
	if acked > 0 && r.Metrics != nil {
		r.Metrics.OutboxPublished.Add(float64(acked))
		now := time.Now()
		for _, m := range msgs[:acked] {
			r.Metrics.OutboxLag.Observe(now.Sub(m.CreatedAt).Seconds())
		}
	}
	return acked, err
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
