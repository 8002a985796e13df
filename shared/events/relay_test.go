package events_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/internal/testenv"
	"github.com/docuvault/docuvault/shared/document"
	"github.com/docuvault/docuvault/shared/events"
	"github.com/docuvault/docuvault/shared/postgres"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// countingOutbox counts what each relay claimed and published.
type countingOutbox struct {
	document.Outbox
	published atomic.Int64
}

func (c *countingOutbox) RelayOutbox(ctx context.Context, before time.Time, limit int, publish func(context.Context, []document.OutboxMessage) ([]uuid.UUID, error)) (int, error) {
	n, err := c.Outbox.RelayOutbox(ctx, before, limit, publish)
	c.published.Add(int64(n))
	return n, err
}

func TestRelaysShareTheOutboxWithoutPublishingTwice(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.MigratedPool(t)
	bus, js := streamsBus(t, events.StreamLimits{})

	const rows = 2000
	user := uuid.New()
	if err := postgres.NewStore(pool, 1).InTx(ctx, func(tx document.Tx) error {
		for range rows {
			d := &document.Document{ID: uuid.New(), UserID: user, Status: document.StatusUploaded}
			if err := tx.AppendEvent(ctx, document.NewEvent(document.EventUploaded, d, time.Now())); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// Three replicas, each with its own store.
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	outboxes := make([]*countingOutbox, 3)
	for i := range outboxes {
		store := postgres.NewStore(pool, 1)
		outboxes[i] = &countingOutbox{Outbox: store}
		r := events.NewRelay(outboxes[i], bus, zerolog.Nop())
		r.BatchSize, r.Grace = 50, 0
		wg.Add(1)
		go func() { defer wg.Done(); _ = r.Run(runCtx) }()
	}
	stream, err := js.Stream(ctx, events.StreamDocuments)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		info, err := stream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var waiting int
		if err := pool.QueryRow(ctx, "SELECT count(*) FROM outbox").Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		var claimed int64
		for _, o := range outboxes {
			claimed += o.published.Load()
		}
		// The counts too: a relay counts its claim once the commit is
		// answered, just after the table shows it, and stopping it in
		// between would lose the answer, not the claim.
		if info.State.Msgs == rows && waiting == 0 && claimed >= rows {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stream has %d of %d events, %d rows wait", info.State.Msgs, rows, waiting)
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	wg.Wait()
	var total int64
	for i, o := range outboxes {
		t.Logf("relay %d published %d", i, o.published.Load())
		total += o.published.Load()
	}
	if total != rows {
		t.Fatalf("relays marked %d rows published, want exactly %d: a row was claimed twice", total, rows)
	}
}

// A process relays what it writes at once, and forgets it in the outbox;
// what another process recorded and left (it stopped before relaying) goes
// out at the first poll after the grace period.
func TestRelayPublishesRowsAnotherProcessLeft(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.MigratedPool(t)
	bus, js := streamsBus(t, events.StreamLimits{})
	stream, err := js.Stream(ctx, events.StreamDocuments)
	if err != nil {
		t.Fatal(err)
	}
	published := func() uint64 {
		info, err := stream.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}
	record := func(s *postgres.Store) time.Time {
		d := &document.Document{ID: uuid.New(), UserID: uuid.New(), Status: document.StatusUploaded}
		if err := s.InTx(ctx, func(tx document.Tx) error {
			return tx.AppendEvent(ctx, document.NewEvent(document.EventUploaded, d, time.Now()))
		}); err != nil {
			t.Fatal(err)
		}
		return time.Now()
	}
	waitFor := func(n uint64, within time.Duration) time.Duration {
		start := time.Now()
		for published() < n {
			if time.Since(start) > within {
				t.Fatalf("%d events published after %v, want %d", published(), within, n)
			}
			time.Sleep(5 * time.Millisecond)
		}
		return time.Since(start)
	}

	own := postgres.NewStore(pool, 1)
	r := events.NewRelay(own, bus, zerolog.Nop())
	r.PollInterval, r.Grace = 500*time.Millisecond, 200*time.Millisecond
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(runCtx) }()
	defer func() { stop(); <-done }()
	time.Sleep(50 * time.Millisecond) // the relay's first pass is over

	waiting := func() int {
		var n int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	record(own)
	t.Logf("own row published in %v", waitFor(1, 100*time.Millisecond))
	for start := time.Now(); waiting() > 0; time.Sleep(5 * time.Millisecond) {
		if time.Since(start) > 2*time.Second {
			t.Fatalf("the published event is still in the outbox after %v (forget interval %v)", time.Since(start), r.ForgetInterval)
		}
	}
	record(postgres.NewStore(pool, 1)) // another process's store: nothing in this one's hands
	t.Logf("another process's row published in %v (poll interval %v, grace %v)", waitFor(2, 3*time.Second), r.PollInterval, r.Grace)
	if n := published(); n != 2 {
		t.Fatalf("%d events in the stream, want 2", n)
	}
}

// TestFullLogDropsItsOldestAndTheOutboxDrains fills a small DOCUMENTS
// stream many times over: it never refuses an event, so the outbox drains;
// it keeps the newest events within its bytes; and one user's flood leaves
// another user's event in place (the per-subject bound).
func TestFullLogDropsItsOldestAndTheOutboxDrains(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := testenv.MigratedPool(t)
	const maxBytes, perSubject = 16 << 10, 5
	bus, js := streamsBus(t, events.StreamLimits{DocumentsMaxBytes: maxBytes, DocumentsMaxPerSubject: perSubject})
	store := postgres.NewStore(pool, 1)
	appendEvents := func(user uuid.UUID, n int) (ids []string) {
		if err := store.InTx(ctx, func(tx document.Tx) error {
			for range n {
				d := &document.Document{ID: uuid.New(), UserID: user, Status: document.StatusUploaded, Filename: "invoice.pdf"}
				e := document.NewEvent(document.EventUploaded, d, time.Now())
				ids = append(ids, e.ID.String())
				if err := tx.AppendEvent(ctx, e); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return ids
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	relay := events.NewRelay(store, bus, zerolog.Nop())
	relay.Grace = 0
	go func() { defer close(done); _ = relay.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })
	stream, err := js.Stream(ctx, events.StreamDocuments)
	if err != nil {
		t.Fatal(err)
	}
	// drained waits until the outbox is empty, and returns the ids of the
	// events DOCUMENTS holds and its state.
	drained := func() (map[string]bool, *jetstream.StreamInfo) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			var n int
			if err := pool.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d events still in the outbox 30 s on: the full log refused them", n)
			}
			time.Sleep(50 * time.Millisecond)
		}
		info, err := stream.Info(ctx, jetstream.WithSubjectFilter(events.SubjectDocument))
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Bytes > maxBytes {
			t.Errorf("DOCUMENTS holds %d bytes, over its %d", info.State.Bytes, maxBytes)
		}
		held := map[string]bool{}
		for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
			m, err := stream.GetMsg(ctx, seq)
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				continue // dropped by the per-subject bound
			}
			if err != nil {
				t.Fatal(err)
			}
			held[m.Header.Get(jetstream.MsgIDHeader)] = true
		}
		return held, info
	}

	// One user floods (100 events of about 500 bytes: three times the
	// stream) after another user's one event: the flood keeps only its
	// newest perSubject, and the other event stays.
	quiet, flooder := uuid.New(), uuid.New()
	quietIDs := appendEvents(quiet, 1)
	floodIDs := appendEvents(flooder, 100)
	held, info := drained()
	t.Logf("after one user's flood: %d events held, %d of %d bytes", info.State.Msgs, info.State.Bytes, info.Config.MaxBytes)
	if n := info.State.Subjects[string(document.EventUploaded)+"."+flooder.String()]; n != perSubject {
		t.Errorf("the flooding user has %d events held, want the per-subject bound %d", n, perSubject)
	}
	for _, id := range floodIDs[len(floodIDs)-perSubject:] {
		if !held[id] {
			t.Errorf("one of the flooding user's newest events (%s) is gone", id)
		}
	}
	if !held[quietIDs[0]] {
		t.Error("another user's flood pushed the quiet user's event out")
	}

	// Many users, one event each, several times the stream's bytes: the
	// oldest go, the newest stay, and nothing waits in the outbox.
	var manyIDs []string
	for range 100 {
		manyIDs = append(manyIDs, appendEvents(uuid.New(), 1)...)
	}
	held, info = drained()
	t.Logf("after 100 users' events: %d events held, %d of %d bytes", info.State.Msgs, info.State.Bytes, info.Config.MaxBytes)
	if !held[manyIDs[len(manyIDs)-1]] {
		t.Error("the newest event is not held")
	}
	if held[manyIDs[0]] || held[quietIDs[0]] {
		t.Error("the oldest events are still held: the log did not drop by bytes")
	}
}
