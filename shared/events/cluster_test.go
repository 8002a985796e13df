package events_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/shared/document"
	"github.com/docuvault/docuvault/shared/events"
	"github.com/docuvault/docuvault/shared/testenv"
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
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	nodes, _ := testenv.NATSCluster(t, 3)
	bus, err := events.Open(events.ConnectConfig{URL: nodes[0].URL, Name: "ping-test"}, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Close)
	if err := events.EnsureStreams(ctx, bus.JetStream(), events.StreamLimits{Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	ping := func() error {
		pingCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		return bus.Ping(pingCtx)
	}
	waitPing := func(want func(error) bool, what string) error {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			err := ping()
			if want(err) {
				return err
			}
			if time.Now().After(deadline) {
				t.Fatalf("after 30 s, Ping answers %v; want %s", err, what)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitPing(func(err error) bool { return err == nil }, "nil with the cluster whole")

	nodes[1].Stop()
	nodes[2].Stop()
	// (A stream leader on the remaining node steps down once it misses
	// its followers, within seconds: until then that stream still answers.)
	err = waitPing(func(err error) bool {
		for _, name := range []string{events.StreamMinIO, events.StreamDocuments, events.StreamSweeper} {
			if err == nil || !strings.Contains(document.ErrorMessage(err), name) {
				return false
			}
		}
		return document.ErrorCode(err) == document.Unavailable
	}, "an error naming the three streams with two nodes gone")
	t.Logf("without quorum: %s", document.ErrorMessage(err))

	nodes[1].Restart(t)
	waitPing(func(err error) bool { return err == nil }, "nil once a quorum is back")
}
