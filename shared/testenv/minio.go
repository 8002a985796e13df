package testenv

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

const (
	// minioVersion is the github.com/minio/minio version `make tools` builds.
	minioVersion = "v0.0.0-20260212201848-7aac2a2c5b7c"

	minioRegion     = "us-east-1"
	minioAccessKey  = "testenv-access"
	minioReadyAfter = 60 * time.Second // how long a server may take to become ready
	minioStopGrace  = 5 * time.Second  // how long a server may take to exit on SIGTERM
)

// MinIOServer is a running MinIO server started by MinIO or StartMinIO.
type MinIOServer struct {
	Endpoint  string // host:port to connect to, without a scheme, such as "127.0.0.1:9000"
	AccessKey string
	SecretKey string
	Region    string // "us-east-1"
	DataDir   string // the directory the server stores objects in

	bin         string
	consoleAddr string
	certsDir    string // empty, so that no certificates in $HOME/.minio turn TLS on
	logPath     string
	env         []string

	mu   sync.Mutex
	proc *process // nil while the server is stopped
}

// MinIOOptions configures a MinIO server started with StartMinIO.
type MinIOOptions struct {
	// Env holds extra environment variables for the server, as "KEY=value",
	// such as MINIO_NOTIFY_NATS_* settings. They override the defaults,
	// including MINIO_ROOT_USER and MINIO_ROOT_PASSWORD, which then become
	// the server's AccessKey and SecretKey.
	Env []string
	// DataDir is the directory to store objects in; tb.TempDir() if empty.
	DataDir string
}

// sharedMinIO is the process-wide server returned by MinIO.
var sharedMinIO struct {
	once sync.Once
	srv  *MinIOServer
	err  error
}

// MinIO returns the MinIO server shared by all tests of the process,
// starting it on first use; Main stops it. Tests isolate themselves from
// each other with NewBucket.
//
// The server binary is taken from DOCUVAULT_MINIO_BIN or, when that is unset,
// from bin/minio at the repository root (the nearest directory above the
// working directory with a go.mod).
func MinIO(tb testing.TB) *MinIOServer {
	tb.Helper()
	requireMain(tb)
	sharedMinIO.once.Do(func() {
		start := time.Now()
		sharedMinIO.srv, sharedMinIO.err = startSharedMinIO()
		if sharedMinIO.err == nil {
			tb.Logf("testenv: started MinIO %s in %v", sharedMinIO.srv.Endpoint, time.Since(start).Round(time.Millisecond))
		}
	})
	if sharedMinIO.err != nil {
		tb.Fatal(sharedMinIO.err)
	}
	return sharedMinIO.srv
}

func startSharedMinIO() (*MinIOServer, error) {
	bin, err := minioBinary()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "testenv-minio-")
	if err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}
	m, err := startMinIO(bin, dir, filepath.Join(dir, "data"), nil)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	registerStop("MinIO "+m.Endpoint, func() error {
		m.Stop()
		return os.RemoveAll(dir)
	})
	return m, nil
}

// StartMinIO starts a MinIO server of the test's own, separate from the
// shared one, and stops it when the test and its subtests have finished.
// Use it for a server with extra environment or one the test stops and
// restarts; otherwise prefer MinIO.
func StartMinIO(tb testing.TB, opts MinIOOptions) *MinIOServer {
	tb.Helper()
	bin, err := minioBinary()
	if err != nil {
		tb.Fatal(err)
	}
	stateDir := tb.TempDir()
	dataDir := opts.DataDir
	if dataDir == "" {
		dataDir = tb.TempDir()
	}
	start := time.Now()
	m, err := startMinIO(bin, stateDir, dataDir, opts.Env)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Logf("testenv: started MinIO %s in %v", m.Endpoint, time.Since(start).Round(time.Millisecond))
	tb.Cleanup(m.Stop) // runs before the removal of the directories above
	return m
}

// minioBinary returns the path of the MinIO server binary.
func minioBinary() (string, error) {
	path := os.Getenv("DOCUVAULT_MINIO_BIN")
	hint := "run `make tools` (builds it with go install github.com/minio/minio@" + minioVersion + ")"
	if path != "" {
		hint += ", or point DOCUVAULT_MINIO_BIN at a minio binary"
	} else {
		root, err := repoRoot()
		if err != nil {
			return "", fmt.Errorf("testenv: cannot locate the repository root for bin/minio: %v: set DOCUVAULT_MINIO_BIN to a minio binary", err)
		}
		path = filepath.Join(root, "bin", "minio")
	}
	if !isExecutable(path) {
		return "", fmt.Errorf("testenv: MinIO server binary not found at %s: %s", path, hint)
	}
	return path, nil
}

// startMinIO starts a MinIO server storing objects in dataDir and keeping
// its log and (empty) certificate directory in stateDir. If the server
// exits while starting, perhaps because another process took its port, it
// is tried again on other ports.
func startMinIO(bin, stateDir, dataDir string, extraEnv []string) (*MinIOServer, error) {
	env := append([]string{
		"MINIO_ROOT_USER=" + minioAccessKey,
		"MINIO_ROOT_PASSWORD=" + randomHex(16),
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + os.Getenv("HOME"),
	}, extraEnv...)
	m := &MinIOServer{
		Region:   minioRegion,
		DataDir:  dataDir,
		bin:      bin,
		certsDir: filepath.Join(stateDir, "certs"),
		logPath:  filepath.Join(stateDir, "minio.log"),
		env:      env,
	}
	for _, kv := range env { // later entries win, as in exec.Cmd.Env
		if v, ok := strings.CutPrefix(kv, "MINIO_ROOT_USER="); ok {
			m.AccessKey = v
		} else if v, ok := strings.CutPrefix(kv, "MINIO_ROOT_PASSWORD="); ok {
			m.SecretKey = v
		}
	}
	if err := os.MkdirAll(m.certsDir, 0o700); err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	var err error
	for range 3 {
		ports, perr := freePorts(2)
		if perr != nil {
			return nil, fmt.Errorf("testenv: %w", perr)
		}
		m.Endpoint = fmt.Sprintf("127.0.0.1:%d", ports[0])
		m.consoleAddr = fmt.Sprintf("127.0.0.1:%d", ports[1])
		if err = m.start(); err == nil || !errors.Is(err, errExited) {
			return m, err
		}
	}
	return nil, err
}

// start launches the server process and waits until it is ready. m.mu must
// be held and the server stopped.
func (m *MinIOServer) start() error {
	cmd := exec.Command(m.bin, "server", m.DataDir,
		"--address", m.Endpoint,
		"--console-address", m.consoleAddr,
		"--certs-dir", m.certsDir,
		"--quiet")
	cmd.Env = m.env
	// Setpgid lets stop signal the whole group; Pdeathsig kills the server
	// if the test process dies without stopping it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}

	logFile, err := os.OpenFile(m.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("testenv: %w", err)
	}
	fmt.Fprintf(logFile, "=== testenv %s: %s\n", time.Now().Format(time.RFC3339), strings.Join(cmd.Args, " "))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	p, err := startProcess(cmd)
	logFile.Close() // the child has its own copy
	if err != nil {
		return fmt.Errorf("testenv: start MinIO server %s: %w", m.bin, err)
	}
	if err := waitMinIOReady(m.Endpoint, p); err != nil {
		p.stop(minioStopGrace)
		return fmt.Errorf("testenv: MinIO server %s on %s: %w\n%s (last lines):\n%s",
			m.bin, m.Endpoint, err, m.logPath, logTail(m.logPath, 20))
	}
	m.proc = p
	return nil
}

// waitMinIOReady polls the server's liveness and then readiness endpoints
// until both answer 200 OK, p exits or minioReadyAfter passes.
func waitMinIOReady(endpoint string, p *process) error {
	client := &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{DisableKeepAlives: true},
	}
	deadline := time.Now().Add(minioReadyAfter)
	for _, path := range []string{"/minio/health/live", "/minio/health/ready"} {
		url := "http://" + endpoint + path
		for {
			resp, err := client.Get(url)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
				err = fmt.Errorf("GET %s: %s", url, resp.Status)
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("not ready after %v: %v", minioReadyAfter, err)
			}
			select {
			case <-p.exited:
				return fmt.Errorf("%w: %v", errExited, p.err)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}

// Stop stops the server, with SIGTERM and then SIGKILL if it has not exited
// after 5 s, and waits for it to exit. The data directory is kept for
// Restart. Stop does nothing if the server is already stopped.
//
// Stop and Restart are meant for servers from StartMinIO: stopping the
// shared server returned by MinIO breaks every other test using it.
func (m *MinIOServer) Stop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.proc != nil {
		m.proc.stop(minioStopGrace)
		m.proc = nil
	}
}

// Restart stops the server if it is running and starts the same binary
// again with the same endpoint, credentials and data directory.
func (m *MinIOServer) Restart(tb testing.TB) {
	tb.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.proc != nil {
		m.proc.stop(minioStopGrace)
		m.proc = nil
	}
	if err := m.start(); err != nil {
		tb.Fatal(err)
	}
}

// running reports whether the server process is up.
func (m *MinIOServer) running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.proc != nil
}

// Client returns a new minio-go client for the server.
func (m *MinIOServer) Client(tb testing.TB) *minio.Client {
	tb.Helper()
	c, err := minio.New(m.Endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(m.AccessKey, m.SecretKey, ""),
		Region: m.Region,
	})
	if err != nil {
		tb.Fatalf("testenv: minio client for %s: %v", m.Endpoint, err)
	}
	return c
}

// NewBucket creates a bucket with a fresh, unique name of the form
// "t-<random hex>" and returns the name. The bucket and all objects in it
// are removed when the test and its subtests have finished, unless the
// server is stopped by then.
func (m *MinIOServer) NewBucket(tb testing.TB) string {
	tb.Helper()
	client := m.Client(tb)
	name := "t-" + randomHex(8)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := client.MakeBucket(ctx, name, minio.MakeBucketOptions{Region: m.Region}); err != nil {
		tb.Fatalf("testenv: create bucket %s on MinIO %s: %v", name, m.Endpoint, err)
	}
	tb.Cleanup(func() {
		if !m.running() {
			return // the server's data goes with it
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := client.RemoveBucketWithOptions(ctx, name, minio.RemoveBucketOptions{ForceDelete: true})
		if err != nil && minio.ToErrorResponse(err).Code != minio.NoSuchBucket {
			tb.Errorf("testenv: remove bucket %s on MinIO %s: %v", name, m.Endpoint, err)
		}
	})
	return name
}
