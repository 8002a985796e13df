package postgres_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/docuvault/docuvault/shared/document"
	"github.com/docuvault/docuvault/shared/document/storetest"
	"github.com/docuvault/docuvault/shared/postgres"
)

// uploadedAt creates a document of user confirmed (uploaded) at at.
func uploadedAt(t *testing.T, s *postgres.Store, user uuid.UUID, at time.Time) uuid.UUID {
	t.Helper()
	d := newDocument(user, nil)
	create(t, s, d)
	c := storetest.ChangeAt(d, 10, "", at)
	if r, err := s.Settle(context.Background(), c.Settlement); err != nil || !r.Applied {
		t.Fatalf("confirm: %+v, %v", r, err)
	}
	return d.ID
}

func claimIDs(t *testing.T, s *postgres.Store, q document.ClaimQuery) []uuid.UUID {
	t.Helper()
	got, err := s.ClaimWaiting(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]uuid.UUID, len(got))
	for i, w := range got {
		ids[i] = w.ID
	}
	return ids
}

func sameIDs(t *testing.T, what string, got []uuid.UUID, want ...uuid.UUID) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %v, want %v", what, got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%s: %v, want %v", what, got, want)
		}
	}
}

// The scenario of the document package's test of the same name, against
// the fake: the fake must claim what PostgreSQL claims.
func TestClaimWaitingTakesUsersInTurnsAfterTheWait(t *testing.T) {
	s, _ := openStore(t, 1<<20)
	t0 := time.Now().UTC().Truncate(time.Microsecond)
	a, b := uuid.New(), uuid.New()
	var as []uuid.UUID
	for i := range 3 {
		as = append(as, uploadedAt(t, s, a, t0.Add(time.Duration(i)*time.Second)))
	}
	b1 := uploadedAt(t, s, b, t0.Add(3*time.Second))
	q := func(now time.Time, perUser, limit int) document.ClaimQuery {
		return document.ClaimQuery{Stage: document.StageClassify, WaitedSince: now.Add(-time.Minute), Now: now, Until: now.Add(time.Minute), PerUser: perUser, Limit: limit}
	}

	sameIDs(t, "before the wait", claimIDs(t, s, q(t0.Add(30*time.Second), 10, 10)))
	now := t0.Add(2 * time.Minute)
	sameIDs(t, "after the wait", claimIDs(t, s, q(now, 2, 10)), as[0], b1, as[1])
	sameIDs(t, "again", claimIDs(t, s, q(now, 2, 10)), as[2])
	sameIDs(t, "while claimed", claimIDs(t, s, q(now, 2, 10)))

	now = t0.Add(3*time.Minute + time.Second)
	if err := s.Postpone(context.Background(), as[1], now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	sameIDs(t, "after the claims ended", claimIDs(t, s, q(now, 10, 1)), as[0])
	sameIDs(t, "after the claims ended", claimIDs(t, s, q(now, 10, 10)), as[2], b1)
	sameIDs(t, "after the pause", claimIDs(t, s, q(t0.Add(2*time.Hour), 10, 10)), as[0], b1, as[1], as[2])
}

// Two replicas claiming at once never get the same document.
func TestClaimWaitingGivesEachDocumentToOneCaller(t *testing.T) {
	s, _ := openStore(t, 1<<20)
	t0 := time.Now().UTC().Add(-time.Hour).Truncate(time.Microsecond)
	for i := range 40 {
		uploadedAt(t, s, uuid.New(), t0.Add(time.Duration(i)*time.Millisecond))
	}
	now := time.Now().UTC()
	var (
		mu   sync.Mutex
		seen = map[uuid.UUID]int{}
		wg   sync.WaitGroup
	)
	for range 4 {
		wg.Go(func() {
			// A caller stops at an empty claim: another took what was left.
			for {
				got, err := s.ClaimWaiting(context.Background(), document.ClaimQuery{Stage: document.StageClassify,
					WaitedSince: now, Now: now, Until: now.Add(time.Minute), PerUser: 1, Limit: 5})
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, w := range got {
					seen[w.ID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != 40 {
		t.Errorf("%d of 40 documents claimed", len(seen))
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("document %s claimed %d times", id, n)
		}
	}
}
