package apitest

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/docuvault/docuvault/services/sweeper"
	"github.com/docuvault/docuvault/shared/auth"
	"github.com/docuvault/docuvault/shared/events"
)

// TriggerSweep asks for a sweep through POST /api/admin/sweep and returns
// the run's id.
func (s *Stack) TriggerSweep(tb testing.TB) string {
	tb.Helper()
	admin := s.Token(tb, uuid.New(), auth.RoleAdmin)
	r := s.Do(tb, http.MethodPost, "/api/admin/sweep", admin, nil)
	var out struct {
		RunID string `json:"run_id"`
	}
	r.Decode(tb, &out)
	if r.Status != http.StatusAccepted || out.RunID == "" {
		tb.Fatalf("admin sweep: %d %s", r.Status, r.Body)
	}
	return out.RunID
}

// SweepRuns collects the results published on sweeper.run.completed.
type SweepRuns struct {
	mu   sync.Mutex
	done []sweeper.Completed
}

// WatchSweeps collects every sweep's result from the start of the stream.
func (s *Stack) WatchSweeps(tb testing.TB) *SweepRuns {
	tb.Helper()
	nc, js := s.connectNATS(tb)
	tb.Cleanup(nc.Close)
	cons, err := js.OrderedConsumer(context.Background(), events.StreamSweeper, jetstream.OrderedConsumerConfig{FilterSubjects: []string{sweeper.SubjectCompleted}})
	if err != nil {
		tb.Fatal(err)
	}
	w := &SweepRuns{}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		var c sweeper.Completed
		if err := json.Unmarshal(m.Data(), &c); err != nil {
			tb.Errorf("sweep result: %v", err)
			return
		}
		w.mu.Lock()
		w.done = append(w.done, c)
		w.mu.Unlock()
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(cc.Stop)
	return w
}

// All returns the results collected so far.
func (w *SweepRuns) All() []sweeper.Completed {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]sweeper.Completed(nil), w.done...)
}

// Wait returns the result of run id, failing the test after timeout.
func (w *SweepRuns) Wait(tb testing.TB, id string, timeout time.Duration) sweeper.Completed {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		for _, c := range w.All() {
			if c.RunID == id {
				return c
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	tb.Fatalf("sweep %s did not complete within %s", id, timeout)
	return sweeper.Completed{}
}
