package deploy

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/notification"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/internal/testenv"
	"github.com/docuvault/docuvault/shared/events"
	"github.com/docuvault/docuvault/shared/objectstore"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// confPath is nats.conf at the repository root, from this package's
// directory, where go test runs the tests.
const confPath = "../nats.conf"

// deniedWait bounds a request the server is expected to drop: a denied
// publish gets no reply, so the client waits until its deadline.
const deniedWait = time.Second

// users are the users of nats.conf's DOCUVAULT account: one per role, and
// setup.
var users = []string{"api", "confirmer", "sweeper", "classifier", "scanner", "setup"}

// passwords holds the users' passwords (users and minio) given to
// nats.conf through the environment.
type passwords map[string]string

// newPasswords returns fresh random passwords. rand.Text is letters and
// digits; the prefixes keep each value a string for the config parser,
// which would read "123" as a number.
func newPasswords() passwords {
	pw := passwords{"minio": "m-" + rand.Text()}
	for _, u := range users {
		pw[u] = "p-" + rand.Text()
	}
	return pw
}

// passwordVar is the environment variable nats.conf reads user's password
// from.
func passwordVar(user string) string { return testenv.NATSConfPasswordVar(user) }

// loadConf sets the environment variables nats.conf reads to pw and parses
// the file. Tests that call it cannot run in parallel (t.Setenv).
func loadConf(t *testing.T, pw passwords) *server.Options {
	t.Helper()
	return testenv.LoadNATSConf(t, pw)
}

// confServer is a NATS server started from nats.conf for one test.
type confServer struct {
	srv  *server.Server
	url  string
	addr string // host:port, as MinIO takes it
	pw   passwords
}

// startConf starts a NATS server from nats.conf with fresh passwords; see
// startConfWith.
func startConf(t *testing.T) *confServer {
	t.Helper()
	return startConfWith(t, newPasswords())
}

// startConfWith starts a NATS server from nats.conf with the passwords pw,
// changed only to listen on a free port of 127.0.0.1 (clients and
// monitoring) and to keep its JetStream store in a temporary directory. The
// server is shut down when the test ends.
func startConfWith(t *testing.T, pw passwords) *confServer {
	t.Helper()
	s := testenv.StartNATSConf(t, pw)
	addr := s.Addr().String()
	return &confServer{srv: s, url: "nats://" + addr, addr: addr, pw: pw}
}

// client is a connection to the server as one user.
type client struct {
	user string
	nc   *nats.Conn
	js   jetstream.JetStream
	errs chan error // asynchronous errors from the server, such as permission violations
}

// inboxPrefix is the inbox prefix a user's connection uses, as
// events.ConnectConfig.InboxPrefix sets it: _INBOX_<role>; MinIO uses
// NATS's _INBOX.
func inboxPrefix(user string) string {
	if user == "minio" {
		return nats.InboxPrefix[:len(nats.InboxPrefix)-1]
	}
	return "_INBOX_" + user
}

// connect connects to the server as user with password and user's inbox
// prefix; the connection is closed when the test ends.
func (s *confServer) connect(t *testing.T, user, password string) *client {
	t.Helper()
	c := &client{user: user, errs: make(chan error, 256)}
	nc, err := nats.Connect(s.url,
		nats.UserInfo(user, password),
		nats.CustomInboxPrefix(inboxPrefix(user)),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case c.errs <- err:
			default:
			}
		}))
	if err != nil {
		t.Fatalf("connect to %s as %s: %v", s.url, user, err)
	}
	t.Cleanup(nc.Close)
	c.nc = nc
	if c.js, err = jetstream.New(nc); err != nil {
		t.Fatalf("jetstream.New: %v", err)
	}
	return c
}

// as connects as user (one of users, or minio) with its password.
func (s *confServer) as(t *testing.T, user string) *client {
	t.Helper()
	return s.connect(t, user, s.pw[user])
}

// minio connects as MinIO's user.
func (s *confServer) minio(t *testing.T) *client {
	t.Helper()
	return s.as(t, "minio")
}

// bus opens an events.Bus as role, as the role's process does (its user,
// password and inbox prefix); what the connection logs (permission
// violations among them) goes to the returned buffer.
func (s *confServer) bus(t *testing.T, role string) (*events.Bus, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	b, err := events.Open(events.ConnectConfig{
		URL: s.url, User: role, Password: s.pw[role], Name: "docuvault-" + role, InboxPrefix: inboxPrefix(role),
	}, zerolog.New(logs), nil)
	if err != nil {
		t.Fatalf("open the bus as %s: %v", role, err)
	}
	t.Cleanup(b.Close)
	return b, logs
}

// logBuffer collects log lines; safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// wantViolation waits for the server to tell c that op ("Publish" or
// "Subscription") on subject is not allowed.
func (c *client) wantViolation(t *testing.T, op, subject string) {
	t.Helper()
	want := fmt.Sprintf("Permissions Violation for %s to %q", op, subject)
	timeout := time.After(5 * time.Second)
	for {
		select {
		case err := <-c.errs:
			if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), want) {
				return
			}
		case <-timeout:
			t.Errorf("%s: the server did not report %q", c.user, want)
			return
		}
	}
}

// noErrors checks that the server reported no asynchronous error to c.
func (c *client) noErrors(t *testing.T) {
	t.Helper()
	if err := c.nc.Flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}
	for {
		select {
		case err := <-c.errs:
			t.Errorf("%s: unexpected error from the server: %v", c.user, err)
		default:
			return
		}
	}
}

// setup does as the setup user what `docuvault setup` does on NATS
// (events.Setup, with the default limits and an hourly sweep), and returns
// its connection: the account's JetStream limits must admit the streams.
func (s *confServer) setup(t *testing.T) *client {
	t.Helper()
	c := s.as(t, "setup")
	if err := events.Setup(t.Context(), c.js, events.StreamLimits{}, time.Hour); err != nil {
		t.Fatalf("setup: %v", err)
	}
	// A stream without a size of its own is refused: none can grow until
	// the others starve.
	_, err := c.js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "UNBOUNDED", Subjects: []string{"unbounded"}, Storage: jetstream.FileStorage})
	if err == nil {
		t.Fatal("the account took a stream without MaxBytes")
	}
	c.noErrors(t)
	return c
}

// streamMsgs returns the number of messages in the stream called name.
func streamMsgs(t *testing.T, c *client, name string) uint64 {
	t.Helper()
	st, err := c.js.Stream(t.Context(), name)
	if err != nil {
		t.Fatalf("stream %s: %v", name, err)
	}
	info, err := st.Info(t.Context())
	if err != nil {
		t.Fatalf("stream %s info: %v", name, err)
	}
	return info.State.Msgs
}

func TestConfFileValues(t *testing.T) {
	pw := newPasswords()
	opts := loadConf(t, pw)
	for _, c := range []struct {
		setting   string
		got, want any
	}{
		{"server_name", opts.ServerName, "docuvault-nats"},
		{"listen host", opts.Host, "0.0.0.0"},
		{"listen port", opts.Port, 4222},
		// Monitoring has no authentication: the loopback only.
		{"http host", opts.HTTPHost, "127.0.0.1"},
		{"http port", opts.HTTPPort, 8222},
		{"https port", opts.HTTPSPort, 0},
		{"max_payload", opts.MaxPayload, int32(events.MaxPayload)},
		{"jetstream", opts.JetStream, true},
		{"jetstream store_dir", opts.StoreDir, "/data/jetstream"},
		{"jetstream max_memory_store", opts.JetStreamMaxMemory, int64(256 << 20)},
		{"jetstream max_file_store", opts.JetStreamMaxStore, int64(10 << 30)},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.setting, c.got, c.want)
		}
	}

	type user struct{ account, password string }
	got := map[string]user{}
	for _, u := range opts.Users {
		var account string
		if u.Account != nil {
			account = u.Account.Name
		}
		got[u.Username] = user{account, u.Password}
	}
	want := map[string]user{"minio": {"MINIO", pw["minio"]}}
	for _, u := range users {
		want[u] = user{"DOCUVAULT", pw[u]}
	}
	if !maps.Equal(got, want) {
		t.Errorf("users = %v, want %v (accounts and passwords from the environment)", got, want)
	}
}

func TestConfFileBcryptPassword(t *testing.T) {
	// bcrypt of "minio-clear-password", cost 4 (made with
	// golang.org/x/crypto/bcrypt), as `nats server passwd` would give.
	const hash = "$2a$04$QwfisD3MrYD2qP1X4cPgJ.DRrpi82.cHGrsmMIvY/rvU1fnZZgrnO"
	pw := newPasswords()
	pw["minio"] = hash
	s := startConfWith(t, pw)
	mc := s.connect(t, "minio", "minio-clear-password")
	if _, err := mc.nc.Subscribe("_INBOX.x", func(*nats.Msg) {}); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	mc.noErrors(t)
	if nc, err := nats.Connect(s.url, nats.UserInfo("minio", hash)); err == nil {
		nc.Close()
		t.Errorf("connected with the hash itself as the password")
	}
}

func TestConfFileNeedsPasswords(t *testing.T) {
	pw := newPasswords()
	for user := range pw {
		name := passwordVar(user)
		t.Run(name, func(t *testing.T) {
			for u, p := range pw {
				t.Setenv(passwordVar(u), p)
			}
			os.Unsetenv(name) // t.Setenv restores it after the test
			_, err := server.ProcessConfigFile(confPath)
			if err == nil || !strings.Contains(err.Error(), name) {
				t.Errorf("ProcessConfigFile without %s: error = %v, want one naming the variable", name, err)
			}
		})
	}
}

// TestMonitoringHealthz: the health check docker-compose.yml and the k8s
// probes run, on the loopback address the monitoring listens on.
func TestMonitoringHealthz(t *testing.T) {
	s := startConf(t)
	url := fmt.Sprintf("http://%s/healthz?js-enabled-only=true", s.srv.MonitorAddr())
	if !strings.HasPrefix(s.srv.MonitorAddr().String(), "127.0.0.1:") {
		t.Errorf("monitoring listens on %s, want the loopback", s.srv.MonitorAddr())
	}
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET %s: %s, want 200 OK", url, resp.Status)
	}
}

func TestAuthentication(t *testing.T) {
	s := startConf(t)
	type attempt struct {
		name string
		opts []nats.Option
		ok   bool
	}
	attempts := []attempt{
		{"unknown user", []nats.Option{nats.UserInfo("admin", s.pw["setup"])}, false},
		{"the removed docuvault user", []nats.Option{nats.UserInfo("docuvault", s.pw["api"])}, false},
		{"no credentials", nil, false},
	}
	for _, u := range append([]string{"minio"}, users...) {
		other := "minio"
		if u == "minio" {
			other = "setup"
		}
		attempts = append(attempts,
			attempt{u, []nats.Option{nats.UserInfo(u, s.pw[u])}, true},
			attempt{u + " wrong password", []nats.Option{nats.UserInfo(u, s.pw[u]+"x")}, false},
			attempt{u + " with " + other + "'s password", []nats.Option{nats.UserInfo(u, s.pw[other])}, false})
	}
	for _, tc := range attempts {
		t.Run(tc.name, func(t *testing.T) {
			nc, err := nats.Connect(s.url, tc.opts...)
			if err == nil {
				nc.Close()
			}
			switch {
			case tc.ok && err != nil:
				t.Errorf("connect: %v", err)
			case !tc.ok && !errors.Is(err, nats.ErrAuthorization):
				t.Errorf("connect error = %v, want %v", err, nats.ErrAuthorization)
			}
		})
	}
}

func TestMinIOUser(t *testing.T) {
	s := startConf(t)
	su := s.setup(t)
	mc := s.minio(t)
	ctx := t.Context()

	ack, err := mc.js.Publish(ctx, "minio.events", []byte(`{"EventName":"s3:ObjectCreated:Put"}`))
	if err != nil {
		t.Fatalf("minio: JetStream publish to minio.events: %v", err)
	}
	if ack.Stream != "MINIO_EVENTS" || ack.Sequence != 1 {
		t.Errorf("PubAck = %+v, want MINIO_EVENTS sequence 1", ack)
	}
	mc.noErrors(t)

	// denied runs a request the server must drop and checks that it failed.
	denied := func(what string, f func(ctx context.Context) error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), deniedWait)
		defer cancel()
		if err := f(ctx); err == nil {
			t.Errorf("minio: %s succeeded", what)
		}
	}

	denied("publish document.uploaded.x", func(ctx context.Context) error {
		_, err := mc.js.Publish(ctx, "document.uploaded.x", []byte("forged"))
		return err
	})
	mc.wantViolation(t, "Publish", "document.uploaded.x")
	if n := streamMsgs(t, su, "DOCUMENTS"); n != 0 {
		t.Errorf("DOCUMENTS has %d messages after the minio user's publish, want 0", n)
	}

	denied("create stream EVIL", func(ctx context.Context) error {
		_, err := mc.js.CreateStream(ctx, jetstream.StreamConfig{Name: "EVIL", Subjects: []string{"evil"}})
		return err
	})
	mc.wantViolation(t, "Publish", "$JS.API.STREAM.CREATE.EVIL")
	if _, err := su.js.Stream(ctx, "EVIL"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("stream EVIL after the minio user's create: %v, want %v", err, jetstream.ErrStreamNotFound)
	}

	denied("delete stream DOCUMENTS", func(ctx context.Context) error {
		return mc.js.DeleteStream(ctx, "DOCUMENTS")
	})
	mc.wantViolation(t, "Publish", "$JS.API.STREAM.DELETE.DOCUMENTS")
	if _, err := su.js.Stream(ctx, "DOCUMENTS"); err != nil {
		t.Errorf("stream DOCUMENTS after the minio user's delete: %v", err)
	}

	denied("read stream MINIO_EVENTS", func(ctx context.Context) error {
		_, err := mc.js.Stream(ctx, "MINIO_EVENTS")
		return err
	})
	mc.wantViolation(t, "Publish", "$JS.API.STREAM.INFO.MINIO_EVENTS")

	if _, err := mc.nc.SubscribeSync("document.>"); err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	mc.wantViolation(t, "Subscription", "document.>")

	// Beyond its permissions, the minio user's account has no JetStream.
	acc, err := s.srv.LookupAccount("MINIO")
	if err != nil {
		t.Fatalf("look up account MINIO: %v", err)
	}
	if acc.JetStreamEnabled() {
		t.Errorf("account MINIO has JetStream enabled")
	}
}

// TestMinIOUserSeesNoServiceTraffic checks that the minio user's grant on
// _INBOX.>, which MinIO's JetStream publishes need, does not reach the
// roles' inboxes, where their API responses and pulled messages arrive.
func TestMinIOUserSeesNoServiceTraffic(t *testing.T) {
	s := startConf(t)
	mc := s.minio(t)
	seen, err := mc.nc.SubscribeSync("_INBOX.>")
	if err != nil {
		t.Fatalf("minio: subscribe _INBOX.>: %v", err)
	}
	seenAPI, err := mc.nc.SubscribeSync("_INBOX_api.>")
	if err != nil {
		t.Fatalf("minio: subscribe _INBOX_api.>: %v", err)
	}
	mc.wantViolation(t, "Subscription", "_INBOX_api.>")
	s.setup(t)

	api, _ := s.bus(t, "api")
	if err := api.Publish(t.Context(), "document.uploaded."+uuid.NewString(), []byte(`{"filename":"private.pdf"}`), ""); err != nil {
		t.Fatalf("api: publish: %v", err)
	}
	if err := api.Ping(t.Context()); err != nil {
		t.Fatalf("api: ping: %v", err)
	}
	for _, sub := range []*nats.Subscription{seen, seenAPI} {
		if msg, err := sub.NextMsg(200 * time.Millisecond); err == nil {
			t.Errorf("minio user received the api's %s: %.100s", msg.Subject, msg.Data)
		}
	}
}

// minioEvent is the part of a MinIO bucket notification the test reads.
type minioEvent struct {
	EventName string
	Key       string
}

// TestRealMinIOPublishesEvents runs the real MinIO server as the minio
// user, proving that its permissions are what MinIO's JetStream target
// needs: an event reaches MINIO_EVENTS and MinIO gets its PubAck (it removes
// the event from its queue directory only then, and would retry it every
// 3 s otherwise). The largest notification a client can make, with a PUT
// whose X-Forwarded-For fills MinIO's header limit, is stored too, and is
// within events.LargestNotification: a larger one than the stream or NATS
// takes would be refused for ever, and MinIO's queue would stop behind it.
func TestRealMinIOPublishesEvents(t *testing.T) {
	s := startConf(t)
	dv := s.setup(t) // MinIO's publishes need the stream to exist
	m := startMinIOOn(t, s)
	mcl, bucket, queueDir := m.client, m.bucket, m.queueDir
	ctx := t.Context()
	const key = "docs/hello world.txt"
	if err := m.put(ctx, key, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	// The event is in the stream and MinIO has dropped it from its queue,
	// which it does only once the PubAck arrived.
	m.waitStored(t, dv, 1)

	st, err := dv.js.Stream(ctx, "MINIO_EVENTS")
	if err != nil {
		t.Fatalf("stream MINIO_EVENTS: %v", err)
	}
	raw, err := st.GetMsg(ctx, 1)
	if err != nil {
		t.Fatalf("get event: %v", err)
	}
	var ev minioEvent
	if err := json.Unmarshal(raw.Data, &ev); err != nil {
		t.Fatalf("decode event %s: %v", raw.Data, err)
	}
	if ev.EventName != "s3:ObjectCreated:Put" || ev.Key != bucket+"/"+key {
		t.Errorf("event = %+v, want s3:ObjectCreated:Put of %s/%s", ev, bucket, key)
	}

	// The padded PUT: the longest X-Forwarded-For MinIO takes (it refuses
	// more than 8 KiB of headers, counting the first value of each), of
	// "<", which JSON writes as 6 bytes.
	url, err := mcl.PresignedPutObject(ctx, bucket, "docs/padded.txt", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	status := 0
	pad := 0
	for pad = 8 << 10; pad > 6<<10; pad -= 64 {
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, url.String(), strings.NewReader("padded"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Forwarded-For", strings.Repeat("<", pad))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("padded PUT: %v", err)
		}
		resp.Body.Close()
		if status = resp.StatusCode; status != http.StatusBadRequest {
			break
		}
	}
	if status != http.StatusOK {
		t.Fatalf("padded PUT with %d bytes of X-Forwarded-For: %d", pad, status)
	}
	deadline := time.Now().Add(30 * time.Second)
	for streamMsgs(t, dv, "MINIO_EVENTS") < 2 || countFiles(t, queueDir) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("30 s after the padded PUT: MINIO_EVENTS has %d messages, MinIO's queue %d events; want 2 and 0", streamMsgs(t, dv, "MINIO_EVENTS"), countFiles(t, queueDir))
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Over the limit: refused, nothing stored, no notification.
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, url.String(), strings.NewReader("padded"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Forwarded-For", strings.Repeat("<", 9<<10))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("PUT with 9 KiB of X-Forwarded-For: %d, want 400 (MinIO's header limit, which bounds its notifications)", resp.StatusCode)
	}
	raw, err = st.GetMsg(ctx, 2)
	if err != nil {
		t.Fatalf("get the padded event: %v", err)
	}
	t.Logf("X-Forwarded-For of %d bytes: a notification of %d bytes (events.LargestNotification %d)", pad, len(raw.Data), events.LargestNotification)
	if len(raw.Data) < 12*pad || len(raw.Data) > events.LargestNotification {
		t.Errorf("padded notification of %d bytes: want about 12 times the %d header bytes, within events.LargestNotification", len(raw.Data), pad)
	}
	if streamMsgs(t, dv, "MINIO_EVENTS") != 2 {
		t.Errorf("MINIO_EVENTS has %d messages, want 2 (the refused PUT made none)", streamMsgs(t, dv, "MINIO_EVENTS"))
	}
}

// minioOn is a MinIO server of one test whose bucket notifications go to
// a server started from nats.conf, as the minio user, from a queue
// directory (MinIO's PRIMARY target).
type minioOn struct {
	client   *minio.Client
	bucket   string
	queueDir string
}

// startMinIOOn starts MinIO publishing its bucket's object-created events
// to s; the stream must exist (setup).
func startMinIOOn(t *testing.T, s *confServer) *minioOn {
	t.Helper()
	queueDir := t.TempDir()
	m := testenv.StartMinIO(t, testenv.MinIOOptions{Env: []string{
		"MINIO_NOTIFY_NATS_ENABLE_PRIMARY=on",
		"MINIO_NOTIFY_NATS_ADDRESS_PRIMARY=" + s.addr,
		"MINIO_NOTIFY_NATS_SUBJECT_PRIMARY=minio.events",
		"MINIO_NOTIFY_NATS_USERNAME_PRIMARY=minio",
		"MINIO_NOTIFY_NATS_PASSWORD_PRIMARY=" + s.pw["minio"],
		"MINIO_NOTIFY_NATS_JETSTREAM_PRIMARY=on",
		"MINIO_NOTIFY_NATS_QUEUE_DIR_PRIMARY=" + queueDir,
	}})
	bucket := m.NewBucket(t)
	mcl := m.Client(t)
	cfg := notification.Configuration{}
	q := notification.NewConfig(notification.NewArn("minio", "sqs", "", "PRIMARY", "nats"))
	q.AddEvents(notification.ObjectCreatedAll)
	cfg.AddQueue(q)
	// MinIO may still be registering its target just after it starts.
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := mcl.SetBucketNotification(t.Context(), bucket, cfg)
		if err == nil {
			break
		}
		if !objectstore.IsUnknownARN(err) || time.Now().After(deadline) {
			t.Fatalf("SetBucketNotification: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return &minioOn{client: mcl, bucket: bucket, queueDir: queueDir}
}

// put stores content under key.
func (m *minioOn) put(ctx context.Context, key string, content []byte) error {
	_, err := m.client.PutObject(ctx, m.bucket, key, bytes.NewReader(content), int64(len(content)), minio.PutObjectOptions{ContentType: "text/plain"})
	if err != nil {
		return fmt.Errorf("PutObject %s: %w", key, err)
	}
	return nil
}

// waitStored waits until MINIO_EVENTS holds n messages and MinIO's queue
// is empty (MinIO drops an event only once its PubAck arrived), and fails
// if it holds more (MinIO retried: no PubAck?).
func (m *minioOn) waitStored(t *testing.T, su *client, n uint64) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := streamMsgs(t, su, "MINIO_EVENTS")
		queued := countFiles(t, m.queueDir)
		if got >= n && queued == 0 {
			if got != n {
				t.Errorf("MINIO_EVENTS has %d messages, want %d (MinIO retried: no PubAck?)", got, n)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 15s: MINIO_EVENTS has %d messages, MinIO's queue %d events; want %d and 0", got, queued, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// md5Sum is the MD5 of b: the ETag MinIO gives an object of a single PUT.
func md5Sum(b []byte) [md5.Size]byte { return md5.Sum(b) }

// countFiles returns the number of regular files under dir.
func countFiles(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", dir, err)
	}
	return n
}
