// Package stack is DocuVault's one composition root. It opens PostgreSQL,
// the object store and NATS once per process, applies the migrations and
// makes sure the streams exist, builds the document use cases over them,
// and hands each role it is asked to run exactly what that role uses. Every
// way of running DocuVault goes through it: the per-role subcommands and
// `docuvault dev` (services/docuvault), the end-to-end test harness and the
// benchmark. No other package assembles a role.
package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/services/api"
	"github.com/docuvault/docuvault/services/classifier"
	"github.com/docuvault/docuvault/services/confirmer"
	"github.com/docuvault/docuvault/services/scanner"
	"github.com/docuvault/docuvault/services/sweeper"
	"github.com/docuvault/docuvault/shared/auth"
	"github.com/docuvault/docuvault/shared/clamav"
	"github.com/docuvault/docuvault/shared/classify"
	"github.com/docuvault/docuvault/shared/config"
	"github.com/docuvault/docuvault/shared/document"
	"github.com/docuvault/docuvault/shared/events"
	"github.com/docuvault/docuvault/shared/metrics"
	"github.com/docuvault/docuvault/shared/objectstore"
	"github.com/docuvault/docuvault/shared/postgres"
	"github.com/docuvault/docuvault/shared/ratelimit"
)

// maxPacedUsers bounds the users whose STORAGE_RATE_PER_MINUTE bucket one
// process holds (about 100 bytes each); a bucket idle for a minute is
// full again and dropped before that.
const maxPacedUsers = 100_000

// Role is one of DocuVault's services.
type Role string

// The roles.
const (
	API        Role = "api"
	Confirmer  Role = "confirmer"
	Classifier Role = "classifier"
	Sweeper    Role = "sweeper"
	Scanner    Role = "scanner"
)

// Roles are every role, in the order a stack starts them. The scanner
// needs a clamd (CLAMD_ADDRESS).
var Roles = []Role{API, Confirmer, Sweeper, Classifier, Scanner}

// Registry is where a stack's metrics are registered and read from.
type Registry interface {
	prometheus.Registerer
	prometheus.Gatherer
}

// Options say what a stack runs and how.
type Options struct {
	// Roles are the roles to run; every process also relays the outbox.
	Roles []Role
	// Log returns the logger of a service ("api", "relay", …); nil logs nothing.
	Log func(service string) zerolog.Logger
	// Registry holds the metrics; nil means Prometheus's default registry
	// (with the Go runtime and process collectors). Give each stack in one
	// process a registry of its own.
	Registry Registry
	// Listener is the api's; nil means listening on the config's HTTPAddr.
	Listener net.Listener
	// DevToken, for `docuvault dev` only, lets the page mint a token.
	DevToken func() (token string, user uuid.UUID, err error)
	// DevHosts are the Host headers DevToken answers (see api.Deps).
	DevHosts []string
	// As is, for a stack with no Roles, the role whose credentials Docs
	// acts with (the benchmark's direct sweep: Sweeper).
	As Role
}

// Stack is one process's connections, use cases and roles.
type Stack struct {
	Config config.Config
	// Metrics are the stack's metrics, as its /metrics serves them.
	Metrics *metrics.Metrics
	// APIAddr is the address the api listens on, with the API role.
	APIAddr net.Addr
	// Docs are the use cases acting with the first role's credentials
	// (Options.As's without roles); the benchmark measures them directly.
	Docs *document.Service

	pool    *pgxpool.Pool
	buses   []*events.Bus // one per role: each connects as its own NATS user
	ln      net.Listener  // the api's, when the stack opened it
	pprofLn net.Listener  // PPROF_ADDR's, when set
	runners []runner
}

// runner is a role (or the relay) ready to run.
type runner struct {
	name string
	run  func(context.Context) error
	// last runners stop after the others returned: the relay publishes
	// what the roles committed while they finished their work in hand.
	last bool
}

// Open validates cfg, connects to PostgreSQL (applying the migrations),
// the object store (checking the bucket) and NATS (making sure the streams
// exist), and builds the roles opts asks for. Close releases what it opened.
// With no roles, the stack only opens the connections and builds Docs, for
// a caller that calls the use cases itself (the benchmark's direct sweep):
// it has nothing to run, not even a relay.
func Open(ctx context.Context, cfg config.Config, opts Options) (s *Stack, err error) {
	roles := opts.roles()
	if err := cfg.Validate(roleNames(roles)...); err != nil {
		return nil, err
	}
	reg, err := opts.registry()
	if err != nil {
		return nil, err
	}
	s = &Stack{Config: cfg}
	if s.Metrics, err = metrics.New(reg, reg); err != nil {
		return nil, err
	}
	opened := s // a failure below returns nil, and closes what it opened
	defer func() {
		if err != nil {
			opened.Close()
		}
	}()

	store, err := s.openStore(ctx, cfg, reg)
	if err != nil {
		return nil, err
	}
	docCfg, err := documentConfig(cfg, roles, s.Metrics)
	if err != nil {
		return nil, err
	}
	relayBus, err := s.openRoles(ctx, cfg, opts, roles, store, docCfg, reg)
	if err != nil {
		return nil, err
	}
	if len(opts.Roles) == 0 {
		return s, nil
	}
	if relayBus != nil {
		if err := s.openRelay(ctx, store, relayBus, opts.logger("relay")); err != nil {
			return nil, err
		}
	}
	if cfg.PprofAddr != "" {
		run, err := s.openPprof(cfg.PprofAddr)
		if err != nil {
			return nil, err
		}
		s.runners = append(s.runners, runner{name: "pprof", run: run})
	}
	return s, nil
}

// roles are the roles whose credentials the stack opens connections with:
// o.Roles, or o.As alone when there are none.
func (o Options) roles() []Role {
	if len(o.Roles) == 0 && o.As != "" {
		return []Role{o.As}
	}
	return o.Roles
}

// roleNames are the names of roles, as config knows them.
func roleNames(roles []Role) []string {
	names := make([]string, len(roles))
	for i, r := range roles {
		names[i] = string(r)
	}
	return names
}

// logger is the logger of service, as o.Log says.
func (o Options) logger(service string) zerolog.Logger {
	if o.Log == nil {
		return zerolog.Nop()
	}
	return o.Log(service)
}

// registry is o.Registry, or Prometheus's default registry.
func (o Options) registry() (Registry, error) {
	if o.Registry != nil {
		return o.Registry, nil
	}
	reg, ok := prometheus.DefaultRegisterer.(Registry)
	if !ok {
		return nil, errors.New("prometheus.DefaultRegisterer is not a registry: pass Options.Registry")
	}
	return reg, nil
}

// openStore connects to PostgreSQL, applies the migrations and returns the
// store over it; reg gauges the events waiting in its outbox.
func (s *Stack) openStore(ctx context.Context, cfg config.Config, reg Registry) (*postgres.Store, error) {
	var err error
	if s.pool, err = postgres.Open(ctx, cfg.DatabaseURL); err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	if err := postgres.Migrate(ctx, s.pool); err != nil {
		return nil, err
	}
	store := postgres.NewStore(s.pool, cfg.QuotaDefaultBytes)
	metrics.OutboxWaiting(reg, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		n, _ := store.OutboxWaiting(ctx)
		return float64(n)
	})
	return store, nil
}

// documentConfig is the use cases' configuration cfg says, with the
// classification rules when roles include the classifier, and m counting
// the values it clamps.
func documentConfig(cfg config.Config, roles []Role, m *metrics.Metrics) (document.Config, error) {
	docCfg := document.Config{
		MaxUploadBytes:        cfg.MaxUploadBytes,
		MultipartThreshold:    cfg.MultipartThreshold,
		MultipartPartSize:     cfg.MultipartPartSize,
		UploadsPerMinute:      int(cfg.UploadsPerMinute),
		MaxPendingUploads:     int(cfg.MaxPendingUploads),
		ReclassifyPerMinute:   int(cfg.ReclassifyPerMinute),
		RequireDeclaredSize:   cfg.RequireDeclaredSize,
		RequireChecksum:       cfg.RequireChecksum,
		UploadURLTTL:          cfg.UploadURLTTL,
		DownloadURLTTL:        cfg.DownloadURLTTL,
		ClassifyMaxBytes:      cfg.ClassifyMaxBytes,
		ClassifyTimeout:       classifier.ClassifyTimeout,
		ClassifyRecoveryAfter: cfg.ClassifyRecoveryAfter,
		ScanRequired:          cfg.ScanRequired,
		ScanMaxBytes:          cfg.ScanMaxBytes,
		ScanTimeout:           scanner.HandleTimeout,
		OnClamp:               m.Clamped,
	}
	if slices.Contains(roles, Scanner) {
		docCfg.Scanner = clamdScanner{clamd(cfg)}
	}
	if slices.Contains(roles, Classifier) {
		rules := classify.DefaultRules()
		if cfg.ClassifyRules != "" {
			var err error
			if rules, err = classify.LoadRules(cfg.ClassifyRules); err != nil {
				return document.Config{}, fmt.Errorf("CLASSIFY_RULES: %w", err)
			}
		}
		docCfg.Classifier = classify.Documents{Classifier: classify.New(rules)}
	}
	// Deletes are counted in PostgreSQL, across replicas; the requests
	// that cost the object store a call are paced in this process only.
	docCfg.DeletesPerMinute = int(cfg.DeletesPerMinute)
	if n := int(cfg.StoragePerMinute); n > 0 {
		docCfg.StorageThrottle = ratelimit.NewBuckets(n, n, maxPacedUsers)
	}
	return docCfg, nil
}

// openRoles connects each of roles with its own credentials, builds its
// use cases over store and, when opts asks for roles, its runner (without,
// it opens the first role's connections and Docs only). With the api, reg
// gauges MINIO_EVENTS' backlog through its bus. It returns the bus the
// outbox relay publishes on: the first role's that may publish document
// events, nil when none may.
func (s *Stack) openRoles(ctx context.Context, cfg config.Config, opts Options, roles []Role, store *postgres.Store, docCfg document.Config, reg Registry) (*events.Bus, error) {
	// Each role acts with its own credentials, in MinIO and NATS alike,
	// even beside other roles in one process: none holds another's rights.
	var relayBus, backlogBus *events.Bus
	for _, role := range roles {
		objects, bus, err := s.connect(ctx, cfg, role, opts.logger("nats"))
		if err != nil {
			return nil, err
		}
		roleCfg := docCfg
		if role == API && cfg.ConfirmWait > 0 {
			// The user's confirm waits for the notification door's
			// settlement, woken by its event.
			if roleCfg.Settlements, err = bus.WatchSettlements(); err != nil {
				return nil, err
			}
			roleCfg.ConfirmWait = cfg.ConfirmWait
		}
		docs := document.NewService(store, objects, roleCfg)
		if s.Docs == nil {
			s.Docs = docs
		}
		// The classifier and the scanner, which read what attackers
		// upload, publish nothing: the other roles relay their outbox rows.
		if relayBus == nil && role != Classifier && role != Scanner {
			relayBus = bus
		}
		if role == API { // the api serves /metrics, and may ask about MINIO_EVENTS
			backlogBus = bus
		}
		if len(opts.Roles) == 0 {
			break
		}
		run, err := s.openRole(ctx, cfg, opts, role, docs, store, objects, bus)
		if err != nil {
			return nil, err
		}
		s.runners = append(s.runners, runner{name: string(role), run: run})
	}
	if backlogBus != nil {
		metrics.NotificationsWaiting(reg, func(ctx context.Context) (uint64, uint64, error) {
			ctx, cancel := context.WithTimeout(ctx, time.Second)
			defer cancel()
			return backlogBus.Backlog(ctx)
		})
	}
	return relayBus, nil
}

// openRole builds role's runner over its use cases (docs) and connections.
func (s *Stack) openRole(ctx context.Context, cfg config.Config, opts Options, role Role, docs *document.Service, store *postgres.Store, objects *objectstore.Store, bus *events.Bus) (func(context.Context) error, error) {
	log := opts.logger(string(role))
	switch role {
	case API:
		return s.openAPI(ctx, cfg, opts, docs, store, objects, bus, log)
	case Confirmer:
		return s.openConfirmer(ctx, cfg, docs, objects, bus, log)
	case Sweeper:
		return sweeper.New(docs, bus, SweepConfig(cfg), cfg.SweepInterval, s.Metrics, log).Run, nil
	case Classifier:
		return classifier.New(docs, bus, recoverEvery(cfg.ClassifyRecoveryAfter), s.Metrics, log).Run, nil
	case Scanner:
		return scanner.New(docs, bus, recoverEvery(cfg.ClassifyRecoveryAfter), s.Metrics, log).Run, nil
	}
	return nil, fmt.Errorf("unknown role %q", role)
}

// openConfirmer builds the confirmer, once MINIO_EVENTS' consumer exists,
// and sets the bucket's notification rules, so that MinIO publishes what
// the confirmer takes.
func (s *Stack) openConfirmer(ctx context.Context, cfg config.Config, docs *document.Service, objects *objectstore.Store, bus *events.Bus, log zerolog.Logger) (func(context.Context) error, error) {
	// MinIO must not publish before MINIO_EVENTS and the consumer that
	// keeps what it sends exist.
	if err := bus.CheckConsumer(ctx, events.ConfirmerConsumer); err != nil {
		return nil, err
	}
	rules := objectstore.DefaultNotifications
	if cfg.MinIOEventsConfig != "" {
		var err error
		if rules, err = objectstore.LoadNotifications(cfg.MinIOEventsConfig); err != nil {
			return nil, fmt.Errorf("MINIO_EVENTS_CONFIG: %w", err)
		}
	}
	if err := objects.SetNotifications(ctx, rules); err != nil {
		return nil, fmt.Errorf("bucket notification (is MinIO started with the MINIO_NOTIFY_NATS_*_PRIMARY and _LIVE variables?): %w", err)
	}
	return confirmer.New(docs, bus, cfg.MinIOBucket, s.Metrics, log).Run, nil
}

// openRelay adds the outbox relay, publishing on bus once DOCUMENTS exists:
// one per process that may publish document events.
func (s *Stack) openRelay(ctx context.Context, store *postgres.Store, bus *events.Bus, log zerolog.Logger) error {
	if err := bus.CheckStreams(ctx, events.StreamDocuments); err != nil {
		return err
	}
	relay := events.NewRelay(store, bus, log)
	relay.Metrics = s.Metrics
	s.runners = append(s.runners, runner{name: "relay", run: relay.Run, last: true})
	return nil
}

// connect opens role's object store (checking the bucket) and NATS
// connection, each with role's own credentials.
func (s *Stack) connect(ctx context.Context, cfg config.Config, role Role, natsLog zerolog.Logger) (*objectstore.Store, *events.Bus, error) {
	rc := cfg.Role(string(role))
	if rc == nil {
		return nil, nil, fmt.Errorf("unknown role %q", role)
	}
	objects, err := objectstore.New(objectStoreConfig(cfg, role))
	if err != nil {
		return nil, nil, err
	}
	if err := objects.CheckBucket(ctx); err != nil {
		return nil, nil, fmt.Errorf("MinIO at MINIO_ENDPOINT=%s as the %s: %w", cfg.MinIOEndpoint, role, err)
	}
	// The api's CheckSigners proves its identity with the signers'.
	if role != API {
		if err := objects.CheckIdentity(ctx); err != nil {
			return nil, nil, fmt.Errorf("MinIO identity of the %s: %w", role, err)
		}
	}
	bus, err := events.Open(natsConfig(cfg.NATSURL, string(role), rc.NATSPassword), natsLog, s.Metrics)
	if err != nil {
		return nil, nil, fmt.Errorf("NATS as the %s: %w", role, err)
	}
	s.buses = append(s.buses, bus)
	return objects, bus, nil
}

// natsConfig is how user connects to NATS at url: with its password when
// one is set, and with an inbox prefix of its own, so that no user may
// read another's replies.
func natsConfig(url, user, password string) events.ConnectConfig {
	cc := events.ConnectConfig{URL: url, Name: "docuvault-" + user, InboxPrefix: "_INBOX_" + user}
	if password != "" {
		cc.User, cc.Password = user, password
	}
	return cc
}

// openPprof listens on addr for Go's profiles (net/http/pprof's handlers
// on a mux of their own, never the API's).
func (s *Stack) openPprof(addr string) (func(context.Context) error, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("PPROF_ADDR=%s: %w", addr, err)
	}
	s.pprofLn = ln
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	// No write timeout: a CPU profile answers after the seconds it asks for.
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	return func(ctx context.Context) error {
		errc := make(chan error, 1)
		go func() { errc <- srv.Serve(ln) }()
		select {
		case err := <-errc:
			return err
		case <-ctx.Done():
		}
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
		return nil
	}, nil
}

// openAPI builds the api: it refuses signing identities that could do more
// than their job, and listens.
func (s *Stack) openAPI(ctx context.Context, cfg config.Config, opts Options, docs *document.Service, store *postgres.Store, objects *objectstore.Store, bus *events.Bus, log zerolog.Logger) (func(context.Context) error, error) {
	verifier, err := newVerifier(cfg)
	if err != nil {
		return nil, err
	}
	// Its sweep trigger publishes on SWEEPER, which only setup makes (the
	// relay checks DOCUMENTS).
	if err := bus.CheckStreams(ctx, events.StreamSweeper); err != nil {
		return nil, err
	}
	// The api signs every URL: refuse to sign with identities that would
	// grant a URL's holder more than one PUT or one GET.
	if err := objects.CheckSigners(ctx); err != nil {
		return nil, fmt.Errorf("MinIO signing identities: %w", err)
	}
	ln := opts.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
			return nil, fmt.Errorf("HTTP_ADDR=%s: %w (set HTTP_ADDR to a free address)", cfg.HTTPAddr, err)
		}
		s.ln = ln
	}
	s.APIAddr = ln.Addr()
	srv := api.New(api.Deps{
		Docs:     docs,
		Verifier: verifier,
		Events:   bus,
		Sweeps:   sweeper.NewTrigger(bus),
		Checks: []api.Check{
			{Name: "postgres", Ping: store.Ping},
			{Name: "minio", Ping: objects.Ping},
			{Name: "nats", Ping: bus.Ping},
		},
		Log:                     log,
		MinIOOrigin:             minioOrigin(cfg),
		DevToken:                opts.DevToken,
		DevHosts:                opts.DevHosts,
		Metrics:                 s.Metrics,
		MaxStreams:              int(cfg.MaxEventStreams),
		CORSOrigins:             cfg.CORSOrigins,
		EventsResumeWindow:      cfg.EventsResumeWindow,
		EventsConnectsPerMinute: int(cfg.EventsConnectsPerMinute),
	}, ln, cfg.ReadHeaderTimeout)
	return srv.Run, nil
}

// Run runs the roles and the outbox relay until ctx ends or one of them
// stops, which stops the others, and returns their errors. A role that
// returns by itself, even without an error, is a failure.
func (s *Stack) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The last runners run until the others have returned (or one of them
	// fails), so nothing the roles commit while stopping waits for a claim.
	lastCtx, cancelLast := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelLast()
	var (
		first, last sync.WaitGroup
		mu          sync.Mutex
		errs        []error
	)
	for _, r := range s.runners {
		wg, rctx := &first, ctx
		if r.last {
			wg, rctx = &last, lastCtx
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := r.run(rctx)
			if err == nil && rctx.Err() == nil {
				err = errors.New("stopped unexpectedly")
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("%s: %w", r.name, err))
				mu.Unlock()
				cancelLast()
			}
			cancel()
		}()
	}
	first.Wait()
	cancelLast()
	last.Wait()
	return errors.Join(errs...)
}

// Close releases the stack's connections; call it once Run has returned.
func (s *Stack) Close() {
	if s.ln != nil {
		_ = s.ln.Close() // closed already if the api ran
	}
	if s.pprofLn != nil {
		_ = s.pprofLn.Close() // closed already if it served
	}
	for _, b := range s.buses {
		b.Close()
	}
	if s.pool != nil {
		s.pool.Close()
	}
}

// Setup prepares what the services need and may not create themselves: as
// MinIO's admin, it creates the bucket, each role's identity, the two
// signers and their policies; as NATS user setup, the streams, their
// durable consumers and the sweeper's schedule; then it applies the
// database migrations. It is idempotent; it is `docuvault setup`, and dev,
// the tests and the bench call it before opening a stack.
func Setup(ctx context.Context, cfg config.Config) error {
	if err := cfg.ValidateSetup(); err != nil {
		return err
	}
	admin := objectstore.Credentials{AccessKey: cfg.MinIOAdminAccessKey, SecretKey: cfg.MinIOAdminSecretKey}
	creds := minioCredentials(cfg)
	roles := make(map[string]objectstore.Credentials, len(config.RoleNames))
	for _, role := range config.RoleNames {
		roles[role] = creds[role]
	}
	// The signers' identities are the store config's.
	if err := objectstore.Provision(ctx, objectStoreConfig(cfg, ""), roles, admin); err != nil {
		return fmt.Errorf("MinIO at MINIO_ENDPOINT=%s: %w", cfg.MinIOEndpoint, err)
	}
	if err := SetupStreams(ctx, cfg); err != nil {
		return err
	}
	return Migrate(ctx, cfg)
}

// SetupStreams creates or updates, as NATS user setup, the streams with
// cfg's limits, their durable consumers and the sweeper's schedule.
func SetupStreams(ctx context.Context, cfg config.Config) error {
	nc, js, err := events.Connect(natsConfig(cfg.NATSURL, "setup", cfg.NATSSetupPassword), zerolog.Nop())
	if err != nil {
		return fmt.Errorf("NATS at NATS_URL=%s as setup: %w", cfg.NATSURL, err)
	}
	defer nc.Close()
	return events.Setup(ctx, js, StreamLimits(cfg), cfg.SweepInterval)
}

// StreamLimits are the streams' limits cfg sets.
func StreamLimits(cfg config.Config) events.StreamLimits {
	return events.StreamLimits{
		MinIOMaxBytes: cfg.NATSMinIOEventsMaxBytes, MinIOMaxAge: cfg.NATSMinIOEventsMaxAge,
		DocumentsMaxBytes: cfg.NATSDocumentsMaxBytes, DocumentsMaxAge: cfg.NATSDocumentsMaxAge,
		DocumentsMaxPerSubject: cfg.NATSDocumentsMaxPerSubject,
		Replicas:               int(cfg.NATSStreamReplicas),
	}
}

// Migrate applies the database migrations to cfg's database.
func Migrate(ctx context.Context, cfg config.Config) error {
	if cfg.DatabaseURL == "" {
		return errors.New("DATABASE_URL is required")
	}
	pool, err := postgres.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("DATABASE_URL: %w", err)
	}
	defer pool.Close()
	return postgres.Migrate(ctx, pool)
}

// SweepConfig is what a sweep removes, as cfg says.
func SweepConfig(cfg config.Config) document.SweepConfig {
	return document.SweepConfig{
		PendingTTL:        cfg.PendingTTL,
		RejectedRetention: cfg.RejectedRetention,
		BatchSize:         int(cfg.SweepBatchSize),
		ReconcileKeys:     int(cfg.ReconcileKeys),
		ReconcilePeriod:   cfg.ReconcilePeriod,
		LedgerReportOnly:  !cfg.LedgerRepair,
	}
}

// clamd is the client of the clamd cfg names (CLAMD_ADDRESS: a path is
// its local socket), sending at most SCAN_MAX_BYTES.
func clamd(cfg config.Config) *clamav.Client {
	network := "tcp"
	if strings.HasPrefix(cfg.ClamdAddress, "/") {
		network = "unix"
	}
	return &clamav.Client{Network: network, Address: cfg.ClamdAddress, Timeout: scanner.HandleTimeout, MaxBytes: cfg.ScanMaxBytes}
}

// clamdScanner is a clamav.Client as the use cases' MalwareScanner: a
// stream over what clamd takes, or one it could not scan whole (its
// limits, with AlertExceedsMax), is a failure, neither clean nor infected.
type clamdScanner struct{ c *clamav.Client }

func (s clamdScanner) Scan(ctx context.Context, r io.Reader) (document.ScanVerdict, error) {
	v, err := s.c.Scan(ctx, r)
	switch {
	case errors.Is(err, clamav.ErrTooLarge):
		return document.ScanVerdict{Failure: document.ScanTooLarge}, nil
	case err != nil:
		return document.ScanVerdict{}, err
	case v.LimitsExceeded:
		return document.ScanVerdict{Failure: document.ScanLimitsExceeded}, nil
	}
	return document.ScanVerdict{Infected: v.Infected, Signature: v.Signature}, nil
}

// recoverEvery is the stages' pause between recovery passes: a
// quarter of CLASSIFY_RECOVERY_AFTER, so a document waits at most a
// quarter longer than that, but at most 15 s, so that a long delay does
// not slow the passes that follow a backlog down (each takes a bounded
// batch).
func recoverEvery(after time.Duration) time.Duration {
	if after <= 0 {
		after = document.DefaultClassifyRecoveryAfter
	}
	return min(after/4, 15*time.Second)
}

// objectStoreConfig is the object store cfg describes, acting as role (""
// for none: setup's): its endpoints, its bucket, role's identity and the
// signers (which only the api's config holds).
func objectStoreConfig(cfg config.Config, role Role) objectstore.Config {
	creds := minioCredentials(cfg)
	return objectstore.Config{
		Endpoint:       cfg.MinIOEndpoint,
		PublicEndpoint: cfg.MinIOPublicEndpoint,
		Service:        creds[string(role)],
		Role:           string(role),
		Upload:         creds[config.UploadSigner],
		Download:       creds[config.DownloadSigner],
		Bucket:         cfg.MinIOBucket,
		Region:         cfg.MinIORegion,
		UseTLS:         cfg.MinIOUseTLS,
		PublicUseTLS:   cfg.MinIOPublicUseTLS,
	}
}

// minioCredentials are the keys of every MinIO identity cfg holds
// (config.MinIOIdentities), by name.
func minioCredentials(cfg config.Config) map[string]objectstore.Credentials {
	creds := make(map[string]objectstore.Credentials)
	for _, id := range cfg.MinIOIdentities() {
		creds[id.Name] = objectstore.Credentials{AccessKey: *id.AccessKey, SecretKey: *id.SecretKey}
	}
	return creds
}

// minioOrigin is the origin browsers upload to.
func minioOrigin(cfg config.Config) string {
	host := cfg.MinIOPublicEndpoint
	if host == "" {
		host = cfg.MinIOEndpoint
	}
	if cfg.MinIOPublicUseTLS {
		return "https://" + host
	}
	return "http://" + host
}

// newVerifier checks tokens signed with JWT_SECRET and with the keys of
// JWT_PUBLIC_KEYS_FILE, whichever are set.
func newVerifier(cfg config.Config) (*auth.Verifier, error) {
	ac := auth.Config{Secret: []byte(cfg.JWTSecret), Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience, Leeway: cfg.JWTLeeway}
	if cfg.JWTPublicKeysFile != "" {
		data, err := os.ReadFile(cfg.JWTPublicKeysFile)
		if err != nil {
			return nil, fmt.Errorf("JWT_PUBLIC_KEYS_FILE: %w", err)
		}
		if ac.PublicKeys, err = auth.ParsePublicKeys(data); err != nil {
			return nil, fmt.Errorf("JWT_PUBLIC_KEYS_FILE %s: %w", cfg.JWTPublicKeysFile, err)
		}
	}
	v, err := auth.NewVerifier(ac)
	if err != nil {
		return nil, fmt.Errorf("JWT_SECRET: %w", err)
	}
	return v, nil
}
