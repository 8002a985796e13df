package events_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/internal/testenv"
	"github.com/docuvault/docuvault/shared/document"
	"github.com/docuvault/docuvault/shared/events"
)

// On a three-node cluster, the streams get the configured replica count,
// streams created earlier with one replica are moved to three in place (their
// messages kept), the durable consumers follow their stream, and applying
// the same count again changes nothing. Then the node leading DOCUMENTS
// stops, and the stream goes on.
func TestStreamsAreReplicatedAsConfiguredAndOutliveTheirLeader(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	nodes, urls := testenv.NATSCluster(t, 3)
	nc, js, err := events.Connect(events.ConnectConfig{URL: urls, Name: "cluster-test"}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)

	// As a release without NATS_STREAM_REPLICAS left them: one replica.
	if err := events.EnsureStreams(ctx, js, events.StreamLimits{}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "document.uploaded.someone", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateOrUpdateConsumer(ctx, events.StreamDocuments, jetstream.ConsumerConfig{
		Durable: "cluster-test", AckPolicy: jetstream.AckExplicitPolicy,
	}); err != nil {
		t.Fatal(err)
	}
	replicas := func(stream string) (int, int) {
		t.Helper()
		s, err := js.Stream(ctx, stream)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		peers := 0
		if info.Cluster != nil {
			peers = len(info.Cluster.Replicas) + 1 // the others and the leader
		}
		return info.Config.Replicas, peers
	}
	for _, name := range []string{events.StreamMinIO, events.StreamDocuments, events.StreamSweeper} {
		if n, _ := replicas(name); n != 1 {
			t.Fatalf("%s has %d replicas before, want 1", name, n)
		}
	}

	for range 2 { // the second time changes nothing
		if err := events.EnsureStreams(ctx, js, events.StreamLimits{Replicas: 3}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{events.StreamMinIO, events.StreamDocuments, events.StreamSweeper} {
		deadline := time.Now().Add(30 * time.Second)
		for {
			n, peers := replicas(name)
			if n == 3 && peers == 3 {
				t.Logf("%s: %d replicas, %d peers", name, n, peers)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d replicas configured, %d peers, want 3 and 3", name, n, peers)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	s, err := js.Stream(ctx, events.StreamDocuments)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil || info.State.Msgs != 1 {
		t.Fatalf("DOCUMENTS holds %v messages (%v), want the 1 published before the move", info.State.Msgs, err)
	}
	cons, err := s.Consumer(ctx, "cluster-test")
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		ci, err := cons.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		peers := 0
		if ci.Cluster != nil {
			peers = len(ci.Cluster.Replicas) + 1
		}
		if peers == 3 {
			t.Logf("consumer: %d peers", peers)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the durable consumer has %d peers after the stream moved to 3, want 3", peers)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Losing the node that leads DOCUMENTS loses nothing: the client
	// reconnects to another node, a new leader takes over, and the stream
	// takes and keeps events.
	info, err = s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	leader := info.Cluster.Leader
	stopped := false
	for _, node := range nodes {
		if srv := node.Server(); srv != nil && srv.Name() == leader {
			node.Stop()
			stopped = true
		}
	}
	if !stopped {
		t.Fatalf("no node is named %q, the leader of DOCUMENTS", leader)
	}
	start := time.Now()
	for {
		pubCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := js.Publish(pubCtx, "document.uploaded.someone", []byte(`{}`))
		cancel()
		if err == nil {
			break
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("no publish to DOCUMENTS for 30 s after its leader %s stopped: %v", leader, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("DOCUMENTS took a publish %v after its leader %s stopped", time.Since(start).Round(time.Millisecond), leader)
	info, err = s.Info(ctx)
	if err != nil || info.State.Msgs != 2 || info.Cluster.Leader == leader {
		t.Fatalf("after losing its leader DOCUMENTS holds %v messages, led by %q (%v); want 2, led by another node", info.State.Msgs, info.Cluster.Leader, err)
	}
}

// Readiness tells a cluster without quorum from a dropped connection: with
// two of three nodes gone, the process is still connected (to the third),
// but its streams have no leader, and Ping names them; once a node is
// back, the quorum is, and Ping passes again.
func TestPingNamesTheStreamsWithoutQuorum(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	nodes, _ := testenv.NATSCluster(t, 3)
	bus, err := events.Open(events.ConnectConfig{URL: nodes[0].URL, Name: "ping-test"}, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Close)
	placeStreams(t, ctx, bus.JetStream())
	ping := func() error {
		pingCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		return bus.Ping(pingCtx)
	}
	waitPing := func(within time.Duration, want func(error) bool, what string) error {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			err := ping()
			if want(err) {
				return err
			}
			if time.Now().After(deadline) {
				t.Fatalf("after %v, Ping answers %v; want %s", within, err, what)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitPing(30*time.Second, func(err error) bool { return err == nil }, "nil with the cluster whole")

	nodes[1].Stop()
	nodes[2].Stop()
	// (A stream leader on the remaining node steps down once it misses
	// its followers, within seconds: until then that stream still answers.)
	err = waitPing(30*time.Second, func(err error) bool {
		for _, name := range []string{events.StreamMinIO, events.StreamDocuments, events.StreamSweeper} {
			if err == nil || !strings.Contains(document.ErrorMessage(err), name) {
				return false
			}
		}
		return document.ErrorCode(err) == document.Unavailable
	}, "an error naming the three streams with two nodes gone")
	t.Logf("without quorum: %s", document.ErrorMessage(err))

	nodes[1].Restart(t)
	// Each stream elects a leader again once the node is back, the three
	// groups one after another on a loaded machine: a CI run saw SWEEPER's
	// take more than 30 s (random election timeouts, after missed rounds).
	waitPing(75*time.Second, func(err error) bool { return err == nil }, "nil once a quorum is back")
}

// leaderLoss is a durable consumer (MaxAckPending 1, as the sweeper's) on a
// three-node cluster, and a replica consuming it through the node stays,
// which never hears of the loss of lead, the consumer's leader. back is the
// third node, which loseLeader stops with lead and restarts, so that the
// consumer has no leader for a while.
type leaderLoss struct {
	js                jetstream.JetStream
	consumer          events.Consumer
	leader            string
	lead, back, stays *testenv.NATSServer
	bus               *events.Bus
}

func newLeaderLoss(t *testing.T, ctx context.Context) *leaderLoss {
	t.Helper()
	nodes, urls := testenv.NATSCluster(t, 3)
	nc, js, err := events.Connect(events.ConnectConfig{URL: urls, Name: "cluster-test"}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	placeStreams(t, ctx, js)
	l := &leaderLoss{js: js, consumer: events.Consumer{Durable: events.Durable{
		Stream: events.StreamDocuments, Name: "leader-test", Subjects: []string{"document.>"},
		AckWait: time.Minute, MaxDeliver: 3, MaxAckPending: 1,
	}, Workers: 1}}
	c := l.consumer
	// As setup makes a consumer: the replica only binds to it.
	cons, err := js.CreateOrUpdateConsumer(ctx, c.Stream, jetstream.ConsumerConfig{
		Durable: c.Name, FilterSubject: c.Subjects[0], AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: c.AckWait, MaxDeliver: c.MaxDeliver, MaxAckPending: c.MaxAckPending,
	})
	if err != nil {
		t.Fatal(err)
	}
	l.leader = cons.CachedInfo().Cluster.Leader
	for _, n := range nodes {
		switch {
		case n.Name() == l.leader:
			l.lead = n
		case l.stays == nil:
			l.stays = n
		default:
			l.back = n
		}
	}
	if l.lead == nil || l.back == nil {
		t.Fatalf("no node is named %q, the consumer's leader", l.leader)
	}
	l.bus, err = events.Open(events.ConnectConfig{URL: l.stays.URL, Name: "replica"}, zerolog.New(zerolog.NewTestWriter(t)), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.bus.Close)
	return l
}

// placeStreams makes the streams with three replicas. A cluster just
// started may not yet see every peer online, and refuses to place a
// replicated stream until it does ("no suitable peers for placement").
func placeStreams(t *testing.T, ctx context.Context, js jetstream.JetStream) {
	t.Helper()
	for {
		err := events.EnsureStreams(ctx, js, events.StreamLimits{Replicas: 3})
		if err == nil {
			return
		}
		if ctx.Err() != nil || !strings.Contains(err.Error(), "no suitable peers") {
			t.Fatal(err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// consume runs the replica with h until the test ends.
func (l *leaderLoss) consume(t *testing.T, ctx context.Context, h events.Handler) {
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- l.bus.Consume(runCtx, l.consumer, h) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
}

// loseLeader stops back and lead, so that the consumer has no leader, and
// brings back back after a moment, so that it gets a new one; it returns
// when it stopped them.
func (l *leaderLoss) loseLeader(t *testing.T, meanwhile func()) time.Time {
	t.Helper()
	l.back.Stop()
	l.lead.Stop()
	lost := time.Now()
	meanwhile()
	time.Sleep(500 * time.Millisecond)
	l.back.Restart(t)
	return lost
}

// publish publishes body, retrying while the stream has no leader.
func (l *leaderLoss) publish(t *testing.T, ctx context.Context, body string) {
	t.Helper()
	for {
		pubCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := l.js.Publish(pubCtx, "document.uploaded.someone", []byte(body))
		cancel()
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("publish %s: %v", body, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// leaderLossWithin bounds how long the test waits: a new leader takes up
// to about 10 s (raft election timeouts); a lost ack would hold the message
// for AckWait (60 s).
const leaderLossWithin = 25 * time.Second

// A replica keeps consuming when its consumer loses its leader while a
// message is in hand and no new leader is elected for a few seconds. The
// ack it sends meanwhile is tried again until a leader answers; without
// that the message would be held until AckWait (60 s), and with
// MaxAckPending 1 nothing else would come.
func TestAckOutlivesTheLossOfTheConsumerLeader(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	l := newLeaderLoss(t, ctx)
	inHand, release := make(chan struct{}), make(chan struct{})
	acked := make(chan struct{})
	second := make(chan events.Message, 1)
	l.consume(t, ctx, func(_ context.Context, m events.Message) events.Outcome {
		if string(m.Data) == "second" {
			second <- m
			return events.Ack()
		}
		close(inHand)
		<-release
		return events.AckThen(func(context.Context) { close(acked) })
	})
	l.publish(t, ctx, "first")
	select {
	case <-inHand:
	case <-ctx.Done():
		t.Fatal("the first message never came")
	}
	l.publish(t, ctx, "second")
	lost := l.loseLeader(t, func() { close(release) }) // acked while the consumer has no leader

	select {
	case <-acked:
		t.Logf("ack confirmed %s after the consumer's leader was lost", time.Since(lost).Round(time.Millisecond))
	case <-time.After(leaderLossWithin - time.Since(lost)):
		t.Fatalf("the first message's ack was not confirmed %s after the consumer's leader %s was lost", leaderLossWithin, l.leader)
	}
	select {
	case m := <-second:
		if m.Delivered != 1 {
			t.Errorf("the second message came %d times", m.Delivered)
		}
	case <-time.After(leaderLossWithin - time.Since(lost)):
		t.Fatalf("the second message was not delivered %s after the consumer's leader %s was lost", leaderLossWithin, l.leader)
	}
}
