package postgres_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/docuvault/docuvault/internal/testenv"
	"github.com/docuvault/docuvault/shared/document"
	"github.com/docuvault/docuvault/shared/document/storetest"
	"github.com/docuvault/docuvault/shared/postgres"
)

func TestMain(m *testing.M) { testenv.Main(m) }

func openStore(t *testing.T, defaultQuota int64) (*postgres.Store, *pgxpool.Pool) {
	t.Helper()
	pool := testenv.MigratedPool(t)
	return postgres.NewStore(pool, defaultQuota), pool
}

func newDocument(user uuid.UUID, declared *int64) *document.Document {
	now := time.Now().UTC().Truncate(time.Microsecond)
	d := &document.Document{ID: uuid.New(), UserID: user, Filename: "a.txt", ContentType: "text/plain",
		DeclaredSize: declared, Status: document.StatusPending, CreatedAt: now, UpdatedAt: now}
	d.ObjectKey = document.ObjectKey(user, d.ID, d.Filename)
	return d
}

func create(t *testing.T, s *postgres.Store, d *document.Document) {
	t.Helper()
	if _, created, err := s.CreateDocument(context.Background(), d, document.UploadLimits{Now: d.CreatedAt, Window: time.Minute}); err != nil || !created {
		t.Fatalf("create document: created %v, %v", created, err)
	}
}

// pendingDocument opens a store whose users get quota bytes and creates a
// pending document, of a new user, without a declared size.
func pendingDocument(t *testing.T, quota int64) (*postgres.Store, *pgxpool.Pool, *document.Document) {
	t.Helper()
	s, pool := openStore(t, quota)
	d := newDocument(uuid.New(), nil)
	create(t, s, d)
	return s, pool, d
}

// change is the settlement of pending d with size bytes as the contract
// suite makes it (storetest.ChangeAt): charged, or with reason rejected
// without a charge.
func change(d *document.Document, size int64, reason string) document.Settlement {
	return storetest.ChangeAt(d, size, reason, time.Now()).Settlement
}

func outboxSubjects(t *testing.T, pool *pgxpool.Pool, user uuid.UUID) map[string]int {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT subject FROM outbox WHERE payload->'data'->>'user_id' = $1`, user.String())
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[string]int{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		got[s]++
	}
	return got
}

// limitsOf are the upload limits of a request for d, made at its creation
// time, in windows of a minute.
func limitsOf(d *document.Document, maxRequests, maxPending int, reserve int64) document.UploadLimits {
	return document.UploadLimits{Now: d.CreatedAt, Window: time.Minute, MaxRequests: maxRequests, MaxPending: maxPending, Reserve: reserve}
}

func TestCreateDocumentChecksEveryLimitInOneStatement(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := openStore(t, 100)
	user := uuid.New()

	size := int64(60)
	d := newDocument(user, &size)
	u, created, err := s.CreateDocument(ctx, d, limitsOf(d, 2, 5, size))
	if err != nil || !created {
		t.Fatalf("first upload: created %v, %v", created, err)
	}
	if u.Quota.LimitBytes != 100 || u.Requests.Count != 1 || !u.Requests.Start.Equal(d.CreatedAt) || u.Pending != 0 {
		t.Fatalf("first upload saw %+v, want a new quota of 100, its own request and no documents", u)
	}
	if got, err := s.Document(ctx, d.ID); err != nil || got.ObjectKey != d.ObjectKey {
		t.Fatalf("document not stored: %v", err)
	}

	// The quota check counts the declared size against the used bytes.
	if _, err := s.Settle(ctx, change(d, size, "")); err != nil {
		t.Fatal(err)
	}
	d2 := newDocument(user, &size)
	u, created, err = s.CreateDocument(ctx, d2, limitsOf(d2, 0, 0, size))
	if err != nil || created {
		t.Fatalf("60 more bytes on 60 of 100: created %v, %v", created, err)
	}
	if u.Quota.UsedBytes != 60 || u.Quota.LimitBytes != 100 || u.Requests.Count != 0 {
		t.Fatalf("refused with %+v, want a quota of 60 of 100 and nothing counted (no limit)", u)
	}
	if _, err := s.Document(ctx, d2.ID); document.ErrorCode(err) != document.NotFound {
		t.Fatalf("a refused document was stored: %v", err)
	}

	// No declared size: the quota is not checked; the rate is.
	d3 := newDocument(user, nil)
	if _, created, err = s.CreateDocument(ctx, d3, limitsOf(d3, 2, 0, 0)); err != nil || !created {
		t.Fatalf("second upload in the minute, limit 2: created %v, %v", created, err)
	}
	d4 := newDocument(user, nil)
	u, created, err = s.CreateDocument(ctx, d4, limitsOf(d4, 2, 0, 0))
	if err != nil || created || u.Requests.Count != 3 || !u.Requests.Start.Equal(d.CreatedAt) {
		t.Fatalf("third upload in the minute, limit 2: created %v, usage %+v, %v", created, u, err)
	}
	// One document is pending (d3).
	u, created, err = s.CreateDocument(ctx, d4, limitsOf(d4, 0, 1, 0))
	if err != nil || created || u.Pending != 1 {
		t.Fatalf("second pending upload, limit 1: created %v, usage %+v, %v", created, u, err)
	}
}

// TestCreateDocumentCountsRequestsNotRows runs the create → delete loop:
// a delete gives no request back, so the loop is refused once the window
// holds MaxRequests, though no document is left; the next window starts
// afresh.
func TestCreateDocumentCountsRequestsNotRows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := openStore(t, 1000)
	user := uuid.New()
	start := time.Now().UTC().Truncate(time.Microsecond)
	for i := range 4 {
		d := newDocument(user, nil)
		d.CreatedAt = start.Add(time.Duration(i) * time.Second)
		u, created, err := s.CreateDocument(ctx, d, limitsOf(d, 3, 1, 0))
		if err != nil {
			t.Fatal(err)
		}
		if u.Pending != 0 || u.Requests.Count != i+1 || !u.Requests.Start.Equal(start) {
			t.Fatalf("request %d saw %+v, want %d requests since %s and nothing pending", i+1, u, i+1, start)
		}
		if i == 3 {
			if created {
				t.Fatal("a fourth create in the window, limit 3, after three deletes: created")
			}
			break
		}
		if !created {
			t.Fatalf("request %d refused", i+1)
		}
		if err := s.InTx(ctx, func(tx document.Tx) error { return tx.DeleteDocument(ctx, d.ID) }); err != nil {
			t.Fatal(err)
		}
	}
	// A minute after the window started, a new one does.
	d := newDocument(user, nil)
	d.CreatedAt = start.Add(time.Minute)
	u, created, err := s.CreateDocument(ctx, d, limitsOf(d, 3, 1, 0))
	if err != nil || !created || u.Requests.Count != 1 || !u.Requests.Start.Equal(d.CreatedAt) {
		t.Fatalf("first request of the next window: created %v, usage %+v, %v", created, u, err)
	}
}

// TestCreateDocumentLimitsHoldUnderConcurrency sends 50 creates of one user
// at once: neither the rate nor the pending bound is passed, though every
// request's snapshot may be taken before any other commits.
func TestCreateDocumentLimitsHoldUnderConcurrency(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, pool := openStore(t, 1<<30)
	cfg := pool.Config()
	cfg.MaxConns = 50
	wide, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(wide.Close)
	s := postgres.NewStore(wide, 1<<30)
	size := int64(10)
	for _, tc := range []struct {
		name                    string
		maxRequests, maxPending int
	}{
		{"rate", 10, 0},
		{"pending", 0, 10},
		{"both", 10, 10},
	} {
		user := uuid.New()
		// A quota row first (TestConcurrentCreatesNeverReservePastTheQuota
		// has users' first creates racing each other).
		if _, err := s.Quota(ctx, user); err != nil {
			t.Fatal(err)
		}
		var created atomic.Int64
		var wg sync.WaitGroup
		gate := make(chan struct{})
		for range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d := newDocument(user, &size)
				<-gate
				_, ok, err := s.CreateDocument(ctx, d, limitsOf(d, tc.maxRequests, tc.maxPending, size))
				if err != nil {
					t.Error(err)
				}
				if ok {
					created.Add(1)
				}
			}()
		}
		close(gate)
		wg.Wait()
		var pending int
		var reserved int64
		if err := wide.QueryRow(ctx, `SELECT count(*), coalesce(sum(reserved_bytes), 0) FROM documents WHERE user_id = $1 AND status = 'pending'`, user).Scan(&pending, &reserved); err != nil {
			t.Fatal(err)
		}
		q, err := s.Quota(ctx, user)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: 50 concurrent creates, limit 10: %d created", tc.name, created.Load())
		if created.Load() != 10 || pending != 10 || q.ReservedBytes != reserved {
			t.Errorf("%s: %d created, %d pending, %d reserved for %d of reservations: want 10 of each, the quota's reservation their sum", tc.name, created.Load(), pending, q.ReservedBytes, reserved)
		}
	}
}

func TestSettleChargesExactlyUnderConcurrency(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const (
		limit = 1000
		docs  = 40
		size  = 70 // 14 fit
	)
	s, pool := openStore(t, limit)
	user := uuid.New()
	var all []*document.Document
	for range docs {
		d := newDocument(user, nil)
		create(t, s, d)
		all = append(all, d)
	}
	// Every document confirmed by two doors at once.
	results := make([][2]document.Settled, docs)
	var wg sync.WaitGroup
	errs := make(chan error, 2*docs)
	for i, d := range all {
		for door := range 2 {
			wg.Go(func() {
				r, err := s.Settle(ctx, change(d, size, ""))
				if err != nil {
					errs <- err
				}
				results[i][door] = r
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	charged := 0
	for i, r := range results {
		if r[0].Applied == r[1].Applied {
			t.Fatalf("document %d: changed by %v and %v, want exactly one door", i, r[0].Applied, r[1].Applied)
		}
		if r[0].Charged || r[1].Charged {
			charged++
		}
		loser := r[0]
		if loser.Applied {
			loser = r[1]
		}
		if loser.Document.Status == document.StatusPending {
			t.Fatalf("document %d: the losing door saw it pending", i)
		}
	}
	if charged != limit/size {
		t.Fatalf("%d documents charged, want %d", charged, limit/size)
	}
	q, err := s.Quota(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	if q.UsedBytes != int64(charged*size) {
		t.Fatalf("used %d bytes, want %d", q.UsedBytes, charged*size)
	}
	events := outboxSubjects(t, pool, user)
	if events["document.uploaded."+user.String()] != charged || events["document.rejected."+user.String()] != docs-charged {
		t.Fatalf("outbox holds %v, want %d uploaded and %d rejected", events, charged, docs-charged)
	}
	var uploaded, overQuota int
	if err := pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = 'uploaded' AND confirmed_at IS NOT NULL AND size_bytes = $2),
			count(*) FILTER (WHERE status = 'rejected' AND reject_reason = 'over_quota' AND confirmed_at IS NULL)
		FROM documents WHERE user_id = $1`, user, size).Scan(&uploaded, &overQuota); err != nil {
		t.Fatal(err)
	}
	if uploaded != charged || overQuota != docs-charged {
		t.Fatalf("rows: %d uploaded, %d over quota; want %d and %d", uploaded, overQuota, charged, docs-charged)
	}
}

func TestSettleRejectsWithReasonWithoutCharging(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool, d := pendingDocument(t, 1000)
	user := d.UserID
	r, err := s.Settle(ctx, change(d, 10, document.ReasonTooLarge))
	if err != nil || !r.Applied || r.Charged || r.Quota.UsedBytes != 0 {
		t.Fatalf("result %+v, %v; want changed, not charged, nothing used", r, err)
	}
	got, err := s.Document(ctx, d.ID)
	if err != nil || got.Status != document.StatusRejected || got.RejectReason != document.ReasonTooLarge {
		t.Fatalf("stored %+v, %v", got, err)
	}
	if ev := outboxSubjects(t, pool, user); ev["document.rejected."+user.String()] != 1 || len(ev) != 1 {
		t.Fatalf("outbox holds %v", ev)
	}
	// Again: nothing changes.
	r, err = s.Settle(ctx, change(d, 10, ""))
	if err != nil || r.Applied || r.Document.Status != document.StatusRejected {
		t.Fatalf("second confirm: %+v, %v", r, err)
	}
}

func TestSettleMakesAMissingQuotaRow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool, d := pendingDocument(t, 1000)
	user := d.UserID
	if _, err := pool.Exec(ctx, `DELETE FROM quotas WHERE user_id = $1`, user); err != nil {
		t.Fatal(err)
	}
	r, err := s.Settle(ctx, change(d, 10, ""))
	if err != nil || !r.Charged || r.Quota.UsedBytes != 10 || r.Quota.LimitBytes != 1000 {
		t.Fatalf("result %+v, %v; want charged 10 of 1000", r, err)
	}
}

func TestSettleOfAMissingDocumentIsNotFound(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t, 1000)
	d := newDocument(uuid.New(), nil)
	if _, err := s.Settle(context.Background(), change(d, 10, "")); document.ErrorCode(err) != document.NotFound {
		t.Fatalf("got %v, want NotFound", err)
	}
}

// The events a transaction commits go to the process's relay at once, in
// commit order, and only once committed: a confirm that changes nothing
// hands over nothing.
func TestCommittedEventsGoToTheRelayAtOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _, d := pendingDocument(t, 1000)
	done := make(chan []document.OutboxMessage, 1)
	go func() { done <- s.Committed(ctx, 10*time.Second) }()
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	if _, err := s.Settle(ctx, change(d, 10, "")); err != nil {
		t.Fatal(err)
	}
	msgs := <-done
	if waited := time.Since(start); waited > 5*time.Second || len(msgs) != 1 {
		t.Fatalf("the relay got %d events after %v: a commit with events did not wake it", len(msgs), waited)
	}
	var e document.Event
	if err := json.Unmarshal(msgs[0].Payload, &e); err != nil || e.Type != document.EventUploaded || e.Data.DocumentID != d.ID || e.ID != msgs[0].MsgID {
		t.Fatalf("event %+v (%v), want document.uploaded of %s with its msg id", e, err, d.ID)
	}
	if _, err := s.Settle(ctx, change(d, 10, "")); err != nil {
		t.Fatal(err)
	}
	if err := s.InTx(ctx, func(tx document.Tx) error {
		if err := tx.AppendEvent(ctx, document.NewEvent(document.EventDeleted, d, time.Now())); err != nil {
			return err
		}
		return errors.New("rolled back")
	}); err == nil {
		t.Fatal("InTx: want the function's error")
	}
	if msgs := s.Committed(ctx, 100*time.Millisecond); len(msgs) != 0 {
		t.Fatalf("%d events handed over from a confirm that changed nothing and a rolled-back transaction", len(msgs))
	}
}

// A published event is forgotten by id, and a claim takes only what was
// recorded before its cut-off.
func TestForgetAndClaimOfTheOutbox(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool := openStore(t, 1<<20)
	user := uuid.New()
	for range 3 {
		d := newDocument(user, nil)
		create(t, s, d)
		if _, err := s.Settle(ctx, change(d, 10, "")); err != nil {
			t.Fatal(err)
		}
	}
	msgs := s.Committed(ctx, 0)
	if len(msgs) != 3 {
		t.Fatalf("%d committed events, want 3", len(msgs))
	}
	if err := s.ForgetOutbox(ctx, []uuid.UUID{msgs[0].MsgID}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.OutboxWaiting(ctx); err != nil || n != 2 {
		t.Fatalf("OutboxWaiting = %d, %v; want 2 after forgetting one", n, err)
	}
	claim := func(before time.Time) []uuid.UUID {
		var got []uuid.UUID
		if _, err := s.RelayOutbox(ctx, before, 100, func(_ context.Context, msgs []document.OutboxMessage) ([]uuid.UUID, error) {
			for _, m := range msgs {
				got = append(got, m.MsgID)
			}
			return got, nil
		}); err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := claim(msgs[0].CreatedAt.Add(-time.Second)); len(got) != 0 {
		t.Fatalf("a claim before every event took %v", got)
	}
	if got, want := claim(time.Now().Add(time.Second)), []uuid.UUID{msgs[1].MsgID, msgs[2].MsgID}; !slices.Equal(got, want) {
		t.Fatalf("claimed %v, want the two left, in order: %v", got, want)
	}
	var left int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&left); err != nil || left != 0 {
		t.Fatalf("%d rows left after the claim published them (%v)", left, err)
	}
}

// During a rolling deploy the previous release's relays still run: they
// claim rows WHERE published_at IS NULL and mark what they publish. The
// relay of this release must neither publish a row they marked nor keep
// one it published itself.
func TestRelaySharesTheOutboxWithThePreviousReleasesRelays(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool := openStore(t, 1<<20)
	user := uuid.New()
	var docs []*document.Document
	for range 4 {
		d := newDocument(user, nil)
		create(t, s, d)
		if _, err := s.Settle(ctx, change(d, 10, "")); err != nil {
			t.Fatal(err)
		}
		docs = append(docs, d)
	}
	// An old relay published and marked the first two events.
	tag, err := pool.Exec(ctx, `UPDATE outbox SET published_at = now()
		WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT 2)`)
	if err != nil || tag.RowsAffected() != 2 {
		t.Fatalf("mark as the previous release does: %v, %v", tag, err)
	}
	if n, err := s.OutboxWaiting(ctx); err != nil || n != 2 {
		t.Fatalf("OutboxWaiting = %d, %v; want the 2 unmarked rows", n, err)
	}
	var published []uuid.UUID
	n, err := s.RelayOutbox(ctx, time.Now().Add(time.Second), 100, func(_ context.Context, msgs []document.OutboxMessage) ([]uuid.UUID, error) {
		var ids []uuid.UUID
		for _, m := range msgs {
			var e document.Event
			if err := json.Unmarshal(m.Payload, &e); err != nil {
				return nil, err
			}
			published = append(published, e.Data.DocumentID)
			ids = append(ids, m.MsgID)
		}
		return ids, nil
	})
	if err != nil || n != 2 {
		t.Fatalf("RelayOutbox = %d, %v; want 2", n, err)
	}
	if want := []uuid.UUID{docs[2].ID, docs[3].ID}; !slices.Equal(published, want) {
		t.Fatalf("published the events of %v, want only the unmarked %v", published, want)
	}
	var marked, unmarked int
	if err := pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE published_at IS NOT NULL),
		count(*) FILTER (WHERE published_at IS NULL) FROM outbox`).Scan(&marked, &unmarked); err != nil {
		t.Fatal(err)
	}
	if marked != 2 || unmarked != 0 {
		t.Fatalf("outbox holds %d marked and %d unmarked rows; want the old relay's 2 and none", marked, unmarked)
	}
}

func TestRemovalRecordsLastUntilForgotten(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := openStore(t, 1000)
	at := time.Now().UTC().Truncate(time.Microsecond)
	keys := []string{"u/d1/a.pdf", "u/d2/b.pdf", "u/d3/c.pdf"}
	if err := s.InTx(ctx, func(tx document.Tx) error {
		for i, k := range keys {
			if err := tx.RecordRemoval(ctx, k, at.Add(time.Duration(i)*time.Second)); err != nil {
				return err
			}
		}
		return tx.RecordRemoval(ctx, keys[0], at.Add(time.Hour)) // recorded twice: the first time stands
	}); err != nil {
		t.Fatal(err)
	}
	// A transaction rolled back records nothing.
	_ = s.InTx(ctx, func(tx document.Tx) error {
		if err := tx.RecordRemoval(ctx, "u/d4/rolled-back.pdf", at); err != nil {
			return err
		}
		return errors.New("roll back")
	})
	got, err := s.PendingRemovals(ctx, at.Add(2*time.Second), 10)
	if err != nil || !slices.Equal(got, keys[:2]) {
		t.Fatalf("PendingRemovals = %v, %v; want %v, oldest first", got, err, keys[:2])
	}
	if got, err := s.PendingRemovals(ctx, at.Add(time.Minute), 1); err != nil || !slices.Equal(got, keys[:1]) {
		t.Fatalf("PendingRemovals with limit 1 = %v, %v", got, err)
	}
	if err := s.ForgetRemovals(ctx, keys[:2]); err != nil {
		t.Fatal(err)
	}
	if got, err := s.PendingRemovals(ctx, at.Add(time.Minute), 10); err != nil || !slices.Equal(got, keys[2:]) {
		t.Fatalf("after forgetting two: %v, %v; want %v", got, err, keys[2:])
	}
}

func TestReconcileCursorIsKeptBetweenSweeps(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := openStore(t, 1000)
	if c, err := s.ReconcileCursor(ctx); err != nil || c != (document.ReconcileCursor{}) {
		t.Fatalf("before the first pass: %+v, %v; want the zero cursor", c, err)
	}
	started := time.Now().UTC().Truncate(time.Microsecond)
	for _, want := range []document.ReconcileCursor{
		{After: "a/b/c.pdf", PassStarted: started},
		{After: "z/y/x.pdf", PassStarted: started},
		{After: "", PassStarted: started},
	} {
		if err := s.SaveReconcileCursor(ctx, want); err != nil {
			t.Fatal(err)
		}
		got, err := s.ReconcileCursor(ctx)
		if err != nil || got.After != want.After || !got.PassStarted.Equal(want.PassStarted) {
			t.Fatalf("ReconcileCursor = %+v, %v; want %+v", got, err, want)
		}
	}
}

func TestDocumentAndQuotaIsOneRead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool, d := pendingDocument(t, 1000)
	if _, err := pool.Exec(ctx, `UPDATE quotas SET used_bytes = 250 WHERE user_id = $1`, d.UserID); err != nil {
		t.Fatal(err)
	}
	got, q, err := s.DocumentAndQuota(ctx, d.ID)
	if err != nil || got.ID != d.ID || got.ObjectKey != d.ObjectKey || q != (document.Quota{UserID: d.UserID, UsedBytes: 250, LimitBytes: 1000}) {
		t.Fatalf("DocumentAndQuota = %+v, %+v, %v", got, q, err)
	}
	// An owner without a quota row yet has the default limit.
	if _, err := pool.Exec(ctx, `DELETE FROM quotas WHERE user_id = $1`, d.UserID); err != nil {
		t.Fatal(err)
	}
	if _, q, err := s.DocumentAndQuota(ctx, d.ID); err != nil || q != (document.Quota{UserID: d.UserID, LimitBytes: 1000}) {
		t.Fatalf("without a quota row: %+v, %v", q, err)
	}
	if _, _, err := s.DocumentAndQuota(ctx, uuid.New()); document.ErrorCode(err) != document.NotFound {
		t.Fatalf("a missing document: %v, want NotFound", err)
	}
}

// queryCounter counts the statements a pool sends.
type queryCounter struct{ n atomic.Int64 }

func (c *queryCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.n.Add(1)
	return ctx
}

func (c *queryCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// countingStore is a Store whose users get 1000 bytes, on a pool whose
// statements counter counts.
func countingStore(t testing.TB) (*postgres.Store, *pgxpool.Pool, *queryCounter) {
	t.Helper()
	cfg := testenv.MigratedPool(t).Config()
	counter := &queryCounter{}
	cfg.ConnConfig.Tracer = counter
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return postgres.NewStore(pool, 1000), pool, counter
}

// Reads of single documents that arrive together go in few statements, and
// each caller gets its own document (or NotFound) as if it had read alone.
func TestConcurrentDocumentReadsGoTogether(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _, counter := countingStore(t)

	const n = 64
	var docs []*document.Document
	for range n {
		d := newDocument(uuid.New(), nil)
		create(t, s, d)
		docs = append(docs, d)
	}
	missing := uuid.New()
	before := counter.n.Load()
	var wg sync.WaitGroup
	errs := make(chan error, n+1)
	start := make(chan struct{})
	for _, d := range docs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			got, q, err := s.DocumentAndQuota(ctx, d.ID)
			switch {
			case err != nil:
				errs <- err
			case got.ID != d.ID || got.UserID != d.UserID || got.ObjectKey != d.ObjectKey || q.UserID != d.UserID || q.LimitBytes != 1000:
				errs <- fmt.Errorf("read %s: got document %s of %s, quota %+v", d.ID, got.ID, got.UserID, q)
			}
			got.Filename = "changed by this caller"
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-start
		if _, err := s.Document(ctx, missing); document.ErrorCode(err) != document.NotFound {
			errs <- fmt.Errorf("read of a missing document: %v, want NotFound", err)
		}
	}()
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	statements := counter.n.Load() - before
	t.Logf("%d concurrent reads in %d statements", n+1, statements)
	if statements > n/2 {
		t.Fatalf("%d concurrent reads took %d statements: they did not go together", n+1, statements)
	}
	if d, err := s.Document(ctx, docs[0].ID); err != nil || d.Filename != docs[0].Filename {
		t.Fatalf("a later read got %+v, %v: callers share what they read", d, err)
	}
}

// A confirm that waits for the row another door is confirming answers, once
// that door committed, the quota with that door's charge: its statement
// began before the charge, so a plain read of the quota would miss it.
func TestConfirmThatWaitedForTheOtherDoorAnswersItsCharge(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool, d := pendingDocument(t, 1000)
	other, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Rollback(ctx)
	// The other door, mid-confirm: the row locked, the quota charged.
	if _, err := other.Exec(ctx, `UPDATE documents SET status = 'uploaded', size_bytes = 10 WHERE id = $1`, d.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Exec(ctx, `UPDATE quotas SET used_bytes = used_bytes + 10 WHERE user_id = $1`, d.UserID); err != nil {
		t.Fatal(err)
	}
	type result struct {
		r   document.Settled
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := s.Settle(ctx, change(d, 10, ""))
		done <- result{r, err}
	}()
	time.Sleep(300 * time.Millisecond) // the statement has begun and waits for the row
	if err := other.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	got := <-done
	if got.err != nil || got.r.Applied || got.r.Quota.UsedBytes != 10 || got.r.Quota.LimitBytes != 1000 {
		t.Fatalf("confirm after the other door: %+v, %v; want unchanged, answering used 10 of 1000", got.r, got.err)
	}
}

// Settlements that arrive together commit together (group commit: one
// statement, one transaction for many), and each still gets its exact
// outcome: a group mixing one user's charges that fit and that do not
// charges them in order up to the limit and no further, another user's
// are charged apart, and two settlements of one document apply once.
func TestConcurrentSettlementsCommitTogether(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool, counter := countingStore(t)

	crowded, other := uuid.New(), uuid.New()
	var sets []document.Settlement
	for range 20 { // 20 × 100 bytes against a limit of 1000: 10 fit
		d := newDocument(crowded, nil)
		create(t, s, d)
		sets = append(sets, change(d, 100, ""))
	}
	for range 5 {
		d := newDocument(other, nil)
		create(t, s, d)
		sets = append(sets, change(d, 100, ""))
	}
	twice := sets[len(sets)-1].From // settled by both doors at once
	sets = append(sets, change(twice, 100, ""))

	before := counter.n.Load()
	results := make([]document.Settled, len(sets))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, set := range sets {
		wg.Go(func() {
			<-start
			r, err := s.Settle(ctx, set)
			if err != nil {
				t.Errorf("settle %d: %v", i, err)
			}
			results[i] = r
		})
	}
	close(start)
	wg.Wait()
	statements := counter.n.Load() - before

	charged := map[uuid.UUID]int{}
	applied := map[uuid.UUID]int{}
	for i, r := range results {
		user := sets[i].From.UserID
		if r.Applied {
			applied[sets[i].From.ID]++
		}
		if r.Charged {
			charged[user]++
		}
		if r.Applied && r.Charged != (r.Document.Status == document.StatusUploaded) {
			t.Errorf("settle %d: charged %v but the document written is %s", i, r.Charged, r.Document.Status)
		}
		if r.Quota.UsedBytes > 1000 {
			t.Errorf("settle %d: quota %+v past its limit", i, r.Quota)
		}
	}
	if charged[crowded] != 10 || charged[other] != 5 {
		t.Errorf("charged %d of the crowded user's 20 and %d of the other's 5; want 10 and 5", charged[crowded], charged[other])
	}
	for id, n := range applied {
		if n != 1 {
			t.Errorf("document %s settled %d times, want once", id, n)
		}
	}
	if len(applied) != 25 {
		t.Errorf("%d documents settled, want 25", len(applied))
	}
	for user, want := range map[uuid.UUID]int64{crowded: 1000, other: 500} {
		if q, err := s.Quota(ctx, user); err != nil || q.UsedBytes != want || q.ReservedBytes != 0 {
			t.Errorf("quota of %s: %+v, %v; want %d used", user, q, err, want)
		}
	}
	if n := outboxSubjects(t, pool, crowded); n["document.uploaded."+crowded.String()] != 10 || n["document.rejected."+crowded.String()] != 10 {
		t.Errorf("the crowded user's events %v, want 10 uploaded and 10 rejected", n)
	}
	t.Logf("%d concurrent settlements in %d statements", len(sets), statements)
	if statements > int64(len(sets))/2 {
		t.Fatalf("%d concurrent settlements took %d statements: they did not go together", len(sets), statements)
	}
}
