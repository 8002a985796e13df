package confirmer_test

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/docuvault/docuvault/internal/apitest"
	"github.com/docuvault/docuvault/shared/config"
)

// endpointSettled counts the uploads the api's confirm endpoint settled
// itself (stat and settle statement), not the notification door.
func endpointSettled(s *apitest.Stack) int64 {
	return apitest.Count(s.API.Metrics.Confirms.WithLabelValues("endpoint", "uploaded"))
}

// One writer per upload: a client that PUTs and confirms at once, as every
// client does, is answered from the notification door's settlement. The
// endpoint waits for it (CONFIRM_WAIT), so it neither stats the object nor
// runs a settle statement of its own; the answer is the contract's.
func TestOneWriterPerUpload(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{Events: true})
	uploaded := subscribe(t, s, "document.uploaded.>")
	_, tok := s.NewUser(t)

	const rounds = 60
	var (
		ids   []uuid.UUID
		total int64
		took  []time.Duration
	)
	for i := range rounds {
		size := 100 + i
		id := s.Upload(t, tok, "one.pdf", apitest.BytesOf(size))
		start := time.Now()
		r := s.Confirm(t, tok, id)
		took = append(took, time.Since(start))
		var c apitest.Confirmation
		r.Decode(t, &c)
		total += int64(size)
		if r.Status != http.StatusOK || c.Status != "uploaded" || c.SizeBytes != int64(size) || c.UsedBytes != total {
			t.Fatalf("round %d: confirm %d %s; want uploaded, %d bytes, %d used", i, r.Status, r.Body, size, total)
		}
		ids = append(ids, id)
	}
	// The notification door settled (nearly) all: the endpoint only when
	// the notification took longer than CONFIRM_WAIT (2 s).
	if n := endpointSettled(s); n > rounds/20 {
		t.Errorf("the endpoint settled %d of %d uploads itself, want at most %d: the confirm should wait for the notification door", n, rounds, rounds/20)
	}
	waitFor(t, 10*time.Second, "the confirmer to see every notification", func() bool { return confirmed(s)+already(s) >= rounds })
	waitFor(t, 10*time.Second, "an event per document", func() bool {
		for _, id := range ids {
			if uploaded.count(id) == 0 {
				return false
			}
		}
		return true
	})
	time.Sleep(300 * time.Millisecond) // late duplicates, if any
	for i, id := range ids {
		if n := uploaded.count(id); n != 1 {
			t.Fatalf("round %d: %d document.uploaded events, want 1", i, n)
		}
	}
	if used, _ := s.Quota(t, tok); used != total {
		t.Fatalf("used_bytes = %d, want %d", used, total)
	}
	slices.Sort(took)
	t.Logf("confirm after PUT: p50 %v, max %v; endpoint settled %d, notification door %d", took[len(took)/2], took[len(took)-1], endpointSettled(s), confirmed(s))
}

// The notification never arrives while NATS is away: the confirm still
// answers, within CONFIRM_WAIT and a stat, settling the upload itself; the
// notification MinIO queued finds it settled when NATS is back, and
// nothing is charged twice.
func TestConfirmAnswersWhileNATSIsDown(t *testing.T) {
	t.Parallel()
	const wait = 700 * time.Millisecond
	s := apitest.Start(t, apitest.Options{Events: true, Edit: func(c *config.Config) { c.ConfirmWait = wait }})
	uploaded := subscribe(t, s, "document.uploaded.>")
	_, tok := s.NewUser(t)

	s.NATS.Stop()
	id := s.Upload(t, tok, "late.pdf", apitest.BytesOf(4096))
	start := time.Now()
	r := s.Confirm(t, tok, id)
	took := time.Since(start)
	var c apitest.Confirmation
	r.Decode(t, &c)
	if r.Status != http.StatusOK || c.Status != "uploaded" || c.UsedBytes != 4096 {
		t.Fatalf("confirm with NATS down: %d %s", r.Status, r.Body)
	}
	if took < wait || took > wait+3*time.Second {
		t.Errorf("confirm with NATS down answered after %v, want CONFIRM_WAIT (%v) and a stat", took, wait)
	}
	if n := endpointSettled(s); n != 1 {
		t.Errorf("the endpoint settled %d uploads, want this one", n)
	}

	s.NATS.Restart(t)
	waitFor(t, 30*time.Second, "MinIO's queued notification, found settled", func() bool { return already(s) >= 1 })
	waitFor(t, 10*time.Second, "the document.uploaded event", func() bool { return uploaded.count(id) == 1 })
	if used, _ := s.Quota(t, tok); used != 4096 {
		t.Fatalf("used_bytes = %d after the notification, want 4096", used)
	}
	if n := confirmed(s); n != 0 {
		t.Fatalf("the notification door settled %d uploads, want none: the endpoint had", n)
	}
}
