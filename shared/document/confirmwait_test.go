package document_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/docuvault/docuvault/shared/document"
)

// awaiter is a document.Awaiter the test wakes by hand (events.Settlements
// wakes on the settling events).
type awaiter struct {
	mu      sync.Mutex
	waiting map[uuid.UUID]chan struct{}
}

func newAwaiter() *awaiter { return &awaiter{waiting: map[uuid.UUID]chan struct{}{}} }

func (a *awaiter) Await(id uuid.UUID) (<-chan struct{}, func()) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ch := make(chan struct{})
	a.waiting[id] = ch
	return ch, func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.waiting[id] == ch {
			delete(a.waiting, id)
		}
	}
}

// waits reports whether someone waits for id.
func (a *awaiter) waits(id uuid.UUID) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.waiting[id] != nil
}

func (a *awaiter) wake(id uuid.UUID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ch := a.waiting[id]; ch != nil {
		close(ch)
		delete(a.waiting, id)
	}
}

// waitingFixture is a fixture whose user's confirm waits up to wait for
// the notification door (door: the same store and objects, no wait).
func waitingFixture(t *testing.T, wait time.Duration) (*fixture, *awaiter, *document.Service) {
	aw := newAwaiter()
	f := newService(t, func(c *document.Config) { c.Settlements, c.ConfirmWait = aw, wait })
	cfg := f.cfg
	cfg.Settlements, cfg.ConfirmWait = nil, 0
	return f, aw, document.NewService(f.store, f.objects, cfg)
}

// One writer per upload: the user's confirm of a pending upload waits for
// the notification door, which settles it without a stat, and answers
// from the row that door committed. The wake only says when to read.
func TestConfirmWaitsForTheNotificationDoor(t *testing.T) {
	t.Parallel()
	f, aw, door := waitingFixture(t, time.Minute)
	user := uuid.New()
	d := f.pending(t, user, declared(10))
	obj := f.put(d.ObjectKey, 10)

	type result struct {
		c   document.Confirmation
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := f.svc.Confirm(context.Background(), user, d.ID)
		done <- result{c, err}
	}()
	for !aw.waits(d.ID) {
		time.Sleep(time.Millisecond)
	}
	// The notification door commits, then its event wakes the confirm.
	if _, err := door.ConfirmObject(context.Background(), d.ObjectKey, obj.info()); err != nil {
		t.Fatal(err)
	}
	aw.wake(d.ID)
	r := <-done
	if r.err != nil || r.c.Changed || r.c.Document.Status != document.StatusUploaded || r.c.UsedBytes != 10 {
		t.Fatalf("Confirm = %+v, %v; want the other door's upload, 10 bytes used", r.c, r.err)
	}
	wantOutcome(t, r.c, r.err, "already")
	if n := f.objects.statCount(); n != 0 {
		t.Errorf("%d stats, want none: the notification door settles a declared size without one, and the confirm waited", n)
	}
	if n := f.store.callCount("Settle"); n != 1 {
		t.Errorf("%d settle statements, want 1: one writer per upload", n)
	}
	if f.used(t, user) != 10 {
		t.Errorf("used %d, want 10", f.used(t, user))
	}
}

// Without a notification (NATS away, MinIO's queue behind) the confirm
// settles the upload itself once ConfirmWait is over, as before the wait.
func TestConfirmSettlesItselfWhenNoNotificationComes(t *testing.T) {
	t.Parallel()
	const wait = 50 * time.Millisecond
	f, aw, _ := waitingFixture(t, wait)
	user := uuid.New()
	d := f.pending(t, user, declared(10))
	f.put(d.ObjectKey, 10)
	start := time.Now()
	c, err := f.svc.Confirm(context.Background(), user, d.ID)
	if took := time.Since(start); took < wait {
		t.Errorf("Confirm answered after %v, before the wait (%v) was over", took, wait)
	}
	if err != nil || !c.Changed || c.UsedBytes != 10 {
		t.Fatalf("Confirm = %+v, %v; want this call's upload", c, err)
	}
	if n := f.objects.statCount(); n != 1 {
		t.Errorf("%d stats, want the one that gave the size", n)
	}
	if aw.waits(d.ID) {
		t.Error("the confirm still waits after answering")
	}
	// A document settled before the confirm is answered at once.
	start = time.Now()
	if c, err := f.svc.Confirm(context.Background(), user, d.ID); err != nil || c.Changed || time.Since(start) >= wait {
		t.Fatalf("Confirm again = %+v, %v after %v; want the stored answer at once", c, err, time.Since(start))
	}
}

// A confirm whose request ends while it waits answers the request's error
// and settles nothing.
func TestConfirmWaitEndsWithItsRequest(t *testing.T) {
	t.Parallel()
	f, aw, _ := waitingFixture(t, time.Minute)
	user := uuid.New()
	d := f.pending(t, user, declared(10))
	f.put(d.ObjectKey, 10)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for !aw.waits(d.ID) {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	if _, err := f.svc.Confirm(ctx, user, d.ID); !errors.Is(err, context.Canceled) {
		t.Fatalf("Confirm = %v, want context.Canceled", err)
	}
	if got := f.doc(t, d.ID); got.Status != document.StatusPending || f.store.callCount("Settle") != 0 {
		t.Fatalf("after a cancelled wait: %s, %d settles; want pending, none", got.Status, f.store.callCount("Settle"))
	}
}

// A waiting confirm holds its request: it is paced before it waits, so a
// client's waiting confirms are bounded by its StorageThrottle, and one
// refused never waits.
func TestConfirmIsPacedBeforeItWaits(t *testing.T) {
	t.Parallel()
	throttle := &allowN{}
	aw := newAwaiter()
	f := newService(t, func(c *document.Config) {
		c.StorageThrottle, c.Settlements, c.ConfirmWait = throttle, aw, time.Minute
	})
	user := uuid.New()
	d := f.pending(t, user, declared(10))
	start := time.Now()
	if _, err := f.svc.Confirm(context.Background(), user, d.ID); document.ErrorCode(err) != document.RateLimited {
		t.Fatalf("confirm with no request left: %v, want RateLimited", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("a refused confirm answered after %v: it waited", took)
	}
}
