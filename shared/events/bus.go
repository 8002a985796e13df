package events

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/shared/document"
	"github.com/docuvault/docuvault/shared/metrics"
)

// Bus is a process's connection to NATS JetStream, and everything the
// services do with it: consume durable consumers (Consume), publish,
// keep message schedules, and follow a user's document events live.
type Bus struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	metrics *metrics.Metrics
}

// Open connects to NATS (see Connect); m counts what consumers do and may
// be nil.
func Open(cfg ConnectConfig, log zerolog.Logger, m *metrics.Metrics) (*Bus, error) {
	nc, js, err := Connect(cfg, log)
	if err != nil {
		return nil, err
	}
	return &Bus{nc: nc, js: js, metrics: m}, nil
}

// JetStream is the bus's JetStream client, for the outbox relay and setup.
func (b *Bus) JetStream() jetstream.JetStream { return b.js }

// Ping reports whether the bus is connected to a server and each of
// DocuVault's streams answers: on a cluster, a stream whose nodes have no
// quorum has no leader, and nothing can be published to it or consumed
// from it though the connection is up. The error names those streams, in
// words safe to show (readiness answers them).
func (b *Bus) Ping(ctx context.Context) error {
	if !b.nc.IsConnected() {
		return &document.Error{Code: document.Unavailable, Message: "NATS disconnected"}
	}
	streams := []string{StreamMinIO, StreamDocuments, StreamSweeper}
	failed := make([]bool, len(streams))
	var wg sync.WaitGroup
	for i, name := range streams {
		wg.Go(func() {
			// Answered by the stream's leader: none without a quorum.
			s, err := b.js.Stream(ctx, name)
			failed[i] = err != nil || s.CachedInfo().Cluster != nil && s.CachedInfo().Cluster.Leader == ""
		})
	}
	wg.Wait()
	var down []string
	for i, f := range failed {
		if f {
			down = append(down, streams[i])
		}
	}
	if len(down) > 0 {
		what := "stream " + down[0] + " has"
		if len(down) > 1 {
			what = "streams " + strings.Join(down, ", ") + " have"
		}
		return &document.Error{Code: document.Unavailable,
			Message: fmt.Sprintf("NATS %s no leader (no quorum of its replicas?)", what)}
	}
	return nil
}

// Close drains the connection: subscriptions end after the messages in
// hand, publishes in flight are flushed.
func (b *Bus) Close() { _ = b.nc.Drain() }

// Publish publishes data on subject and waits for JetStream to store it;
// msgID, when set, lets JetStream drop a duplicate publish.
func (b *Bus) Publish(ctx context.Context, subject string, data []byte, msgID string) error {
	var opts []jetstream.PublishOpt
	if msgID != "" {
		opts = append(opts, jetstream.WithMsgID(msgID))
	}
	_, err := b.js.Publish(ctx, subject, data, opts...)
	return err
}

// EnsureSchedule makes sure stream holds a message schedule on subject
// that fires a message on target every interval (see EnsureSchedule).
func (b *Bus) EnsureSchedule(ctx context.Context, stream, subject, target string, interval time.Duration) (published bool, err error) {
	return EnsureSchedule(ctx, b.js, stream, subject, target, interval)
}

// LiveEvent is a document event as it was stored in DOCUMENTS.
type LiveEvent struct {
	Seq  uint64             // its DOCUMENTS stream sequence
	Type document.EventType // e.g. document.uploaded
	Data []byte             // the CloudEvents JSON
}

// FollowUser delivers user's document events on the returned channel,
// live: those published after the stream sequence after (0: from now on),
// in order, through an ordered ephemeral consumer whose filter only the
// user's own events match. The channel holds buffer events; a reader that
// falls behind holds up only its own consumer. Call stop when done.
func (b *Bus) FollowUser(ctx context.Context, user uuid.UUID, after uint64, buffer int) (<-chan LiveEvent, func(), error) {
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{document.SubjectOfUser(user)},
		DeliverPolicy:  jetstream.DeliverNewPolicy,
	}
	if after > 0 {
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, after+1
	}
	cons, err := b.js.OrderedConsumer(ctx, StreamDocuments, cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("follow user events: %w", err)
	}
	out := make(chan LiveEvent, buffer)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		e := LiveEvent{Type: document.TypeOfSubject(m.Subject()), Data: m.Data()}
		if meta, err := m.Metadata(); err == nil {
			e.Seq = meta.Sequence.Stream
		}
		select {
		case out <- e:
		case <-ctx.Done():
		}
	})
	if err != nil {
		return nil, nil, fmt.Errorf("follow user events: %w", err)
	}
	return out, cc.Stop, nil
}
