package events_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/internal/testenv"
	"github.com/docuvault/docuvault/shared/events"
)

// TestLongHandlerKeepsItsMessageUnderBackoff: a consumer with a back-off
// has, on the server, Backoff[0] as its AckWait (JetStream's rule), not the
// AckWait it was made with; the loop's in-progress reports must come
// within that, or a handler running longer than Backoff[0] sees its message
// delivered again while it still works on it.
func TestLongHandlerKeepsItsMessageUnderBackoff(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ns := testenv.NATS(t)
	bus := openBus(t, ns.URL)
	js := bus.JetStream()
	if err := events.EnsureStreams(ctx, js, events.StreamLimits{}); err != nil {
		t.Fatal(err)
	}
	d := events.Durable{
		Stream: events.StreamDocuments, Name: "long-handler", Subjects: []string{"document.>"},
		AckWait: 30 * time.Second, MaxDeliver: 5, Backoff: []time.Duration{500 * time.Millisecond, time.Second},
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, d.Stream, jetstream.ConsumerConfig{
		Durable: d.Name, FilterSubject: d.Subjects[0], AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: d.AckWait, MaxDeliver: d.MaxDeliver, BackOff: d.Backoff,
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := cons.CachedInfo().Config.AckWait; got != d.Backoff[0] {
		t.Fatalf("the server's AckWait is %s, want Backoff[0] %s (has JetStream's rule changed?)", got, d.Backoff[0])
	}
	if _, err := js.Publish(ctx, "document.uploaded.someone", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	var deliveries atomic.Int64
	done := make(chan struct{}, 4)
	runCtx, stop := context.WithCancel(ctx)
	ended := make(chan error, 1)
	go func() {
		ended <- bus.Consume(zerolog.Nop().WithContext(runCtx), events.Consumer{Durable: d, Workers: 2},
			func(context.Context, events.Message) events.Outcome {
				deliveries.Add(1)
				time.Sleep(2 * time.Second) // four times Backoff[0]
				done <- struct{}{}
				return events.Ack()
			})
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the handler never finished")
	}
	time.Sleep(time.Second) // a redelivery would show by now
	stop()
	if err := <-ended; err != nil {
		t.Fatal(err)
	}
	if n := deliveries.Load(); n != 1 {
		t.Fatalf("the message was delivered %d times while its handler ran, want once", n)
	}
}
