package probe

import (
	"context"
	"sync"
	"time"
)

// MaxAge is how old an answer a probe may give, counted from the moment
// the backends were asked: a failure shows within about MaxAge, and a
// flood of probes costs the backends at most one call per MaxAge.
const MaxAge = time.Second

// Cached calls a function for its callers at most once per MaxAge and
// never twice at a time: a caller gets the last result if it was asked
// for at most MaxAge ago, and otherwise waits for the call in flight,
// starting it if there is none.
type Cached[T any] struct {
	fn     func(context.Context) T
	maxAge time.Duration
	now    func() time.Time

	mu      sync.Mutex
	val     T
	asked   time.Time     // when fn was called for val; zero: never
	pending chan struct{} // closed when the call in flight returns; nil: none
}

// New returns a Cached over fn. fn bounds its own duration: it runs for
// every caller waiting, so no single caller's context cancels it.
func New[T any](fn func(context.Context) T) *Cached[T] {
	return &Cached[T]{fn: fn, maxAge: MaxAge, now: time.Now}
}

// Get returns fn's result at most MaxAge old. Its error is only ctx's,
// when ctx ends before the call in flight returns.
func (c *Cached[T]) Get(ctx context.Context) (T, error) {
	c.mu.Lock()
	if !c.asked.IsZero() && c.now().Sub(c.asked) < c.maxAge {
		v := c.val
		c.mu.Unlock()
		return v, nil
	}
	done := c.pending
	if done == nil {
		done = make(chan struct{})
		c.pending = done
		asked := c.now()
		// In a goroutine of its own, without the caller's cancellation:
		// the callers who arrive meanwhile wait for this call too, and
		// should not see it fail because the first of them left.
		go func() {
			v := c.fn(context.WithoutCancel(ctx))
			c.mu.Lock()
			c.val, c.asked, c.pending = v, asked, nil
			c.mu.Unlock()
			close(done)
		}()
	}
	c.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.val, nil
}
