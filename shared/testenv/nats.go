package testenv

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

const (
	natsHost       = "127.0.0.1"
	natsReadyAfter = 10 * time.Second // how long a server may take to accept connections
	natsRebindFor  = 5 * time.Second  // how long Restart waits for its port to be free
)

// NATSServer is an embedded NATS JetStream server started for one test.
type NATSServer struct {
	URL      string // nats://127.0.0.1:PORT
	Host     string // "127.0.0.1"
	Port     int
	StoreDir string // the JetStream store, kept across Stop and Restart

	name string // the server name, the same on every start

	mu  sync.Mutex
	srv *server.Server // nil while the server is stopped
}

// NATS starts an embedded NATS server with JetStream for the test, on a
// free TCP port of 127.0.0.1 and with a JetStream store of its own in a
// temporary directory, and waits until it accepts connections. The server
// is shut down when the test and its subtests have finished. It logs
// nothing; if it cannot start, the test fails with the server's reason.
//
// Each call starts a new server inside the test process (it is cheap, unlike
// PostgreSQL and MinIO), so tests may stop and restart theirs freely to
// simulate an outage. Connect to URL; MinIO takes Host and Port.
func NATS(tb testing.TB) *NATSServer {
	tb.Helper()
	n := &NATSServer{
		Host:     natsHost,
		StoreDir: tb.TempDir(),
		name:     "testenv-" + randomHex(4),
	}
	// Port -1 lets the server pick a free port (0 would mean 4222).
	s, _, err := n.start(-1)
	if err != nil {
		tb.Fatal(err)
	}
	n.srv = s
	n.Port = s.Addr().(*net.TCPAddr).Port
	n.URL = "nats://" + net.JoinHostPort(n.Host, strconv.Itoa(n.Port))
	tb.Cleanup(n.Stop) // runs before the removal of StoreDir
	return n
}

// Stop shuts the server down and waits until it has, as in an outage:
// clients lose their connections and new ones are refused until Restart.
// Stop does nothing if the server is already stopped.
func (n *NATSServer) Stop() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.stopLocked()
}

// stopLocked shuts the server down if it is running. n.mu must be held.
func (n *NATSServer) stopLocked() {
	if n.srv == nil {
		return
	}
	n.srv.Shutdown()
	n.srv.WaitForShutdown()
	n.srv = nil
}

// Restart stops the server if it is running and starts a new one on the
// same port with the same JetStream store, so streams, consumers and stored
// messages survive, and waits until it accepts connections. Clients that
// reconnect find it at the same URL. If the port is in use, Restart tries
// again for up to 5 s before it fails the test.
func (n *NATSServer) Restart(tb testing.TB) {
	tb.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	n.stopLocked()
	deadline := time.Now().Add(natsRebindFor)
	for {
		s, portInUse, err := n.start(n.Port)
		if err == nil {
			n.srv = s
			return
		}
		if !portInUse || time.Now().After(deadline) {
			tb.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Server returns the running server, or nil while it is stopped.
func (n *NATSServer) Server() *server.Server {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.srv
}

// start starts a server listening on port (-1 for any free port) and waits
// until it accepts connections. If it fails, portInUse says whether that was
// because the port is taken.
func (n *NATSServer) start(port int) (s *server.Server, portInUse bool, err error) {
	opts := &server.Options{
		ServerName: n.name,
		Host:       n.Host,
		Port:       port,
		JetStream:  true,
		StoreDir:   n.StoreDir,
		NoSigs:     true, // signals belong to the test process (see Main)
		NoLog:      true,
	}
	addr := net.JoinHostPort(n.Host, strconv.Itoa(port))
	if port < 0 {
		addr = n.Host + " (any free port)"
	}
	where := fmt.Sprintf("NATS server on %s with JetStream store %s", addr, n.StoreDir)
	s, err = server.NewServer(opts)
	if err != nil {
		return nil, false, fmt.Errorf("testenv: configure %s: %w", where, err)
	}
	rec := &natsLog{}
	s.SetLogger(rec, false, false)

	// Start returns once the client listener is open, or early, after a
	// fatal log call, if a step before it failed.
	s.Start()
	fatal, inUse := rec.failure()
	if fatal == "" && !s.ReadyForConnections(natsReadyAfter) {
		fatal, inUse = rec.failure()
		if fatal == "" {
			fatal = fmt.Sprintf("not accepting connections after %v", natsReadyAfter)
		}
	}
	if fatal != "" {
		s.Shutdown()
		s.WaitForShutdown()
		return nil, inUse, fmt.Errorf("testenv: start %s: %s", where, fatal)
	}
	return s, false, nil
}

// natsLog is a server.Logger that prints nothing and keeps the fatal
// messages, which say why a server failed to start.
type natsLog struct {
	mu        sync.Mutex
	fatal     []string
	addrInUse bool
}

// failure returns the fatal messages logged so far, joined, and whether one
// of them was about the listening address being in use.
func (l *natsLog) failure() (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.fatal, "; "), l.addrInUse
}

func (l *natsLog) Fatalf(format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fatal = append(l.fatal, fmt.Sprintf(format, v...))
	for _, a := range v {
		if err, ok := a.(error); ok && errors.Is(err, syscall.EADDRINUSE) {
			l.addrInUse = true
		}
	}
}

func (*natsLog) Noticef(string, ...any) {}
func (*natsLog) Warnf(string, ...any)   {}
func (*natsLog) Errorf(string, ...any)  {}
func (*natsLog) Debugf(string, ...any)  {}
func (*natsLog) Tracef(string, ...any)  {}
