package confirmer_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/internal/apitest"
	"github.com/docuvault/docuvault/internal/testenv"
	"github.com/docuvault/docuvault/services/confirmer"
	"github.com/docuvault/docuvault/shared/document"
	"github.com/docuvault/docuvault/shared/events"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// collector records the document events a subscriber receives.
type collector struct {
	mu       sync.Mutex
	events   []document.Event
	received map[uuid.UUID]time.Time // first arrival per document
}

// subscribe collects every event on subject (e.g. document.uploaded.>) from
// the start of the DOCUMENTS stream, as another service would.
func subscribe(t *testing.T, s *apitest.Stack, subject string) *collector {
	t.Helper()
	nc, js, err := events.Connect(events.ConnectConfig{URL: s.NATS.URL, Name: "test-subscriber"}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	cons, err := js.OrderedConsumer(context.Background(), events.StreamDocuments, jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	if err != nil {
		t.Fatal(err)
	}
	c := &collector{received: map[uuid.UUID]time.Time{}}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		var e document.Event
		if err := json.Unmarshal(m.Data(), &e); err != nil {
			t.Errorf("event is not a CloudEvent: %v: %s", err, m.Data())
			return
		}
		c.mu.Lock()
		c.events = append(c.events, e)
		if _, ok := c.received[e.Data.DocumentID]; !ok {
			c.received[e.Data.DocumentID] = time.Now()
		}
		c.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Stop)
	return c
}

// count returns how many events concern document id.
func (c *collector) count(id uuid.UUID) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, e := range c.events {
		if e.Data.DocumentID == id {
			n++
		}
	}
	return n
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// status reads a document's status from the database.
func status(t *testing.T, s *apitest.Stack, id uuid.UUID) string {
	t.Helper()
	var st string
	if err := s.DB.QueryRow(context.Background(), "SELECT status FROM documents WHERE id = $1", id).Scan(&st); err != nil {
		t.Fatalf("status of %s: %v", id, err)
	}
	return st
}

func TestPutWithoutConfirmIsConfirmedByTheEvent(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{Events: true})
	uploaded := subscribe(t, s, "document.uploaded.>")
	_, tok := s.NewUser(t)

	id := s.Upload(t, tok, "auto.pdf", apitest.BytesOf(2048)) // PUT, no /confirm
	waitFor(t, 2*time.Second, "the document.uploaded event", func() bool { return uploaded.count(id) == 1 })
	if st := status(t, s, id); st != "uploaded" {
		t.Fatalf("status %s, want uploaded", st)
	}
	if used, _ := s.Quota(t, tok); used != 2048 {
		t.Fatalf("used_bytes = %d, want 2048", used)
	}
	// The endpoint now answers the same state and charges nothing more.
	r := s.Confirm(t, tok, id)
	var c apitest.Confirmation
	r.Decode(t, &c)
	if r.Status != http.StatusOK || c.UsedBytes != 2048 || c.Status != "uploaded" {
		t.Fatalf("confirm after the event: %d %s", r.Status, r.Body)
	}
	time.Sleep(300 * time.Millisecond)
	if n := uploaded.count(id); n != 1 {
		t.Fatalf("%d document.uploaded events, want exactly 1", n)
	}
	if got := confirmed(s); got != 1 {
		t.Fatalf("confirmer confirmed %d documents, want 1", got)
	}
}

func TestEndpointAndEventRace(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{Events: true})
	uploaded := subscribe(t, s, "document.uploaded.>")
	_, tok := s.NewUser(t)

	const rounds = 100
	var ids []uuid.UUID
	var total int64
	for i := range rounds {
		size := 100 + i
		id := s.Upload(t, tok, "race.pdf", apitest.BytesOf(size))
		// The notification is on its way; the endpoint races it.
		r := s.Confirm(t, tok, id)
		if r.Status != http.StatusOK {
			t.Fatalf("round %d: confirm %d %s", i, r.Status, r.Body)
		}
		ids = append(ids, id)
		total += int64(size)
	}
	waitFor(t, 10*time.Second, "an event per document", func() bool {
		for _, id := range ids {
			if uploaded.count(id) == 0 {
				return false
			}
		}
		return true
	})
	// Let late duplicates, if any, arrive.
	waitFor(t, 10*time.Second, "the confirmer to see every notification", func() bool {
		return confirmed(s)+already(s) >= rounds
	})
	time.Sleep(300 * time.Millisecond)
	for i, id := range ids {
		if n := uploaded.count(id); n != 1 {
			t.Fatalf("round %d: %d document.uploaded events, want 1", i, n)
		}
	}
	if used, _ := s.Quota(t, tok); used != total {
		t.Fatalf("used_bytes = %d, want %d (each document charged once)", used, total)
	}
	t.Logf("doors: endpoint won %d, event won %d", rounds-confirmed(s), confirmed(s))
}

func TestDuplicateNotificationChangesNothing(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{Events: true})
	uploaded := subscribe(t, s, "document.uploaded.>")
	nc, js, err := events.Connect(events.ConnectConfig{URL: s.NATS.URL}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// MINIO_EVENTS keeps a notification only until it is confirmed: the
	// test keeps its own copy as MinIO publishes it.
	notes, err := nc.SubscribeSync(events.SubjectMinIO)
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	_, tok := s.NewUser(t)
	id := s.Upload(t, tok, "dup.pdf", apitest.BytesOf(512))
	waitFor(t, 5*time.Second, "the document.uploaded event", func() bool { return uploaded.count(id) == 1 })
	original, err := notes.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("MinIO's notification: %v", err)
	}
	before := already(s)
	if _, err := js.Publish(context.Background(), events.SubjectMinIO, original.Data); err != nil {
		t.Fatal(err)
	}
	// (MinIO's queued copy of the original may be handled in between: it
	// counts as "already" too.)
	waitFor(t, 5*time.Second, "the copy to be handled", func() bool { return already(s) >= before+1 })
	time.Sleep(200 * time.Millisecond)
	if n := uploaded.count(id); n != 1 {
		t.Fatalf("%d document.uploaded events after a duplicate notification, want 1", n)
	}
	if used, _ := s.Quota(t, tok); used != 512 {
		t.Fatalf("used_bytes = %d after a duplicate notification, want 512", used)
	}
}

func TestMalformedNotificationIsTerminatedAndCounted(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{Events: true})
	uploaded := subscribe(t, s, "document.uploaded.>")
	nc, js, err := events.Connect(events.ConnectConfig{URL: s.NATS.URL}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	for _, junk := range []string{"not json", `{"Records":[]}`, `{"Records":[{"eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"%zz"}}}]}`} {
		if _, err := js.Publish(context.Background(), events.SubjectMinIO, []byte(junk)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, "three terminated messages", func() bool {
		return apitest.Count(s.Confirmer.Metrics.Terminated.WithLabelValues(confirmer.ConsumerName)) == 3
	})

	// The consumer keeps working.
	_, tok := s.NewUser(t)
	id := s.Upload(t, tok, "after.pdf", apitest.BytesOf(64))
	waitFor(t, 5*time.Second, "the next upload's event", func() bool { return uploaded.count(id) == 1 })
	cons, err := js.Consumer(context.Background(), events.StreamMinIO, "confirmer")
	if err != nil {
		t.Fatal(err)
	}
	// MinIO's queued copy of the last notification may still be in flight:
	// wait for the consumer to settle, then nothing may linger.
	waitFor(t, 10*time.Second, "the consumer to settle", func() bool {
		ci, err := cons.Info(context.Background())
		return err == nil && ci.NumAckPending == 0 && ci.NumPending == 0
	})
	ci, err := cons.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if ci.NumRedelivered != 0 {
		t.Fatalf("terminated messages were redelivered: %d", ci.NumRedelivered)
	}
}

func TestNATSOutage(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{Events: true})
	_, tok := s.NewUser(t)

	s.NATS.Stop()
	var viaEndpoint, viaEvent []uuid.UUID
	var total int64
	for i := range 10 {
		size := 1000 + i
		id := s.Upload(t, tok, "outage.pdf", apitest.BytesOf(size))
		total += int64(size)
		if i%2 == 0 {
			viaEvent = append(viaEvent, id) // left to MinIO's queued notification
			continue
		}
		r := s.Confirm(t, tok, id)
		if r.Status != http.StatusOK {
			t.Fatalf("confirm during the NATS outage: %d %s", r.Status, r.Body)
		}
		viaEndpoint = append(viaEndpoint, id)
	}
	time.Sleep(time.Second) // the relay and MinIO retry against a dead server
	s.NATS.Restart(t)

	uploaded := subscribe(t, s, "document.uploaded.>")
	all := slices.Concat(viaEndpoint, viaEvent)
	waitFor(t, 30*time.Second, "every document's event after NATS returned", func() bool {
		for _, id := range all {
			if uploaded.count(id) == 0 {
				return false
			}
		}
		return true
	})
	time.Sleep(500 * time.Millisecond)
	for _, id := range all {
		if n := uploaded.count(id); n != 1 {
			t.Fatalf("document %s: %d document.uploaded events, want exactly 1", id, n)
		}
		if st := status(t, s, id); st != "uploaded" {
			t.Fatalf("document %s is %s", id, st)
		}
	}
	if used, _ := s.Quota(t, tok); used != total {
		t.Fatalf("used_bytes = %d, want %d", used, total)
	}
	if got := confirmed(s); got != int64(len(viaEvent)) {
		t.Fatalf("confirmer confirmed %d from MinIO's queued notifications, want %d", got, len(viaEvent))
	}
}

// TestEventLatency measures PUT completion → document.uploaded received
// by a subscriber over 100 uploads nobody confirms; each must arrive
// within 2 s. Run with -v to see the median and the maximum.
func TestEventLatency(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{Events: true})
	uploaded := subscribe(t, s, "document.uploaded.>")
	_, tok := s.NewUser(t)
	const n = 100
	latencies := make([]time.Duration, 0, n)
	for range n {
		id := s.Upload(t, tok, "latency.pdf", apitest.BytesOf(1024))
		putDone := time.Now()
		waitFor(t, 2*time.Second, "the document.uploaded event", func() bool { return uploaded.count(id) == 1 })
		uploaded.mu.Lock()
		latencies = append(latencies, uploaded.received[id].Sub(putDone))
		uploaded.mu.Unlock()
	}
	slices.Sort(latencies)
	t.Logf("PUT completion → document.uploaded over %d uploads: median %s, p90 %s, max %s",
		n, latencies[n/2], latencies[n*9/10], latencies[n-1])
}

// confirmed counts the documents the running confirmer confirmed.
func confirmed(s *apitest.Stack) int64 {
	return apitest.Count(s.Confirmer.Metrics.Confirms.WithLabelValues("event", "uploaded"))
}

// already counts the notifications the running confirmer found settled before.
func already(s *apitest.Stack) int64 {
	return apitest.Count(s.Confirmer.Metrics.Confirms.WithLabelValues("event", "already"))
}
