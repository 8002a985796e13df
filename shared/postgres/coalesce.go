package postgres

import (
	"context"
	"sync"
	"time"
)

// batchTimeout bounds a coalesced statement: it runs for every caller
// waiting on it, so no single caller's context may cancel it.
const batchTimeout = 10 * time.Second

// coalescer sends concurrent calls of one kind together, in one statement
// per batch. A call that arrives while a batch is in flight waits for it
// to end and goes, with every call that arrived meanwhile, in the next
// one. An idle process sends a call at once (a batch never waits for
// company); a busy one sends one statement for many. Each call still
// starts after it was made, so it sees every write committed before.
type coalescer[C any] struct {
	max  int                                  // most calls in one batch
	send func(ctx context.Context, batch []C) // answers each call of batch (into the call)

	mu      sync.Mutex
	queue   []queued[C]
	running bool
}

// queued is a call waiting for its batch.
type queued[C any] struct {
	call C
	done chan struct{}
}

// do queues call and waits until its batch answered it, or ctx ends (the
// batch then still runs, and its answer is dropped).
func (c *coalescer[C]) do(ctx context.Context, call C) error {
	q := queued[C]{call: call, done: make(chan struct{})}
	c.mu.Lock()
	c.queue = append(c.queue, q)
	if !c.running {
		c.running = true
		go c.run(context.WithoutCancel(ctx))
	}
	c.mu.Unlock()
	select {
	case <-q.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run sends the waiting calls, a batch per statement, until none wait.
func (c *coalescer[C]) run(ctx context.Context) {
	for {
		c.mu.Lock()
		batch := c.queue
		if len(batch) > c.max {
			batch, c.queue = batch[:c.max], batch[c.max:]
		} else {
			c.queue = nil
		}
		if len(batch) == 0 {
			c.running = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		calls := make([]C, len(batch))
		for i, q := range batch {
			calls[i] = q.call
		}
		sendCtx, cancel := context.WithTimeout(ctx, batchTimeout)
		c.send(sendCtx, calls)
		cancel()
		for _, q := range batch {
			close(q.done)
		}
	}
}
