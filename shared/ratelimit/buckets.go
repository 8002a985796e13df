// Package ratelimit paces requests inside one process: a token bucket per
// user, in bounded memory. It suits limits where a little slack across
// replicas harms nobody; limits that must hold across replicas are counted
// in PostgreSQL (rate_limits).
package ratelimit

import (
	"sync"
	"time"

	"github.com/google/uuid"
)

// Buckets is a token bucket per user: each holds up to burst tokens, gains
// perMinute of them a minute, and a request takes one. Memory is bounded: a
// bucket that has filled up again is the same as none and is dropped, and
// past maxUsers buckets one is dropped for each new user (that user starts
// again with a full bucket: slack, never a refusal of someone else).
type Buckets struct {
	perSecond float64
	burst     float64
	maxUsers  int

	mu      sync.Mutex
	buckets map[uuid.UUID]bucket
	// pruned is when the full buckets were last dropped.
	pruned time.Time
}

type bucket struct {
	tokens float64 // as of at
	at     time.Time
}

// NewBuckets returns Buckets letting each user make perMinute requests a
// minute, up to burst at once, and tracking at most maxUsers users.
// perMinute, burst and maxUsers must be positive.
func NewBuckets(perMinute, burst, maxUsers int) *Buckets {
	return &Buckets{
		perSecond: float64(perMinute) / 60,
		burst:     float64(burst),
		maxUsers:  maxUsers,
		buckets:   make(map[uuid.UUID]bucket),
	}
}

// Take takes a token of user's bucket at now and reports whether there was
// one; when there was not, wait is how long until there is.
func (b *Buckets) Take(user uuid.UUID, now time.Time) (wait time.Duration, ok bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	// Dropping the full buckets costs a pass over the map: at most once in
	// the time an empty bucket takes to fill, when none of them could have
	// filled since the last pass.
	if now.Sub(b.pruned) >= b.fillTime() {
		b.prune(now)
	}
	k, found := b.buckets[user]
	if found {
		k.tokens = b.level(k, now)
	} else {
		if len(b.buckets) >= b.maxUsers {
			b.makeRoom(now)
		}
		k.tokens = b.burst
	}
	k.at = now
	if k.tokens < 1 {
		b.buckets[user] = k
		return time.Duration((1 - k.tokens) / b.perSecond * float64(time.Second)), false
	}
	k.tokens--
	b.buckets[user] = k
	return 0, true
}

// Len returns how many users' buckets are held.
func (b *Buckets) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.buckets)
}

// level is k's tokens at now; a clock gone back adds none.
func (b *Buckets) level(k bucket, now time.Time) float64 {
	return min(b.burst, k.tokens+max(0, now.Sub(k.at).Seconds())*b.perSecond)
}

func (b *Buckets) fillTime() time.Duration {
	return time.Duration(b.burst / b.perSecond * float64(time.Second))
}

// prune drops the buckets full again at now.
func (b *Buckets) prune(now time.Time) {
	b.pruned = now
	for user, k := range b.buckets {
		if b.level(k, now) >= b.burst {
			delete(b.buckets, user)
		}
	}
}

// makeRoom makes room for one more bucket: the full ones go (at most once
// a second: every user may be busy), else any one.
func (b *Buckets) makeRoom(now time.Time) {
	if now.Sub(b.pruned) >= time.Second {
		b.prune(now)
	}
	for user := range b.buckets {
		if len(b.buckets) < b.maxUsers {
			return
		}
		delete(b.buckets, user)
	}
}
