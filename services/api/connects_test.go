package api

import (
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestConnectLimiter: a user opens perMinute streams at once, then one
// every minute/perMinute; others are not affected; the table forgets a
// user whose bucket is full again and holds at most maxTrackedUsers.
func TestConnectLimiter(t *testing.T) {
	t.Parallel()
	var l connectLimiter
	l.setRate(3)
	now := time.Now()
	alice, bob := uuid.New(), uuid.New()
	for i := range 3 {
		if ok, _ := l.allow(alice, now); !ok {
			t.Fatalf("connect %d refused", i+1)
		}
	}
	ok, wait := l.allow(alice, now)
	if ok || wait != 20*time.Second || retryAfter(wait) != "20" {
		t.Fatalf("fourth connect: %v, wait %s; want refused for 20 s", ok, wait)
	}
	if ok, _ := l.allow(bob, now); !ok {
		t.Fatal("another user refused")
	}
	if ok, _ := l.allow(alice, now.Add(20*time.Second)); !ok {
		t.Fatal("refused once a connect was free again")
	}

	// A full table: users whose buckets are full again are forgotten to
	// make room; with none, a new user waits a second.
	var full connectLimiter
	full.setRate(3)
	for range maxTrackedUsers {
		full.allow(uuid.New(), now)
	}
	if ok, wait := full.allow(uuid.New(), now.Add(time.Second)); ok || wait != time.Second {
		t.Fatalf("a new user with the table full of busy users: %v %s", ok, wait)
	}
	if ok, _ := full.allow(uuid.New(), now.Add(time.Minute)); !ok || len(full.tat) != 1 {
		t.Fatalf("a new user once the others' buckets are full again: %v, %d tracked", ok, len(full.tat))
	}
}
