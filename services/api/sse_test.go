package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/internal/apitest"
	"github.com/docuvault/docuvault/shared/auth"
	"github.com/docuvault/docuvault/shared/config"
	"github.com/docuvault/docuvault/shared/events"
)

// sseEvent is one Server-Sent Event.
type sseEvent struct {
	ID, Name string
	Data     struct {
		Type string `json:"type"`
		Data struct {
			DocumentID uuid.UUID `json:"document_id"`
			UserID     uuid.UUID `json:"user_id"`
		} `json:"data"`
	}
}

// openEvents opens GET /api/events with token (as fetch() would, with the
// Authorization header) and returns the parsed events as they arrive.
func openEvents(t *testing.T, s *apitest.Stack, token string) <-chan sseEvent {
	t.Helper()
	events, _ := resumeEvents(t, s, token, "")
	return events
}

// resumeEvents opens GET /api/events with Last-Event-ID lastID (none when
// empty); close ends the stream.
func resumeEvents(t *testing.T, s *apitest.Stack, token, lastID string) (events <-chan sseEvent, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/api/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	out := make(chan sseEvent, 16)
	sc := bufio.NewScanner(resp.Body)
	if !sc.Scan() || sc.Text() != ": connected" {
		t.Fatalf("stream did not open with a comment: %q", sc.Text())
	}
	go func() {
		defer resp.Body.Close()
		defer close(out)
		var e sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if e.Name != "" {
					out <- e
				}
				e = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				e.ID = strings.TrimPrefix(line, "id: ")
			case strings.HasPrefix(line, "event: "):
				e.Name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &e.Data); err != nil {
					t.Errorf("event data: %v", err)
				}
			}
		}
	}()
	return out, cancel
}

func next(t *testing.T, events <-chan sseEvent) sseEvent {
	t.Helper()
	select {
	case e := <-events:
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5 s")
	}
	return sseEvent{}
}

func TestEventStreamCarriesOnlyTheCallersEvents(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	alice, aliceTok := s.NewUser(t)
	bob, bobTok := s.NewUser(t)
	aliceEvents := openEvents(t, s, aliceTok)
	bobEvents := openEvents(t, s, bobTok)

	doc := s.Upload(t, aliceTok, "alice.pdf", apitest.BytesOf(10))
	if r := s.Confirm(t, aliceTok, doc); r.Status != http.StatusOK {
		t.Fatal(r.Status)
	}
	e := next(t, aliceEvents)
	if e.Name != "document.uploaded" || e.Data.Type != "document.uploaded" || e.Data.Data.DocumentID != doc || e.Data.Data.UserID != alice || e.ID == "" {
		t.Fatalf("alice's event: %+v", e)
	}

	// Bob's first event is his own: Alice's never reached his stream.
	bobDoc := s.Upload(t, bobTok, "bob.pdf", apitest.BytesOf(10))
	if r := s.Confirm(t, bobTok, bobDoc); r.Status != http.StatusOK {
		t.Fatal(r.Status)
	}
	if e := next(t, bobEvents); e.Data.Data.UserID != bob || e.Data.Data.DocumentID != bobDoc {
		t.Fatalf("bob received %+v", e)
	}
	if r := s.Do(t, http.MethodDelete, "/api/documents/"+doc.String(), aliceTok, nil); r.Status != http.StatusNoContent {
		t.Fatal(r.Status)
	}
	if e := next(t, aliceEvents); e.Name != "document.deleted" || e.Data.Data.DocumentID != doc {
		t.Fatalf("alice's second event: %+v", e)
	}
	select {
	case e := <-bobEvents:
		t.Fatalf("bob received another event: %+v", e)
	case <-time.After(300 * time.Millisecond):
	}

	if r := s.Do(t, http.MethodGet, "/api/events", "", nil); r.Status != http.StatusUnauthorized {
		t.Fatalf("events without a token: %d", r.Status)
	}
}

func TestEventStreamsPerUserAreBounded(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	_, tok := s.NewUser(t)
	for range 8 {
		openEvents(t, s, tok)
	}
	r := s.Do(t, http.MethodGet, "/api/events", tok, nil)
	if r.Status != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
		t.Fatalf("ninth stream: %d %s", r.Status, r.Body)
	}
	_, other := s.NewUser(t)
	openEvents(t, s, other) // another user is not affected
}

// TestEventStreamResumesAfterLastEventID reconnects with the id of the last
// event received and gets every event sent meanwhile, in order.
func TestEventStreamResumesAfterLastEventID(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	_, tok := s.NewUser(t)
	events, closeStream := resumeEvents(t, s, tok, "")
	first := s.Upload(t, tok, "first.pdf", apitest.BytesOf(10))
	if r := s.Confirm(t, tok, first); r.Status != http.StatusOK {
		t.Fatal(r.Status)
	}
	e := next(t, events)
	if _, err := strconv.ParseUint(e.ID, 10, 64); err != nil || e.Data.Data.DocumentID != first {
		t.Fatalf("first event: %+v (its id should be a stream sequence)", e)
	}
	closeStream()

	// While disconnected: another upload, and a delete.
	second := s.Upload(t, tok, "second.pdf", apitest.BytesOf(10))
	if r := s.Confirm(t, tok, second); r.Status != http.StatusOK {
		t.Fatal(r.Status)
	}
	if r := s.Do(t, http.MethodDelete, "/api/documents/"+first.String(), tok, nil); r.Status != http.StatusNoContent {
		t.Fatal(r.Status)
	}
	resumed, _ := resumeEvents(t, s, tok, e.ID)
	if e := next(t, resumed); e.Name != "document.uploaded" || e.Data.Data.DocumentID != second {
		t.Fatalf("first event after resuming: %+v, want document.uploaded of %s", e, second)
	}
	if e := next(t, resumed); e.Name != "document.deleted" || e.Data.Data.DocumentID != first {
		t.Fatalf("second event after resuming: %+v, want document.deleted of %s", e, first)
	}

	for _, bad := range []string{"abc", "0", "-1", "18446744073709551615"} {
		req, _ := http.NewRequest(http.MethodGet, s.URL+"/api/events", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Last-Event-ID", bad)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("Last-Event-ID %q: %d, want 400", bad, resp.StatusCode)
		}
	}
}

// TestEventStreamsPerReplicaAreBounded opens EVENT_STREAMS_MAX streams of
// different users: the next one, of yet another user, is 503 with
// Retry-After, until one closes.
func TestEventStreamsPerReplicaAreBounded(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{Edit: func(c *config.Config) { c.MaxEventStreams = 3 }})
	var closers []func()
	for range 3 {
		_, tok := s.NewUser(t)
		_, closeStream := resumeEvents(t, s, tok, "")
		closers = append(closers, closeStream)
	}
	_, tok := s.NewUser(t)
	r := s.Do(t, http.MethodGet, "/api/events", tok, nil)
	if r.Status != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" {
		t.Fatalf("stream over the replica's bound: %d %s, Retry-After %q", r.Status, r.Body, r.Header.Get("Retry-After"))
	}
	closers[0]()
	deadline := time.Now().Add(5 * time.Second)
	for status := tryEvents(t, s, tok); status != http.StatusOK; status = tryEvents(t, s, tok) {
		if time.Now().After(deadline) {
			t.Fatalf("no stream after one closed: %d", status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tryEvents opens GET /api/events, closes it at once and returns the status.
func tryEvents(t *testing.T, s *apitest.Stack, token string) int {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/api/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestEventStreamDropsAClientThatStopsReading opens a stream and never
// reads it while large events pile up: once a write has waited 10 s the
// server ends the stream and frees its slot (the user's eighth).
func TestEventStreamDropsAClientThatStopsReading(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	user, tok := s.NewUser(t)
	for range 7 {
		openEvents(t, s, tok)
	}
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4 << 10) // a small window fills sooner
	}
	fmt.Fprintf(conn, "GET /api/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", tok)
	time.Sleep(500 * time.Millisecond) // the stream is open, never read

	nc, js, err := events.Connect(events.ConnectConfig{URL: s.NATS.URL}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// JSON, for the streams that do read; DOCUMENTS takes up to 64 KiB.
	big := []byte(`{"type":"document.uploaded","pad":"` + strings.Repeat("x", 16<<10) + `"}`)
	for range 2048 { // 32 MiB: more than any socket buffer holds
		if _, err := js.PublishAsync("document.uploaded."+user.String(), big); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		t.Fatal("the events were not all stored within 30 s")
	}
	start := time.Now()
	for status := tryEvents(t, s, tok); status != http.StatusOK; status = tryEvents(t, s, tok) {
		if time.Since(start) > 40*time.Second {
			t.Fatalf("the stream of a client that stopped reading still holds its slot after %s (%d)", time.Since(start), status)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("the stalled stream was dropped %s after the events were published", time.Since(start).Round(100*time.Millisecond))
}

// refusedEvents opens GET /api/events expecting a refusal: it returns the
// answer, or fails the test if a stream opens.
func refusedEvents(t *testing.T, s *apitest.Stack, token string) apitest.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/api/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Fatal("a stream opened; want a refusal")
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return apitest.Response{Status: resp.StatusCode, Body: body, Header: resp.Header}
}

// TestEventStreamResetsAResumeOlderThanTheWindow: a reconnect whose
// Last-Event-ID is older than EVENTS_RESUME_WINDOW (or not an event the
// stream holds) gets one reset event, telling the page to reload its list,
// and then only new events: what happened meanwhile is not replayed. The
// reset's id is a resume point.
func TestEventStreamResetsAResumeOlderThanTheWindow(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{Edit: func(c *config.Config) { c.EventsResumeWindow = time.Second }})
	_, tok := s.NewUser(t)
	events, closeStream := resumeEvents(t, s, tok, "")
	first := s.Upload(t, tok, "first.pdf", apitest.BytesOf(10))
	if r := s.Confirm(t, tok, first); r.Status != http.StatusOK {
		t.Fatal(r.Status)
	}
	seen := next(t, events)
	closeStream()
	missed := s.Upload(t, tok, "missed.pdf", apitest.BytesOf(10))
	if r := s.Confirm(t, tok, missed); r.Status != http.StatusOK {
		t.Fatal(r.Status)
	}
	time.Sleep(1500 * time.Millisecond) // the first event is now older than the window

	for name, lastID := range map[string]string{"older than the window": seen.ID, "not held": "999999999"} {
		t.Run(name, func(t *testing.T) {
			resumed, closeResumed := resumeEvents(t, s, tok, lastID)
			defer closeResumed()
			reset := next(t, resumed)
			if reset.Name != "reset" || reset.Data.Type != "reset" {
				t.Fatalf("first event after resuming with %s: %+v, want a reset", lastID, reset)
			}
			if seq, err := strconv.ParseUint(reset.ID, 10, 64); err != nil || seq == 0 {
				t.Fatalf("reset id %q: want the stream sequence it resumes after", reset.ID)
			}
			select {
			case e := <-resumed:
				t.Fatalf("replayed %+v after the reset", e)
			case <-time.After(500 * time.Millisecond):
			}
			fresh := s.Upload(t, tok, "fresh.pdf", apitest.BytesOf(10))
			if r := s.Confirm(t, tok, fresh); r.Status != http.StatusOK {
				t.Fatal(r.Status)
			}
			if e := next(t, resumed); e.Name != "document.uploaded" || e.Data.Data.DocumentID != fresh {
				t.Fatalf("event after the reset: %+v, want document.uploaded of %s", e, fresh)
			}
		})
	}
}

// TestEventStreamConnectsPerUserAreRateLimited: a user opening streams in
// a loop gets 429 with Retry-After once past EVENTS_CONNECTS_PER_MINUTE;
// another user does not.
func TestEventStreamConnectsPerUserAreRateLimited(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{Edit: func(c *config.Config) { c.EventsConnectsPerMinute = 3 }})
	_, tok := s.NewUser(t)
	for i := range 3 {
		if status := tryEvents(t, s, tok); status != http.StatusOK {
			t.Fatalf("connect %d: %d", i+1, status)
		}
	}
	r := refusedEvents(t, s, tok)
	retry, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if r.Status != http.StatusTooManyRequests || err != nil || retry < 1 || retry > 20 {
		t.Fatalf("fourth connect within a minute: %d %s, Retry-After %q (want 429, about 20 s)", r.Status, r.Body, r.Header.Get("Retry-After"))
	}
	if d, ok := r.Detail(t).(string); !ok || d == "" {
		t.Fatalf("detail %s", r.Body)
	}
	_, other := s.NewUser(t)
	if status := tryEvents(t, s, other); status != http.StatusOK {
		t.Fatalf("another user: %d", status)
	}
}

// TestEventStreamEndsAtTokenExpiry: a stream ends, cleanly, at its token's
// exp (the client reconnects with a fresh one); a token past its exp but
// within JWT_LEEWAY opens no stream.
func TestEventStreamEndsAtTokenExpiry(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	user, _ := s.NewUser(t)
	mint := func(ttl time.Duration, now time.Time) string {
		tok, err := auth.Mint(auth.Config{Secret: []byte(s.Cfg.JWTSecret)}, auth.Principal{UserID: user, Role: auth.RoleUser}, ttl, now)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	now := time.Now()
	exp := now.Add(2 * time.Second).Truncate(time.Second) // exp has whole seconds
	events, _ := resumeEvents(t, s, mint(2*time.Second, now), "")
	select {
	case e, open := <-events:
		if open {
			t.Fatalf("event %+v", e)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stream outlived its token's exp by 3 s")
	}
	if ended := time.Now(); ended.Before(exp.Add(-100*time.Millisecond)) || ended.After(exp.Add(2*time.Second)) {
		t.Fatalf("the stream ended at %s, its token expired at %s", ended.Format(time.StampMilli), exp.Format(time.StampMilli))
	}

	r := refusedEvents(t, s, mint(time.Second, time.Now().Add(-2*time.Second)))
	if r.Status != http.StatusUnauthorized || r.Detail(t) != "token expired" {
		t.Fatalf("a token past its exp, within the leeway: %d %s", r.Status, r.Body)
	}
}
