package testenv

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/minio/minio-go/v7"
)

func TestMain(m *testing.M) { Main(m) }

// connect opens a connection to dsn that is closed when the test ends.
func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatalf("connect to %s: %v", dsn, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// dbName returns the database name in a postgres:// URL.
func dbName(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("parse %q: %v", dsn, err)
	}
	return strings.TrimPrefix(u.Path, "/")
}

// adminDSN returns dsn pointing at the postgres database instead.
func adminDSN(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("parse %q: %v", dsn, err)
	}
	u.Path = "/postgres"
	return u.String()
}

func TestPostgresGivesFreshDatabases(t *testing.T) {
	t.Parallel()
	dsn1, dsn2 := Postgres(t), Postgres(t)
	if !strings.HasPrefix(dsn1, "postgres://") {
		t.Errorf("Postgres() = %q, want a postgres:// URL", dsn1)
	}
	name1, name2 := dbName(t, dsn1), dbName(t, dsn2)
	if name1 == name2 {
		t.Fatalf("two Postgres() calls gave the same database %q", name1)
	}

	conn1, conn2 := connect(t, dsn1), connect(t, dsn2)
	ctx := t.Context()
	for _, c := range []struct {
		conn *pgx.Conn
		name string
	}{{conn1, name1}, {conn2, name2}} {
		var got string
		if err := c.conn.QueryRow(ctx, "SELECT current_database()").Scan(&got); err != nil {
			t.Fatalf("query %s: %v", c.name, err)
		}
		if got != c.name {
			t.Errorf("current_database() = %q, want %q", got, c.name)
		}
		var tables int
		err := c.conn.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").Scan(&tables)
		if err != nil {
			t.Fatalf("count tables in %s: %v", c.name, err)
		}
		if tables != 0 {
			t.Errorf("fresh database %s has %d tables, want 0", c.name, tables)
		}
	}

	if _, err := conn1.Exec(ctx, "CREATE TABLE docs (id int PRIMARY KEY, title text)"); err != nil {
		t.Fatalf("create table: %v", err)
	}
	if _, err := conn1.Exec(ctx, "INSERT INTO docs VALUES (1, 'hello')"); err != nil {
		t.Fatalf("insert: %v", err)
	}
	var title string
	if err := conn1.QueryRow(ctx, "SELECT title FROM docs WHERE id = 1").Scan(&title); err != nil || title != "hello" {
		t.Fatalf("select title = %q, %v; want \"hello\"", title, err)
	}
	var exists bool
	if err := conn2.QueryRow(ctx, "SELECT to_regclass('public.docs') IS NOT NULL").Scan(&exists); err != nil {
		t.Fatalf("look up table in %s: %v", name2, err)
	}
	if exists {
		t.Errorf("table created in %s is visible in %s", name1, name2)
	}
}

func TestPostgresDropsDatabaseOnCleanup(t *testing.T) {
	SkipShort(t, "a real PostgreSQL server") // the subtest's skip would not end this test
	t.Parallel()
	var dsn string
	var conn *pgx.Conn
	t.Run("use", func(t *testing.T) {
		dsn = Postgres(t)
		var err error
		// Left open on purpose: the drop must force it closed.
		conn, err = pgx.Connect(t.Context(), dsn)
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		if _, err := conn.Exec(t.Context(), "CREATE TABLE t (x int)"); err != nil {
			t.Fatalf("create table: %v", err)
		}
	})
	if conn != nil {
		defer conn.Close(context.Background())
	}
	if t.Failed() {
		return
	}

	name := dbName(t, dsn)
	admin := connect(t, adminDSN(t, dsn))
	var n int
	if err := admin.QueryRow(t.Context(), "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil {
		t.Fatalf("look up database: %v", err)
	}
	if n != 0 {
		t.Errorf("database %s still exists after the subtest's cleanup", name)
	}
	if _, err := conn.Exec(t.Context(), "SELECT 1"); err == nil {
		t.Errorf("connection to dropped database %s still works", name)
	}
}

func TestPostgresParallel(t *testing.T) {
	t.Parallel()
	for i := range 8 {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Parallel()
			conn := connect(t, Postgres(t))
			var got int
			if err := conn.QueryRow(t.Context(), "SELECT $1::int + 1", i).Scan(&got); err != nil || got != i+1 {
				t.Errorf("SELECT %d + 1 = %d, %v", i, got, err)
			}
		})
	}
}

var bucketName = regexp.MustCompile(`^t-[0-9a-f]+$`)

func TestMinIOBucketPutStat(t *testing.T) {
	t.Parallel()
	srv := MinIO(t)
	if srv != MinIO(t) {
		t.Errorf("MinIO() returned two different servers in one process")
	}
	if srv.Region != "us-east-1" || strings.Contains(srv.Endpoint, "://") {
		t.Errorf("server Region = %q, Endpoint = %q", srv.Region, srv.Endpoint)
	}
	b1, b2 := srv.NewBucket(t), srv.NewBucket(t)
	if b1 == b2 || !bucketName.MatchString(b1) || !bucketName.MatchString(b2) {
		t.Errorf("NewBucket() = %q, %q; want two distinct names matching %v", b1, b2, bucketName)
	}

	client := srv.Client(t)
	ctx := t.Context()
	body := []byte("hello, docuvault")
	if _, err := client.PutObject(ctx, b1, "docs/a.txt", bytes.NewReader(body), int64(len(body)),
		minio.PutObjectOptions{ContentType: "text/plain"}); err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	info, err := client.StatObject(ctx, b1, "docs/a.txt", minio.StatObjectOptions{})
	if err != nil {
		t.Fatalf("StatObject: %v", err)
	}
	if info.Size != int64(len(body)) || info.ContentType != "text/plain" {
		t.Errorf("StatObject = size %d, type %q; want %d, text/plain", info.Size, info.ContentType, len(body))
	}
	if _, err := client.StatObject(ctx, b2, "docs/a.txt", minio.StatObjectOptions{}); minio.ToErrorResponse(err).Code != minio.NoSuchKey {
		t.Errorf("object is visible in the other bucket: StatObject error = %v", err)
	}
}

func TestMinIORemovesBucketOnCleanup(t *testing.T) {
	t.Parallel()
	srv := MinIO(t)
	var bucket string
	t.Run("use", func(t *testing.T) {
		bucket = srv.NewBucket(t)
		client := srv.Client(t)
		for _, key := range []string{"a", "b/c"} {
			if _, err := client.PutObject(t.Context(), bucket, key, strings.NewReader(key), int64(len(key)), minio.PutObjectOptions{}); err != nil {
				t.Fatalf("PutObject %s: %v", key, err)
			}
		}
	})
	if t.Failed() {
		return
	}
	// MinIO can still answer "exists" for a moment after a forced removal
	// on a loaded machine (seen once in CI); a bucket never removed stays.
	deadline := time.Now().Add(5 * time.Second)
	for {
		exists, err := srv.Client(t).BucketExists(t.Context(), bucket)
		if err != nil {
			t.Fatalf("BucketExists: %v", err)
		}
		if !exists {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("bucket %s still exists 5 s after the subtest's cleanup", bucket)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestStartMinIOStopRestart(t *testing.T) {
	t.Parallel()
	srv := StartMinIO(t, MinIOOptions{Env: []string{"MINIO_ROOT_USER=custom-user", "MINIO_ROOT_PASSWORD=custom-password"}})
	if srv.AccessKey != "custom-user" || srv.SecretKey != "custom-password" {
		t.Errorf("credentials = %q/%q, want the ones from Env", srv.AccessKey, srv.SecretKey)
	}
	if srv.Endpoint == MinIO(t).Endpoint {
		t.Errorf("StartMinIO reused the shared server's endpoint %s", srv.Endpoint)
	}
	bucket := srv.NewBucket(t)
	client := srv.Client(t)
	if _, err := client.PutObject(t.Context(), bucket, "k", strings.NewReader("v"), 1, minio.PutObjectOptions{}); err != nil {
		t.Fatalf("PutObject: %v", err)
	}

	srv.Stop()
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	if _, err := client.StatObject(ctx, bucket, "k", minio.StatObjectOptions{}); err == nil {
		t.Fatalf("StatObject succeeded on a stopped server")
	}

	srv.Restart(t)
	obj, err := client.GetObject(t.Context(), bucket, "k", minio.GetObjectOptions{})
	if err != nil {
		t.Fatalf("GetObject after restart: %v", err)
	}
	defer obj.Close()
	if got, err := io.ReadAll(obj); err != nil || string(got) != "v" {
		t.Errorf("object after restart = %q, %v; want \"v\"", got, err)
	}
}

// fatalRecorder is a testing.TB whose Fatal and Skip methods record the
// message and end the goroutine, as the real ones do.
type fatalRecorder struct {
	testing.TB
	msg     string
	skipped string
}

func (r *fatalRecorder) Helper() {}

func (r *fatalRecorder) Fatal(args ...any) {
	r.msg = fmt.Sprint(args...)
	runtime.Goexit()
}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *fatalRecorder) Skip(args ...any) {
	r.skipped = fmt.Sprint(args...)
	runtime.Goexit()
}

// record runs f with a fatalRecorder and returns it once f has returned,
// failed or skipped.
func record(t *testing.T, f func(tb testing.TB)) *fatalRecorder {
	rec := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(rec)
	}()
	<-done
	return rec
}

// fatalMessage runs f with a fatalRecorder and returns its Fatal message,
// or "" if f returned normally. If f skipped, so does the test.
func fatalMessage(t *testing.T, f func(tb testing.TB)) string {
	rec := record(t, f)
	if rec.skipped != "" {
		t.Skip(rec.skipped)
	}
	return rec.msg
}

// TestShortSkipsEveryServer checks the -short tier (make test-short): each
// function that starts a server skips the test first, saying what it
// needs, and starts nothing. Without -short it runs itself under -short,
// in a child process of this test binary.
func TestShortSkipsEveryServer(t *testing.T) {
	if !testing.Short() {
		out, err := exec.Command(os.Args[0], "-test.short", "-test.count=1", "-test.v", "-test.run=^TestShortSkipsEveryServer$").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestShortSkipsEveryServer") {
			t.Fatalf("TestShortSkipsEveryServer under -short: %v\n%s", err, out)
		}
		return
	}
	t.Setenv("DOCUVAULT_MINIO_BIN", filepath.Join(t.TempDir(), "no-minio")) // a start would fail, not skip
	for name, f := range map[string]func(tb testing.TB){
		"Postgres":      func(tb testing.TB) { Postgres(tb) },
		"MigratedPool":  func(tb testing.TB) { MigratedPool(tb) },
		"StartPostgres": func(tb testing.TB) { StartPostgres(tb) },
		"MinIO":         func(tb testing.TB) { MinIO(tb) },
		"StartMinIO":    func(tb testing.TB) { StartMinIO(tb, MinIOOptions{}) },
		"NATS":          func(tb testing.TB) { NATS(tb) },
		"NATSCluster":   func(tb testing.TB) { NATSCluster(tb, 3) },
		"StartNATSConf": func(tb testing.TB) { StartNATSConf(tb, nil) },
	} {
		rec := record(t, f)
		if !strings.HasPrefix(rec.skipped, "-short: needs a real ") || rec.msg != "" {
			t.Errorf("%s under -short: skipped %q, failed %q; want a skip saying \"-short: needs a real ...\"", name, rec.skipped, rec.msg)
		}
	}
}

func TestStartMinIOMissingBinary(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "minio")
	t.Setenv("DOCUVAULT_MINIO_BIN", missing)
	msg := fatalMessage(t, func(tb testing.TB) { StartMinIO(tb, MinIOOptions{}) })
	want := "MinIO server binary not found at " + missing + ": run `make tools`"
	if !strings.Contains(msg, want) {
		t.Errorf("StartMinIO with a missing binary failed with %q, want a message containing %q", msg, want)
	}
}

func TestStartMinIOFailingBinary(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "minio")
	script := "#!/bin/sh\necho 'boom: cannot start' >&2\nexit 3\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCUVAULT_MINIO_BIN", bin)
	msg := fatalMessage(t, func(tb testing.TB) { StartMinIO(tb, MinIOOptions{}) })
	if !strings.Contains(msg, "boom: cannot start") || !strings.Contains(msg, "exited before it became ready") {
		t.Errorf("StartMinIO with a failing binary failed with %q, want the log tail and the exit", msg)
	}
}

func TestStartPostgresStopsAndStartsKeepingCommits(t *testing.T) {
	t.Parallel()
	pg := StartPostgres(t)
	dsn := pg.Database(t)
	ctx := t.Context()
	conn := connect(t, dsn)
	if _, err := conn.Exec(ctx, "CREATE TABLE t (x int); INSERT INTO t VALUES (1)"); err != nil {
		t.Fatalf("write: %v", err)
	}

	pg.Stop(t)
	if _, err := conn.Exec(ctx, "SELECT 1"); err == nil {
		t.Error("a session survived Stop")
	}
	if c, err := pgx.Connect(ctx, dsn); err == nil {
		c.Close(ctx)
		t.Error("connected while stopped")
	}
	pg.Stop(t) // idempotent

	pg.Start(t)
	var x int
	if err := connect(t, dsn).QueryRow(ctx, "SELECT x FROM t").Scan(&x); err != nil || x != 1 {
		t.Errorf("after Start, the committed row reads %d, %v; want 1", x, err)
	}
}
