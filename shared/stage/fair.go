package stage

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"
)

// fairQueue is a replica's documents waiting for its stage, held per user and handed
// to the workers in turns between users: a worker takes the next user in
// the ring that has a document waiting and fewer than perUserWorkers
// documents in hand, and that user goes to the ring's end. A user holds at
// most perUser documents (waiting, in hand or resting before a retry) and
// the queue at most capacity in all; what does not fit is refused, and the
// caller leaves it to PostgreSQL, where the recovery finds it.
type fairQueue struct {
	perUser        int
	perUserWorkers int
	capacity       int

	mu     sync.Mutex
	users  map[uuid.UUID]*userWork
	ring   []uuid.UUID // users with documents waiting, in turn order
	docs   map[uuid.UUID]*entry
	held   int // documents held in all
	closed bool
	timers map[*time.Timer]struct{}
	// wake tells one idle worker that there may be work; a worker that
	// takes work passes the word on if more is left.
	wake chan struct{}
}

// userWork is one user's share of a fairQueue.
type userWork struct {
	waiting []*entry
	running int
	held    int // waiting + running + resting
	inRing  bool
}

// entry is one document a fairQueue holds.
type entry struct {
	id, user uuid.UUID
	failures int  // passing failures in a row on this replica
	running  bool // in a worker's hands
	again    bool // offered again while running: queue it once more after
}

func newFairQueue(perUser, perUserWorkers, capacity int) *fairQueue {
	return &fairQueue{
		perUser:        max(perUser, 1),
		perUserWorkers: max(perUserWorkers, 1),
		capacity:       max(capacity, 1),
		users:          map[uuid.UUID]*userWork{},
		docs:           map[uuid.UUID]*entry{},
		timers:         map[*time.Timer]struct{}{},
		wake:           make(chan struct{}, 1),
	}
}

// What offer did with a document.
type offered int

const (
	refused offered = iota // over the user's share, or the queue full or closed
	queued                 // queued
	held                   // held already (waiting, in hand or resting)
)

// offer queues document id of user, unless the user's share or the queue
// is full. A document held already is not queued twice; one in a
// worker's hands is queued once more when it is done, since the offer may
// follow a change (a reclassification) the worker did not see.
func (q *fairQueue) offer(user, id uuid.UUID) offered {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return refused
	}
	if e, ok := q.docs[id]; ok {
		if e.running {
			e.again = true
		}
		return held
	}
	u := q.users[user]
	if u == nil {
		u = &userWork{}
	}
	if u.held >= q.perUser || q.held >= q.capacity {
		return refused
	}
	q.users[user] = u
	e := &entry{id: id, user: user}
	q.docs[id] = e
	u.held++
	q.held++
	q.enqueue(u, e)
	return queued
}

// enqueue puts e at the end of its user's waiting documents.
func (q *fairQueue) enqueue(u *userWork, e *entry) {
	u.waiting = append(u.waiting, e)
	if !u.inRing {
		u.inRing = true
		q.ring = append(q.ring, e.user)
	}
	q.signal()
}

func (q *fairQueue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// free is how many more documents the queue takes.
func (q *fairQueue) free() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.capacity - q.held
}

// next waits for the next document in turn and hands it to the caller, who
// must call done with it; ok is false once ctx ends.
func (q *fairQueue) next(ctx context.Context) (e *entry, ok bool) {
	for {
		if e := q.take(); e != nil {
			return e, true
		}
		select {
		case <-ctx.Done():
			return nil, false
		case <-q.wake:
		}
	}
}

// take returns the first document of the first user in the ring with a
// free worker share, moving that user to the ring's end; nil when none.
func (q *fairQueue) take() *entry {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, user := range q.ring {
		u := q.users[user]
		if u.running >= q.perUserWorkers {
			continue
		}
		e := u.waiting[0]
		u.waiting[0] = nil
		u.waiting = u.waiting[1:]
		u.running++
		e.running = true
		q.ring = append(q.ring[:i], q.ring[i+1:]...)
		if len(u.waiting) > 0 {
			q.ring = append(q.ring, user)
		} else {
			u.inRing = false
		}
		if len(q.ring) > 0 {
			q.signal() // more may be ready for another idle worker
		}
		return e
	}
	return nil
}

// done settles e after a worker's try: it leaves the queue, unless retry
// is above zero, when it rests that long and is queued again (still
// counted in its user's share meanwhile), or it was offered again while
// it ran.
func (q *fairQueue) done(e *entry, retry time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	u := q.users[e.user]
	u.running--
	e.running = false
	switch {
	case q.closed:
		q.forget(u, e)
	case e.again:
		e.again, e.failures = false, 0
		q.enqueue(u, e)
	case retry > 0:
		var t *time.Timer
		t = time.AfterFunc(retry, func() {
			q.mu.Lock()
			defer q.mu.Unlock()
			delete(q.timers, t)
			if !q.closed {
				q.enqueue(u, e)
			}
		})
		q.timers[t] = struct{}{}
	default:
		q.forget(u, e)
	}
	if u.running < q.perUserWorkers && len(u.waiting) > 0 {
		q.signal()
	}
}

// forget drops e; its user goes once it holds nothing.
func (q *fairQueue) forget(u *userWork, e *entry) {
	delete(q.docs, e.id)
	u.held--
	q.held--
	if u.held == 0 {
		delete(q.users, e.user)
	}
}

// close refuses further offers and drops the documents resting before a
// retry; what was not done stays waiting in PostgreSQL for the recovery.
func (q *fairQueue) close() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	for t := range q.timers {
		t.Stop()
	}
	clear(q.timers)
}
