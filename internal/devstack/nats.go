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

	"github.com/docuvault/docuvault/shared/events"
)

// natsReadyAfter bounds how long the embedded server may take to accept
// connections; recovering a large JetStream store is the slow part.
const natsReadyAfter = 30 * time.Second

// NATS is an embedded NATS server with JetStream, running in this process.
type NATS struct {
	URL  string // nats://host:port, for clients
	Addr string // host:port, for clients such as MinIO's notification target
	Port int    // the port the server listens on

	srv *server.Server
}

// NATSOptions configures an embedded NATS server started with
// StartNATSServer.
type NATSOptions struct {
	// Name is the server's name, which a JetStream store keeps: give every
	// start on one StoreDir the same. "docuvault-dev" if empty.
	Name string
	// Host and Port are the listen address; Port -1 picks a free port (0
	// would mean 4222).
	Host string
	Port int
	// StoreDir holds the JetStream streams.
	StoreDir string
	// ReadyAfter bounds how long the server may take to accept
	// connections; 30 s if zero.
	ReadyAfter time.Duration
	// Log receives the server's warnings and errors, and its notices at
	// debug level; zerolog.Nop() silences it.
	Log zerolog.Logger
	// ClusterName, when set, makes the server a node of a JetStream
	// cluster of that name: it takes routes on Host:ClusterPort and
	// connects to Routes (nats-route://host:port of the other nodes).
	ClusterName string
	ClusterPort int
	Routes      []string
}

// StartNATS starts an embedded NATS server with JetStream listening on addr
// (host:port with an explicit port) and keeping its streams in storeDir,
// and waits until it accepts connections. Warnings and errors go to log.
func StartNATS(addr, storeDir string, log zerolog.Logger) (*NATS, error) {
	host, port, err := splitAddr(addr, "NATS address")
	if err != nil {
		return nil, err
	}
	return StartNATSServer(NATSOptions{Host: host, Port: port, StoreDir: storeDir, Log: log})
}

// StartNATSServer starts an embedded NATS server with JetStream as opts
// say and waits until it accepts connections. If the server cannot listen
// because its address is taken, the error wraps syscall.EADDRINUSE.
func StartNATSServer(opts NATSOptions) (*NATS, error) {
	if opts.Name == "" {
		opts.Name = "docuvault-dev" // the same on every start, like the store
	}
	if opts.ReadyAfter == 0 {
		opts.ReadyAfter = natsReadyAfter
	}
	addr := net.JoinHostPort(opts.Host, strconv.Itoa(opts.Port))
	if opts.Port < 0 {
		addr = opts.Host + " (any free port)"
	}
	where := fmt.Sprintf("NATS server on %s with JetStream store %s", addr, opts.StoreDir)
	sopts := &server.Options{
		ServerName: opts.Name,
		Host:       opts.Host,
		Port:       opts.Port,
		JetStream:  true,
		StoreDir:   opts.StoreDir,
		NoSigs:     true, // signals belong to the process, which stops the server itself
		// MinIO publishes notifications up to this size; a smaller
		// max_payload would stop its notification queue at the first one.
		MaxPayload: events.MaxPayload,
	}
	if opts.ClusterName != "" {
		sopts.Cluster = server.ClusterOpts{Name: opts.ClusterName, Host: opts.Host, Port: opts.ClusterPort}
		sopts.Routes = server.RoutesFromStr(strings.Join(opts.Routes, ","))
	}
	s, err := server.NewServer(sopts)
	if err != nil {
		return nil, fmt.Errorf("configure %s: %w", where, err)
	}
	l := &natsLog{log: opts.Log}
	s.SetLogger(l, false, false)
	// Start returns once the client listener is open, or early, after a
	// fatal log call, if a step before it failed.
	s.Start()
	fatal := l.failure()
	if fatal == nil && !s.ReadyForConnections(opts.ReadyAfter) {
		if fatal = l.failure(); fatal == nil {
			fatal = fmt.Errorf("not accepting connections after %v", opts.ReadyAfter)
		}
	}
	if fatal != nil {
		s.Shutdown()
		s.WaitForShutdown()
		return nil, fmt.Errorf("start %s: %w", where, fatal)
	}
	port := opts.Port
	if a, ok := s.Addr().(*net.TCPAddr); ok {
		port = a.Port
	}
	dial := net.JoinHostPort(dialHost(opts.Host), strconv.Itoa(port))
	return &NATS{URL: "nats://" + dial, Addr: dial, Port: port, srv: s}, nil
}

// Server returns the embedded server, or nil once stopped.
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
	errs  []error // the errors among the fatal messages' arguments
}

// natsFailure is why a server failed to start: its fatal messages, joined.
// It wraps the errors they were made of, such as syscall.EADDRINUSE.
type natsFailure struct {
	msg  string
	errs []error
}

func (f *natsFailure) Error() string   { return f.msg }
func (f *natsFailure) Unwrap() []error { return f.errs }

// failure returns the fatal messages logged so far, or nil if none was.
func (l *natsLog) failure() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.fatal) == 0 {
		return nil
	}
	return &natsFailure{msg: strings.Join(l.fatal, "; "), errs: l.errs}
}

func (l *natsLog) Fatalf(format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.fatal = append(l.fatal, fmt.Sprintf(format, v...))
	for _, a := range v {
		if err, ok := a.(error); ok {
			l.errs = append(l.errs, err)
		}
	}
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
