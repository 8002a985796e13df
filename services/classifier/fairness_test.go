package classifier_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/internal/apitest"
	"github.com/docuvault/docuvault/services/classifier"
	"github.com/docuvault/docuvault/services/docuvault/stack"
	"github.com/docuvault/docuvault/shared/classify/samples"
	"github.com/docuvault/docuvault/shared/config"
	"github.com/docuvault/docuvault/shared/events"
)

// waitStatus waits up to limit until document id leaves status uploaded,
// and returns how long that took.
func waitStatus(t *testing.T, s *apitest.Stack, id uuid.UUID, limit time.Duration) (string, time.Duration) {
	t.Helper()
	start := time.Now()
	for {
		var status string
		if err := s.DB.QueryRow(context.Background(), `SELECT status FROM documents WHERE id = $1`, id).Scan(&status); err != nil {
			t.Fatal(err)
		}
		if status != "uploaded" {
			return status, time.Since(start)
		}
		if time.Since(start) > limit {
			return status, time.Since(start)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestOneUsersBacklogDoesNotDelayAnother floods the classifier from one
// user — 200 PDFs of about 240 KB, each some 100 ms of parsing, all in the
// log before the other user's document — and measures the other user's one
// document: classified within a few seconds of the classifier starting.
// Before the classifier's fairness it waited for the whole flood in log
// order (about 20 s here on 2 cores). The flood is classified too, by the
// event path and the recovery.
func TestOneUsersBacklogDoesNotDelayAnother(t *testing.T) {
	t.Parallel()
	const flood = 200
	s := apitest.Start(t, apitest.Options{Edit: func(c *config.Config) {
		c.UploadsPerMinute = 0
		c.MaxPendingUploads = 0
		c.QuotaDefaultBytes = 1 << 30
		c.ClassifyRecoveryAfter = 2 * time.Second
	}}) // no classifier yet
	_, flooder := s.NewUser(t)
	otherUser, other := s.NewUser(t)
	slow := samples.PDF(strings.Repeat(samples.Texts()["invoice"]+" ", 500))

	ids := make([]uuid.UUID, flood)
	var wg sync.WaitGroup
	work := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range work {
				ids[i] = s.UploadAndConfirm(t, flooder, fmt.Sprintf("invoice-%d.pdf", i), pdfType, slow)
			}
		})
	}
	for i := range flood {
		work <- i
	}
	close(work)
	wg.Wait()
	mine := s.UploadAndConfirm(t, other, "receipt.txt", "text/plain", []byte(samples.Texts()["receipt"]))
	waitInLog(t, s, otherUser)

	c, _ := s.StartRole(t, stack.Classifier)
	status, took := waitStatus(t, s, mine, 60*time.Second)
	t.Logf("the other user's document: %s after %s, with %d flood documents ahead in the log", status, took.Round(time.Millisecond), flood)
	if status != "classified" || took > 5*time.Second {
		t.Fatalf("the other user's document is %s after %s behind one user's backlog; want classified within 5 s", status, took)
	}

	// The flood is classified too: what was over the flooder's share by
	// the recovery.
	deadline := 120 * time.Second
	start := time.Now()
	for _, id := range ids {
		if status, _ := waitStatus(t, s, id, deadline-time.Since(start)); status != "classified" {
			t.Fatalf("flood document %s is %s after %s", id, status, time.Since(start))
		}
	}
	t.Logf("the flood classified %s after the other user's document; deferred %d, recovered %d",
		time.Since(start).Round(time.Millisecond), outcomes(c, classifier.OutcomeDeferred), outcomes(c, classifier.OutcomeRecovered))
}

// TestLostEventIsRecovered deletes a document's document.uploaded event
// from the log before any classifier read it (as a full DOCUMENTS log
// drops its oldest events): the classifier's recovery still classifies
// the document, from PostgreSQL, once it has waited CLASSIFY_RECOVERY_AFTER.
func TestLostEventIsRecovered(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{Edit: func(c *config.Config) {
		c.ClassifyRecoveryAfter = time.Second
	}}) // no classifier yet
	user, tok := s.NewUser(t)
	id := s.UploadAndConfirm(t, tok, "contract.txt", "text/plain", []byte(samples.Texts()["contract"]))
	seq := waitInLog(t, s, user)
	nc, js, err := events.Connect(events.ConnectConfig{URL: s.NATSURL}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	stream, err := js.Stream(context.Background(), events.StreamDocuments)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.DeleteMsg(context.Background(), seq); err != nil {
		t.Fatal(err)
	}

	c, _ := s.StartRole(t, stack.Classifier)
	status, took := waitStatus(t, s, id, 15*time.Second)
	if status != "classified" {
		t.Fatalf("document whose event was lost is %s after %s", status, took)
	}
	if n := outcomes(c, classifier.OutcomeRecovered); n != 1 {
		t.Errorf("%d documents recovered, want 1", n)
	}
	if n := outboxCount(t, s, id, "document.classified"); n != 1 {
		t.Errorf("%d document.classified events, want 1", n)
	}
	t.Logf("classified by the recovery %s after the classifier started", took.Round(time.Millisecond))
}

// waitInLog waits until the user's last document.uploaded event is in the
// DOCUMENTS stream and returns its sequence.
func waitInLog(t *testing.T, s *apitest.Stack, user uuid.UUID) uint64 {
	t.Helper()
	nc, js, err := events.Connect(events.ConnectConfig{URL: s.NATSURL}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	stream, err := js.Stream(context.Background(), events.StreamDocuments)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		msg, err := stream.GetLastMsgForSubject(context.Background(), "document.uploaded."+user.String())
		if err == nil {
			return msg.Sequence
		}
		if time.Now().After(deadline) {
			t.Fatalf("no document.uploaded event of user %s in the log after 10 s: %v", user, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// outcomes counts a classifier's documents with outcome.
func outcomes(c *stack.Stack, outcome string) int64 {
	return apitest.Count(c.Metrics.Classifications.WithLabelValues(outcome))
}
