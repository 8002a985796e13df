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
	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/internal/devstack"
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

	// A cluster node's: the cluster's name ("" for a single server), its
	// route port and the other nodes' routes.
	clusterName string
	clusterPort int
	routes      []string

	mu  sync.Mutex
	srv *devstack.NATS // nil while the server is stopped
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
	SkipShort(tb, "a real NATS server")
	n := &NATSServer{
		Host:     natsHost,
		StoreDir: tb.TempDir(),
		name:     "testenv-" + randomHex(4),
	}
	// Port -1 lets the server pick a free port (0 would mean 4222).
	s, err := n.start(-1)
	if err != nil {
		tb.Fatal(err)
	}
	n.srv = s
	n.Port = s.Port
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
	n.srv.Stop() // does nothing on nil
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
		s, err := n.start(n.Port)
		if err == nil {
			n.srv = s
			return
		}
		if !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			tb.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Name returns the server's name, the same on every start: the name
// JetStream reports for a stream's or a consumer's leader and replicas.
func (n *NATSServer) Name() string { return n.name }

// Server returns the running server, or nil while it is stopped.
func (n *NATSServer) Server() *server.Server {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.srv == nil {
		return nil
	}
	return n.srv.Server()
}

// start starts a server listening on port (-1 for any free port) and waits
// until it accepts connections. If the port is taken, the error wraps
// syscall.EADDRINUSE.
func (n *NATSServer) start(port int) (*devstack.NATS, error) {
	s, err := devstack.StartNATSServer(devstack.NATSOptions{
		Name:       n.name,
		Host:       n.Host,
		Port:       port,
		StoreDir:   n.StoreDir,
		ReadyAfter: natsReadyAfter,
		Log:        zerolog.Nop(),

		ClusterName: n.clusterName,
		ClusterPort: n.clusterPort,
		Routes:      n.routes,
	})
	if err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}
	return s, nil
}

// NATSCluster starts n embedded NATS servers with JetStream, clustered over
// loopback routes, each with a JetStream store of its own, and waits until
// the cluster has elected its JetStream meta leader. It returns the nodes
// and the comma-separated list of their URLs, which a client connects to
// (and reconnects across). Each node can be stopped and restarted on its
// own, as in an outage of one machine.
func NATSCluster(tb testing.TB, n int) ([]*NATSServer, string) {
	tb.Helper()
	SkipShort(tb, "a real NATS cluster")
	ports, err := freePorts(2 * n) // a client port and a route port per node
	if err != nil {
		tb.Fatal(err)
	}
	name := "testenv-" + randomHex(4)
	routes := make([]string, n)
	for i := range n {
		routes[i] = "nats-route://" + net.JoinHostPort(natsHost, strconv.Itoa(ports[n+i]))
	}
	nodes := make([]*NATSServer, n)
	urls := make([]string, n)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		node := &NATSServer{
			Host: natsHost, Port: ports[i], StoreDir: tb.TempDir(),
			name: fmt.Sprintf("%s-%d", name, i), clusterName: name, clusterPort: ports[n+i],
		}
		for j, r := range routes {
			if j != i {
				node.routes = append(node.routes, r)
			}
		}
		node.URL = "nats://" + net.JoinHostPort(node.Host, strconv.Itoa(node.Port))
		nodes[i], urls[i] = node, node.URL
		// The nodes start together: each waits for a quorum of the others.
		wg.Add(1)
		go func() {
			defer wg.Done()
			node.srv, errs[i] = node.start(node.Port)
		}()
	}
	wg.Wait()
	for i, node := range nodes {
		if errs[i] != nil {
			tb.Fatal(errs[i])
		}
		tb.Cleanup(node.Stop)
	}
	deadline := time.Now().Add(natsReadyAfter)
	for {
		ready := clusterHasLeader(nodes)
		for _, node := range nodes {
			if s := node.Server(); s == nil || !s.JetStreamIsCurrent() {
				ready = false
			}
		}
		if ready {
			return nodes, strings.Join(urls, ",")
		}
		if time.Now().After(deadline) {
			tb.Fatalf("testenv: the NATS cluster %s has no JetStream meta leader after %v", name, natsReadyAfter)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// clusterHasLeader reports whether one of nodes leads the JetStream meta group.
func clusterHasLeader(nodes []*NATSServer) bool {
	for _, node := range nodes {
		if s := node.Server(); s != nil && s.JetStreamIsLeader() {
			return true
		}
	}
	return false
}
