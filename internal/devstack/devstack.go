package devstack

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/shared/events"
	"github.com/docuvault/docuvault/shared/objectstore"
)

// Defaults of Options, the settings of `docuvault dev`.
const (
	DefaultDataDir          = ".data"
	DefaultNATSAddr         = "127.0.0.1:14222" // not 4222: machines here run a Debian nats-server there
	DefaultMinIOAddr        = "127.0.0.1:9000"
	DefaultMinIOConsoleAddr = "127.0.0.1:9001"
	DefaultMinIOBin         = "bin/minio"
	DefaultMinIOAccessKey   = "docuvault-dev"
	DefaultMinIOSecretKey   = "docuvault-dev-secret"
	DefaultPGPort           = 5433
	DefaultDatabase         = "docuvault"
)

// StaleUploadsExpiry is how long after it began MinIO drops a multipart
// upload nobody completed or aborted (MINIO_API_STALE_UPLOADS_EXPIRY).
const StaleUploadsExpiry = "72h"

// Options configure a Stack. Zero fields take the Default values.
type Options struct {
	// DataDir holds every server's state: nats/ (JetStream store), pg/
	// (the PostgreSQL cluster), minio/ (objects), minio-queue/
	// (notifications waiting for NATS), minio.log.
	DataDir string

	NATSAddr string // embedded NATS listen address, host:port
	// ExternalNATSAddr, when set, is the host:port of a NATS server with
	// JetStream that the caller runs (in a process of its own, say): Start
	// uses it instead of starting one, and Stop leaves it running.
	ExternalNATSAddr string
	MinIOAddr        string // MinIO S3 API listen address, host:port
	MinIOConsoleAddr string // MinIO console listen address, host:port
	MinIOBin         string // the minio binary
	MinIOAccessKey   string // MinIO root user
	MinIOSecretKey   string // MinIO root password, at least 8 characters

	// PGPort is the port of the local PostgreSQL cluster, on 127.0.0.1.
	PGPort int
	// DatabaseURL, when set, is used instead of a local cluster, as is.
	DatabaseURL string
	// PGSettings are more settings of the local cluster's server, as
	// name=value (PostgresOptions.Settings), such as
	// "shared_preload_libraries=pg_stat_statements".
	PGSettings []string

	// CORSOrigins are the web page origins allowed to PUT into MinIO
	// directly, such as "http://127.0.0.1:8080".
	CORSOrigins []string
	// ExtraPorts are ports the caller listens on once the stack is up, such
	// as the API's; Start checks them with its own before starting anything.
	ExtraPorts []Port

	// Log receives progress, warnings and errors.
	Log zerolog.Logger
}

// withDefaults returns o with every zero field set to its default.
func (o Options) withDefaults() Options {
	set := func(dst *string, def string) {
		if *dst == "" {
			*dst = def
		}
	}
	set(&o.DataDir, DefaultDataDir)
	set(&o.NATSAddr, DefaultNATSAddr)
	set(&o.MinIOAddr, DefaultMinIOAddr)
	set(&o.MinIOConsoleAddr, DefaultMinIOConsoleAddr)
	set(&o.MinIOBin, DefaultMinIOBin)
	set(&o.MinIOAccessKey, DefaultMinIOAccessKey)
	set(&o.MinIOSecretKey, DefaultMinIOSecretKey)
	if o.PGPort == 0 {
		o.PGPort = DefaultPGPort
	}
	return o
}

// Stack is the running servers and how to reach them.
type Stack struct {
	DataDir        string // absolute
	NATSURL        string // nats://host:port
	MinIOEndpoint  string // host:port
	MinIOConsole   string // http://host:port
	MinIOAccessKey string
	MinIOSecretKey string
	// DatabaseURL is Options.DatabaseURL or the local cluster's database.
	DatabaseURL string
	// PostgresCreated reports whether this start made the local cluster.
	PostgresCreated bool

	nats  *NATS
	minio *MinIO
	pg    *Postgres // nil with Options.DatabaseURL
	log   zerolog.Logger
	once  sync.Once
	err   error
}

// Start checks that every port is free, then starts PostgreSQL (unless
// opts.DatabaseURL is set) and, meanwhile, NATS, the JetStream streams and
// MinIO publishing bucket notifications to them. It returns once all
// answer. If anything fails, or ctx ends, what was started is stopped.
func Start(ctx context.Context, opts Options) (*Stack, error) {
	opts = opts.withDefaults()
	log := opts.Log
	dataDir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return nil, fmt.Errorf("--data-dir: %w", err)
	}
	// Settle everything that can be known without starting a server first,
	// so that a mistake costs no start and stop.
	for _, a := range []struct{ addr, setting string }{
		{opts.NATSAddr, "DEV_NATS_ADDR or --nats-addr"}, {opts.MinIOAddr, "DEV_MINIO_ADDR or --minio-addr"}, {opts.MinIOConsoleAddr, "DEV_MINIO_CONSOLE_ADDR or --minio-console-addr"},
	} {
		if _, _, err := splitAddr(a.addr, a.setting); err != nil {
			return nil, err
		}
	}
	bin, err := filepath.Abs(opts.MinIOBin)
	if err != nil {
		return nil, err
	}
	if !IsExecutable(bin) {
		return nil, fmt.Errorf("MinIO server binary not found at %s: run `make tools` (builds it into ./bin), or set DEV_MINIO_BIN or --minio-bin", bin)
	}
	ports := []Port{
		{Name: "MinIO address", Addr: opts.MinIOAddr, Setting: "DEV_MINIO_ADDR or --minio-addr"},
		{Name: "MinIO console address", Addr: opts.MinIOConsoleAddr, Setting: "DEV_MINIO_CONSOLE_ADDR or --minio-console-addr"},
	}
	if opts.ExternalNATSAddr == "" {
		ports = append(ports, Port{Name: "NATS address", Addr: opts.NATSAddr, Setting: "DEV_NATS_ADDR or --nats-addr"})
	}
	var cluster *pgCluster
	if opts.DatabaseURL == "" {
		if opts.PGPort < 1 || opts.PGPort > 65535 {
			return nil, fmt.Errorf("DEV_PG_PORT or --pg-port: %d is not a port between 1 and 65535", opts.PGPort)
		}
		cluster, err = newPGCluster(PostgresOptions{Dir: filepath.Join(dataDir, "pg"), Port: opts.PGPort, Database: DefaultDatabase, Settings: opts.PGSettings, Log: log})
		if err != nil {
			return nil, err
		}
		// A server an earlier, killed run left behind holds the port.
		if err := cluster.stopLeftover(); err != nil {
			return nil, err
		}
		ports = append(ports, Port{Name: "PostgreSQL port", Addr: "127.0.0.1:" + strconv.Itoa(opts.PGPort), Setting: "DEV_PG_PORT or --pg-port (or DATABASE_URL)"})
	}
	if err := CheckPorts(append(ports, opts.ExtraPorts...)...); err != nil {
		return nil, err
	}

	s := &Stack{DataDir: dataDir, DatabaseURL: opts.DatabaseURL, MinIOAccessKey: opts.MinIOAccessKey, MinIOSecretKey: opts.MinIOSecretKey, log: log}
	// PostgreSQL (initdb takes seconds) starts while NATS and MinIO do.
	pgDone := make(chan error, 1)
	go func() {
		if cluster == nil {
			pgDone <- nil
			return
		}
		pg, err := cluster.start(ctx)
		if err == nil {
			s.pg, s.DatabaseURL, s.PostgresCreated = pg, pg.URL, pg.Created
			log.Info().Str("url", s.DatabaseURL).Bool("created", pg.Created).Msg("postgres started")
		}
		pgDone <- err
	}()
	err = s.startMessaging(ctx, opts, bin)
	if pgErr := <-pgDone; pgErr != nil {
		err = errors.Join(err, fmt.Errorf("PostgreSQL: %w", pgErr))
	}
	if err == nil && ctx.Err() != nil {
		err = fmt.Errorf("interrupted while starting: %w", ctx.Err())
	}
	if err != nil {
		return nil, errors.Join(err, s.Stop())
	}
	return s, nil
}

// startMessaging starts NATS (unless opts.ExternalNATSAddr names one),
// creates the streams and starts MinIO.
func (s *Stack) startMessaging(ctx context.Context, opts Options, bin string) error {
	log := opts.Log
	natsAddr := opts.ExternalNATSAddr
	if natsAddr == "" {
		n, err := StartNATS(opts.NATSAddr, filepath.Join(s.DataDir, "nats"), log)
		if err != nil {
			return err
		}
		s.nats, natsAddr = n, n.Addr
		log.Info().Str("url", n.URL).Msg("nats started")
	}
	s.NATSURL = "nats://" + natsAddr

	// MinIO publishes to minio.events from its first event on: the stream
	// must be there first.
	// Errors only: closing the connection below is no disconnect to warn of.
	nc, js, err := events.Connect(events.ConnectConfig{URL: s.NATSURL, Name: "docuvault-devstack"}, log.Level(zerolog.ErrorLevel))
	if err != nil {
		return err
	}
	err = events.EnsureStreams(ctx, js, events.StreamLimits{}) // setup applies the configured limits, and makes the consumers
	nc.Close()
	if err != nil {
		return err
	}

	env := objectstore.NATSTarget{
		Address:  natsAddr,
		Subject:  events.SubjectMinIO,
		QueueDir: filepath.Join(s.DataDir, "minio-queue"),
	}.ServerEnv()
	if len(opts.CORSOrigins) > 0 {
		env = append(env, "MINIO_API_CORS_ALLOW_ORIGIN="+strings.Join(opts.CORSOrigins, ","))
	}
	// The backstop for multipart uploads the sweeper never aborted: MinIO
	// drops an upload this long after it began (MinIO cannot expire them
	// by lifecycle rule). It bounds how long one multipart upload may take,
	// so it is far longer than PENDING_TTL, the resume window.
	env = append(env, "MINIO_API_STALE_UPLOADS_EXPIRY="+StaleUploadsExpiry)
	m, err := StartMinIO(ctx, MinIOOptions{
		Bin:         bin,
		DataDir:     filepath.Join(s.DataDir, "minio"),
		StateDir:    s.DataDir,
		Addr:        opts.MinIOAddr,
		ConsoleAddr: opts.MinIOConsoleAddr,
		AccessKey:   opts.MinIOAccessKey,
		SecretKey:   opts.MinIOSecretKey,
		Env:         env,
	})
	if err != nil {
		return err
	}
	s.minio, s.MinIOEndpoint = m, m.Endpoint
	s.MinIOConsole = "http://" + DialAddr(opts.MinIOConsoleAddr)
	log.Info().Str("endpoint", m.Endpoint).Msg("minio started")
	return nil
}

// RedactedDatabaseURL returns DatabaseURL without its password.
func (s *Stack) RedactedDatabaseURL() string {
	u, err := url.Parse(s.DatabaseURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		// A key=value connection string: nothing safe to show.
		return "(DATABASE_URL)"
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	q := u.Query()
	if q.Has("password") {
		q.Del("password")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// Stop stops MinIO, then NATS, then PostgreSQL, and waits until each has
// exited. Stop it after the services using them. Calling Stop again
// returns the first call's result.
func (s *Stack) Stop() error {
	s.once.Do(func() {
		if s.minio != nil {
			s.minio.Stop()
			s.log.Info().Msg("minio stopped")
		}
		if s.nats != nil {
			s.nats.Stop()
			s.log.Info().Msg("nats stopped")
		}
		if s.pg != nil {
			if s.err = s.pg.Stop(); s.err == nil {
				s.log.Info().Msg("postgres stopped")
			}
		}
	})
	return s.err
}
