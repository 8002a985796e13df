package document_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/shared/document"
)

// The ledger's rule: charged documents hold their size as used bytes,
// pending ones their reservation, rejected ones nothing.
func TestLedgerRule(t *testing.T) {
	t.Parallel()
	rule := document.Ledger()
	for status, want := range map[document.Status][2]int64{
		document.StatusPending:              {0, 7},
		document.StatusUploaded:             {100, 0},
		document.StatusClassified:           {100, 0},
		document.StatusClassificationFailed: {100, 0},
		document.StatusRejected:             {0, 0},
	} {
		used, reserved := rule.Holds(&document.Document{Status: status, SizeBytes: 100, ReservedBytes: 7})
		if [2]int64{used, reserved} != want {
			t.Errorf("%s holds %d used, %d reserved; want %v", status, used, reserved, want)
		}
	}
}

// setQuota writes a user's quota row as a bug would, behind the use cases.
func (f *fixture) setQuota(user uuid.UUID, used, reserved int64) {
	f.store.mu.Lock()
	defer f.store.mu.Unlock()
	q := f.store.st.quotas[user]
	q.UsedBytes, q.ReservedBytes = used, reserved
	f.store.st.quotas[user] = q
}

func (f *fixture) quotaRow(t *testing.T, user uuid.UUID) [2]int64 {
	t.Helper()
	q, err := f.store.Quota(context.Background(), user)
	if err != nil {
		t.Fatal(err)
	}
	return [2]int64{q.UsedBytes, q.ReservedBytes}
}

// The ledger check on the in-memory store, as on PostgreSQL
// (shared/postgres: TestLedgerCheckFindsCountsAndRepairsDrift): five
// users' rows are written wrong, found, counted and repaired over sweeps of
// 3 rows; report-only finds the same and leaves them.
func TestLedgerCheckRepairsOrReports(t *testing.T) {
	t.Parallel()
	for _, reportOnly := range []bool{false, true} {
		t.Run(fmt.Sprint("report only ", reportOnly), func(t *testing.T) {
			f := newService(t)
			var users []uuid.UUID
			for range 6 {
				u := uuid.New()
				users = append(users, u)
				f.uploaded(t, u, 100)
				f.pending(t, u, declared(50))
			}
			for _, u := range users {
				if got := f.quotaRow(t, u); got != [2]int64{100, 50} {
					t.Fatalf("quota row %v before the corruption, want [100 50]", got)
				}
			}
			wrong := map[int][2]int64{0: {1100, 50}, 1: {0, 50}, 2: {100, 7}, 4: {40, 0}}
			for i, q := range wrong {
				f.setQuota(users[i], q[0], q[1])
			}
			cfg := document.SweepConfig{PendingTTL: time.Hour, RejectedRetention: time.Hour, BatchSize: 2,
				LedgerUsers: 3, LedgerReportOnly: reportOnly}
			var sum document.SweepResult
			for range 2 { // 6 rows, 3 a sweep: one pass
				res, err := f.svc.Sweep(context.Background(), cfg)
				if err != nil {
					t.Fatal(err)
				}
				sum.LedgerChecked += res.LedgerChecked
				sum.LedgerDrifted += res.LedgerDrifted
				sum.LedgerRepaired += res.LedgerRepaired
				sum.LedgerDriftUsedBytes += res.LedgerDriftUsedBytes
				sum.LedgerDriftReservedBytes += res.LedgerDriftReservedBytes
			}
			want := document.SweepResult{LedgerChecked: 6, LedgerDrifted: 4, LedgerRepaired: 4,
				LedgerDriftUsedBytes: 1000 + 100 + 60, LedgerDriftReservedBytes: 43 + 50}
			if reportOnly {
				want.LedgerRepaired = 0
			}
			if sum != want {
				t.Errorf("the pass counted %+v, want %+v", sum, want)
			}
			for i, u := range users {
				want := [2]int64{100, 50}
				if q, ok := wrong[i]; ok && reportOnly {
					want = q
				}
				if got := f.quotaRow(t, u); got != want {
					t.Errorf("user %d's row after the pass: %v, want %v", i, got, want)
				}
			}
		})
	}
}

// A clamp is reported once, where the use case learns of it: logged with
// the user and counted through Config.OnClamp.
func TestAClampIsLoggedAndCounted(t *testing.T) {
	t.Parallel()
	var counted [2]int64
	f := newService(t, func(c *document.Config) {
		c.OnClamp = func(used, reserved int64) { counted[0] += used; counted[1] += reserved }
	})
	user := uuid.New()
	d := f.uploaded(t, user, 100)
	p := f.pending(t, user, declared(50))
	f.setQuota(user, 30, 20)
	var logs bytes.Buffer
	ctx := zerolog.New(&logs).WithContext(context.Background())
	if err := f.svc.Delete(ctx, user, d.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Delete(ctx, user, p.ID); err != nil {
		t.Fatal(err)
	}
	if counted != [2]int64{70, 30} {
		t.Errorf("OnClamp counted %v, want 70 used and 30 reserved bytes", counted)
	}
	if n := strings.Count(logs.String(), "clamped"); n != 2 || !strings.Contains(logs.String(), user.String()) {
		t.Errorf("logs: %s\nwant one line per clamp, naming the user", logs.String())
	}
}
