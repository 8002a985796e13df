package ratelimit_test

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/docuvault/docuvault/shared/document"
	"github.com/docuvault/docuvault/shared/ratelimit"
)

var _ document.Throttle = (*ratelimit.Buckets)(nil)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func TestBucketsAllowABurstThenTheRate(t *testing.T) {
	t.Parallel()
	b := ratelimit.NewBuckets(60, 10, 100) // one a second, ten at once
	user := uuid.New()
	for i := range 10 {
		if _, ok := b.Take(user, t0); !ok {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	wait, ok := b.Take(user, t0)
	if ok || wait != time.Second {
		t.Fatalf("11th request at once: ok %v, wait %v; want refused, wait 1s", ok, wait)
	}
	// Another user has a bucket of their own.
	if _, ok := b.Take(uuid.New(), t0); !ok {
		t.Fatal("another user refused")
	}
	// Half a second on: still none; a second on: one, and only one.
	if wait, ok := b.Take(user, t0.Add(500*time.Millisecond)); ok || wait != 500*time.Millisecond {
		t.Fatalf("after 0.5 s: ok %v, wait %v", ok, wait)
	}
	if _, ok := b.Take(user, t0.Add(time.Second)); !ok {
		t.Fatal("after 1 s: refused")
	}
	if _, ok := b.Take(user, t0.Add(time.Second)); ok {
		t.Fatal("after 1 s: two requests allowed")
	}
	// A clock gone back gives nothing.
	if _, ok := b.Take(user, t0); ok {
		t.Fatal("a clock gone back refilled the bucket")
	}
}

func TestBucketsHoldBoundedMemory(t *testing.T) {
	t.Parallel()
	b := ratelimit.NewBuckets(60, 10, 100)
	// 1,000 users at once: never more than 100 buckets.
	for range 1000 {
		b.Take(uuid.New(), t0)
		if n := b.Len(); n > 100 {
			t.Fatalf("%d buckets, bound 100", n)
		}
	}
	// Idle long enough to fill up again: they go.
	b.Take(uuid.New(), t0.Add(11*time.Second))
	if n := b.Len(); n != 1 {
		t.Fatalf("%d buckets after every other user went idle, want 1", n)
	}
}

func TestBucketsDoNotForgetABusyUser(t *testing.T) {
	t.Parallel()
	b := ratelimit.NewBuckets(60, 2, 100)
	user := uuid.New()
	b.Take(user, t0)
	b.Take(user, t0)
	// Others come and go; the busy user's empty bucket stays.
	for i := range 50 {
		b.Take(uuid.New(), t0.Add(time.Duration(i)*10*time.Millisecond))
	}
	if _, ok := b.Take(user, t0.Add(500*time.Millisecond)); ok {
		t.Fatal("an empty bucket was dropped and refilled")
	}
}
