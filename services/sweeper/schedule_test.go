package sweeper_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/services/sweeper"
	"github.com/docuvault/docuvault/shared/events"
	"github.com/docuvault/docuvault/shared/testenv"
)

func TestSweepScheduleIsPublishedOnlyWhenMissingOrChanged(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bus, err := events.Open(events.ConnectConfig{URL: testenv.NATS(t).URL}, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Close)
	js := bus.JetStream()
	if err := events.EnsureStreams(ctx, js, events.StreamLimits{}); err != nil {
		t.Fatal(err)
	}
	stream, _ := js.Stream(ctx, events.StreamSweeper)
	lastSeq := func() uint64 {
		m, err := stream.GetLastMsgForSubject(ctx, sweeper.SubjectSchedule)
		if err != nil {
			t.Fatal(err)
		}
		return m.Sequence
	}

	if published, err := sweeper.EnsureSchedule(ctx, bus, time.Second); err != nil || !published {
		t.Fatalf("first publish: %v %v", published, err)
	}
	seq := lastSeq()
	// A restart with the same interval leaves the schedule (and its timer) alone.
	for range 3 {
		if published, err := sweeper.EnsureSchedule(ctx, bus, time.Second); err != nil || published {
			t.Fatalf("republished an unchanged schedule: %v %v", published, err)
		}
	}
	if lastSeq() != seq {
		t.Fatal("schedule message replaced although unchanged")
	}

	// The schedule fires: ticks land on sweeper.tick.
	cons, err := js.OrderedConsumer(ctx, events.StreamSweeper, jetstream.OrderedConsumerConfig{FilterSubjects: []string{sweeper.SubjectTick}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second)); err != nil {
		t.Fatalf("no tick from an @every 1s schedule within 5 s: %v", err)
	}

	if published, err := sweeper.EnsureSchedule(ctx, bus, 2*time.Second); err != nil || !published {
		t.Fatalf("changed interval not published: %v %v", published, err)
	}
	m, _ := stream.GetLastMsgForSubject(ctx, sweeper.SubjectSchedule)
	if got := m.Header.Get("Nats-Schedule"); got != "@every 2s" {
		t.Fatalf("schedule header %q", got)
	}
}
