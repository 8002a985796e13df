package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/docuvault/docuvault/services/internal/apitest"
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
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/api/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
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
	return out
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
