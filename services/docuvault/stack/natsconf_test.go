package stack_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/internal/apitest"
	"github.com/docuvault/docuvault/internal/testenv"
	"github.com/docuvault/docuvault/services/sweeper"
	"github.com/docuvault/docuvault/shared/events"
)

// violations records what a NATS server logs as errors and warnings, the
// permission violations among them.
type violations struct {
	mu    sync.Mutex
	lines []string
}

func (v *violations) add(format string, args ...any) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.lines = append(v.lines, fmt.Sprintf(format, args...))
}

func (v *violations) Noticef(string, ...any)            {}
func (v *violations) Debugf(string, ...any)             {}
func (v *violations) Tracef(string, ...any)             {}
func (v *violations) Warnf(format string, args ...any)  { v.add(format, args...) }
func (v *violations) Errorf(format string, args ...any) { v.add(format, args...) }
func (v *violations) Fatalf(format string, args ...any) { v.add(format, args...) }

// refused returns the lines that tell of a refusal.
func (v *violations) refused() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []string
	for _, l := range v.lines {
		if strings.Contains(l, "Violation") || strings.Contains(l, "Authorization") {
			out = append(out, l)
		}
	}
	return out
}

// TestStackRunsAsNATSConfUsers runs the real composition root against a
// NATS server started from nats.conf: setup as user setup, each role as
// its own user (with its own MinIO identity), MinIO as user minio. An
// upload confirmed by its notification alone is scanned (a real clamd) and
// found clean, then classified, an admin sweep runs, readiness and the
// backlog gauge answer, and the server refused nothing any role asked:
// nats.conf grants each role what the code does.
func TestStackRunsAsNATSConfUsers(t *testing.T) {
	pw := map[string]string{}
	for _, user := range []string{"api", "confirmer", "sweeper", "classifier", "scanner", "setup", "minio"} {
		pw[user] = "p" + rand.Text() // a letter first: nats.conf's parser reads digits as a number
	}
	srv := testenv.StartNATSConf(t, pw)
	logged := &violations{}
	srv.SetLogger(logged, false, false)
	s := apitest.Start(t, apitest.Options{
		Events: true, Sweepers: 1, Classifiers: 1,
		Clamd: testenv.StartClamAV(t, 0), Scanners: 1,
		NATSConf: &apitest.NATSConf{Addr: srv.Addr().String(), Passwords: pw},
	})
	_, token := s.NewUser(t)

	// The notification door alone: no confirm call.
	data := []byte("%PDF-1.4\n" + strings.Repeat("an invoice total due ", 40))
	ticket := s.RequestUpload(t, token, "invoice.pdf", "application/pdf", int64(len(data)))
	if st := s.Put(t, ticket, "application/pdf", data); st != http.StatusOK {
		t.Fatalf("PUT: %d", st)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		var d struct {
			Status     string `json:"status"`
			ScanStatus string `json:"scan_status"`
		}
		s.Do(t, http.MethodGet, "/api/documents/"+ticket.DocumentID.String(), token, nil).Decode(t, &d)
		if slices.Contains([]string{"classified", "classification_failed"}, d.Status) {
			// Only a clean document is classified while scanning is on.
			if d.ScanStatus != "clean" {
				t.Errorf("document %s with scan_status %q, want clean", d.Status, d.ScanStatus)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("document is %q (scan %q) 60 s after its PUT: confirmed by its notification, scanned and classified never happened (refused: %q)", d.Status, d.ScanStatus, logged.refused())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// And the other door.
	s.Upload(t, token, "notes.pdf", data)

	// An admin sweep: the api publishes the tick, the sweeper runs it and
	// publishes its result.
	run := s.TriggerSweep(t)
	nc, setup, err := events.Connect(events.ConnectConfig{
		URL: s.NATSURL, User: "setup", Password: pw["setup"], InboxPrefix: "_INBOX_setup",
	}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	deadline = time.Now().Add(30 * time.Second)
	for {
		if done := lastSweep(t, setup); done.RunID == run {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sweep %s never completed (refused: %q)", run, logged.refused())
		}
		time.Sleep(100 * time.Millisecond)
	}

	for _, path := range []string{"/readyz", "/metrics"} {
		resp, err := http.Get(s.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: %d %s", path, resp.StatusCode, body)
		}
		if path == "/metrics" && !strings.Contains(string(body), "\ndocuvault_notifications_waiting ") {
			t.Errorf("/metrics lacks the backlog gauge docuvault_notifications_waiting")
		}
	}
	if r := logged.refused(); len(r) > 0 {
		t.Errorf("the server refused a role %d times:\n%s", len(r), strings.Join(r, "\n"))
	}
}

// lastSweep is the newest result on sweeper.run.completed, read as setup.
func lastSweep(t *testing.T, js jetstream.JetStream) sweeper.Completed {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, events.StreamSweeper)
	if err != nil {
		t.Fatal(err)
	}
	var done sweeper.Completed
	msg, err := st.GetLastMsgForSubject(ctx, sweeper.SubjectCompleted)
	if err != nil {
		return done // none yet
	}
	if err := json.Unmarshal(msg.Data, &done); err != nil {
		t.Fatal(err)
	}
	return done
}
