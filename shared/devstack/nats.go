package devstack

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/rs/zerolog"
)

// natsReadyAfter bounds how long the embedded server may take to accept
// connections; recovering a large JetStream store is the slow part.
const natsReadyAfter = 30 * time.Second

// NATS is an embedded NATS server with JetStream, running in this process.
type NATS struct {
	URL  string // nats://host:port, for clients
	Addr string // host:port, for clients such as MinIO's notification target

	srv *server.Server
}

// StartNATS starts an embedded NATS server with JetStream listening on addr
// (host:port with an explicit port) and keeping its streams in storeDir,
// and waits until it accepts connections. Warnings and errors go to log.
func StartNATS(addr, storeDir string, log zerolog.Logger) (*NATS, error) {
	host, port, err := splitAddr(addr, "NATS address")
	if err != nil {
		return nil, err
	}
	opts := &server.Options{
		ServerName: "docuvault-dev", // the same on every start, like the store
		Host:       host,
		Port:       port,
		JetStream:  true,
		StoreDir:   storeDir,
		NoSigs:     true, // signals belong to the process, which stops the server itself
	}
	where := fmt.Sprintf("NATS server on %s with JetStream store %s", addr, storeDir)
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("configure %s: %w", where, err)
	}
	l := &natsLog{log: log}
	s.SetLogger(l, false, false)
	// Start returns once the client listener is open, or early, after a
	// fatal log call, if a step before it failed.
	s.Start()
	fatal := l.failure()
	if fatal == "" && !s.ReadyForConnections(natsReadyAfter) {
		if fatal = l.failure(); fatal == "" {
			fatal = fmt.Sprintf("not accepting connections after %v", natsReadyAfter)
		}
	}
	if fatal != "" {
		s.Shutdown()
		s.WaitForShutdown()
		return nil, fmt.Errorf("start %s: %s", where, fatal)
	}
	dial := net.JoinHostPort(dialHost(host), strconv.Itoa(port))
	return &NATS{URL: "nats://" + dial, Addr: dial, srv: s}, nil
}

// Server returns the embedded server.
func (n *NATS) Server() *server.Server { return n.srv }

// Stop shuts the server down and waits until it has. Stop does nothing the
// second time.
func (n *NATS) Stop() {
	if n == nil || n.srv == nil {
		return
	}
	n.srv.Shutdown()
	n.srv.WaitForShutdown()
	n.srv = nil
}

// natsLog is a server.Logger that passes warnings and errors to zerolog
// and keeps the fatal messages, which say why the server failed to start.
type natsLog struct {
	log   zerolog.Logger
	mu    sync.Mutex
	fatal []string
}

// failure returns the fatal messages logged so far, joined.
func (l *natsLog) failure() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.fatal, "; ")
}

func (l *natsLog) Fatalf(format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fatal = append(l.fatal, fmt.Sprintf(format, v...))
}

func (l *natsLog) Noticef(format string, v ...any) {
	l.log.Debug().Str("component", "nats").Msgf(format, v...)
}

func (l *natsLog) Warnf(format string, v ...any) {
	l.log.Warn().Str("component", "nats").Msgf(format, v...)
}

func (l *natsLog) Errorf(format string, v ...any) {
	l.log.Error().Str("component", "nats").Msgf(format, v...)
}

func (*natsLog) Debugf(string, ...any) {}
func (*natsLog) Tracef(string, ...any) {}
