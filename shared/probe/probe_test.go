package probe

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestCachedSharesOneCallAndExpires checks the rule itself on a clock the
// test moves: concurrent callers share one call, its result is reused
// until MaxAge has passed since it was asked, then asked again.
func TestCachedSharesOneCallAndExpires(t *testing.T) {
	t.Parallel()
	var (
		calls   atomic.Int64
		release = make(chan struct{})
		mu      sync.Mutex
		clock   = time.Unix(1_000_000, 0)
	)
	c := New(func(context.Context) int64 {
		<-release
		return calls.Add(1)
	})
	c.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }

	var wg sync.WaitGroup
	got := make([]int64, 100)
	for i := range got {
		wg.Go(func() {
			v, err := c.Get(context.Background())
			if err != nil {
				t.Error(err)
			}
			got[i] = v
		})
	}
	// Let every caller reach Get before the one call returns.
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	for i, v := range got {
		if v != 1 {
			t.Fatalf("caller %d got %d, want the first call's 1", i, v)
		}
	}

	advance(MaxAge - time.Nanosecond)
	if v, _ := c.Get(context.Background()); v != 1 || calls.Load() != 1 {
		t.Fatalf("just under MaxAge: got %d after %d calls, want the cached 1", v, calls.Load())
	}
	advance(time.Nanosecond)
	if v, _ := c.Get(context.Background()); v != 2 {
		t.Fatalf("at MaxAge: got %d, want a new call's 2", v)
	}
}

// TestCachedCallerLeavesCallGoesOn checks that a caller who gives up does
// not cancel the call the others wait for.
func TestCachedCallerLeavesCallGoesOn(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	c := New(func(ctx context.Context) error {
		<-release
		return ctx.Err()
	})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Get(ctx); err == nil {
		t.Fatal("Get with an ended context returned no error")
	}
	close(release)
	if err, _ := c.Get(context.Background()); err != nil {
		t.Fatalf("the call saw its first caller's cancellation: %v", err)
	}
}
