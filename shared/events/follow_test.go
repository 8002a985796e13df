package events_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/docuvault/docuvault/shared/document"
	"github.com/docuvault/docuvault/shared/events"
)

// publishEvent stores a document.uploaded event of user's with data and
// returns its stream sequence.
func publishEvent(t *testing.T, js jetstream.JetStream, user uuid.UUID, data string) uint64 {
	t.Helper()
	ack, err := js.Publish(context.Background(), "document.uploaded."+user.String(), []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

func follow(t *testing.T, bus *events.Bus, user uuid.UUID, after uint64, notBefore time.Time) document.Follow {
	t.Helper()
	f, err := bus.FollowUser(context.Background(), user, after, notBefore)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Stop)
	return f
}

// lastSeq is DOCUMENTS' last sequence.
func lastSeq(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), events.StreamDocuments)
	if err != nil {
		t.Fatal(err)
	}
	return s.CachedInfo().State.LastSeq
}

func nextEvent(t *testing.T, f document.Follow) document.LiveEvent {
	t.Helper()
	select {
	case e := <-f.Events:
		return e
	case <-time.After(5 * time.Second):
		t.Fatal("no event within 5 s")
	}
	return document.LiveEvent{}
}

func noEvent(t *testing.T, f document.Follow) {
	t.Helper()
	select {
	case e := <-f.Events:
		t.Fatalf("unexpected event %d %s", e.Seq, e.Data)
	case <-time.After(300 * time.Millisecond):
	}
}

// TestFollowUserResumesOnlyWithinTheWindow: a resume after an event stored
// since notBefore replays what followed; after an older one, or one the
// stream does not hold, the follow starts from the stream's end and says
// so (Reset), replaying nothing; after the stream's last event, however
// old, nothing was missed and there is no reset.
func TestFollowUserResumesOnlyWithinTheWindow(t *testing.T) {
	t.Parallel()
	bus, js := streamsBus(t, events.StreamLimits{})
	user, other := uuid.New(), uuid.New()
	first := publishEvent(t, js, user, `{"n":1}`)
	second := publishEvent(t, js, user, `{"n":2}`)
	last := publishEvent(t, js, other, `{"n":3}`) // the stream's end is another user's event
	past, future := time.Now().Add(-time.Hour), time.Now().Add(time.Hour)

	t.Run("within the window", func(t *testing.T) {
		f := follow(t, bus, user, first, past)
		if f.Reset {
			t.Fatal("reset, want a resume")
		}
		if e := nextEvent(t, f); e.Seq != second || string(e.Data) != `{"n":2}` {
			t.Fatalf("replayed %d %s, want %d", e.Seq, e.Data, second)
		}
	})
	for name, after := range map[string]uint64{"older than the window": first, "not held": last + 1000} {
		t.Run(name, func(t *testing.T) {
			notBefore := future // every stored event is older
			if after > last {
				notBefore = past
			}
			end := lastSeq(t, js)
			f := follow(t, bus, user, after, notBefore)
			if !f.Reset || f.Seq != end {
				t.Fatalf("Reset %v Seq %d, want a reset at the stream's last sequence %d", f.Reset, f.Seq, end)
			}
			noEvent(t, f) // the second event is not replayed
			n := publishEvent(t, js, user, `{"n":4}`)
			if e := nextEvent(t, f); e.Seq != n {
				t.Fatalf("event %d after the reset, want the new one %d", e.Seq, n)
			}
		})
	}
	t.Run("nothing since", func(t *testing.T) {
		f := follow(t, bus, user, lastSeq(t, js), future)
		if f.Reset {
			t.Fatal("reset after the stream's last event: nothing was missed")
		}
		n := publishEvent(t, js, user, `{"n":5}`)
		if e := nextEvent(t, f); e.Seq != n {
			t.Fatalf("event %d, want %d", e.Seq, n)
		}
	})
}

// TestFollowUserHoldsBoundedBytes follows a user who never reads while 4
// MiB of their events wait: the follow's consumer is sent at most
// FollowBufferBytes of them (three of these events would pass it; the
// client's default pull would take 500 events, all of them here), and once
// read they all arrive in order without a stall, the largest event
// DOCUMENTS takes included.
func TestFollowUserHoldsBoundedBytes(t *testing.T) {
	t.Parallel()
	bus, js := streamsBus(t, events.StreamLimits{})
	user := uuid.New()
	const n, size = 100, 40 << 10
	pad := strings.Repeat("x", size)
	for i := range n {
		if _, err := js.PublishAsync("document.uploaded."+user.String(), fmt.Appendf(nil, `{"i":%d,"pad":"%s"}`, i, pad)); err != nil {
			t.Fatal(err)
		}
	}
	biggest := strings.Repeat("y", 64<<10-200) // DOCUMENTS' largest event, headers aside
	if _, err := js.PublishAsync("document.uploaded."+user.String(), []byte(biggest)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		t.Fatal("events not stored within 30 s")
	}
	f := follow(t, bus, user, 1, time.Now().Add(-time.Hour))
	if f.Reset {
		t.Fatal("reset")
	}

	time.Sleep(time.Second) // time to pull all it would
	stream, err := js.Stream(context.Background(), events.StreamDocuments)
	if err != nil {
		t.Fatal(err)
	}
	var delivered uint64
	for c := range stream.ListConsumers(context.Background()).Info() {
		delivered += c.Delivered.Consumer // the follow's ordered consumer is the only one
	}
	if held := delivered * size; delivered == 0 || held > events.FollowBufferBytes {
		t.Fatalf("the server sent %d events (%d KiB) to a follow nobody reads; at most %d KiB may wait", delivered, held>>10, events.FollowBufferBytes>>10)
	}
	t.Logf("a follow nobody reads was sent %d of %d events (%d KiB, bound %d KiB)", delivered, n+1, delivered*size>>10, events.FollowBufferBytes>>10)

	// Under a loaded CI machine the first pull after a stall can take a
	// while; a stuck follow would still fail here (and says where the
	// consumer stood).
	first := func() document.LiveEvent {
		select {
		case e := <-f.Events:
			return e
		case <-time.After(20 * time.Second):
			for c := range stream.ListConsumers(context.Background()).Info() {
				t.Logf("consumer %s: delivered %d (stream %d), ack floor %d, pending %d, waiting pulls %d",
					c.Name, c.Delivered.Consumer, c.Delivered.Stream, c.AckFloor.Stream, c.NumPending, c.NumWaiting)
			}
			t.Fatal("no event within 20 s of reading again")
		}
		return document.LiveEvent{}
	}
	if e := first(); e.Seq != 2 {
		t.Fatalf("first event has sequence %d, want 2", e.Seq)
	}
	for i := 1; i < n-1; i++ { // the first is at sequence 1, resumed after
		if e := nextEvent(t, f); e.Seq != uint64(i+2) {
			t.Fatalf("event %d has sequence %d, want %d", i, e.Seq, i+2)
		}
	}
	if e := nextEvent(t, f); string(e.Data) != biggest {
		t.Fatalf("the largest event did not arrive whole: %d bytes", len(e.Data))
	}
}

// TestFollowUserOutlivesItsConsumer: when the server loses a follow's
// consumer (deleted here, as a restart of a node without it would), the
// follow makes it again after the last event it handed on: the events
// published meanwhile arrive, in order, none twice; and once stopped, the
// follow leaves no consumer behind.
func TestFollowUserOutlivesItsConsumer(t *testing.T) {
	t.Parallel()
	bus, js := streamsBus(t, events.StreamLimits{})
	user := uuid.New()
	f, err := bus.FollowUser(context.Background(), user, 0, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	first := publishEvent(t, js, user, `{"n":1}`)
	if e := nextEvent(t, f); e.Seq != first {
		t.Fatalf("event %d, want %d", e.Seq, first)
	}
	consumers := func() []string {
		var names []string
		for name := range mustStream(t, js).ListConsumers(context.Background()).Info() {
			names = append(names, name.Name)
		}
		return names
	}
	names := consumers()
	if len(names) != 1 {
		t.Fatalf("consumers %v, want the follow's one", names)
	}
	if err := js.DeleteConsumer(context.Background(), events.StreamDocuments, names[0]); err != nil {
		t.Fatal(err)
	}
	second := publishEvent(t, js, user, `{"n":2}`)
	third := publishEvent(t, js, user, `{"n":3}`)
	for _, want := range []uint64{second, third} {
		if e := nextEvent(t, f); e.Seq != want {
			t.Fatalf("event %d after the consumer was lost, want %d", e.Seq, want)
		}
	}
	noEvent(t, f)

	f.Stop()
	deadline := time.Now().Add(10 * time.Second)
	for len(consumers()) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("consumers %v left after the follow stopped", consumers())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func mustStream(t *testing.T, js jetstream.JetStream) jetstream.Stream {
	t.Helper()
	s, err := js.Stream(context.Background(), events.StreamDocuments)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
