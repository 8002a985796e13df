package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/docuvault/docuvault/internal/testenv"
)

// TestMain runs the tests, or, with DOCUVAULT_TEST_MAIN=1, the docuvault
// command itself: tests start it as a separate process they can kill.
func TestMain(m *testing.M) {
	if os.Getenv("DOCUVAULT_TEST_MAIN") == "1" {
		main()
		return
	}
	testenv.Main(m)
}

// syncBuffer is a bytes.Buffer safe for one writer and many readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// devPorts are the addresses a dev stack listens on in a test.
type devPorts struct {
	HTTP, NATS, MinIO, Console, PG, Clamd string
}

// all returns every address, named.
func (p devPorts) all() map[string]string {
	return map[string]string{"HTTP": p.HTTP, "NATS": p.NATS, "MinIO": p.MinIO, "MinIO console": p.Console, "PostgreSQL": p.PG, "clamd": p.Clamd}
}

// args returns the dev flags for the ports, the data dir and the MinIO binary.
func (p devPorts) args(t *testing.T, dataDir string) []string {
	_, pgPort, _ := net.SplitHostPort(p.PG)
	return []string{
		"--data-dir", dataDir,
		"--http-addr", p.HTTP,
		"--nats-addr", p.NATS,
		"--minio-addr", p.MinIO,
		"--minio-console-addr", p.Console,
		"--pg-port", pgPort,
		"--minio-bin", minioBin(t),
		"--clamd-addr", p.Clamd,
		"--log-format", "json",
	}
}

// mustFreePorts returns addresses on 127.0.0.1 whose ports were free a
// moment ago, all different.
func mustFreePorts(t *testing.T) devPorts {
	t.Helper()
	var addrs []string
	for range 6 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close() // held until all are picked, so they differ
		addrs = append(addrs, l.Addr().String())
	}
	return devPorts{HTTP: addrs[0], NATS: addrs[1], MinIO: addrs[2], Console: addrs[3], PG: addrs[4], Clamd: addrs[5]}
}

// minioBin returns the MinIO binary `make tools` builds. Every test that
// runs a dev stack gets its flags here, so under -short, which starts no
// server, they all skip here.
func minioBin(t *testing.T) string {
	t.Helper()
	testenv.SkipShort(t, "a real stack (docuvault dev with PostgreSQL, NATS and MinIO)")
	bin, err := filepath.Abs("../../bin/minio")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s missing: run `make tools`", bin)
	}
	return bin
}

// mustDataDir returns a fresh data directory that the postgres user may
// enter (t.TempDir's parent is private to root), removed after the test.
func mustDataDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "docuvault-dev-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "data")
}

// devRun is a runDev running in the test.
type devRun struct {
	cancel context.CancelFunc
	done   chan error
	out    *syncBuffer
	// From the banner:
	ReadyIn time.Duration
	PageURL string
	Token   string
	Banner  string
}

// mustStartDev runs runDev with args and waits for its banner. The run is
// stopped when the test ends if the test did not stop it.
func mustStartDev(t *testing.T, args []string) *devRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d := &devRun{cancel: cancel, done: make(chan error, 1), out: &syncBuffer{}}
	logs := &syncBuffer{}
	go func() { d.done <- run(ctx, append([]string{"dev"}, args...), d.out, logs) }()
	t.Cleanup(func() {
		d.Stop(t)
		if t.Failed() {
			t.Logf("dev logs:\n%s", logs.String())
		}
	})
	deadline := time.After(2 * time.Minute)
	for !strings.Contains(d.out.String(), "Press Ctrl-C to stop.") {
		select {
		case err := <-d.done:
			d.done <- err // for Stop
			t.Fatalf("runDev returned before its banner: %v\nstdout:\n%s\nlogs:\n%s", err, d.out.String(), logs.String())
		case <-deadline:
			t.Fatalf("no banner after 2 minutes\nstdout:\n%s\nlogs:\n%s", d.out.String(), logs.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	d.Banner = d.out.String()
	sc := bufio.NewScanner(strings.NewReader(d.Banner))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) >= 5 && strings.Join(f[:4], " ") == "DocuVault dev stack ready":
			d.ReadyIn, _ = time.ParseDuration(f[5])
		case len(f) == 2 && f[0] == "page":
			d.PageURL = strings.TrimSuffix(f[1], "/")
		case len(f) == 2 && f[0] == "token":
			d.Token = f[1]
		}
	}
	if d.ReadyIn == 0 || d.PageURL == "" || d.Token == "" {
		t.Fatalf("banner lacks the ready time, page or token:\n%s", d.Banner)
	}
	return d
}

// Stop cancels the run and waits for runDev to return; it fails the test
// if runDev returns an error. Stop does nothing the second time.
func (d *devRun) Stop(t *testing.T) {
	t.Helper()
	if d.done == nil {
		return
	}
	d.cancel()
	select {
	case err := <-d.done:
		if err != nil {
			t.Errorf("runDev returned %v after ctx was cancelled, want nil", err)
		}
	case <-time.After(time.Minute):
		t.Errorf("runDev did not return within a minute of cancelling")
	}
	d.done = nil
}

// call sends a request with the token and returns the status and body.
func call(t *testing.T, method, url, token string, body any) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// mustStatus calls and fails unless the answer has the status; it decodes a
// JSON answer into out when out is not nil.
func mustStatus(t *testing.T, want int, method, url, token string, body, out any) {
	t.Helper()
	got, b := call(t, method, url, token, body)
	if got != want {
		t.Fatalf("%s %s = %d %s, want %d", method, url, got, b, want)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, url, b, err)
		}
	}
}

// mustUsedBytes returns the dev user's used_bytes (GET /api/auth/me/quota).
func mustUsedBytes(t *testing.T, dev *devRun) int64 {
	t.Helper()
	var q struct {
		UsedBytes int64 `json:"used_bytes"`
	}
	mustStatus(t, http.StatusOK, "GET", dev.PageURL+"/api/auth/me/quota", dev.Token, nil, &q)
	return q.UsedBytes
}

// assertClosed fails for every address something still listens on.
func assertClosed(t *testing.T, ports devPorts) {
	t.Helper()
	for name, addr := range ports.all() {
		if addr == "" {
			continue
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("%s address %s still accepts connections after the dev stack stopped", name, addr)
		}
	}
}

type document struct {
	ID        string `json:"id"`
	Filename  string `json:"filename"`
	Status    string `json:"status"`
	SizeBytes int64  `json:"size_bytes"`
	Checksum  *struct {
		Algorithm string `json:"algorithm"`
		Value     string `json:"value"`
	} `json:"checksum"`
}

// TestDevLocalCluster runs `docuvault dev` the way `make run` does, with a
// PostgreSQL cluster of its own in the data dir: it answers, an upload is
// confirmed by MinIO's notification alone, Ctrl-C leaves nothing
// listening, and a second run finds the document.
func TestDevLocalCluster(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	t.Setenv("JWT_SECRET", "") // the secret persisted in the data dir is used
	dataDir := mustDataDir(t)
	ports := mustFreePorts(t)
	// A frontend served from its own origin, as a Vite dev server is.
	const frontend = "http://localhost:25173"
	args := append(ports.args(t, dataDir), "--cors-origin", frontend)

	dev := mustStartDev(t, args)
	t.Logf("first start (initdb, new MinIO and JetStream stores): ready in %v", dev.ReadyIn)
	for _, want := range []string{
		"http://" + ports.HTTP + "/",
		"nats://" + ports.NATS,
		"http://" + ports.MinIO,
		"postgres://postgres@" + ports.PG + "/docuvault?sslmode=disable",
		// make test installs clamav-daemon: the dev stack scans.
		"scanning    on: clamd " + ports.Clamd,
		"Ctrl-C",
	} {
		if !strings.Contains(dev.Banner, want) {
			t.Errorf("banner lacks %q:\n%s", want, dev.Banner)
		}
	}
	mustStatus(t, http.StatusOK, "GET", dev.PageURL+"/healthz", "", nil, nil)
	mustStatus(t, http.StatusOK, "GET", dev.PageURL+"/readyz", "", nil, nil)
	assertDevTokenHosts(t, dev.PageURL)
	var me struct{ ID, Role string }
	mustStatus(t, http.StatusOK, "GET", dev.PageURL+"/api/auth/me", dev.Token, nil, &me)
	if me.Role != "admin" || me.ID == "" {
		t.Errorf("/api/auth/me = %+v, want the dev user with role admin", me)
	}

	// Upload the way the page does, and never call /confirm.
	content := []byte("hello from the dev stack\n")
	var up struct {
		UploadURL  string            `json:"upload_url"`
		DocumentID string            `json:"document_id"`
		Headers    map[string]string `json:"headers"`
	}
	mustStatus(t, http.StatusCreated, "POST", dev.PageURL+"/api/documents/upload-url", dev.Token,
		map[string]any{"filename": "notes.txt", "content_type": "text/plain", "size_bytes": len(content)}, &up)
	if !strings.HasPrefix(up.UploadURL, "http://"+ports.MinIO+"/") {
		t.Errorf("upload URL is not signed for the MinIO address %s", ports.MinIO)
	}
	put, err := http.NewRequest("PUT", up.UploadURL, bytes.NewReader(content))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range up.Headers {
		put.Header.Set(k, v)
	}
	put.Header.Set("Origin", dev.PageURL)
	resp, err := http.DefaultClient.Do(put)
	if err != nil {
		t.Fatalf("PUT to MinIO: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT to MinIO = %s, want 200", resp.Status)
	}
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != dev.PageURL {
		t.Errorf("MinIO's Access-Control-Allow-Origin for the page = %q, want %q", got, dev.PageURL)
	}
	putDone := time.Now()
	// The frontend's origin may call the API and PUT to MinIO.
	for _, target := range []struct{ name, url, method string }{
		{"the API", dev.PageURL + "/api/documents/upload-url", "POST"},
		{"MinIO", up.UploadURL, "PUT"},
	} {
		req, _ := http.NewRequest("OPTIONS", target.url, nil)
		req.Header.Set("Origin", frontend)
		req.Header.Set("Access-Control-Request-Method", target.method)
		req.Header.Set("Access-Control-Request-Headers", "content-type")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("preflight to %s: %v", target.name, err)
		}
		resp.Body.Close()
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != frontend {
			t.Errorf("%s's preflight answer for --cors-origin %s: Access-Control-Allow-Origin %q (%d)", target.name, frontend, got, resp.StatusCode)
		}
	}
	preflight, _ := http.NewRequest("OPTIONS", up.UploadURL, nil)
	preflight.Header.Set("Origin", "http://elsewhere.example")
	preflight.Header.Set("Access-Control-Request-Method", "PUT")
	if resp, err := http.DefaultClient.Do(preflight); err == nil {
		resp.Body.Close()
		if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "" {
			t.Errorf("MinIO allows another origin: Access-Control-Allow-Origin = %q", got)
		}
	}
	docURL := dev.PageURL + "/api/documents/" + up.DocumentID
	var doc document
	for {
		mustStatus(t, http.StatusOK, "GET", docURL, dev.Token, nil, &doc)
		if doc.Status == "uploaded" || doc.Status == "classified" { // the dev stack's classifier may be quicker than us
			break
		}
		if time.Since(putDone) > 2*time.Second {
			t.Fatalf("document still %q 2 s after the PUT: MinIO → NATS → confirmer does not work", doc.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("document uploaded %v after the PUT, without /confirm", time.Since(putDone).Round(time.Millisecond))
	// Scanned by the dev stack's clamd, then downloadable.
	var scanned struct {
		ScanStatus  string `json:"scan_status"`
		DownloadURL string `json:"download_url"`
	}
	for {
		mustStatus(t, http.StatusOK, "GET", docURL, dev.Token, nil, &scanned)
		if scanned.ScanStatus == "clean" && scanned.DownloadURL != "" {
			break
		}
		if time.Since(putDone) > 10*time.Second {
			t.Fatalf("document not scanned clean 10 s after the PUT: %+v", scanned)
		}
		time.Sleep(20 * time.Millisecond)
	}

	dev.Stop(t)
	assertClosed(t, ports)
	if t.Failed() {
		t.FailNow()
	}

	again := mustStartDev(t, args)
	t.Logf("second start (reusing %s): ready in %v", dataDir, again.ReadyIn)
	var kept document
	mustStatus(t, http.StatusOK, "GET", docURL, again.Token, nil, &kept)
	if (kept.Status != "uploaded" && kept.Status != "classified") || kept.Filename != "notes.txt" {
		t.Errorf("after a restart the document is %+v, want notes.txt uploaded", kept)
	}
	again.Stop(t)
	assertClosed(t, ports)
}

// TestDevDatabaseURL runs the stack on the server DATABASE_URL names
// instead of a cluster of its own.
func TestDevDatabaseURL(t *testing.T) {
	dsn := testenv.Postgres(t)
	t.Setenv("DATABASE_URL", dsn)
	dataDir := mustDataDir(t)
	ports := mustFreePorts(t)

	dev := mustStartDev(t, ports.args(t, dataDir))
	mustStatus(t, http.StatusOK, "GET", dev.PageURL+"/readyz", "", nil, nil)
	if strings.Contains(dev.Banner, "127.0.0.1:"+strings.Split(ports.PG, ":")[1]) {
		t.Errorf("banner names the local cluster's port though DATABASE_URL is set:\n%s", dev.Banner)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "pg")); err == nil {
		t.Errorf("a local cluster was made in %s/pg though DATABASE_URL is set", dataDir)
	}
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var migrated bool
	if err := conn.QueryRow(t.Context(), "SELECT to_regclass('public.documents') IS NOT NULL").Scan(&migrated); err != nil || !migrated {
		t.Errorf("documents table in DATABASE_URL's database: %v, %v; want the migrations applied", migrated, err)
	}
	dev.Stop(t)
	ports.PG = "" // unused: the database is DATABASE_URL's
	assertClosed(t, ports)
}

// TestDevPortTaken shows that a taken port stops dev before anything
// starts, with a message naming what to change.
func TestDevPortTaken(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	for _, tc := range []struct {
		name string
		pick func(devPorts) string
		want string
	}{
		{"http", func(p devPorts) string { return p.HTTP }, "HTTP address %s is taken: set HTTP_ADDR or --http-addr"},
		{"nats", func(p devPorts) string { return p.NATS }, "NATS address %s is taken: set DEV_NATS_ADDR or --nats-addr"},
		{"minio", func(p devPorts) string { return p.MinIO }, "MinIO address %s is taken: set DEV_MINIO_ADDR or --minio-addr"},
		{"postgres", func(p devPorts) string { return p.PG }, "PostgreSQL port %s is taken: set DEV_PG_PORT or --pg-port"},
		{"clamd", func(p devPorts) string { return p.Clamd }, "clamd address %s is taken: set --clamd-addr"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dataDir := mustDataDir(t)
			ports := mustFreePorts(t)
			taken := tc.pick(ports)
			l, err := net.Listen("tcp", taken)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()

			start := time.Now()
			err = run(t.Context(), append([]string{"dev"}, ports.args(t, dataDir)...), io.Discard, io.Discard)
			want := fmt.Sprintf(tc.want, taken)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("runDev with %s taken = %v, want an error containing %q", taken, err, want)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("runDev took %v to refuse a taken port; it should check before starting anything", d)
			}
			for name, addr := range ports.all() {
				if addr == taken {
					continue
				}
				if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
					c.Close()
					t.Errorf("%s address %s is listening though dev refused to start", name, addr)
				}
			}
			if _, err := os.Stat(filepath.Join(dataDir, "pg", "data")); err == nil {
				t.Errorf("initdb ran though dev refused to start")
			}
		})
	}
}

// assertDevTokenHosts checks that the dev server at pageURL mints a token
// for its loopback Host headers only: a page whose own name was rebound to
// 127.0.0.1 (DNS rebinding) sends that name, and is refused.
func assertDevTokenHosts(t *testing.T, pageURL string) {
	t.Helper()
	_, port, err := net.SplitHostPort(strings.TrimPrefix(pageURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		host string
		want int
	}{
		{"localhost:" + port, http.StatusOK},
		{"LOCALHOST:" + port, http.StatusOK},
		{"127.0.0.1:" + port, http.StatusOK},
		{"[::1]:" + port, http.StatusOK},
		{"rebound.attacker.example:" + port, http.StatusForbidden},
		{"localhost.attacker.example:" + port, http.StatusForbidden},
		{"127.0.0.1.nip.io:" + port, http.StatusForbidden},
		{"localhost", http.StatusForbidden}, // another port: 80
		{"localhost:1", http.StatusForbidden},
	} {
		req, err := http.NewRequest(http.MethodPost, pageURL+"/api/dev/token", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = tc.host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("POST /api/dev/token with Host %s: %v", tc.host, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			shown := string(body)
			if resp.StatusCode == http.StatusOK {
				shown = "(a token)" // not into the test's log
			}
			t.Errorf("POST /api/dev/token with Host %s = %d %s, want %d", tc.host, resp.StatusCode, shown, tc.want)
			continue
		}
		var answer struct {
			Token  string `json:"token"`
			Detail string `json:"detail"`
		}
		if err := json.Unmarshal(body, &answer); err != nil {
			t.Errorf("Host %s: answer %s is not JSON: %v", tc.host, body, err)
		}
		switch {
		case tc.want == http.StatusOK && (answer.Token == "" || resp.Header.Get("Cache-Control") != "no-store"):
			t.Errorf("Host %s: token %q, Cache-Control %q; want a token, no-store", tc.host, answer.Token, resp.Header.Get("Cache-Control"))
		case tc.want != http.StatusOK && (answer.Token != "" || answer.Detail == ""):
			t.Errorf("Host %s: refused with %s, want a detail and no token", tc.host, body)
		}
	}
}

func TestDevHosts(t *testing.T) {
	for _, tc := range []struct {
		listen, asked string
		want          []string
	}{
		{"127.0.0.1:8080", "127.0.0.1:8080", []string{"localhost:8080", "127.0.0.1:8080", "[::1]:8080"}},
		{"127.0.0.1:8080", "localhost:8080", []string{"localhost:8080", "127.0.0.1:8080", "[::1]:8080"}},
		{"[::]:41234", ":0", []string{"localhost:41234", "127.0.0.1:41234", "[::1]:41234"}},
		{"0.0.0.0:8080", "0.0.0.0:8080", []string{"localhost:8080", "127.0.0.1:8080", "[::1]:8080"}},
		{"192.168.1.5:8080", "192.168.1.5:8080", []string{"localhost:8080", "127.0.0.1:8080", "[::1]:8080", "192.168.1.5:8080"}},
		{"[fd00::5]:8080", "[FD00::5]:8080", []string{"localhost:8080", "127.0.0.1:8080", "[::1]:8080", "[fd00::5]:8080"}},
		{"127.0.0.1:80", "127.0.0.1:80", []string{"localhost:80", "localhost", "127.0.0.1:80", "127.0.0.1", "[::1]:80", "[::1]"}},
	} {
		if got := devHosts(tc.listen, tc.asked); strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("devHosts(%q, %q) = %q, want %q", tc.listen, tc.asked, got, tc.want)
		}
	}
}

func TestPageOrigins(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want []string
	}{
		{"127.0.0.1:8080", []string{"http://127.0.0.1:8080", "http://localhost:8080"}},
		{"localhost:8080", []string{"http://127.0.0.1:8080", "http://localhost:8080"}},
		{":8080", []string{"http://127.0.0.1:8080", "http://localhost:8080"}},
		{"0.0.0.0:8080", []string{"http://127.0.0.1:8080", "http://localhost:8080"}},
		{"192.168.1.5:8080", []string{"http://192.168.1.5:8080", "http://127.0.0.1:8080", "http://localhost:8080"}},
		{"[::1]:8080", []string{"http://127.0.0.1:8080", "http://localhost:8080"}},
	} {
		if got := pageOrigins(tc.addr); strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("pageOrigins(%q) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}

// TestDevStartsAfterACrash kills `docuvault dev` (SIGKILL: no clean-up at
// all), which leaves its PostgreSQL server running on the data dir; the
// next run must stop that server and start cleanly on the same data.
func TestDevStartsAfterACrash(t *testing.T) {
	t.Setenv("DATABASE_URL", "")
	t.Setenv("JWT_SECRET", "")
	dataDir := mustDataDir(t)
	ports := mustFreePorts(t)
	args := ports.args(t, dataDir)

	cmd := exec.Command(os.Args[0], append([]string{"dev"}, args...)...)
	cmd.Env = append(os.Environ(), "DOCUVAULT_TEST_MAIN=1")
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(out.String(), "Press Ctrl-C to stop.") {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("the dev process printed no banner in 2 minutes:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if c, err := net.DialTimeout("tcp", ports.PG, time.Second); err != nil {
		t.Fatalf("PostgreSQL did not outlive the killed dev process (%v): the test shows nothing", err)
	} else {
		c.Close()
	}

	again := mustStartDev(t, args)
	t.Logf("started again after the crash in %v", again.ReadyIn)
	mustStatus(t, http.StatusOK, "GET", again.PageURL+"/readyz", "", nil, nil)
	again.Stop(t)
	assertClosed(t, ports)
}
