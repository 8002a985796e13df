package postgres_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/docuvault/docuvault/shared/document"
	"github.com/docuvault/docuvault/shared/postgres"
)

// emptyBucket is the object store of a sweep that only checks the ledger:
// it holds nothing, removes anything, and is asked for nothing else.
type emptyBucket struct{ document.Objects }

func (emptyBucket) ListAfter(context.Context, string, int) ([]document.ListedObject, error) {
	return nil, nil
}
func (emptyBucket) Remove(context.Context, string) error       { return nil }
func (emptyBucket) AbortUploads(context.Context, string) error { return nil }

// ledgerService is the domain on s, sweeping nothing but the ledger.
func ledgerService(s *postgres.Store) *document.Service {
	return document.NewService(s, emptyBucket{}, document.Config{MaxUploadBytes: 1 << 30})
}

// ledgerSweep is a sweep whose pending and rejected documents are never
// stale, checking at most users quota rows in transactions of 2.
func ledgerSweep(users int, reportOnly bool) document.SweepConfig {
	return document.SweepConfig{PendingTTL: time.Hour, RejectedRetention: time.Hour, BatchSize: 2,
		LedgerUsers: users, LedgerReportOnly: reportOnly}
}

// quotaRow is a user's used and reserved bytes as the quota row holds them.
type quotaRow struct{ used, reserved int64 }

func readQuotas(t *testing.T, pool *pgxpool.Pool, users []uuid.UUID) map[uuid.UUID]quotaRow {
	t.Helper()
	out := map[uuid.UUID]quotaRow{}
	for _, u := range users {
		var q quotaRow
		if err := pool.QueryRow(context.Background(), `SELECT used_bytes, reserved_bytes FROM quotas WHERE user_id = $1`, u).
			Scan(&q.used, &q.reserved); err != nil {
			t.Fatal(err)
		}
		out[u] = q
	}
	return out
}

// corruptLedger gives seven users documents through the store's own
// statements — an uploaded document of 100 bytes and a pending one holding
// 50 reserved, but for the last, which has none — then writes five of
// their quota rows wrong: used too high, used too low, reserved wrong,
// both wrong, and used bytes for a user with no document. It returns the
// users, the rows as they must be, and the drift written (users, used and
// reserved bytes).
func corruptLedger(t *testing.T, s *postgres.Store, pool *pgxpool.Pool) (users []uuid.UUID, right map[uuid.UUID]quotaRow, drifted int, usedOff, reservedOff int64) {
	t.Helper()
	ctx := context.Background()
	right = map[uuid.UUID]quotaRow{}
	for i := range 7 {
		u := uuid.New()
		users = append(users, u)
		if i == 6 {
			if _, err := s.Quota(ctx, u); err != nil {
				t.Fatal(err)
			}
			right[u] = quotaRow{}
			continue
		}
		up := newDocument(u, nil)
		create(t, s, up)
		if r, err := s.Settle(ctx, change(up, 100, "")); err != nil || !r.Charged {
			t.Fatalf("confirm: %+v, %v", r, err)
		}
		size := int64(50)
		pending := newDocument(u, &size)
		l := document.UploadLimits{Now: pending.CreatedAt, Window: time.Minute, Reserve: size}
		if _, created, err := s.CreateDocument(ctx, pending, l); err != nil || !created {
			t.Fatalf("create reserving: %v, %v", created, err)
		}
		right[u] = quotaRow{used: 100, reserved: 50}
	}
	if got := readQuotas(t, pool, users); fmt.Sprint(got) != fmt.Sprint(right) {
		t.Fatalf("before the corruption the rows are %v, want %v", got, right)
	}
	corrupt := map[int]quotaRow{
		0: {used: 1100, reserved: 50}, // used too high: a release that never happened
		1: {used: 0, reserved: 50},    // used too low: a charge lost, or a clamp
		2: {used: 100, reserved: 7},   // reserved wrong: an old replica's confirm
		4: {used: 40, reserved: 0},    // both
		6: {used: 5, reserved: 0},     // bytes for no document
	}
	for i, q := range corrupt {
		if _, err := pool.Exec(ctx, `UPDATE quotas SET used_bytes = $2, reserved_bytes = $3 WHERE user_id = $1`,
			users[i], q.used, q.reserved); err != nil {
			t.Fatal(err)
		}
		drifted++
		usedOff += abs(q.used - right[users[i]].used)
		reservedOff += abs(q.reserved - right[users[i]].reserved)
	}
	return users, right, drifted, usedOff, reservedOff
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

// sweepLedger sweeps with cfg until the ledger check has gone over every
// quota row once (the pass's cursor comes back to the start), and adds up
// what the sweeps counted.
func sweepLedger(t *testing.T, svc *document.Service, cfg document.SweepConfig, rows int) document.SweepResult {
	t.Helper()
	var sum document.SweepResult
	for sum.LedgerChecked < rows {
		res, err := svc.Sweep(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if res.LedgerChecked > cfg.LedgerUsers {
			t.Fatalf("one sweep checked %d quota rows, more than LedgerUsers %d", res.LedgerChecked, cfg.LedgerUsers)
		}
		sum.LedgerChecked += res.LedgerChecked
		sum.LedgerDrifted += res.LedgerDrifted
		sum.LedgerRepaired += res.LedgerRepaired
		sum.LedgerDriftUsedBytes += res.LedgerDriftUsedBytes
		sum.LedgerDriftReservedBytes += res.LedgerDriftReservedBytes
	}
	if sum.LedgerChecked != rows {
		t.Fatalf("the passes checked %d rows, want %d (each row once)", sum.LedgerChecked, rows)
	}
	return sum
}

// The ledger check finds every quota row off its documents, counts the
// users and the bytes, and sets the rows back to what the documents hold;
// it goes over the rows a bounded slice per sweep (3 rows, in transactions
// of 2), resuming where the last sweep stopped.
func TestLedgerCheckFindsCountsAndRepairsDrift(t *testing.T) {
	t.Parallel()
	s, pool := openStore(t, 1<<20)
	users, right, drifted, usedOff, reservedOff := corruptLedger(t, s, pool)
	svc := ledgerService(s)

	got := sweepLedger(t, svc, ledgerSweep(3, false), len(users))
	want := document.SweepResult{LedgerChecked: len(users), LedgerDrifted: drifted, LedgerRepaired: drifted,
		LedgerDriftUsedBytes: usedOff, LedgerDriftReservedBytes: reservedOff}
	if got != want {
		t.Errorf("ledger check counted %+v, want %+v", got, want)
	}
	if rows := readQuotas(t, pool, users); fmt.Sprint(rows) != fmt.Sprint(right) {
		t.Errorf("after the check the rows are %v, want %v", rows, right)
	}
	// A second pass finds nothing off.
	again := sweepLedger(t, svc, ledgerSweep(3, false), len(users))
	if again != (document.SweepResult{LedgerChecked: len(users)}) {
		t.Errorf("second pass counted %+v, want nothing off", again)
	}
}

// With LedgerReportOnly (LEDGER_REPAIR=false) the check finds and counts
// the same drift and leaves every row as it was.
func TestLedgerCheckReportOnlyLeavesTheRows(t *testing.T) {
	t.Parallel()
	s, pool := openStore(t, 1<<20)
	users, right, drifted, usedOff, reservedOff := corruptLedger(t, s, pool)
	before := readQuotas(t, pool, users)
	svc := ledgerService(s)

	got := sweepLedger(t, svc, ledgerSweep(3, true), len(users))
	want := document.SweepResult{LedgerChecked: len(users), LedgerDrifted: drifted,
		LedgerDriftUsedBytes: usedOff, LedgerDriftReservedBytes: reservedOff}
	if got != want {
		t.Errorf("report-only check counted %+v, want %+v", got, want)
	}
	if rows := readQuotas(t, pool, users); fmt.Sprint(rows) != fmt.Sprint(before) {
		t.Errorf("report-only check changed the rows to %v; want them untouched, %v", rows, before)
	}
	// Found again by the next pass, and repaired once repair is on.
	sweepLedger(t, svc, ledgerSweep(3, false), len(users))
	if rows := readQuotas(t, pool, users); fmt.Sprint(rows) != fmt.Sprint(right) {
		t.Errorf("after a repairing pass the rows are %v, want %v", rows, right)
	}
}

// The ledger check, run again and again while users' uploads are created
// (reserving), confirmed (charged or rejected), deleted and purged, finds
// no drift: it reads every user's documents after locking the quota row,
// so a write is in both or in neither. The writes go through the stores'
// statements and the domain's Delete, the same as the roles'.
func TestLedgerCheckFindsNoDriftUnderConcurrentWrites(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool := openStore(t, 1<<20)
	svc := ledgerService(s)
	users := make([]uuid.UUID, 4) // few users: the writes meet on their rows
	for i := range users {
		users[i] = uuid.New()
		if _, err := s.Quota(ctx, users[i]); err != nil {
			t.Fatal(err)
		}
	}

	stop := make(chan struct{})
	var (
		wg     sync.WaitGroup
		writes atomic.Int64
		errs   = make(chan error, 16)
	)
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 23))
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := ledgerWrite(ctx, s, svc, users[rng.IntN(len(users))], rng); err != nil {
					errs <- err
					return
				}
				writes.Add(1)
			}
		}()
	}
	checks := 0
	deadline := time.Now().Add(4 * time.Second)
	for time.Now().Before(deadline) {
		res, err := svc.Sweep(ctx, ledgerSweep(len(users), true))
		if err != nil {
			t.Fatal(err)
		}
		if res.LedgerDrifted != 0 {
			t.Errorf("check %d found drift during the writes: %+v", checks, res)
		}
		checks++
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	res := sweepLedger(t, svc, ledgerSweep(len(users), true), len(users))
	if res.LedgerDrifted != 0 {
		t.Errorf("after the writes the check found drift: %+v", res)
	}
	var docs int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM documents`).Scan(&docs); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d checks during %d writes; %d documents left", checks, writes.Load(), docs)
	if checks < 10 || writes.Load() < 100 {
		t.Fatalf("only %d checks beside %d writes: the test proved nothing", checks, writes.Load())
	}
}

// ledgerWrite does one write of the ones that move user's quota: an
// upload created with or without a reservation and confirmed (charged, or
// rejected over quota or for its size), a delete of an uploaded or a
// pending document, or a purge of a pending one.
func ledgerWrite(ctx context.Context, s *postgres.Store, svc *document.Service, user uuid.UUID, rng *rand.Rand) error {
	var declared *int64
	reserve := int64(0)
	if rng.IntN(2) == 0 {
		size := int64(1 + rng.IntN(1000))
		declared, reserve = &size, size
	}
	d := newDocument(user, declared)
	_, created, err := s.CreateDocument(ctx, d, document.UploadLimits{Now: d.CreatedAt, Window: time.Minute, Reserve: reserve})
	if err != nil || !created {
		return err // not created: the quota is full, which is fine
	}
	size := int64(1 + rng.IntN(1000))
	if declared != nil && rng.IntN(4) > 0 {
		size = *declared
	}
	switch rng.IntN(4) {
	case 0: // stays pending, then deleted by its owner
		return svc.Delete(ctx, user, d.ID)
	case 1: // stays pending, then purged by a sweep
		_, _, err := s.PurgeDocuments(ctx, document.Purge{IDs: []uuid.UUID{d.ID}, Status: document.StatusPending, Before: time.Now().Add(time.Hour), At: time.Now(), Rule: document.Ledger()})
		return err
	}
	reason := ""
	if declared != nil && *declared != size {
		reason = document.ReasonSizeMismatch
	}
	if _, err := s.Settle(ctx, change(d, size, reason)); err != nil {
		return err
	}
	if rng.IntN(2) == 0 {
		return svc.Delete(ctx, user, d.ID)
	}
	return nil
}

// Every clamp at zero in the store's quota writes says what it absorbed:
// the confirm's and the purge's release of a reservation, and the
// transaction's release, unreserve and negative charge; the domain's
// Delete hands it to Config.OnClamp.
func TestClampsReturnWhatTheyAbsorbed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, pool := openStore(t, 1<<20)
	user := uuid.New()
	setQuota := func(used, reserved int64) {
		t.Helper()
		if _, err := pool.Exec(ctx, `UPDATE quotas SET used_bytes = $2, reserved_bytes = $3 WHERE user_id = $1`, user, used, reserved); err != nil {
			t.Fatal(err)
		}
	}
	reserving := func(size int64) *document.Document {
		t.Helper()
		d := newDocument(user, &size)
		if _, created, err := s.CreateDocument(ctx, d, document.UploadLimits{Now: d.CreatedAt, Window: time.Minute, Reserve: size}); err != nil || !created {
			t.Fatalf("create: %v, %v", created, err)
		}
		return d
	}

	// A confirm releasing 50 reserved bytes of a row that holds 20.
	d := reserving(50)
	setQuota(0, 20)
	r, err := s.Settle(ctx, change(d, 50, ""))
	if err != nil || !r.Charged || r.Clamp != (document.Clamp{UserID: user, Reserved: 30}) {
		t.Errorf("confirm = %+v, %v; want charged with a clamp of 30 reserved bytes", r, err)
	}
	// A confirm whose reservation is all there absorbs nothing.
	d = reserving(10)
	if r, err := s.Settle(ctx, change(d, 10, "")); err != nil || r.Clamp != (document.Clamp{}) {
		t.Errorf("confirm = %+v, %v; want no clamp", r, err)
	}

	// A purge releasing 40 reserved bytes of a row that holds 15.
	d = reserving(40)
	setQuota(60, 15)
	purged, clamps, err := s.PurgeDocuments(ctx, document.Purge{IDs: []uuid.UUID{d.ID}, Status: document.StatusPending, Before: time.Now().Add(time.Hour), At: time.Now(), Rule: document.Ledger()})
	if err != nil || len(purged) != 1 || fmt.Sprint(clamps) != fmt.Sprint([]document.Clamp{{UserID: user, Reserved: 25}}) {
		t.Errorf("purge = %v, %v, %v; want one purged with a clamp of 25 reserved bytes", purged, clamps, err)
	}

	// Releases past what the row holds.
	setQuota(10, 5)
	err = s.InTx(ctx, func(tx document.Tx) error {
		if err := tx.Release(ctx, user, 12, 0); err != nil { // used 10 → 0, 2 absorbed
			return err
		}
		if err := tx.Release(ctx, user, 0, 9); err != nil { // reserved 5 → 0, 4 absorbed
			return err
		}
		if err := tx.Release(ctx, user, 3, 1); err != nil { // used 0 → 0, 3 absorbed; reserved 1
			return err
		}
		if err := tx.Release(ctx, user, 0, 0); err != nil { // nothing absorbed
			return err
		}
		want := []document.Clamp{{UserID: user, Used: 2}, {UserID: user, Reserved: 4}, {UserID: user, Used: 3, Reserved: 1}}
		if got := tx.Clamps(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("Clamps = %v, want %v", got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// The domain's Delete of a charged document whose row holds less.
	var counted atomic.Int64
	svc := document.NewService(s, emptyBucket{}, document.Config{MaxUploadBytes: 1 << 30,
		OnClamp: func(used, reserved int64) { counted.Add(used + reserved) }})
	d = newDocument(user, nil)
	create(t, s, d)
	if _, err := s.Settle(ctx, change(d, 70, "")); err != nil {
		t.Fatal(err)
	}
	setQuota(30, 0)
	if err := svc.Delete(ctx, user, d.ID); err != nil {
		t.Fatal(err)
	}
	if n := counted.Load(); n != 40 {
		t.Errorf("OnClamp counted %d bytes for the delete, want 40", n)
	}
}
