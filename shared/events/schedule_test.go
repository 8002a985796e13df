package events_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/docuvault/docuvault/shared/events"
)

func TestSweepScheduleIsPublishedOnlyWhenMissingOrChanged(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	js := jetStream(t)
	stream, _ := js.Stream(ctx, events.StreamSweeper)
	lastSeq := func() uint64 {
		m, err := stream.GetLastMsgForSubject(ctx, events.SubjectSweepSchedule)
		if err != nil {
			t.Fatal(err)
		}
		return m.Sequence
	}

	if published, err := events.EnsureSweepSchedule(ctx, js, time.Second); err != nil || !published {
		t.Fatalf("first publish: %v %v", published, err)
	}
	seq := lastSeq()
	// A restart with the same interval leaves the schedule (and its timer) alone.
	for range 3 {
		if published, err := events.EnsureSweepSchedule(ctx, js, time.Second); err != nil || published {
			t.Fatalf("republished an unchanged schedule: %v %v", published, err)
		}
	}
	if lastSeq() != seq {
		t.Fatal("schedule message replaced although unchanged")
	}

	// The schedule fires: ticks land on sweeper.tick.
	cons, err := js.OrderedConsumer(ctx, events.StreamSweeper, jetstream.OrderedConsumerConfig{FilterSubjects: []string{events.SubjectSweepTick}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second)); err != nil {
		t.Fatalf("no tick from an @every 1s schedule within 5 s: %v", err)
	}

	if published, err := events.EnsureSweepSchedule(ctx, js, 2*time.Second); err != nil || !published {
		t.Fatalf("changed interval not published: %v %v", published, err)
	}
	m, _ := stream.GetLastMsgForSubject(ctx, events.SubjectSweepSchedule)
	if got := m.Header.Get("Nats-Schedule"); got != "@every 2s" {
		t.Fatalf("schedule header %q", got)
	}
}
