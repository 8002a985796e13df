package confirmer_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/internal/apitest"
	"github.com/docuvault/docuvault/services/confirmer"
	"github.com/docuvault/docuvault/services/docuvault/stack"
	"github.com/docuvault/docuvault/shared/events"
)

// A confirmer being replaced finishes the notifications in hand before it
// stops: the upload is confirmed by the replica that had it, not left for
// a redelivery half a minute later.
func TestStoppingConfirmerFinishesTheNotificationInHand(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{Events: true})
	uploaded := subscribe(t, s, "document.uploaded.>")
	_, tok := s.NewUser(t)
	ctx := context.Background()

	data := apitest.BytesOf(777)
	ticket := s.RequestUpload(t, tok, "held.pdf", "application/pdf", int64(len(data)))
	// Hold the document's row: the confirm statement waits for it.
	tx, err := s.DB.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The row is released by the test's goroutine, or by the one below once
	// it runs: a transaction is not for two goroutines at once.
	var releasedAt time.Time
	released := make(chan struct{}) // closed once releasedAt is set
	releasing := false
	defer func() {
		if releasing {
			<-released
		}
		_ = tx.Rollback(ctx)
	}()
	if _, err := tx.Exec(ctx, "SELECT 1 FROM documents WHERE id = $1 FOR UPDATE", ticket.DocumentID); err != nil {
		t.Fatal(err)
	}
	if st := s.Put(t, ticket, "", data); st != 200 {
		t.Fatalf("PUT: %d", st)
	}
	waitFor(t, 10*time.Second, "the confirmer to wait on the held row", func() bool {
		var n int
		err := s.DB.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n)
		return err == nil && n > 0
	})

	old := s.Confirmer
	releasing = true
	go func() {
		defer close(released)
		time.Sleep(500 * time.Millisecond) // the stop has begun by now
		releasedAt = time.Now()
		_ = tx.Rollback(ctx)
	}()
	s.RestartConfirmer(t) // returns when the old one's Run has returned
	stopped := time.Now()
	<-released
	if stopped.Before(releasedAt) {
		t.Fatal("the confirmer stopped with a notification in hand")
	}
	// Both copies of the notification (PRIMARY and LIVE) were acked before
	// the old replica let go: nothing waits for a redelivery.
	nc, js, err := events.Connect(events.ConnectConfig{URL: s.NATS.URL, Name: "test-inspect"}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	cons, err := js.Consumer(ctx, events.StreamMinIO, confirmer.ConsumerName)
	if err != nil {
		t.Fatal(err)
	}
	// (An ack is sent without waiting; the old connection flushes it as it
	// drains, so give it a moment. A lost ack would stay for the 30 s
	// AckWait.)
	var state string
	waitFor(t, 5*time.Second, "no notification unacknowledged", func() bool {
		info, err := cons.Info(ctx)
		if err != nil {
			state = err.Error()
			return false
		}
		state = fmt.Sprintf("%d unacknowledged, %d pending, %d redelivered", info.NumAckPending, info.NumPending, info.NumRedelivered)
		return info.NumAckPending == 0 && info.NumPending == 0 && info.NumRedelivered == 0
	})
	t.Logf("consumer after the stop: %s", state)
	if got := apitest.Count(old.Metrics.Confirms.WithLabelValues("event", "uploaded")); got != 1 {
		t.Fatalf("the stopping confirmer confirmed %d documents, want the 1 it held", got)
	}
	if st := status(t, s, ticket.DocumentID); st != "uploaded" {
		t.Fatalf("status %s, want uploaded", st)
	}
	if used, _ := s.Quota(t, tok); used != int64(len(data)) {
		t.Fatalf("used_bytes = %d, want %d", used, len(data))
	}
	// Sooner than a claim (Grace, 5 s) could publish it: the stopping
	// process's relay published it itself.
	waitFor(t, 3*time.Second, "the document.uploaded event", func() bool { return uploaded.count(ticket.DocumentID) == 1 })
	retried := func(st *stack.Stack) int64 {
		return apitest.Count(st.Metrics.Retries.WithLabelValues(confirmer.ConsumerName))
	}
	if got := retried(old) + retried(s.Confirmer); got != 0 {
		t.Fatalf("%d notifications were retried, want none", got)
	}
}
