package document_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/docuvault/docuvault/shared/document"
)

// claimed claims with f's service and returns the ids in order.
func claimed(t *testing.T, f *fixture, perUser, limit int) []uuid.UUID {
	t.Helper()
	got, err := f.svc.ClaimUnclassified(context.Background(), perUser, limit)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]uuid.UUID, len(got))
	for i, w := range got {
		ids[i] = w.ID
	}
	return ids
}

func wantIDs(t *testing.T, what string, got []uuid.UUID, want ...uuid.UUID) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d documents %v, want %v", what, len(got), got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%s: %v, want %v", what, got, want)
		}
	}
}

func TestClaimUnclassifiedTakesUsersInTurnsAfterTheWait(t *testing.T) {
	f := newService(t, func(c *document.Config) { c.ClassifyRecoveryAfter = time.Minute })
	a, b := uuid.New(), uuid.New()
	var as []uuid.UUID
	for i := range 3 {
		f.clock.set(t0.Add(time.Duration(i) * time.Second))
		as = append(as, f.uploaded(t, a, 5).ID)
	}
	f.clock.set(t0.Add(3 * time.Second))
	b1 := f.uploaded(t, b, 5).ID

	f.clock.set(t0.Add(30 * time.Second))
	wantIDs(t, "before the wait", claimed(t, f, 10, 10))

	// Every user's oldest, then every user's second, at most 2 a user.
	f.clock.set(t0.Add(2 * time.Minute))
	wantIDs(t, "after the wait", claimed(t, f, 2, 10), as[0], b1, as[1])
	wantIDs(t, "again", claimed(t, f, 2, 10), as[2])
	wantIDs(t, "while claimed", claimed(t, f, 2, 10))

	// A claim ends after the wait; a classified document is not claimed;
	// a postponed one waits.
	if _, _, err := f.svc.Classify(context.Background(), b1); err != nil {
		t.Fatal(err)
	}
	f.clock.set(t0.Add(3*time.Minute + time.Second))
	if err := f.svc.Postpone(context.Background(), as[1], time.Hour); err != nil {
		t.Fatal(err)
	}
	wantIDs(t, "after the claims ended", claimed(t, f, 10, 1), as[0])
	wantIDs(t, "after the claims ended", claimed(t, f, 10, 10), as[2])
	f.clock.set(t0.Add(2 * time.Hour))
	wantIDs(t, "after the pause", claimed(t, f, 10, 10), as...)
}
