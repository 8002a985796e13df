package events

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"
)

// Consumer is a durable consumer as a service's replica works through
// its messages: the durable (one of Durables, made by setup) and how many
// messages at once, for how long each.
type Consumer struct {
	Durable
	Workers int           // messages this replica handles at once; 0 means 1
	Timeout time.Duration // bounds one handler call; 0 means no bound
}

// Message is one delivery of a consumer's message, as a handler sees it.
type Message struct {
	Subject   string
	Data      []byte
	StreamSeq uint64 // its sequence in the stream: the same on every delivery
	Delivered uint64 // 1 on the first delivery, 2 on the second, …
	Pending   uint64 // messages of the consumer still waiting after this one
}

// Outcome is what a handler concluded about a message; the loop settles
// the message accordingly.
type Outcome struct {
	verdict verdict
	err     error
	delay   time.Duration
	then    func(context.Context)
}

type verdict int

const (
	verdictAck verdict = iota
	verdictRetry
	verdictTerm
)

// Ack settles the message: it was handled, or there is nothing to do.
func Ack() Outcome { return Outcome{} }

// AckThen settles the message, waits for the server to confirm it, then
// runs fn: whoever acts on what fn announces finds the message no longer
// in hand. Should the confirmation fail, fn does not run and the message
// comes back.
func AckThen(fn func(context.Context)) Outcome { return Outcome{then: fn} }

// Retry hands the message back, to be delivered again after the consumer's
// back-off for this delivery; err, a passing failure, is logged.
func Retry(err error) Outcome { return Outcome{verdict: verdictRetry, err: err} }

// RetryAfter hands the message back, to be delivered again after delay.
func RetryAfter(delay time.Duration, err error) Outcome {
	return Outcome{verdict: verdictRetry, err: err, delay: delay}
}

// Term gives up on a message that can never be handled (malformed); it is
// never delivered again, and is logged and counted.
func Term(err error) Outcome { return Outcome{verdict: verdictTerm, err: err} }

// Handler handles one message. Its context carries a logger with the
// message's stream sequence, and ends at the consumer's Timeout.
type Handler func(ctx context.Context, m Message) Outcome

// Consume binds to the durable consumer c names, made by setup (an error
// wrapping ErrNotSetUp when it does not exist; it waits while JetStream
// cannot be reached), and hands its messages to h on c.Workers goroutines
// until ctx ends; then it stops fetching, lets the messages in hand finish
// and be settled, and returns. Every message is settled by h's Outcome:
// acked, handed back with a delay or terminated, by c's settings (a
// consumer on the server whose settings differ is logged: setup has not
// run since an upgrade). The logger in ctx (zerolog.Ctx), the service's,
// logs what the loop does.
func (b *Bus) Consume(ctx context.Context, c Consumer, h Handler) error {
	log := *zerolog.Ctx(ctx)
	cons, err := b.bind(ctx, c.Durable)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped while starting: a clean stop
		}
		return err
	}
	if diff := drift(c.Durable, cons.CachedInfo().Config); len(diff) > 0 {
		log.Warn().Str("consumer", c.Name).Strs("server_has", diff).
			Msg("the consumer's settings are not this release's: run docuvault setup")
	}
	workers := max(c.Workers, 1)
	work := make(chan jetstream.Msg)
	var wg sync.WaitGroup
	// Messages in hand finish even as ctx ends; only new ones stop.
	handleCtx := context.WithoutCancel(ctx)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range work {
				b.handle(handleCtx, log, c, h, m)
			}
		}()
	}
	defer func() {
		close(work)
		wg.Wait()
	}()
	cc, err := cons.Consume(func(m jetstream.Msg) { work <- m },
		jetstream.PullMaxMessages(2*workers),
		jetstream.PullExpiry(pullExpiry), jetstream.PullHeartbeat(pullHeartbeat))
	if err != nil {
		return fmt.Errorf("consume %s: %w", c.Name, err)
	}
	<-ctx.Done()
	cc.Drain()
	<-cc.Closed()
	return nil
}

// A pull request lives on the consumer's leader. When that leader's node
// goes, a replica's waiting requests can go with it unnoticed, and the
// replica pulls again only once it has missed two heartbeats. With the
// client's default heartbeat (half of a 30 s expiry), both confirmers sat
// idle for about 30 s after a NATS node was lost while notifications piled
// up (e2e/cluster); these bound the silence to about 4 s.
const (
	pullExpiry    = 10 * time.Second
	pullHeartbeat = 2 * time.Second
)

// ackRetryFor bounds how long a confirmed ack (AckThen) is tried again. An
// ack sent while the consumer's leader changes (its node lost, the next one
// not yet elected, which takes up to about 10 s) can be lost, refused ("no
// responders") or never answered, and the message is then held until
// AckWait before it comes back; with MaxAckPending 1 (the sweeper) nothing
// else is delivered meanwhile. Past AckWait the message comes back anyway:
// no longer. Each try waits ackTryFor for the answer.
const (
	ackRetryFor = 20 * time.Second
	ackTryFor   = 2 * time.Second
)

// doubleAck acks msg and waits for the server to confirm it, trying again
// for up to ackRetryFor (or ackWait, if shorter) while no answer comes; it
// returns how many times it tried. Acking again is safe: the server
// answers an ack of a message already acked.
func doubleAck(ctx context.Context, msg jetstream.Msg, ackWait time.Duration) (tries int, err error) {
	limit := ackRetryFor
	if ackWait > 0 {
		limit = min(limit, ackWait)
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for {
		tries++
		try, cancelTry := context.WithTimeout(ctx, ackTryFor)
		err = msg.DoubleAck(try)
		cancelTry()
		if err == nil || errors.Is(err, jetstream.ErrMsgNotBound) || errors.Is(err, jetstream.ErrMsgNoReply) ||
			errors.Is(err, jetstream.ErrMsgAlreadyAckd) {
			return tries, err
		}
		select {
		case <-ctx.Done():
			return tries, err
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// handle runs h on one message and settles it.
func (b *Bus) handle(ctx context.Context, log zerolog.Logger, c Consumer, h Handler, msg jetstream.Msg) {
	m := Message{Subject: msg.Subject(), Data: msg.Data(), Delivered: 1}
	if meta, err := msg.Metadata(); err == nil {
		m.StreamSeq, m.Delivered, m.Pending = meta.Sequence.Stream, meta.NumDelivered, meta.NumPending
	}
	log = log.With().Uint64("stream_seq", m.StreamSeq).Logger()
	if m.Delivered > 1 && b.metrics != nil {
		b.metrics.Redeliveries.WithLabelValues(c.Name).Inc()
	}
	ctx = log.WithContext(ctx)
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	stopKeepAlive := keepInProgress(msg, c.serverAckWait())
	out := h(ctx, m)
	stopKeepAlive()

	switch out.verdict {
	case verdictAck:
		if out.then == nil {
			_ = msg.Ack()
			return
		}
		tries, err := doubleAck(ctx, msg, c.serverAckWait())
		if err != nil {
			log.Warn().Err(err).Int("tries", tries).Msg("ack not confirmed; the message will come back")
			return
		}
		if tries > 1 {
			log.Info().Int("tries", tries).Msg("ack confirmed after trying again")
		}
		out.then(ctx)
	case verdictTerm:
		if b.metrics != nil {
			b.metrics.Terminated.WithLabelValues(c.Name).Inc()
		}
		log.Error().Err(out.err).Msg("message can never be handled: terminated")
		_ = msg.TermWithReason("malformed")
	case verdictRetry:
		if b.metrics != nil {
			b.metrics.Retries.WithLabelValues(c.Name).Inc()
		}
		delay := out.delay
		if delay == 0 && len(c.Backoff) > 0 {
			delay = c.Backoff[min(int(m.Delivered)-1, len(c.Backoff)-1)]
		}
		if c.MaxDeliver > 0 && int(m.Delivered) >= c.MaxDeliver {
			// Never delivered again: terminated, not handed back, so that
			// a stream that keeps a message until its consumer is done
			// with it (MINIO_EVENTS) lets it go. A nak would leave it there
			// until MaxAge, and a long outage's worth of them would fill the
			// backlog. What it was about is recovered elsewhere (the
			// sweeper confirms stale uploads).
			log.Error().Err(out.err).Uint64("deliveries", m.Delivered).Msg("handling failed for the last time")
			_ = msg.TermWithReason("max deliveries")
			return
		}
		log.Warn().Err(out.err).Dur("retry_in", delay).Msg("handling failed, will retry")
		_ = msg.NakWithDelay(delay)
	}
}

// serverAckWait is how long the server waits for a message's first ack:
// with a back-off, JetStream replaces the consumer's AckWait by
// Backoff[0] (and waits Backoff[n-1] for delivery n's). The in-progress
// reports and the confirmed ack's retries must fit within it.
func (d Durable) serverAckWait() time.Duration {
	if len(d.Backoff) > 0 {
		return slices.Min(d.Backoff)
	}
	return d.AckWait
}

// keepInProgress tells the server, every quarter of ackWait, that msg is
// still being handled, until the returned function is called.
func keepInProgress(msg jetstream.Msg, ackWait time.Duration) (stop func()) {
	if ackWait <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(ackWait / 4)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	}()
	return func() { close(done) }
}
