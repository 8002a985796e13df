package deploy

import (
	"context"
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
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/notification"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/docuvault/docuvault/shared/events"
	"github.com/docuvault/docuvault/shared/objectstore"
	"github.com/docuvault/docuvault/shared/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// confPath is nats.conf at the repository root, from this package's
// directory, where go test runs the tests.
const confPath = "../nats.conf"

// deniedWait bounds a request the server is expected to drop: a denied
// publish gets no reply, so the client waits until its deadline.
const deniedWait = time.Second

// passwords holds the users' passwords given to nats.conf through the
// environment.
type passwords struct {
	minio, docuvault string
}

// newPasswords returns fresh random passwords. rand.Text is letters and
// digits; the prefixes keep each value a string for the config parser,
// which would read "123" as a number.
func newPasswords() passwords {
	return passwords{minio: "m-" + rand.Text(), docuvault: "d-" + rand.Text()}
}

// loadConf sets the environment variables nats.conf reads to pw and parses
// the file. Tests that call it cannot run in parallel (t.Setenv).
func loadConf(t *testing.T, pw passwords) *server.Options {
	t.Helper()
	t.Setenv("NATS_MINIO_PASSWORD", pw.minio)
	t.Setenv("NATS_DOCUVAULT_PASSWORD", pw.docuvault)
	opts, err := server.ProcessConfigFile(confPath)
	if err != nil {
		t.Fatalf("load %s: %v", confPath, err)
	}
	return opts
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
// changed only to listen on free ports of 127.0.0.1 (clients and
// monitoring) and to keep its JetStream store in a temporary directory. The
// server is shut down when the test ends.
func startConfWith(t *testing.T, pw passwords) *confServer {
	t.Helper()
	opts := loadConf(t, pw)
	opts.Host, opts.Port = "127.0.0.1", -1 // -1: a free port; 0 would be 4222
	opts.HTTPHost, opts.HTTPPort = "127.0.0.1", -1
	opts.StoreDir = t.TempDir()
	opts.NoSigs = true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("configure NATS server from %s: %v", confPath, err)
	}
	s.Start()
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatalf("NATS server from %s is not accepting connections after 10s", confPath)
	}
	addr := s.Addr().String()
	return &confServer{srv: s, url: "nats://" + addr, addr: addr, pw: pw}
}

// client is a connection to the server as one user.
type client struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	errs chan error // asynchronous errors from the server, such as permission violations
}

// connect connects to the server as user with password; the connection is
// closed when the test ends.
func (s *confServer) connect(t *testing.T, user, password string) *client {
	t.Helper()
	c := &client{errs: make(chan error, 64)}
	nc, err := nats.Connect(s.url,
		nats.UserInfo(user, password),
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

// docuvault connects as the services' user.
func (s *confServer) docuvault(t *testing.T) *client {
	t.Helper()
	return s.connect(t, "docuvault", s.pw.docuvault)
}

// minio connects as MinIO's user.
func (s *confServer) minio(t *testing.T) *client {
	t.Helper()
	return s.connect(t, "minio", s.pw.minio)
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
			t.Errorf("the server did not report %q", want)
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
			t.Errorf("unexpected error from the server: %v", err)
		default:
			return
		}
	}
}

// createStreams creates the streams as the services do at start, with
// their default limits: the account's JetStream limits must admit them.
func createStreams(t *testing.T, c *client) {
	t.Helper()
	if err := events.EnsureStreams(t.Context(), c.js, events.StreamLimits{}); err != nil {
		t.Fatalf("docuvault: create the streams: %v", err)
	}
	// A stream without a size of its own is refused: none can grow until
	// the others starve.
	_, err := c.js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "UNBOUNDED", Subjects: []string{"document.unbounded"}, Storage: jetstream.FileStorage})
	if err == nil {
		t.Fatal("the account took a stream without MaxBytes")
	}
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
		{"http", opts.HTTPPort, 8222},
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
	users := map[string]user{}
	for _, u := range opts.Users {
		var account string
		if u.Account != nil {
			account = u.Account.Name
		}
		users[u.Username] = user{account, u.Password}
	}
	want := map[string]user{
		"minio":     {"MINIO", pw.minio},
		"docuvault": {"DOCUVAULT", pw.docuvault},
	}
	if !maps.Equal(users, want) {
		t.Errorf("users = %v, want %v (accounts and passwords from the environment)", users, want)
	}
}

func TestConfFileBcryptPassword(t *testing.T) {
	// bcrypt of "minio-clear-password", cost 4 (made with
	// golang.org/x/crypto/bcrypt), as `nats server passwd` would give.
	const hash = "$2a$04$QwfisD3MrYD2qP1X4cPgJ.DRrpi82.cHGrsmMIvY/rvU1fnZZgrnO"
	s := startConfWith(t, passwords{minio: hash, docuvault: "d-" + rand.Text()})
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
	for _, name := range []string{"NATS_MINIO_PASSWORD", "NATS_DOCUVAULT_PASSWORD"} {
		t.Run(name, func(t *testing.T) {
			t.Setenv("NATS_MINIO_PASSWORD", "m-password")
			t.Setenv("NATS_DOCUVAULT_PASSWORD", "d-password")
			os.Unsetenv(name) // t.Setenv restores it after the test
			_, err := server.ProcessConfigFile(confPath)
			if err == nil || !strings.Contains(err.Error(), name) {
				t.Errorf("ProcessConfigFile without %s: error = %v, want one naming the variable", name, err)
			}
		})
	}
}

func TestMonitoringHealthz(t *testing.T) {
	s := startConf(t)
	url := fmt.Sprintf("http://%s/healthz?js-enabled-only=true", s.srv.MonitorAddr())
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
	for _, tc := range []struct {
		name string
		opts []nats.Option
		ok   bool
	}{
		{"minio", []nats.Option{nats.UserInfo("minio", s.pw.minio)}, true},
		{"docuvault", []nats.Option{nats.UserInfo("docuvault", s.pw.docuvault)}, true},
		{"minio wrong password", []nats.Option{nats.UserInfo("minio", s.pw.minio+"x")}, false},
		{"docuvault wrong password", []nats.Option{nats.UserInfo("docuvault", "wrong")}, false},
		{"minio with the docuvault password", []nats.Option{nats.UserInfo("minio", s.pw.docuvault)}, false},
		{"unknown user", []nats.Option{nats.UserInfo("admin", s.pw.docuvault)}, false},
		{"no credentials", nil, false},
	} {
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

func TestDocuVaultUser(t *testing.T) {
	s := startConf(t)
	dv := s.docuvault(t)
	ctx := t.Context()
	createStreams(t, dv)

	// Publish with a PubAck, deduplicated by Nats-Msg-Id.
	ack, err := dv.js.Publish(ctx, "document.uploaded.x", []byte(`{"id":"evt-1"}`), jetstream.WithMsgID("evt-1"))
	if err != nil {
		t.Fatalf("publish document.uploaded.x: %v", err)
	}
	if ack.Stream != "DOCUMENTS" || ack.Sequence != 1 {
		t.Errorf("PubAck = %+v, want DOCUMENTS sequence 1", ack)
	}
	if ack, err := dv.js.Publish(ctx, "document.uploaded.x", []byte(`{"id":"evt-1"}`), jetstream.WithMsgID("evt-1")); err != nil || !ack.Duplicate {
		t.Errorf("second publish of evt-1: PubAck %+v, %v; want a duplicate", ack, err)
	}

	// A durable pull consumer with explicit ack, acknowledged and confirmed.
	cons, err := dv.js.CreateOrUpdateConsumer(ctx, "DOCUMENTS", jetstream.ConsumerConfig{
		Durable:   "classifier",
		AckPolicy: jetstream.AckExplicitPolicy,
	})
	if err != nil {
		t.Fatalf("create consumer: %v", err)
	}
	batch, err := cons.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	var got []string
	for msg := range batch.Messages() {
		got = append(got, msg.Subject())
		if err := msg.DoubleAck(ctx); err != nil {
			t.Errorf("ack %s: %v", msg.Subject(), err)
		}
	}
	if batch.Error() != nil || len(got) != 1 || got[0] != "document.uploaded.x" {
		t.Errorf("fetched %v, %v; want document.uploaded.x", got, batch.Error())
	}

	// The sweeper's schedule stores a tick on sweeper.tick.
	if _, err := dv.js.Publish(ctx, "sweeper.schedule", nil,
		jetstream.WithScheduleEvery(time.Second), jetstream.WithScheduleTarget("sweeper.tick")); err != nil {
		t.Fatalf("publish the schedule: %v", err)
	}
	ticks, err := dv.js.OrderedConsumer(ctx, "SWEEPER", jetstream.OrderedConsumerConfig{FilterSubjects: []string{"sweeper.tick"}})
	if err != nil {
		t.Fatalf("consumer of sweeper.tick: %v", err)
	}
	if _, err := ticks.Next(jetstream.FetchMaxWait(5 * time.Second)); err != nil {
		t.Errorf("no sweeper.tick within 5s: %v", err)
	}
	dv.noErrors(t)

	// The services consume MinIO's events but never publish as MinIO.
	if err := dv.nc.Publish("minio.events", []byte("forged")); err != nil {
		t.Fatalf("publish: %v", err)
	}
	dv.wantViolation(t, "Publish", "minio.events")
	if n := streamMsgs(t, dv, "MINIO_EVENTS"); n != 0 {
		t.Errorf("MINIO_EVENTS has %d messages after a denied publish, want 0", n)
	}
}

func TestMinIOUser(t *testing.T) {
	s := startConf(t)
	dv := s.docuvault(t)
	createStreams(t, dv)
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
	if n := streamMsgs(t, dv, "DOCUMENTS"); n != 0 {
		t.Errorf("DOCUMENTS has %d messages after the minio user's publish, want 0", n)
	}

	denied("create stream EVIL", func(ctx context.Context) error {
		_, err := mc.js.CreateStream(ctx, jetstream.StreamConfig{Name: "EVIL", Subjects: []string{"evil"}})
		return err
	})
	mc.wantViolation(t, "Publish", "$JS.API.STREAM.CREATE.EVIL")
	if _, err := dv.js.Stream(ctx, "EVIL"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Errorf("stream EVIL after the minio user's create: %v, want %v", err, jetstream.ErrStreamNotFound)
	}

	denied("delete stream DOCUMENTS", func(ctx context.Context) error {
		return mc.js.DeleteStream(ctx, "DOCUMENTS")
	})
	mc.wantViolation(t, "Publish", "$JS.API.STREAM.DELETE.DOCUMENTS")
	if _, err := dv.js.Stream(ctx, "DOCUMENTS"); err != nil {
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
// services' inboxes, where their API responses and pulled messages arrive.
func TestMinIOUserSeesNoServiceTraffic(t *testing.T) {
	s := startConf(t)
	dv := s.docuvault(t)
	mc := s.minio(t)
	seen, err := mc.nc.SubscribeSync("_INBOX.>")
	if err != nil {
		t.Fatalf("minio: subscribe _INBOX.>: %v", err)
	}
	mc.noErrors(t) // the subscription is allowed and in place

	ctx := t.Context()
	createStreams(t, dv)
	if _, err := dv.js.Publish(ctx, "document.uploaded.u1", []byte(`{"filename":"private.pdf"}`)); err != nil {
		t.Fatalf("docuvault: publish: %v", err)
	}
	cons, err := dv.js.OrderedConsumer(ctx, "DOCUMENTS", jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatalf("docuvault: consumer: %v", err)
	}
	if _, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second)); err != nil {
		t.Fatalf("docuvault: next message: %v", err)
	}
	if err := dv.nc.Flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}
	if msg, err := seen.NextMsg(200 * time.Millisecond); err == nil {
		t.Errorf("minio user received the services' %s: %.100s", msg.Subject, msg.Data)
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
	dv := s.docuvault(t)
	createStreams(t, dv) // MinIO's publishes need the stream to exist
	queueDir := t.TempDir()
	m := testenv.StartMinIO(t, testenv.MinIOOptions{Env: []string{
		"MINIO_NOTIFY_NATS_ENABLE_PRIMARY=on",
		"MINIO_NOTIFY_NATS_ADDRESS_PRIMARY=" + s.addr,
		"MINIO_NOTIFY_NATS_SUBJECT_PRIMARY=minio.events",
		"MINIO_NOTIFY_NATS_USERNAME_PRIMARY=minio",
		"MINIO_NOTIFY_NATS_PASSWORD_PRIMARY=" + s.pw.minio,
		"MINIO_NOTIFY_NATS_JETSTREAM_PRIMARY=on",
		"MINIO_NOTIFY_NATS_QUEUE_DIR_PRIMARY=" + queueDir,
	}})
	bucket := m.NewBucket(t)
	mcl := m.Client(t)
	ctx := t.Context()
	cfg := notification.Configuration{}
	q := notification.NewConfig(notification.NewArn("minio", "sqs", "", "PRIMARY", "nats"))
	q.AddEvents(notification.ObjectCreatedAll)
	cfg.AddQueue(q)
	// MinIO may still be registering its target just after it starts.
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := mcl.SetBucketNotification(ctx, bucket, cfg)
		if err == nil {
			break
		}
		if !objectstore.IsUnknownARN(err) || time.Now().After(deadline) {
			t.Fatalf("SetBucketNotification: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	const key = "docs/hello world.txt"
	if _, err := mcl.PutObject(ctx, bucket, key, strings.NewReader("hello"), 5, minio.PutObjectOptions{ContentType: "text/plain"}); err != nil {
		t.Fatalf("PutObject: %v", err)
	}

	// Wait until the event is in the stream and MinIO has dropped it from
	// its queue, which it does only once the PubAck arrived.
	deadline = time.Now().Add(15 * time.Second)
	for {
		n := streamMsgs(t, dv, "MINIO_EVENTS")
		queued := countFiles(t, queueDir)
		if n >= 1 && queued == 0 {
			if n != 1 {
				t.Errorf("MINIO_EVENTS has %d messages for one PUT, want 1 (MinIO retried: no PubAck?)", n)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 15s: MINIO_EVENTS has %d messages, MinIO's queue %d events; want 1 and 0", n, queued)
		}
		time.Sleep(100 * time.Millisecond)
	}

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
	deadline = time.Now().Add(30 * time.Second)
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
