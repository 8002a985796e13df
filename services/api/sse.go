package api

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/rs/zerolog"
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

// events streams the caller's document events as Server-Sent Events, live
// from the event stream (Deps.Events), which delivers only the caller's own
// events.
//
// The stream is authenticated like every other route, by the Authorization
// header: read it with fetch(), not EventSource, so no token goes into a URL.
// Each event's id is its DOCUMENTS stream sequence; a client reconnecting
// with Last-Event-ID gets every event of its own after that one.
func (h *handlers) events(w http.ResponseWriter, r *http.Request) {
	user := caller(r).UserID
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
	switch err := h.streams.acquire(user); err {
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
	defer h.streams.release(user)
	msgs, stop, err := h.live.FollowUser(ctx, user, after, 64)
	if err != nil {
		zerolog.Ctx(ctx).Error().Err(err).Msg("event stream failed")
		writeDetail(w, http.StatusServiceUnavailable, "event stream unavailable")
		return
	}
	defer stop()

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
	beat := time.NewTicker(sseHeartbeat)
	defer beat.Stop()
	for {
		var err error
		select {
		case <-ctx.Done():
			return
		case <-h.closing:
			return
		case <-beat.C:
			err = write(": heartbeat\n\n")
		case e := <-msgs:
			err = write("id: %d\nevent: %s\ndata: %s\n\n", e.Seq, e.Type, e.Data)
		}
		if err != nil {
			return // the client went away, or stopped reading
		}
	}
}
