package stage

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
)

func mustTake(t *testing.T, q *fairQueue) *entry {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	e, ok := q.next(ctx)
	if !ok {
		t.Fatal("no document handed out")
	}
	return e
}

func TestFairQueueTakesUsersInTurns(t *testing.T) {
	q := newFairQueue(100, 100, 1000)
	a, b := uuid.New(), uuid.New()
	for range 5 {
		q.offer(a, uuid.New())
	}
	q.offer(b, uuid.New())
	q.offer(b, uuid.New())
	var got []uuid.UUID
	for range 7 {
		e := mustTake(t, q)
		got = append(got, e.user)
		q.done(e, 0)
	}
	want := []uuid.UUID{a, b, a, b, a, a, a}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("turn %d went to %v; want users in turns, a then b", i, got[i])
		}
	}
	if q.free() != 1000 {
		t.Fatalf("free %d after every document was done, want 1000", q.free())
	}
}

func TestFairQueueBoundsAUsersShare(t *testing.T) {
	q := newFairQueue(3, 2, 5)
	a, b, c := uuid.New(), uuid.New(), uuid.New()
	for i := range 4 {
		if got, want := q.offer(a, uuid.New()), map[bool]offered{true: queued, false: refused}[i < 3]; got != want {
			t.Fatalf("offer %d of one user: %v; want its share of 3 queued and the rest refused", i, got)
		}
	}
	// A user holds at most 2 workers: the third taker gets another user.
	q.offer(b, uuid.New())
	e1, e2 := mustTake(t, q), mustTake(t, q)
	if e1.user != a || e2.user != b {
		t.Fatalf("first two went to %v, %v", e1.user, e2.user)
	}
	e3 := mustTake(t, q)
	if e3.user != a {
		t.Fatalf("third went to %v", e3.user)
	}
	if e := q.take(); e != nil {
		t.Fatalf("a user with 2 documents in hand got a third worker")
	}
	// The queue's capacity holds across users.
	q.offer(c, uuid.New())
	if q.offer(c, uuid.New()) != refused {
		t.Fatal("offer beyond the queue's capacity was taken")
	}
	q.done(e1, 0)
	if e := mustTake(t, q); e.user != c && e.user != a {
		t.Fatalf("after a worker was free: %v", e.user)
	}
}

func TestFairQueueHoldsADocumentOnce(t *testing.T) {
	q := newFairQueue(10, 10, 10)
	a, id := uuid.New(), uuid.New()
	q.offer(a, id)
	if got := q.offer(a, id); got != held {
		t.Fatalf("second offer of one document: %v, want held", got)
	}
	e := mustTake(t, q)
	if e2 := q.take(); e2 != nil {
		t.Fatal("a document offered twice was queued twice")
	}
	// Offered again while in hand (reclassified meanwhile): once more after.
	q.offer(a, id)
	q.done(e, 0)
	if e := mustTake(t, q); e.id != id {
		t.Fatal("the document offered while in hand was not queued again")
	}
}

func TestFairQueueRetriesAfterAPause(t *testing.T) {
	q := newFairQueue(10, 10, 10)
	a, id := uuid.New(), uuid.New()
	q.offer(a, id)
	e := mustTake(t, q)
	q.done(e, 50*time.Millisecond)
	if q.free() != 9 {
		t.Fatalf("a resting document is not held: free %d", q.free())
	}
	start := time.Now()
	e = mustTake(t, q)
	if e.id != id || time.Since(start) < 40*time.Millisecond {
		t.Fatalf("retry came back after %s", time.Since(start))
	}
	q.done(e, time.Hour)
	q.close()
	if q.offer(a, uuid.New()) != refused {
		t.Fatal("a closed queue took a document")
	}
}
