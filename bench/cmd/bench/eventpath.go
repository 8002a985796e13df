package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/docuvault/docuvault/shared/events"
)

// evRun is one run of workload 4.
type evRun struct {
	lat     []time.Duration // sorted
	missing int             // events not received within the wait
}

// eventPath runs workload 4: one client uploads (upload-url, PUT, no
// confirm) one file after another; a JetStream ordered consumer on
// DOCUMENTS (document.uploaded.>) notes when each document.uploaded
// arrives. The latency is from the PUT's 200 to the event's arrival; the
// next upload starts once the event is in, so uploads never queue behind
// each other.
func eventPath(ctx context.Context, s *stack, p plan) ([]evRun, error) {
	var (
		mu      sync.Mutex
		arrived = map[uuid.UUID]time.Time{}
		waiters = map[uuid.UUID]chan struct{}{}
	)
	cons, err := s.h.JS.OrderedConsumer(ctx, events.StreamDocuments, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{"document.uploaded.>"},
		DeliverPolicy:  jetstream.DeliverNewPolicy,
	})
	if err != nil {
		return nil, err
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		now := time.Now()
		var e struct {
			Data struct {
				DocumentID uuid.UUID `json:"document_id"`
			} `json:"data"`
		}
		if json.Unmarshal(msg.Data(), &e) != nil {
			return
		}
		mu.Lock()
		if _, seen := arrived[e.Data.DocumentID]; !seen {
			arrived[e.Data.DocumentID] = now
			if ch, ok := waiters[e.Data.DocumentID]; ok {
				close(ch)
			}
		}
		mu.Unlock()
	})
	if err != nil {
		return nil, err
	}
	defer cc.Stop()

	data := payload(1024)
	token := s.tokens[0]
	var out []evRun
	for rep := range p.evReps {
		var r evRun
		for range p.evUploads {
			t, err := s.uploadURL(ctx, token, len(data))
			if err != nil {
				return out, err
			}
			ch := make(chan struct{})
			mu.Lock()
			waiters[t.DocumentID] = ch
			mu.Unlock()
			if err := s.put(ctx, t.UploadURL, t.Headers, data); err != nil {
				return out, err
			}
			putDone := time.Now()
			select {
			case <-ch:
				mu.Lock()
				r.lat = append(r.lat, arrived[t.DocumentID].Sub(putDone))
				mu.Unlock()
			case <-time.After(10 * time.Second):
				r.missing++
			case <-ctx.Done():
				return out, ctx.Err()
			}
			mu.Lock()
			delete(waiters, t.DocumentID)
			mu.Unlock()
		}
		slices.Sort(r.lat)
		out = append(out, r)
		logf("  rep %d: %d uploads, p50 %.2f ms  p90 %.2f ms  p99 %.2f ms  max %.2f ms  missing %d", rep+1, len(r.lat),
			ms(pct(r.lat, .5)), ms(pct(r.lat, .9)), ms(pct(r.lat, .99)), ms(pct(r.lat, 1)), r.missing)
		if r.missing > 0 {
			return out, fmt.Errorf("%d document.uploaded events did not arrive within 10 s", r.missing)
		}
	}
	return out, s.wipeDocuments(ctx)
}
