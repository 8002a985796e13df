package api

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/shared/events"
)

// sseHeartbeat keeps idle event streams (and the proxies between) open.
const sseHeartbeat = 15 * time.Second

// maxStreamsPerUser bounds one user's open event streams on one API
// replica: each holds a JetStream consumer.
const maxStreamsPerUser = 8

// streamCounts counts open event streams per user.
type streamCounts struct {
	mu sync.Mutex
	n  map[uuid.UUID]int
}

// acquire takes a stream slot for user; false when the user has too many.
func (c *streamCounts) acquire(user uuid.UUID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[uuid.UUID]int{}
	}
	if c.n[user] >= maxStreamsPerUser {
		return false
	}
	c.n[user]++
	return true
}

func (c *streamCounts) release(user uuid.UUID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[user]--; c.n[user] <= 0 {
		delete(c.n, user)
	}
}

// events streams the caller's document events as Server-Sent Events, live
// from JetStream through an ordered ephemeral consumer on
// document.*.<user_id>: only the caller's own events can match.
//
// The stream is authenticated like every other route, by the Authorization
// header: read it with fetch(), not EventSource, so no token goes into a URL.
func (h *handlers) events(w http.ResponseWriter, r *http.Request) {
	user := caller(r).UserID
	ctx := r.Context()
	if !h.streams.acquire(user) {
		w.Header().Set("Retry-After", "30")
		writeDetail(w, http.StatusTooManyRequests, fmt.Sprintf("too many open event streams (at most %d)", maxStreamsPerUser))
		return
	}
	defer h.streams.release(user)
	cons, err := h.js.OrderedConsumer(ctx, events.StreamDocuments, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"document.*." + user.String()},
		DeliverPolicy:  jetstream.DeliverNewPolicy,
	})
	if err != nil {
		zerolog.Ctx(ctx).Error().Err(err).Msg("event stream consumer failed")
		writeDetail(w, http.StatusServiceUnavailable, "event stream unavailable")
		return
	}
	msgs := make(chan jetstream.Msg, 64)
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case msgs <- m:
		case <-ctx.Done():
		}
	})
	if err != nil {
		zerolog.Ctx(ctx).Error().Err(err).Msg("event stream consume failed")
		writeDetail(w, http.StatusServiceUnavailable, "event stream unavailable")
		return
	}
	defer cc.Stop()

	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a stream outlives the server's write timeout
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": connected\n\n")
	if err := rc.Flush(); err != nil {
		return
	}
	beat := time.NewTicker(sseHeartbeat)
	defer beat.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.closing:
			return
		case <-beat.C:
			fmt.Fprint(w, ": heartbeat\n\n")
		case m := <-msgs:
			// Subject document.<type>.<user_id>: the event name is its first two tokens.
			name := m.Subject()
			if i := strings.LastIndexByte(name, '.'); i > 0 {
				name = name[:i]
			}
			fmt.Fprintf(w, "id: %s\nevent: %s\ndata: %s\n\n", m.Headers().Get(jetstream.MsgIDHeader), name, m.Data())
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}
