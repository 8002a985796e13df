package events

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

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

	mu   sync.Mutex
	docs jetstream.Stream // DOCUMENTS, once looked up (see documents)
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

// Backlog returns how many notifications MINIO_EVENTS holds, and their
// bytes: those the confirmers have not yet acknowledged, since the stream
// keeps a notification only until then.
func (b *Bus) Backlog(ctx context.Context) (msgs, bytes uint64, err error) {
	s, err := b.js.Stream(ctx, StreamMinIO) // a STREAM.INFO request
	if err != nil {
		return 0, 0, err
	}
	st := s.CachedInfo().State
	return st.Msgs, st.Bytes, nil
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

// resumePoint is the sequence a follow resuming after after starts after:
// after itself when its event is still held and no older than notBefore,
// or when nothing was published since; otherwise DOCUMENTS' last sequence,
// with reset set.
func (b *Bus) resumePoint(ctx context.Context, after uint64, notBefore time.Time) (start uint64, reset bool, err error) {
	s, err := b.documents(ctx)
	if err != nil {
		return 0, false, err
	}
	m, err := s.GetMsg(ctx, after)
	switch {
	case err == nil && !m.Time.Before(notBefore):
		return after, false, nil
	case err != nil && !errors.Is(err, jetstream.ErrMsgNotFound):
		b.forgetDocuments() // its cached config may be stale (direct get)
		return 0, false, err
	}
	// Too old, or gone (DOCUMENTS dropped it as its oldest, or it never
	// held it): where does the stream stand now?
	info, err := s.Info(ctx)
	if err != nil {
		return 0, false, err
	}
	if last := info.State.LastSeq; after != last {
		return last, true, nil
	}
	// Nothing was published since the client's last event, however long
	// ago: it missed nothing (a quiet stream would otherwise reset every
	// reconnect).
	return after, false, nil
}

// documents is the DOCUMENTS stream's handle, looked up once: a lookup is
// a STREAM.INFO request, and a message get needs only the name.
func (b *Bus) documents(ctx context.Context) (jetstream.Stream, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.docs != nil {
		return b.docs, nil
	}
	s, err := b.js.Stream(ctx, StreamDocuments)
	if err != nil {
		return nil, err
	}
	b.docs = s
	return s, nil
}

func (b *Bus) forgetDocuments() {
	b.mu.Lock()
	b.docs = nil
	b.mu.Unlock()
}
