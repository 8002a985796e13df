package events_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/internal/testenv"
	"github.com/docuvault/docuvault/shared/events"
)

// TestRolesNeedSetup: before `docuvault setup` ran, a role finds neither
// its consumer, nor its streams, nor the sweep schedule, and says to run
// setup; it creates none of them.
func TestRolesNeedSetup(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bus := openBus(t, testenv.NATS(t).URL)
	wantNotSetUp := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, events.ErrNotSetUp) || !strings.Contains(err.Error(), "run docuvault setup") {
			t.Errorf("%s before setup: %v, want an error saying to run docuvault setup", what, err)
		}
	}
	for _, d := range events.Durables() {
		err := bus.Consume(ctx, events.Consumer{Durable: d}, func(context.Context, events.Message) events.Outcome { return events.Ack() })
		wantNotSetUp("consume "+d.Name, err)
	}
	_, err := bus.SweepSchedule(ctx)
	wantNotSetUp("the sweep schedule", err)
	wantNotSetUp("the streams", bus.CheckStreams(ctx, events.StreamDocuments, events.StreamSweeper))
	if names := bus.JetStream().StreamNames(ctx); names.Err() == nil {
		for name := range names.Name() {
			t.Errorf("stream %s exists: a role made it", name)
		}
	}

	// With the streams only, the consumers and the schedule still miss.
	if err := events.EnsureStreams(ctx, bus.JetStream(), events.StreamLimits{}); err != nil {
		t.Fatal(err)
	}
	if err := bus.CheckStreams(ctx, events.StreamMinIO, events.StreamDocuments, events.StreamSweeper); err != nil {
		t.Errorf("CheckStreams after the streams were made: %v", err)
	}
	err = bus.Consume(ctx, events.Consumer{Durable: events.ClassifierConsumer}, func(context.Context, events.Message) events.Outcome { return events.Ack() })
	wantNotSetUp("consume "+events.ClassifierConsumerName, err)
	_, err = bus.SweepSchedule(ctx)
	wantNotSetUp("the sweep schedule", err)
}

// TestSetupMakesTheConsumersAndTheSchedule: Setup makes every durable with
// the settings written in Durables, and the sweeper's schedule, which it
// publishes again only when its interval changed (publishing restarts its
// timer, and a setup run in a loop must not postpone the sweeps for ever).
func TestSetupMakesTheConsumersAndTheSchedule(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bus := openBus(t, testenv.NATS(t).URL)
	js := bus.JetStream()
	if err := events.Setup(ctx, js, events.StreamLimits{}, 0); err == nil {
		t.Error("Setup with a zero sweep interval succeeded")
	}
	if err := events.Setup(ctx, js, events.StreamLimits{}, time.Second); err != nil {
		t.Fatal(err)
	}
	for _, d := range events.Durables() {
		cons, err := js.Consumer(ctx, d.Stream, d.Name)
		if err != nil {
			t.Fatalf("consumer %s on %s: %v", d.Name, d.Stream, err)
		}
		c := cons.CachedInfo().Config
		ackWait := d.AckWait
		if len(d.Backoff) > 0 {
			ackWait = d.Backoff[0] // the server's rule
		}
		if filters := append(c.FilterSubjects, c.FilterSubject); !slices.Equal(slices.DeleteFunc(filters, func(s string) bool { return s == "" }), d.Subjects) || c.AckWait != ackWait || c.MaxDeliver != d.MaxDeliver ||
			!slices.Equal(c.BackOff, d.Backoff) || c.MaxAckPending != d.MaxAckPending || c.AckPolicy != jetstream.AckExplicitPolicy {
			t.Errorf("consumer %s: %+v, want %+v", d.Name, c, d)
		}
	}
	if err := bus.CheckStreams(ctx, events.StreamMinIO, events.StreamDocuments, events.StreamSweeper); err != nil {
		t.Error(err)
	}

	stream, err := js.Stream(ctx, events.StreamSweeper)
	if err != nil {
		t.Fatal(err)
	}
	lastSeq := func() uint64 {
		t.Helper()
		m, err := stream.GetLastMsgForSubject(ctx, events.SubjectSweepSchedule)
		if err != nil {
			t.Fatal(err)
		}
		return m.Sequence
	}
	seq := lastSeq()
	if every, err := bus.SweepSchedule(ctx); err != nil || every != time.Second {
		t.Fatalf("SweepSchedule = %v, %v; want 1s", every, err)
	}
	// Setup again with the same interval leaves the schedule (and its
	// timer) alone.
	for range 3 {
		if err := events.Setup(ctx, js, events.StreamLimits{}, time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if lastSeq() != seq {
		t.Fatal("schedule message replaced although unchanged")
	}
	// The schedule fires: ticks land on sweeper.tick.
	ticks, err := js.OrderedConsumer(ctx, events.StreamSweeper, jetstream.OrderedConsumerConfig{FilterSubjects: []string{events.SubjectSweepTick}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ticks.Next(jetstream.FetchMaxWait(5 * time.Second)); err != nil {
		t.Fatalf("no tick from an @every 1s schedule within 5 s: %v", err)
	}
	// A changed interval is published.
	if err := events.Setup(ctx, js, events.StreamLimits{}, 2*time.Second); err != nil {
		t.Fatal(err)
	}
	if lastSeq() == seq {
		t.Fatal("changed interval not published")
	}
	if every, err := bus.SweepSchedule(ctx); err != nil || every != 2*time.Second {
		t.Fatalf("SweepSchedule = %v, %v; want 2s", every, err)
	}
}

// openBus opens a bus on the server at url for the test, closed when it
// ends.
func openBus(t *testing.T, url string) *events.Bus {
	t.Helper()
	bus, err := events.Open(events.ConnectConfig{URL: url}, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Close)
	return bus
}

// streamsBus starts a NATS server for the test with DocuVault's streams, of
// limits l, and returns a bus on it and the bus's JetStream client.
func streamsBus(t *testing.T, l events.StreamLimits) (*events.Bus, jetstream.JetStream) {
	t.Helper()
	bus := openBus(t, testenv.NATS(t).URL)
	if err := events.EnsureStreams(context.Background(), bus.JetStream(), l); err != nil {
		t.Fatal(err)
	}
	return bus, bus.JetStream()
}
