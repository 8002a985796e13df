package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/shared/ratelimit"
)

// sseHeartbeat keeps idle event streams (and the proxies between) open.
const sseHeartbeat = 15 * time.Second

// maxStreamsPerUser bounds one user's open event streams on one API
// replica: each holds a consumer of the event stream.
const maxStreamsPerUser = 8

// sseWriteTimeout bounds each write of an event stream: a client that
// stops reading fills the connection's buffers, the write blocks, and the
// stream ends, freeing its handler and its consumer.
var sseWriteTimeout = 10 * time.Second

// eventStreams is what GET /api/events keeps between requests on one
// replica: the open streams, the rate of new ones, how far back a resume
// may reach.
type eventStreams struct {
	counts streamCounts
	// connects limits how often each user opens an event stream: each one
	// is a JetStream consumer made and, on a resume, a replay; a page that
	// reconnects in a tight loop would cost that without end. A user may
	// open perMinute streams at once, then one every minute/perMinute.
	connects *ratelimit.Buckets
	// window is how far back a resume (Last-Event-ID) reaches:
	// EVENTS_RESUME_WINDOW.
	window time.Duration
}

func newEventStreams(maxStreams int, window time.Duration, perMinute int) *eventStreams {
	perMinute = max(perMinute, 1)
	s := &eventStreams{window: window, connects: ratelimit.NewBuckets(perMinute, perMinute, maxTrackedUsers)}
	s.counts.max = maxStreams
	return s
}

// streamCounts counts open event streams, per user and in all.
type streamCounts struct {
	mu    sync.Mutex
	n     map[uuid.UUID]int
	total int
	max   int // most streams in all on this replica; 0 means no bound
}

// acquire takes a stream slot for user: errUserStreams when the user has
// too many, errReplicaStreams when this replica has.
func (c *streamCounts) acquire(user uuid.UUID) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[uuid.UUID]int{}
	}
	switch {
	case c.n[user] >= maxStreamsPerUser:
		return errUserStreams
	case c.max > 0 && c.total >= c.max:
		return errReplicaStreams
	}
	c.n[user]++
	c.total++
	return nil
}

func (c *streamCounts) release(user uuid.UUID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.total--
	if c.n[user]--; c.n[user] <= 0 {
		delete(c.n, user)
	}
}

var (
	errUserStreams    = fmt.Errorf("too many open event streams (at most %d)", maxStreamsPerUser)
	errReplicaStreams = errors.New("this server holds as many event streams as it may: try again shortly")
)

// maxTrackedUsers bounds the users whose connect rate one replica tracks
// (about 100 bytes each).
const maxTrackedUsers = 100_000

// retryAfter is a Retry-After value: whole seconds, rounded up, at least 1.
func retryAfter(d time.Duration) string {
	return strconv.FormatInt(max(int64((d+time.Second-1)/time.Second), 1), 10)
}

// resetEvent is the data of the reset event (see events).
type resetEvent struct {
	Type   string `json:"type"`   // "reset"
	Detail string `json:"detail"` // for a person reading the stream
}

// events streams the caller's document events as Server-Sent Events, live
// from the event stream (Deps.Events), which delivers only the caller's own
// events.
//
// The stream is authenticated like every other route, by the Authorization
// header: read it with fetch(), not EventSource, so no token goes into a URL.
// Each event's id is its DOCUMENTS stream sequence; a client reconnecting
// with Last-Event-ID gets every event of its own after that one, if that
// one is at most EVENTS_RESUME_WINDOW old and still held. Otherwise the
// stream starts from now and its first event is "reset": reload the list,
// since what happened meanwhile is not replayed (its id is a resume point).
//
// A stream ends at its token's exp: the client reconnects with a fresh
// token. Each user may open EVENTS_CONNECTS_PER_MINUTE streams a minute
// (429 with Retry-After beyond). A stream holds at most
// events.FollowBufferBytes of events in memory, plus the one being written.
func (h *handlers) events(w http.ResponseWriter, r *http.Request) {
	p := caller(r)
	user := p.UserID
	ctx := r.Context()
	var after uint64
	if last := r.Header.Get("Last-Event-ID"); last != "" {
		seq, err := strconv.ParseUint(last, 10, 64)
		if err != nil || seq == 0 || seq == math.MaxUint64 {
			writeDetail(w, http.StatusBadRequest, "Last-Event-ID must be the id of an event this stream sent")
			return
		}
		after = seq
	}
	now := time.Now()
	ttl := p.Expires.Sub(now)
	if ttl <= 0 {
		// Accepted within JWT_LEEWAY, but a stream would end at once: the
		// client should get a fresh token first.
		w.Header().Set("WWW-Authenticate", `Bearer realm="docuvault"`) // as every 401 (openapi.json)
		writeDetail(w, http.StatusUnauthorized, "token expired")
		return
	}
	switch err := h.streams.counts.acquire(user); err {
	case nil:
	case errUserStreams:
		w.Header().Set("Retry-After", "30")
		writeDetail(w, http.StatusTooManyRequests, err.Error())
		return
	default:
		w.Header().Set("Retry-After", "5")
		writeDetail(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	defer h.streams.counts.release(user)
	// Counted once a slot is held: only connects that would open a stream
	// (a consumer, maybe a replay) cost anything worth limiting.
	if wait, ok := h.streams.connects.Take(user, now); !ok {
		w.Header().Set("Retry-After", retryAfter(wait))
		writeDetail(w, http.StatusTooManyRequests, "event streams opened too often: reconnect after Retry-After seconds")
		return
	}
	f, err := h.live.FollowUser(ctx, user, after, now.Add(-h.streams.window))
	if err != nil {
		zerolog.Ctx(ctx).Error().Err(err).Msg("event stream failed")
		writeDetail(w, http.StatusServiceUnavailable, "event stream unavailable")
		return
	}
	defer f.Stop()

	rc := http.NewResponseController(w)
	// A stream outlives the server's write timeout; each write has its own.
	write := func(format string, args ...any) error {
		if err := rc.SetWriteDeadline(time.Now().Add(sseWriteTimeout)); err != nil {
			return err
		}
		if _, err := fmt.Fprintf(w, format, args...); err != nil {
			return err
		}
		return rc.Flush()
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if err := write(": connected\n\n"); err != nil {
		return
	}
	if f.Reset {
		if err := write("%sevent: %s\ndata: %s\n\n", resetID(f.Seq), resetEventName, resetData); err != nil {
			return
		}
	}
	beat := time.NewTicker(sseHeartbeat)
	defer beat.Stop()
	expired := time.NewTimer(ttl)
	defer expired.Stop()
	for {
		var err error
		select {
		case <-ctx.Done():
			return
		case <-h.closing:
			return
		case <-expired.C:
			// Ended cleanly, so the client reconnects at once; the
			// comment says why to whoever reads the stream.
			_ = write(": token expired\n\n")
			return
		case <-beat.C:
			err = write(": heartbeat\n\n")
		case e := <-f.Events:
			err = write("id: %d\nevent: %s\ndata: %s\n\n", e.Seq, e.Type, e.Data)
		}
		if err != nil {
			return // the client went away, or stopped reading
		}
	}
}

// resetEventName names the event a stream opens with when it could not
// resume after Last-Event-ID.
const resetEventName = "reset"

// resetData is the reset event's data.
var resetData = func() []byte {
	b, _ := json.Marshal(resetEvent{Type: resetEventName,
		Detail: "events since Last-Event-ID are not replayed (older than the resume window, or no longer held): reload the document list"})
	return b
}()

// resetID is the reset event's id line: the stream sequence it starts
// after, a resume point that misses nothing. An empty id when DOCUMENTS
// was empty (0 is no event's id): it clears the client's last event id, so
// that it reconnects without Last-Event-ID rather than with the stale one.
func resetID(seq uint64) string {
	if seq == 0 {
		return "id:\n"
	}
	return fmt.Sprintf("id: %d\n", seq)
}
