package events_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/internal/testenv"
	"github.com/docuvault/docuvault/shared/config"
	"github.com/docuvault/docuvault/shared/events"
)

func TestMinMinIOEventsBytes(t *testing.T) {
	t.Parallel()
	if config.MinMinIOEventsBytes != 2*events.LargestNotification {
		t.Fatalf("config.MinMinIOEventsBytes = %d, want twice events.LargestNotification (%d)", config.MinMinIOEventsBytes, events.LargestNotification)
	}
	if config.MinDocumentsBytes != events.MaxDocumentEventBytes {
		t.Fatalf("config.MinDocumentsBytes = %d, want events.MaxDocumentEventBytes (%d)", config.MinDocumentsBytes, events.MaxDocumentEventBytes)
	}
}

// publishNotifications publishes n messages on minio.events.
func publishNotifications(t *testing.T, js jetstream.JetStream, n int) {
	t.Helper()
	for i := range n {
		if _, err := js.Publish(context.Background(), events.SubjectMinIO, fmt.Appendf(nil, `{"n":%d}`, i)); err != nil {
			t.Fatal(err)
		}
	}
}

// take fetches n messages of the confirmers' durable consumer, acks the
// first ack of them (waiting for the server) and returns the stream
// sequences of all n.
func take(t *testing.T, js jetstream.JetStream, n, ack int) []uint64 {
	t.Helper()
	ctx := context.Background()
	cons, err := js.Consumer(ctx, events.StreamMinIO, events.MinIOConsumer)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for len(seqs) < n {
		batch, err := cons.Fetch(n-len(seqs), jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			meta, err := m.Metadata()
			if err != nil {
				t.Fatal(err)
			}
			seqs = append(seqs, meta.Sequence.Stream)
			if len(seqs) <= ack {
				if err := m.DoubleAck(ctx); err != nil {
					t.Fatal(err)
				}
			}
		}
		if got == 0 {
			t.Fatalf("fetched %d of %d messages", len(seqs), n)
		}
	}
	return seqs
}

func streamInfo(t *testing.T, js jetstream.JetStream) *jetstream.StreamInfo {
	t.Helper()
	st, err := js.Stream(context.Background(), events.StreamMinIO)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// TestMinIOEventsHoldsOnlyTheBacklog: a notification published before any
// confirmer ran is kept (the consumer is made with the stream), and one
// acknowledged leaves the stream.
func TestMinIOEventsHoldsOnlyTheBacklog(t *testing.T) {
	t.Parallel()
	_, js := streamsBus(t, events.StreamLimits{})
	publishNotifications(t, js, 5)
	if info := streamInfo(t, js); info.Config.Retention != jetstream.InterestPolicy || info.State.Msgs != 5 {
		t.Fatalf("MINIO_EVENTS: retention %v with %d messages, want interest with the 5 no confirmer took yet", info.Config.Retention, info.State.Msgs)
	}
	take(t, js, 5, 3)
	if info := streamInfo(t, js); info.State.Msgs != 2 {
		t.Fatalf("MINIO_EVENTS holds %d messages after 3 of 5 were acknowledged, want 2", info.State.Msgs)
	}
	// Starting again (another replica, a restart) changes nothing.
	if err := events.EnsureStreams(context.Background(), js, events.StreamLimits{}); err != nil {
		t.Fatal(err)
	}
	if info := streamInfo(t, js); info.State.Msgs != 2 {
		t.Fatalf("MINIO_EVENTS holds %d messages after EnsureStreams again, want 2", info.State.Msgs)
	}
}

// TestMinIOEventsMovesToInterestWithoutLoss starts from MINIO_EVENTS as
// releases before it made a work queue: limits retention, holding every
// notification, acknowledged or not. EnsureStreams moves it in place; what
// the confirmers had acknowledged goes, and every other notification is
// still delivered, in order, once. Without a consumer (a confirmer never
// ran) the move keeps everything.
func TestMinIOEventsMovesToInterestWithoutLoss(t *testing.T) {
	t.Parallel()
	for _, withConsumer := range []bool{true, false} {
		t.Run(fmt.Sprintf("consumer=%v", withConsumer), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			ns := testenv.NATS(t)
			nc, js, err := events.Connect(events.ConnectConfig{URL: ns.URL}, zerolog.Nop())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(nc.Close)
			// The stream as an earlier release made it.
			if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
				Name: events.StreamMinIO, Subjects: []string{events.SubjectMinIO}, Storage: jetstream.FileStorage,
				Retention: jetstream.LimitsPolicy, MaxBytes: 1 << 30, MaxAge: 7 * 24 * time.Hour,
				MaxMsgSize: 1 << 20, Discard: jetstream.DiscardNew, Duplicates: 2 * time.Minute,
			}); err != nil {
				t.Fatal(err)
			}
			acked := 0
			if withConsumer {
				if _, err := js.CreateConsumer(ctx, events.StreamMinIO, jetstream.ConsumerConfig{
					Durable: events.MinIOConsumer, FilterSubject: events.SubjectMinIO,
					AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Second,
				}); err != nil {
					t.Fatal(err)
				}
				publishNotifications(t, js, 10)
				// 6 acknowledged, 2 delivered and not (in flight when the
				// old release stopped), 2 never delivered.
				take(t, js, 8, 6)
				acked = 6
			} else {
				publishNotifications(t, js, 10)
			}
			if info := streamInfo(t, js); info.State.Msgs != 10 {
				t.Fatalf("the old stream holds %d messages, want all 10", info.State.Msgs)
			}

			if err := events.EnsureStreams(ctx, js, events.StreamLimits{}); err != nil {
				t.Fatal(err)
			}
			info := streamInfo(t, js)
			t.Logf("moved: retention %v, %d messages held (first %d), max message %d bytes", info.Config.Retention, info.State.Msgs, info.State.FirstSeq, info.Config.MaxMsgSize)
			if info.Config.Retention != jetstream.InterestPolicy || int(info.State.Msgs) != 10-acked {
				t.Fatalf("after the move: retention %v holding %d, want interest holding the %d not acknowledged", info.Config.Retention, info.State.Msgs, 10-acked)
			}
			if info.Config.MaxMsgSize < events.MaxNotificationBytes {
				t.Fatalf("MaxMsgSize %d, want at least %d", info.Config.MaxMsgSize, events.MaxNotificationBytes)
			}
			// The in-flight ones come back after their AckWait.
			seqs := take(t, js, 10-acked, 10-acked)
			if !onceEach(seqs, acked) {
				t.Fatalf("delivered sequences %v, want %d..10 once each", seqs, acked+1)
			}
			if info := streamInfo(t, js); info.State.Msgs != 0 {
				t.Fatalf("MINIO_EVENTS holds %d messages after all were acknowledged, want 0", info.State.Msgs)
			}
		})
	}
}

// onceEach reports whether seqs holds exactly the sequences acked+1..10,
// in whatever order (a redelivery after AckWait may come after newer
// messages).
func onceEach(seqs []uint64, acked int) bool {
	seen := map[uint64]bool{}
	for _, s := range seqs {
		if s <= uint64(acked) || s > 10 || seen[s] {
			return false
		}
		seen[s] = true
	}
	return len(seen) == 10-acked
}

// TestMessageFailedForTheLastTimeLeavesTheQueue: a notification whose
// handling failed MaxDeliver times is terminated, so MINIO_EVENTS lets it
// go instead of keeping it until MaxAge, where a long outage's worth would
// fill the backlog and refuse new notifications. Bus.Backlog (the gauge
// docuvault_notifications_waiting) counts what waits.
func TestMessageFailedForTheLastTimeLeavesTheQueue(t *testing.T) {
	t.Parallel()
	ns := testenv.NATS(t)
	bus := openBus(t, ns.URL)
	_, js, err := events.Connect(events.ConnectConfig{URL: ns.URL}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := events.EnsureStreams(context.Background(), js, events.StreamLimits{}); err != nil {
		t.Fatal(err)
	}
	// The consumer with 2 deliveries, as setup would make it.
	durable := events.Durable{
		Stream: events.StreamMinIO, Name: events.MinIOConsumer, Subjects: []string{events.SubjectMinIO},
		AckWait: 5 * time.Second, MaxDeliver: 2, Backoff: []time.Duration{100 * time.Millisecond},
	}
	if _, err := js.UpdateConsumer(context.Background(), events.StreamMinIO, jetstream.ConsumerConfig{
		Durable: durable.Name, FilterSubject: durable.Subjects[0], AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: durable.AckWait, MaxDeliver: durable.MaxDeliver, BackOff: durable.Backoff,
	}); err != nil {
		t.Fatal(err)
	}
	publishNotifications(t, js, 3)
	if msgs, bytes, err := bus.Backlog(context.Background()); err != nil || msgs != 3 || bytes == 0 {
		t.Fatalf("Backlog = %d messages, %d bytes, %v; want the 3 published", msgs, bytes, err)
	}
	var tries atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- bus.Consume(zerolog.Nop().WithContext(ctx), events.Consumer{Durable: durable}, func(context.Context, events.Message) events.Outcome {
			tries.Add(1)
			return events.Retry(errors.New("PostgreSQL away"))
		})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for streamInfo(t, js).State.Msgs > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("MINIO_EVENTS holds %d messages after %d failed tries, want 0", streamInfo(t, js).State.Msgs, tries.Load())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := tries.Load(); n != 6 {
		t.Fatalf("%d tries of 3 messages, want 2 each", n)
	}
	if msgs, bytes, err := bus.Backlog(context.Background()); err != nil || msgs != 0 || bytes != 0 {
		t.Fatalf("Backlog = %d messages, %d bytes, %v at the end; want none", msgs, bytes, err)
	}
}
