// Package apitest starts DocuVault's services on real PostgreSQL, MinIO and
// NATS for end-to-end tests, and speaks the HTTP API for them.
package apitest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/minio/minio-go/v7"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/internal/testenv"
	"github.com/docuvault/docuvault/services/confirmer"
	"github.com/docuvault/docuvault/services/docuvault/stack"
	"github.com/docuvault/docuvault/shared/auth"
	"github.com/docuvault/docuvault/shared/config"
	"github.com/docuvault/docuvault/shared/document"
	"github.com/docuvault/docuvault/shared/events"
	"github.com/docuvault/docuvault/shared/objectstore"
	"github.com/docuvault/docuvault/shared/postgres"
)

// Stack is DocuVault's API (and, with Options.Events, its confirmer) running
// on real PostgreSQL, MinIO and NATS JetStream, for one test. Each role runs
// as a process would: a stack.Stack of its own from the composition root,
// with its own connections and metrics.
type Stack struct {
	URL  string
	Cfg  config.Config
	NATS *testenv.NATSServer // the test's own server; nil with Options.NATS
	// NATSURL is what the roles connect to: NATS.URL, or with Options.NATS
	// the comma-separated URLs of every node.
	NATSURL string
	MinIO   *testenv.MinIOServer
	DB      *pgxpool.Pool
	Bucket  string
	// API is the running api's stack.
	API *stack.Stack
	// Confirmer is the running confirmer's stack, with Options.Events;
	// RestartConfirmer replaces it.
	Confirmer *stack.Stack
	// Sweepers are the running sweeper replicas, with Options.Sweepers.
	Sweepers []*stack.Stack
	// Classifiers are the running classifier replicas, with Options.Classifiers.
	Classifiers []*stack.Stack
	// Scanners are the running scanner replicas, with Options.Scanners.
	Scanners []*stack.Stack

	minio  *minio.Client
	client *http.Client

	ctx           context.Context // ends with the test
	log           zerolog.Logger
	stopConfirmer context.CancelFunc
	confirmerDone <-chan error // the running confirmer's Run result
}

// Options shape a Stack.
type Options struct {
	// Edit changes the configuration before the services start.
	Edit func(*config.Config)
	// MinIO is the server to use; nil means the process-wide one, or with
	// Events a server of the test's own.
	MinIO *testenv.MinIOServer
	// Events starts MinIO with notifications to the test's NATS (queued on
	// disk while NATS is down) and runs the confirmer.
	Events bool
	// Sweepers is how many sweeper replicas to run.
	Sweepers int
	// Classifiers is how many classifier replicas to run.
	Classifiers int
	// Clamd, when set, is the clamd the scanners use: scanning is then
	// required (SCAN_REQUIRED), with SCAN_MAX_BYTES its StreamMaxLength,
	// unless Edit changes them.
	Clamd *testenv.ClamAVServer
	// Scanners is how many scanner replicas to run (with Clamd).
	Scanners int
	// NATS, when set, are the NATS servers the stack uses instead of a
	// server of its own, such as the nodes of a testenv.NATSCluster: every
	// role connects to all of them (NATS_URL lists their URLs) and
	// NATS_STREAM_REPLICAS is their number, unless Edit changes it.
	NATS []*testenv.NATSServer
	// MinIOTargets, with Events and NATS, are the indexes in NATS of the
	// nodes MinIO's PRIMARY and LIVE notification targets publish to. A
	// target takes one host:port; its client learns the other nodes from
	// the server it reaches. The zero value sends both to NATS[0].
	MinIOTargets [2]int
	// NATSConf, when set, is a NATS server started from nats.conf that the
	// stack uses instead of a server of its own: setup connects as user
	// setup, each role as the user named after it, MinIO's notification
	// targets as user minio, each with its password.
	NATSConf *NATSConf
}

// NATSConf is a NATS server with nats.conf's users.
type NATSConf struct {
	Addr string // host:port
	// Passwords are the users' passwords: api, confirmer, sweeper,
	// classifier, setup and minio.
	Passwords map[string]string
}

// Start starts the stack with a fresh database, bucket and NATS server.
func Start(tb testing.TB, opts Options) *Stack {
	tb.Helper()
	dsn := testenv.Postgres(tb)
	var ns *testenv.NATSServer
	nodes, replicas := opts.NATS, 1
	switch {
	case opts.NATSConf != nil:
	case len(nodes) == 0:
		ns = testenv.NATS(tb)
		nodes = []*testenv.NATSServer{ns}
	default:
		replicas = len(nodes)
	}
	urls := make([]string, len(nodes))
	for i, n := range nodes {
		urls[i] = n.URL
	}
	natsURL := strings.Join(urls, ",")
	if opts.NATSConf != nil {
		natsURL = "nats://" + opts.NATSConf.Addr
	}
	mi := opts.MinIO
	switch {
	case mi != nil:
	case opts.Events && opts.NATSConf != nil:
		mi = testenv.StartMinIO(tb, testenv.MinIOOptions{Env: objectstore.NATSTarget{
			Address: opts.NATSConf.Addr, Subject: events.SubjectMinIO, QueueDir: tb.TempDir(),
			Username: "minio", Password: opts.NATSConf.Passwords["minio"],
		}.ServerEnv()})
	case opts.Events:
		// MinIO publishes to the stream, which must exist first: it does
		// once the confirmer set the bucket's notifications, after
		// mustSetup below.
		mi = testenv.StartMinIO(tb, testenv.MinIOOptions{Env: minioNATSEnv(tb, nodes, opts.MinIOTargets)})
	default:
		mi = testenv.MinIO(tb)
	}
	bucket := mi.NewBucket(tb)
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)

	cfg := config.Defaults()
	cfg.DatabaseURL = dsn
	cfg.MinIOEndpoint = mi.Endpoint
	cfg.MinIOBucket = bucket
	cfg.MinIORegion = mi.Region
	cfg.JWTSecret = hex.EncodeToString(secret)
	cfg.NATSURL = natsURL
	cfg.NATSStreamReplicas = int64(replicas)
	if opts.NATSConf != nil {
		for _, role := range config.RoleNames {
			cfg.Role(role).NATSPassword = opts.NATSConf.Passwords[role]
		}
		cfg.NATSSetupPassword = opts.NATSConf.Passwords["setup"]
	}
	SetIdentities(tb, &cfg, mi)
	if opts.Clamd != nil {
		cfg.ClamdAddress, cfg.ScanRequired, cfg.ScanMaxBytes = opts.Clamd.Addr, true, opts.Clamd.StreamMaxLength
	}
	if !opts.Events {
		// No notification comes: a confirm has nothing to wait for.
		cfg.ConfirmWait = 0
	}
	if opts.Edit != nil {
		opts.Edit(&cfg)
	}
	// Setup again, as an operator would after changing a setting: the
	// streams' limits and the sweeper's schedule are setup's.
	mustSetup(tb, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	log := zerolog.New(zerolog.NewTestWriter(tb)).Level(zerolog.WarnLevel)
	s := &Stack{
		Cfg:     cfg,
		NATS:    ns,
		NATSURL: cfg.NATSURL,
		MinIO:   mi,
		Bucket:  bucket,
		minio:   mi.Client(tb),
		client:  &http.Client{Timeout: 30 * time.Second},
		ctx:     ctx,
		log:     log,
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s.URL = "http://" + ln.Addr().String()
	var running []<-chan error // each started stack's Run result
	var apiDone <-chan error
	s.API, apiDone = s.start(tb, ctx, stack.Options{Roles: []stack.Role{stack.API}, Listener: ln}, 0)
	running = append(running, apiDone)
	if opts.Events {
		s.startConfirmer(tb)
	} else {
		idle := make(chan error, 1)
		idle <- nil
		s.confirmerDone = idle
	}
	for i := range opts.Sweepers {
		sw, done := s.start(tb, ctx, stack.Options{Roles: []stack.Role{stack.Sweeper}}, i)
		s.Sweepers, running = append(s.Sweepers, sw), append(running, done)
	}
	for i := range opts.Classifiers {
		c, done := s.start(tb, ctx, stack.Options{Roles: []stack.Role{stack.Classifier}}, i)
		s.Classifiers, running = append(s.Classifiers, c), append(running, done)
	}
	for i := range opts.Scanners {
		c, done := s.start(tb, ctx, stack.Options{Roles: []stack.Role{stack.Scanner}}, i)
		s.Scanners, running = append(s.Scanners, c), append(running, done)
	}
	s.DB, err = postgres.Open(context.Background(), dsn) // declares the accounting version, as the roles do
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		cancel()
		if err := <-s.confirmerDone; err != nil {
			tb.Errorf("confirmer: %v", err)
		}
		for _, done := range running {
			if err := <-done; err != nil {
				tb.Errorf("%v", err)
			}
		}
		s.DB.Close()
	})
	return s
}

// start opens a stack with opts (replica numbers its logs) from the
// composition root and runs it until ctx ends; the stack closes once its
// Run has returned, and done then yields Run's error.
func (s *Stack) start(tb testing.TB, ctx context.Context, opts stack.Options, replica int) (st *stack.Stack, done <-chan error) {
	tb.Helper()
	opts.Registry = prometheus.NewRegistry()
	if slices.Contains(opts.Roles, stack.API) && opts.Listener == nil {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatal(err)
		}
		opts.Listener = ln
	}
	opts.Log = func(service string) zerolog.Logger {
		return s.log.With().Str("service", service).Int("replica", replica).Logger()
	}
	st, err := stack.Open(ctx, s.Cfg, opts)
	if err != nil {
		tb.Fatalf("start %v: %v", opts.Roles, err)
	}
	result := make(chan error, 1)
	go func() {
		err := st.Run(ctx)
		st.Close()
		result <- err
	}()
	return st, result
}

// StartRole starts another process of role on the stack's configuration,
// as a replica would run; stop stops it (its Run returns after the messages
// in hand) and returns Run's error. It is stopped when the test ends if the
// test did not.
func (s *Stack) StartRole(tb testing.TB, role stack.Role) (st *stack.Stack, stop func() error) {
	tb.Helper()
	ctx, cancel := context.WithCancel(s.ctx)
	st, done := s.start(tb, ctx, stack.Options{Roles: []stack.Role{role}}, 0)
	var (
		once sync.Once
		err  error
	)
	stop = func() error {
		once.Do(func() {
			cancel()
			err = <-done
		})
		return err
	}
	tb.Cleanup(func() {
		if err := stop(); err != nil {
			tb.Errorf("%s: %v", role, err)
		}
	})
	return st, stop
}

// Count returns the value of a counter of a stack's metrics, e.g.
// Count(s.Confirmer.Metrics.Confirms.WithLabelValues("event", "uploaded")).
func Count(c prometheus.Collector) int64 {
	return int64(testutil.ToFloat64(c))
}

// ConfirmerCounts returns what a confirmer's metrics say it did with the
// notifications' records: confirmed, already (settled before), rejected,
// unknown (no pending upload), ignored (another bucket), removed (objects
// of no live document), reconciled (charged documents' replaced objects),
// and the messages retried and terminated.
func ConfirmerCounts(st *stack.Stack) map[string]int64 {
	m := st.Metrics
	door := func(outcome document.ConfirmOutcome) int64 {
		return Count(m.Confirms.WithLabelValues("event", string(outcome)))
	}
	return map[string]int64{
		"confirmed":  door(document.OutcomeUploaded),
		"already":    door(document.OutcomeAlready),
		"rejected":   door(document.OutcomeRejected),
		"unknown":    door("unknown"),
		"ignored":    door("ignored"),
		"removed":    door(document.StrayUnknown) + door(document.StrayRejected),
		"reconciled": door(document.StrayReconciled) + door(document.StrayOverQuota),
		"retried":    Count(m.Retries.WithLabelValues(confirmer.ConsumerName)),
		"terminated": Count(m.Terminated.WithLabelValues(confirmer.ConsumerName)),
	}
}

// SetIdentities gives cfg MinIO identities of its own (each role's, the
// upload signer's, the download signer's), made on mi by stack.Setup with
// its root user, as `docuvault setup` makes them, which also sets up the
// streams on cfg's NATS; the services never hold the root user. cfg's
// database, NATS, bucket and region must be set.
func SetIdentities(tb testing.TB, cfg *config.Config, mi *testenv.MinIOServer) {
	tb.Helper()
	cfg.MinIOEndpoint = mi.Endpoint
	tag := randomHex(6)
	for _, id := range cfg.MinIOIdentities() {
		*id.AccessKey, *id.SecretKey = "t"+tag+"-"+id.Name, randomHex(16)
	}
	setup := *cfg
	setup.MinIOAdminAccessKey, setup.MinIOAdminSecretKey = mi.AccessKey, mi.SecretKey
	// Setup makes six MinIO identities one IAM call after another; with
	// a package's tests doing the same on one MinIO under -race, that took
	// over 30 s once on this machine.
	began := time.Now()
	err := whileClusterSettles(func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		return stack.Setup(ctx, setup)
	})
	if err != nil {
		tb.Fatalf("docuvault setup (%s): %v", time.Since(began).Round(time.Millisecond), err)
	}
	if took := time.Since(began); took > 10*time.Second {
		tb.Logf("docuvault setup took %s", took.Round(time.Millisecond))
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// startConfirmer starts a confirmer and runs it until the test ends or
// RestartConfirmer stops it.
func (s *Stack) startConfirmer(tb testing.TB) {
	tb.Helper()
	ctx, stop := context.WithCancel(s.ctx)
	s.stopConfirmer = stop
	idle := make(chan error, 1)
	idle <- nil // until it runs: a failed start reports itself
	s.confirmerDone = idle
	s.Confirmer, s.confirmerDone = s.start(tb, ctx, stack.Options{Roles: []stack.Role{stack.Confirmer}}, 0)
}

// RestartConfirmer stops the running confirmer as a deploy would (its Run
// returns after the messages in hand, its connections close) and starts a
// new one with the same configuration. Call it from the test's goroutine,
// with Options.Events.
func (s *Stack) RestartConfirmer(tb testing.TB) {
	tb.Helper()
	if s.Confirmer == nil {
		tb.Fatal("RestartConfirmer: no confirmer runs (Options.Events)")
	}
	s.stopConfirmer()
	if err := <-s.confirmerDone; err != nil {
		tb.Errorf("confirmer: %v", err)
	}
	s.startConfirmer(tb)
}

// mustSetup does what `docuvault setup` does on NATS (stack.SetupStreams:
// the streams with cfg's limits and replicas, the durable consumers, the
// sweep schedule every cfg.SweepInterval) on the servers at cfg.NATSURL:
// the roles only bind to them.
func mustSetup(tb testing.TB, cfg config.Config) {
	tb.Helper()
	if err := whileClusterSettles(func() error { return stack.SetupStreams(context.Background(), cfg) }); err != nil {
		tb.Fatal(err)
	}
}

// whileClusterSettles calls setup until it succeeds, for up to 30 s: a
// cluster just started may not yet see every peer online, and refuses to
// place a replicated stream until it does ("no suitable peers for
// placement").
func whileClusterSettles(setup func() error) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := setup()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// minioNATSEnv is the environment of a MinIO server whose PRIMARY target
// (queued on disk) publishes to nodes[targets[0]] and whose LIVE target
// publishes to nodes[targets[1]].
func minioNATSEnv(tb testing.TB, nodes []*testenv.NATSServer, targets [2]int) []string {
	tb.Helper()
	for _, i := range targets {
		if i < 0 || i >= len(nodes) {
			tb.Fatalf("Options.MinIOTargets %v: no NATS server %d of %d", targets, i, len(nodes))
		}
	}
	addr := func(n *testenv.NATSServer) string { return fmt.Sprintf("%s:%d", n.Host, n.Port) }
	env := objectstore.NATSTarget{
		Address:  addr(nodes[targets[0]]),
		Subject:  events.SubjectMinIO,
		QueueDir: tb.TempDir(),
	}.ServerEnv()
	live := "MINIO_NOTIFY_NATS_ADDRESS_" + objectstore.TargetLive + "="
	for i, kv := range env {
		if strings.HasPrefix(kv, live) {
			env[i] = live + addr(nodes[targets[1]])
		}
	}
	return env
}

// Token mints a token for user with role.
func (s *Stack) Token(tb testing.TB, user uuid.UUID, role auth.Role) string {
	tb.Helper()
	tok, err := auth.Mint(auth.Config{Secret: []byte(s.Cfg.JWTSecret)}, auth.Principal{UserID: user, Role: role}, time.Hour, time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// NewUser returns a fresh user id and a token for it.
func (s *Stack) NewUser(tb testing.TB) (uuid.UUID, string) {
	tb.Helper()
	id := uuid.New()
	return id, s.Token(tb, id, auth.RoleUser)
}

// Response is an API answer.
type Response struct {
	Status int
	Body   []byte
	Header http.Header
}

// Decode unmarshals the body into v.
func (r Response) Decode(tb testing.TB, v any) {
	tb.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		tb.Fatalf("decode %s: %v", r.Body, err)
	}
}

// Detail returns the {"detail": ...} of an error answer.
func (r Response) Detail(tb testing.TB) any {
	tb.Helper()
	var e struct {
		Detail any `json:"detail"`
	}
	r.Decode(tb, &e)
	if e.Detail == nil {
		tb.Fatalf("error body has no detail: %s", r.Body)
	}
	return e.Detail
}

// Do sends a request with token as bearer (none when empty); a body that is
// not a string or []byte is sent as JSON.
func (s *Stack) Do(tb testing.TB, method, path, token string, body any) Response {
	tb.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			tb.Fatal(err)
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		tb.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	ValidateExchange(tb, req, nil, resp, data)
	return Response{Status: resp.StatusCode, Body: data, Header: resp.Header}
}

// Ticket is the upload-url answer.
type Ticket struct {
	UploadURL  string            `json:"upload_url"`
	DocumentID uuid.UUID         `json:"document_id"`
	ExpiresAt  time.Time         `json:"expires_at"`
	Headers    map[string]string `json:"headers"`
}

// RequestUpload asks for an upload URL and expects 201. size < 0 sends no size.
func (s *Stack) RequestUpload(tb testing.TB, token, filename, contentType string, size int64) Ticket {
	tb.Helper()
	body := map[string]any{"filename": filename, "content_type": contentType}
	if size >= 0 {
		body["size_bytes"] = size
	}
	r := s.Do(tb, http.MethodPost, "/api/documents/upload-url", token, body)
	if r.Status != http.StatusCreated {
		tb.Fatalf("upload-url: %d %s", r.Status, r.Body)
	}
	var t Ticket
	r.Decode(tb, &t)
	return t
}

// Put sends data to the presigned URL with the Ticket's headers (Content-Length
// comes from the body, as a browser sends it) and returns MinIO's status.
func (s *Stack) Put(tb testing.TB, t Ticket, contentType string, data []byte) int {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPut, t.UploadURL, bytes.NewReader(data))
	if err != nil {
		tb.Fatal(err)
	}
	for k, v := range t.Headers {
		if k != "Content-Length" {
			req.Header.Set(k, v)
		}
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		tb.Fatalf("PUT presigned URL: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// Upload requests a URL for data (size declared) and PUTs it; it returns the document id.
func (s *Stack) Upload(tb testing.TB, token, filename string, data []byte) uuid.UUID {
	tb.Helper()
	t := s.RequestUpload(tb, token, filename, "application/pdf", int64(len(data)))
	if st := s.Put(tb, t, "", data); st != http.StatusOK {
		tb.Fatalf("PUT: MinIO answered %d", st)
	}
	return t.DocumentID
}

// UploadAndConfirm uploads data as filename/contentType through an upload
// URL (its size declared) and confirms it, expecting 200: the confirm
// publishes document.uploaded. It returns the document id.
func (s *Stack) UploadAndConfirm(tb testing.TB, token, filename, contentType string, data []byte) uuid.UUID {
	tb.Helper()
	t := s.RequestUpload(tb, token, filename, contentType, int64(len(data)))
	if st := s.Put(tb, t, "", data); st != http.StatusOK {
		tb.Fatalf("PUT %s: MinIO answered %d", filename, st)
	}
	if r := s.Confirm(tb, token, t.DocumentID); r.Status != http.StatusOK {
		tb.Fatalf("confirm %s: %d %s", filename, r.Status, r.Body)
	}
	return t.DocumentID
}

// UploadUndeclared requests a URL for data without declaring its size (so
// nothing is reserved) and PUTs it; it returns the document id.
func (s *Stack) UploadUndeclared(tb testing.TB, token, filename string, data []byte) uuid.UUID {
	tb.Helper()
	t := s.RequestUpload(tb, token, filename, "application/pdf", -1)
	if st := s.Put(tb, t, "", data); st != http.StatusOK {
		tb.Fatalf("PUT: MinIO answered %d", st)
	}
	return t.DocumentID
}

// Confirmation is the confirm answer.
type Confirmation struct {
	ID                   uuid.UUID `json:"id"`
	SizeBytes            int64     `json:"size_bytes"`
	UsedBytes            int64     `json:"used_bytes"`
	Status               string    `json:"status"`
	ClassificationStatus string    `json:"classification_status"`
}

// Confirm posts /api/documents/{id}/confirm.
func (s *Stack) Confirm(tb testing.TB, token string, id uuid.UUID) Response {
	tb.Helper()
	return s.Do(tb, http.MethodPost, "/api/documents/"+id.String()+"/confirm", token, nil)
}

// Quota returns the caller's used and limit bytes from GET /api/auth/me/quota.
func (s *Stack) Quota(tb testing.TB, token string) (used, limit int64) {
	tb.Helper()
	r := s.Do(tb, http.MethodGet, "/api/auth/me/quota", token, nil)
	if r.Status != http.StatusOK {
		tb.Fatalf("quota: %d %s", r.Status, r.Body)
	}
	var q struct {
		UsedBytes  int64 `json:"used_bytes"`
		LimitBytes int64 `json:"limit_bytes"`
	}
	r.Decode(tb, &q)
	return q.UsedBytes, q.LimitBytes
}

// SetLimit sets user's quota limit through the admin endpoint.
func (s *Stack) SetLimit(tb testing.TB, user uuid.UUID, limit int64) {
	tb.Helper()
	admin := s.Token(tb, uuid.New(), auth.RoleAdmin)
	r := s.Do(tb, http.MethodPut, "/api/admin/users/"+user.String()+"/quota", admin, map[string]int64{"limit_bytes": limit})
	if r.Status != http.StatusOK {
		tb.Fatalf("set quota: %d %s", r.Status, r.Body)
	}
}

// ObjectExists reports whether the document's object is in the bucket.
func (s *Stack) ObjectExists(tb testing.TB, id uuid.UUID) bool {
	tb.Helper()
	return s.KeyExists(tb, s.objectKey(tb, id))
}

// ObjectSize returns the size of the object document id owns.
func (s *Stack) ObjectSize(tb testing.TB, id uuid.UUID) int64 {
	tb.Helper()
	info, err := s.minio.StatObject(context.Background(), s.Bucket, s.objectKey(tb, id), minio.StatObjectOptions{})
	if err != nil {
		tb.Fatalf("stat the object of %s: %v", id, err)
	}
	return info.Size
}

func (s *Stack) objectKey(tb testing.TB, id uuid.UUID) string {
	tb.Helper()
	var key string
	if err := s.DB.QueryRow(context.Background(), "SELECT object_key FROM documents WHERE id = $1", id).Scan(&key); err != nil {
		tb.Fatalf("object key of %s: %v", id, err)
	}
	return key
}

// KeyExists reports whether key is in the bucket.
func (s *Stack) KeyExists(tb testing.TB, key string) bool {
	tb.Helper()
	_, err := s.minio.StatObject(context.Background(), s.Bucket, key, minio.StatObjectOptions{})
	if err == nil {
		return true
	}
	if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
		return false
	}
	tb.Fatalf("stat %s: %v", key, err)
	return false
}

// BytesOf returns n bytes of test content.
func BytesOf(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + i%26)
	}
	return b
}

// connectNATS connects the test to the stack's NATS, as user setup when
// the server has nats.conf's users (Options.NATSConf).
func (s *Stack) connectNATS(tb testing.TB) (*nats.Conn, jetstream.JetStream) {
	tb.Helper()
	cc := events.ConnectConfig{URL: s.NATSURL, Name: "apitest"}
	if s.Cfg.NATSSetupPassword != "" {
		cc.User, cc.Password, cc.InboxPrefix = "setup", s.Cfg.NATSSetupPassword, "_INBOX_setup"
	}
	nc, js, err := events.Connect(cc, zerolog.Nop())
	if err != nil {
		tb.Fatal(err)
	}
	return nc, js
}
