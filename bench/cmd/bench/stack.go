package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/minio/minio-go/v7"
	minioCreds "github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/internal/devstack"
	root "github.com/docuvault/docuvault/services/docuvault/stack"
	"github.com/docuvault/docuvault/shared/auth"
	"github.com/docuvault/docuvault/shared/config"
	"github.com/docuvault/docuvault/shared/events"
	"github.com/docuvault/docuvault/shared/logging"
	"github.com/docuvault/docuvault/shared/objectstore"
	"github.com/docuvault/docuvault/shared/postgres"
)

// Buckets of the two reference systems. Neither has bucket notifications,
// so MinIO does for them exactly what a plain S3 PUT costs.
const (
	rawBucket  = "bench-raw"
	tusdBucket = "bench-tusd"
)

// numUsers is how many distinct users the harness mints tokens for.
const numUsers = 256

// harnessRole is the PostgreSQL role of the harness's own connections, so
// that pg_stat_statements tells its statements from the services'.
const harnessRole = "bench_harness"

// pgSettings are the bench's PostgreSQL settings beyond initdb's defaults:
// pg_stat_statements counts every statement, nested ones too.
var pgSettings = []string{"shared_preload_libraries=pg_stat_statements", "pg_stat_statements.track=all"}

// stack is the real DocuVault stack on this machine, every server in a
// process of its own: PostgreSQL and MinIO from devstack; NATS (devstack's
// embedded server) and tusd (on the same MinIO, for comparison) in this
// binary re-executed; the api, the confirmer and the sweeper as the real
// `docuvault` binary, one process per role, as deployed.
type stack struct {
	dir  string    // temp dir holding every server's state and the logs
	bin  string    // the docuvault binary
	base *baseline // the baseline's stack (-baseline), or nil: this tree's
	ds   *devstack.Stack
	env  map[string]string // the settings, as the environment of every `docuvault` child
	cfg  config.Config
	log  zerolog.Logger
	logW io.WriteCloser

	apiURL    string // http://127.0.0.1:port of the api child
	api       *child
	confirmer *child
	sweeper   *child
	nats      *child
	tusd      *child
	services  []*child // api, confirmer, sweeper
	closers   []func()
	pids      [numProcs]int // the processes whose CPU the harness counts

	// svc is a stack with no role from the composition root, never run:
	// its Docs are the use cases the sweeper workload calls directly.
	svc      *root.Stack
	h        *harness      // the harness's own connections (pool, objects, JetStream)
	mc       *minio.Client // admin client on MinIO
	presign  *minio.Client // signs raw presigned PUTs
	authCfg  auth.Config
	users    []uuid.UUID // users[i] is client i's user
	tokens   []string
	hotUser  uuid.UUID
	hotToken string
	admin    string // an admin token

	tusURL string // http://127.0.0.1:port/files/ of the tusd child

	client *http.Client // one keep-alive client for every request the load makes

	// ownXacts counts the transactions the harness itself runs while it
	// measures (polls, statistics reads), to take them out of the counts.
	ownXacts atomic.Int64
}

// freePorts returns n distinct free TCP ports on 127.0.0.1.
func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// startStack starts everything. repo is the repository root (it holds
// bin/minio); bin is the docuvault binary. base is nil for this tree's
// stack; for the baseline's (bin is base.bin), what only this tree's code
// can drive is left out: tusd (compared with this tree only) and the
// in-process use cases of the sweeper workload.
func startStack(ctx context.Context, repo, bin string, base *baseline, o options) (_ *stack, err error) {
	dir, err := os.MkdirTemp("", "dvb-")
	if err != nil {
		return nil, err
	}
	// PostgreSQL runs as the postgres user when we are root: it must be
	// able to enter the directory.
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	s := &stack{dir: dir, bin: bin, base: base}
	defer func() {
		if err != nil {
			s.stop(o.keep)
		}
	}()
	lf, err := os.Create(filepath.Join(dir, "harness.log"))
	if err != nil {
		return nil, err
	}
	s.logW = lf
	if s.log, err = logging.New(lf, "bench", "info", "json"); err != nil {
		return nil, err
	}
	s.client = &http.Client{
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        0,
			MaxIdleConnsPerHost: 2048,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
		Timeout: 3 * time.Minute,
	}
	ports, err := freePorts(4)
	if err != nil {
		return nil, err
	}
	// NATS first, in its own process: devstack then uses it as an
	// external server (MinIO's notification target, the streams).
	natsAddr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	if s.nats, err = s.startNATSChild(ctx, natsAddr); err != nil {
		return nil, err
	}
	s.ds, err = devstack.Start(ctx, devstack.Options{
		DataDir:          filepath.Join(dir, "data"),
		ExternalNATSAddr: natsAddr,
		MinIOAddr:        fmt.Sprintf("127.0.0.1:%d", ports[1]),
		MinIOConsoleAddr: fmt.Sprintf("127.0.0.1:%d", ports[2]),
		MinIOBin:         filepath.Join(repo, "bin", "minio"),
		PGPort:           ports[3],
		PGSettings:       pgSettings,
		Log:              s.log,
	})
	if err != nil {
		return nil, fmt.Errorf("devstack: %w", err)
	}

	// Every setting goes through the environment, read by config.Load over
	// config.Defaults(): the same map starts every `docuvault` child, and a
	// setting this version of the code does not know is simply ignored.
	// Quotas, sizes and per-user upload limits are raised so that they
	// never interfere with a benchmark.
	huge := strconv.FormatInt(1<<50, 10)
	dbURL := s.ds.DatabaseURL
	if o.poolMaxConns > 0 {
		dbURL = withPoolMaxConns(dbURL, o.poolMaxConns)
	}
	s.env = map[string]string{
		"DATABASE_URL":   dbURL,
		"MINIO_ENDPOINT": s.ds.MinIOEndpoint,
		// The signers, as `docuvault setup` makes them (below).
		"MINIO_UPLOAD_ACCESS_KEY":   "bench-upload",
		"MINIO_UPLOAD_SECRET_KEY":   randomHex(16),
		"MINIO_DOWNLOAD_ACCESS_KEY": "bench-download",
		"MINIO_DOWNLOAD_SECRET_KEY": randomHex(16),
		"NATS_URL":                  s.ds.NATSURL,
		"JWT_SECRET":                randomHex(32),
		"MAX_UPLOAD_BYTES":          strconv.FormatInt(1<<40, 10),
		"QUOTA_DEFAULT_BYTES":       huge,
		"UPLOAD_RATE_PER_MINUTE":    "1000000000",
		"MAX_PENDING_UPLOADS":       "1000000000",
		"DELETE_RATE_PER_MINUTE":    "1000000000",
		"STORAGE_RATE_PER_MINUTE":   "1000000000",
		"SWEEP_INTERVAL":            "24h", // no scheduled sweep during the run; workload 5 sweeps on purpose
		"LOG_LEVEL":                 "info",
		"LOG_FORMAT":                "json",
	}
	// Each role its own identity, as `docuvault setup` makes them (below).
	for _, role := range config.RoleNames {
		s.env["MINIO_"+strings.ToUpper(role)+"_ACCESS_KEY"] = "bench-" + role
		s.env["MINIO_"+strings.ToUpper(role)+"_SECRET_KEY"] = randomHex(16)
	}
	for k, v := range s.env {
		os.Setenv(k, v)
	}
	if s.cfg, err = config.Load(); err != nil {
		return nil, err
	}
	if err := s.cfg.Validate(config.RoleNames...); err != nil {
		return nil, err
	}
	// MinIO's root user makes the bucket and the identities, through
	// `docuvault setup`; the services never hold it.
	if err := s.setup(ctx); err != nil {
		return nil, err
	}
	harnessURL, err := preparePostgres(ctx, s.ds.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL: %w", err)
	}

	// The harness's own connections.
	if s.h, err = openHarness(ctx, s.cfg, harnessURL, s.ds); err != nil {
		return nil, err
	}
	s.closers = append(s.closers, s.h.close)
	// The use cases, for the sweeper workload's direct sweep: a stack with
	// no role runs nothing (no consumer, no relay) in this process; its
	// use cases act with the sweeper's credentials.
	if base == nil {
		s.svc, err = root.Open(ctx, s.cfg, root.Options{
			As: root.Sweeper,
			Log: func(service string) zerolog.Logger {
				l, _ := logging.New(lf, service, s.cfg.LogLevel, s.cfg.LogFormat)
				return l
			},
		})
		if err != nil {
			return nil, fmt.Errorf("composition root: %w", err)
		}
		s.closers = append(s.closers, s.svc.Close)
	}

	// The services: the real binary, one process per role, as deployed.
	if s.api, err = s.startDocuVault(ctx, root.API, "api", nil); err != nil {
		return nil, err
	}
	s.services = append(s.services, s.api)
	s.apiURL = s.api.url
	if s.confirmer, err = s.startDocuVault(ctx, root.Confirmer, "confirmer", nil); err != nil {
		return nil, err
	}
	s.services = append(s.services, s.confirmer)
	if s.sweeper, err = s.startDocuVault(ctx, root.Sweeper, "sweeper", nil); err != nil {
		return nil, err
	}
	s.services = append(s.services, s.sweeper)

	// The harness itself acts as MinIO's root user: it makes the other
	// systems' buckets and seeds and empties buckets.
	if s.mc, err = minio.New(s.ds.MinIOEndpoint, &minio.Options{
		Creds: minioCreds.NewStaticV4(s.ds.MinIOAccessKey, s.ds.MinIOSecretKey, ""), Region: s.cfg.MinIORegion,
	}); err != nil {
		return nil, err
	}
	for _, b := range []string{rawBucket, notifyBucket, tusdBucket} {
		if err := s.mc.MakeBucket(ctx, b, minio.MakeBucketOptions{Region: s.cfg.MinIORegion}); err != nil {
			return nil, fmt.Errorf("make bucket %s: %w", b, err)
		}
	}
	rootUser := objectstore.Credentials{AccessKey: s.ds.MinIOAccessKey, SecretKey: s.ds.MinIOSecretKey}
	notify, err := objectstore.New(objectstore.Config{Endpoint: s.ds.MinIOEndpoint, Service: rootUser, Bucket: notifyBucket, Region: s.cfg.MinIORegion})
	if err != nil {
		return nil, err
	}
	if err := notify.SetNotifications(ctx, objectstore.DefaultNotifications); err != nil {
		return nil, fmt.Errorf("notifications on %s: %w", notifyBucket, err)
	}
	// Presigning with the region set never touches the network.
	if s.presign, err = minio.New(s.ds.MinIOEndpoint, &minio.Options{
		Creds: minioCreds.NewStaticV4(s.ds.MinIOAccessKey, s.ds.MinIOSecretKey, ""), Region: s.cfg.MinIORegion,
	}); err != nil {
		return nil, err
	}

	s.authCfg = auth.Config{Secret: []byte(s.cfg.JWTSecret), Issuer: s.cfg.JWTIssuer, Audience: s.cfg.JWTAudience}
	mint := func(u uuid.UUID, role auth.Role) string {
		tok, err2 := auth.Mint(s.authCfg, auth.Principal{UserID: u, Role: role}, 24*time.Hour, time.Now())
		if err2 != nil {
			err = err2
		}
		return tok
	}
	for range numUsers {
		u := uuid.New()
		s.users = append(s.users, u)
		s.tokens = append(s.tokens, mint(u, auth.RoleUser))
	}
	s.hotUser = uuid.New()
	s.hotToken = mint(s.hotUser, auth.RoleUser)
	s.admin = mint(uuid.New(), auth.RoleAdmin)
	if err != nil {
		return nil, err
	}

	if base == nil {
		if s.tusd, err = s.startTusdChild(ctx, o.tusdPartUploads); err != nil {
			return nil, err
		}
		s.tusURL = s.tusd.url
	}
	s.findPIDs()
	return s, nil
}

// preparePostgres makes, as the superuser of dbURL, the harness's own
// role (a superuser too, on trust authentication like the cluster's) and
// the pg_stat_statements extension, and returns the URL that connects as
// that role.
func preparePostgres(ctx context.Context, dbURL string) (string, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	for _, q := range []string{
		`CREATE ROLE ` + harnessRole + ` LOGIN SUPERUSER`,
		`CREATE EXTENSION IF NOT EXISTS pg_stat_statements`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			return "", fmt.Errorf("%s: %w", q, err)
		}
	}
	u, err := url.Parse(dbURL)
	if err != nil {
		return "", err
	}
	u.User = url.User(harnessRole)
	return u.String(), nil
}

// stop stops everything that started, in reverse order: the services
// first, NATS last (MinIO's notifications go to it until MinIO stops).
func (s *stack) stop(keep bool) {
	for _, c := range []*child{s.tusd, s.sweeper, s.confirmer, s.api} {
		if c != nil {
			c.stop()
		}
	}
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	if s.ds != nil {
		if err := s.ds.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "stopping the stack:", err)
		}
	}
	if s.nats != nil {
		s.nats.stop()
	}
	if s.logW != nil {
		s.logW.Close()
	}
	if keep {
		fmt.Fprintln(os.Stderr, "kept", s.dir)
	} else if s.dir != "" {
		_ = os.RemoveAll(s.dir)
	}
}

// serviceError returns an error if a service's process has exited.
func (s *stack) serviceError() error {
	var errs []error
	for _, c := range append(s.services, s.tusd, s.nats) {
		if c != nil {
			errs = append(errs, c.alive())
		}
	}
	return errors.Join(errs...)
}

// waitReady polls url until it answers 200.
func waitReady(ctx context.Context, c *http.Client, url string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := c.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s: %s", url, resp.Status)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v: %w", within, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// emptyBucket removes every object of bucket.
func (s *stack) emptyBucket(ctx context.Context, bucket string) error {
	objs := s.mc.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true})
	var listErr error
	keys := make(chan minio.ObjectInfo, 1000)
	go func() {
		defer close(keys)
		for o := range objs {
			if o.Err != nil {
				listErr = o.Err
				continue
			}
			keys <- o
		}
	}()
	var errs []error
	for e := range s.mc.RemoveObjects(ctx, bucket, keys, minio.RemoveObjectsOptions{}) {
		errs = append(errs, e.Err)
	}
	// Drain the lister if RemoveObjects stopped early.
	for range keys {
	}
	return errors.Join(append(errs, listErr)...)
}

// notifications turns the documents bucket's notification rules off or
// back on (the rules the confirmer applies at start).
func (s *stack) notifications(ctx context.Context, on bool) error {
	if on {
		return s.h.Objects.SetNotifications(ctx, objectstore.DefaultNotifications)
	}
	return s.mc.RemoveAllBucketNotification(ctx, s.cfg.MinIOBucket)
}

// wipeDocuments deletes every document row and every object of the
// documents bucket, once the event path is idle.
func (s *stack) wipeDocuments(ctx context.Context) error {
	_, _ = s.waitIdle(ctx, 0, 20*time.Second)
	if _, err := s.h.Pool.Exec(ctx, `DELETE FROM documents`); err != nil {
		return err
	}
	if _, err := s.h.Pool.Exec(ctx, `VACUUM ANALYZE documents`); err != nil {
		return err
	}
	return s.emptyBucket(ctx, s.cfg.MinIOBucket)
}

// withPoolMaxConns sets pgxpool's pool_max_conns on a postgres:// URL.
func withPoolMaxConns(dbURL string, n int) string {
	u, err := url.Parse(dbURL)
	if err != nil {
		return dbURL
	}
	q := u.Query()
	q.Set("pool_max_conns", strconv.Itoa(n))
	u.RawQuery = q.Encode()
	return u.String()
}

// harness is the bench's own connections, for seeding and measuring: the
// database (as harnessRole, at dbURL), JetStream and the documents bucket
// as MinIO's root user. The services never share them.
type harness struct {
	Pool    *pgxpool.Pool
	Store   *postgres.Store
	JS      jetstream.JetStream
	Objects *objectstore.Store
	nc      *nats.Conn
}

func openHarness(ctx context.Context, cfg config.Config, dbURL string, ds *devstack.Stack) (*harness, error) {
	h := &harness{}
	var err error
	if h.Pool, err = postgres.Open(ctx, dbURL); err != nil { // declares the accounting version, as the roles do
		return nil, err
	}
	h.Store = postgres.NewStore(h.Pool, cfg.QuotaDefaultBytes)
	if h.nc, h.JS, err = events.Connect(events.ConnectConfig{URL: cfg.NATSURL, Name: "bench-harness"}, zerolog.Nop()); err != nil {
		h.close()
		return nil, err
	}
	rootUser := objectstore.Credentials{AccessKey: ds.MinIOAccessKey, SecretKey: ds.MinIOSecretKey}
	if h.Objects, err = objectstore.New(objectstore.Config{Endpoint: ds.MinIOEndpoint, Service: rootUser, Bucket: cfg.MinIOBucket, Region: cfg.MinIORegion}); err != nil {
		h.close()
		return nil, err
	}
	return h, nil
}

func (h *harness) close() {
	if h.nc != nil {
		h.nc.Close()
	}
	h.Pool.Close()
}
