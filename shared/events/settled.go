package events

import (
	"encoding/json"
	"fmt"
	"sync"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/docuvault/docuvault/shared/document"
)

// Settlements wakes what waits in this process for a document to settle
// (document.Awaiter): a core NATS subscription to the events that say a
// document left pending, document.uploaded and document.rejected, which
// the settling door's relay publishes once its transaction committed. Core
// subscribers get a copy of what DOCUMENTS stores as it is published; no
// consumer is made, nothing is stored for them, and a copy missed (the
// connection away, the process too slow) only leaves the waiter to its
// timeout. A wake is a hint, never an answer: the waiter reads the row.
type Settlements struct {
	mu      sync.Mutex
	waiting map[uuid.UUID]*awaited
}

// awaited is the wake of one document, shared by its waiters.
type awaited struct {
	settled chan struct{} // closed on the wake
	n       int           // its waiters
}

// Bounds of what a subscription of Settlements buffers when its callback
// falls behind: past them the server's copies are dropped (a waiter then
// settles after its timeout), and memory stays bounded.
const (
	settledPendingMsgs  = 8192
	settledPendingBytes = 8 << 20
)

// settledTypes are the events of a document leaving pending.
var settledTypes = []document.EventType{document.EventUploaded, document.EventRejected}

// WatchSettlements subscribes b's connection to the settling events; the
// subscriptions end with the connection (Bus.Close).
func (b *Bus) WatchSettlements() (*Settlements, error) {
	s := &Settlements{waiting: make(map[uuid.UUID]*awaited)}
	for _, t := range settledTypes {
		sub, err := b.nc.Subscribe(document.SubjectOfType(t), s.receive)
		if err == nil {
			err = sub.SetPendingLimits(settledPendingMsgs, settledPendingBytes)
		}
		if err != nil {
			return nil, fmt.Errorf("watch %s events: %w", t, err)
		}
	}
	return s, nil
}

// Await returns a channel closed once an event says document id left
// pending, and stop, which the waiter calls when it no longer waits.
func (s *Settlements) Await(id uuid.UUID) (settled <-chan struct{}, stop func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.waiting[id]
	if a == nil {
		a = &awaited{settled: make(chan struct{})}
		s.waiting[id] = a
	}
	a.n++
	return a.settled, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if a.n--; a.n == 0 && s.waiting[id] == a {
			delete(s.waiting, id)
		}
	}
}

// receive wakes the waiters of the document event m is about. The
// payload is read only while someone waits: a process whose clients do
// not confirm pays a callback per event, nothing more.
func (s *Settlements) receive(m *nats.Msg) {
	s.mu.Lock()
	idle := len(s.waiting) == 0
	s.mu.Unlock()
	if idle {
		return
	}
	var e struct {
		Subject string `json:"subject"` // the document id (document.Event.MarshalJSON)
	}
	if json.Unmarshal(m.Data, &e) != nil {
		return
	}
	id, err := uuid.Parse(e.Subject)
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if a := s.waiting[id]; a != nil {
		close(a.settled)
		delete(s.waiting, id)
	}
}
