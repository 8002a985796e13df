package testenv

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// connectNATS connects to url and returns the connection, closed when the
// test ends, and a JetStream client for it.
func connectNATS(t *testing.T, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("connect to %s: %v", url, err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream.New: %v", err)
	}
	return nc, js
}

func TestNATSJetStreamSurvivesRestart(t *testing.T) {
	t.Parallel()
	srv := NATS(t)
	if want := "nats://127.0.0.1:" + strconv.Itoa(srv.Port); srv.URL != want || srv.Host != "127.0.0.1" {
		t.Errorf("URL = %q, Host = %q; want %q, 127.0.0.1", srv.URL, srv.Host, want)
	}
	if srv.Port <= 0 || srv.Port == 4222 {
		t.Errorf("Port = %d, want a random free port", srv.Port)
	}
	if srv.Server() == nil || !srv.Server().JetStreamEnabled() {
		t.Fatalf("Server() = %v, want a running server with JetStream", srv.Server())
	}

	ctx := t.Context()
	_, js := connectNATS(t, srv.URL)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name:     "T",
		Subjects: []string{"t.>"},
		Storage:  jetstream.FileStorage,
	}); err != nil {
		t.Fatalf("CreateStream: %v", err)
	}
	ack, err := js.Publish(ctx, "t.hello", []byte("hello"))
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}

	port := srv.Port
	srv.Stop()
	srv.Stop() // idempotent
	if srv.Server() != nil {
		t.Errorf("Server() = %v after Stop, want nil", srv.Server())
	}
	if nc, err := nats.Connect(srv.URL, nats.Timeout(time.Second)); err == nil {
		nc.Close()
		t.Fatalf("connected to %s after Stop", srv.URL)
	}

	srv.Restart(t)
	if srv.Port != port || srv.Server() == nil {
		t.Fatalf("after Restart: Port = %d, Server() = %v; want %d and a running server", srv.Port, srv.Server(), port)
	}
	_, js = connectNATS(t, srv.URL)
	stream, err := js.Stream(ctx, "T")
	if err != nil {
		t.Fatalf("stream T after restart: %v", err)
	}
	msg, err := stream.GetMsg(ctx, ack.Sequence)
	if err != nil {
		t.Fatalf("GetMsg(%d) after restart: %v", ack.Sequence, err)
	}
	if string(msg.Data) != "hello" || msg.Subject != "t.hello" {
		t.Errorf("message after restart = %q on %q, want \"hello\" on t.hello", msg.Data, msg.Subject)
	}
}

func TestNATSServersAreSeparate(t *testing.T) {
	t.Parallel()
	a, b := NATS(t), NATS(t)
	if a.Port == b.Port || a.StoreDir == b.StoreDir {
		t.Fatalf("two servers share port %d or store %s", a.Port, a.StoreDir)
	}
	ctx := t.Context()
	_, jsA := connectNATS(t, a.URL)
	_, jsB := connectNATS(t, b.URL)
	if _, err := jsA.CreateStream(ctx, jetstream.StreamConfig{Name: "ONLY_A", Subjects: []string{"a"}}); err != nil {
		t.Fatalf("CreateStream on a: %v", err)
	}
	if _, err := jsB.Stream(ctx, "ONLY_A"); err == nil {
		t.Errorf("stream created on server a is visible on server b")
	}
}

// holdPort listens on 127.0.0.1:port, retrying briefly while the server
// that just left it finishes closing its listener.
func holdPort(t *testing.T, port int) net.Listener {
	t.Helper()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(5 * time.Second)
	for {
		l, err := net.Listen("tcp", addr)
		if err == nil {
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("listen on %s: %v", addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestNATSRestartWaitsForItsPort(t *testing.T) {
	t.Parallel()
	srv := NATS(t)
	srv.Stop()
	l := holdPort(t, srv.Port)
	go func() {
		time.Sleep(500 * time.Millisecond)
		l.Close()
	}()
	srv.Restart(t)
	nc, _ := connectNATS(t, srv.URL)
	if err := nc.Flush(); err != nil {
		t.Errorf("Flush after Restart: %v", err)
	}
}

func TestNATSRestartPortTaken(t *testing.T) {
	t.Parallel()
	srv := NATS(t)
	srv.Stop()
	l := holdPort(t, srv.Port)
	defer l.Close()
	start := time.Now()
	msg := fatalMessage(t, func(tb testing.TB) { srv.Restart(tb) })
	want := fmt.Sprintf("testenv: start NATS server on 127.0.0.1:%d with JetStream store %s: Error listening on port", srv.Port, srv.StoreDir)
	if !strings.Contains(msg, want) || !strings.Contains(msg, "address already in use") {
		t.Errorf("Restart on a taken port failed with %q, want a message containing %q and the cause", msg, want)
	}
	if d := time.Since(start); d < natsRebindFor {
		t.Errorf("Restart gave up after %v, want it to retry for %v", d, natsRebindFor)
	}
	if srv.Server() != nil {
		t.Errorf("Server() = %v after a failed Restart, want nil", srv.Server())
	}
}

func TestNATSClientReconnectsAfterRestart(t *testing.T) {
	t.Parallel()
	srv := NATS(t)
	reconnected := make(chan struct{}, 1)
	nc, err := nats.Connect(srv.URL,
		nats.MaxReconnects(-1),
		nats.ReconnectWait(50*time.Millisecond),
		nats.ReconnectHandler(func(*nats.Conn) { reconnected <- struct{}{} }))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream.New: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "R", Subjects: []string{"r"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatalf("CreateStream: %v", err)
	}

	srv.Restart(t) // stops the running server first
	select {
	case <-reconnected:
	case <-ctx.Done():
		t.Fatalf("client did not reconnect to the restarted server")
	}
	if _, err := js.Publish(ctx, "r", []byte("after")); err != nil {
		t.Errorf("Publish after reconnect: %v", err)
	}
}
