package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/docuvault/docuvault/internal/devstack"
)

const (
	// minioVersion is the github.com/minio/minio version `make tools` builds.
	minioVersion = "v0.0.0-20260212201848-7aac2a2c5b7c"

	minioRegion    = "us-east-1"
	minioAccessKey = "testenv-access"
)

// MinIOServer is a running MinIO server started by MinIO or StartMinIO.
type MinIOServer struct {
	Endpoint  string // host:port to connect to, without a scheme, such as "127.0.0.1:9000"
	AccessKey string
	SecretKey string
	Region    string // "us-east-1"
	DataDir   string // the directory the server stores objects in

	opts devstack.MinIOOptions // how to start the server, the same every time

	mu  sync.Mutex
	srv *devstack.MinIO // nil while the server is stopped
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
	SkipShort(tb, "a real MinIO server")
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
	SkipShort(tb, "a real MinIO server")
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
	if !devstack.IsExecutable(path) {
		return "", fmt.Errorf("testenv: MinIO server binary not found at %s: %s", path, hint)
	}
	return path, nil
}

// startMinIO starts a MinIO server storing objects in dataDir and keeping
// its log and (empty) certificate directory in stateDir. If the server
// exits while starting, perhaps because another process took its port, it
// is tried again on other ports.
func startMinIO(bin, stateDir, dataDir string, extraEnv []string) (*MinIOServer, error) {
	m := &MinIOServer{
		AccessKey: minioAccessKey,
		SecretKey: randomHex(16),
		Region:    minioRegion,
		DataDir:   dataDir,
	}
	for _, kv := range extraEnv { // later entries win, as in exec.Cmd.Env
		if v, ok := strings.CutPrefix(kv, "MINIO_ROOT_USER="); ok {
			m.AccessKey = v
		} else if v, ok := strings.CutPrefix(kv, "MINIO_ROOT_PASSWORD="); ok {
			m.SecretKey = v
		}
	}
	m.opts = devstack.MinIOOptions{
		Bin:       bin,
		DataDir:   dataDir,
		StateDir:  stateDir,
		AccessKey: m.AccessKey,
		SecretKey: m.SecretKey,
		Env:       append([]string{"MINIO_BROWSER=off"}, extraEnv...),
		// Nothing else of the test process's environment, so that no
		// setting of the shell running the tests changes the server.
		BaseEnv: []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")},
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
		m.opts.Addr = m.Endpoint
		m.opts.ConsoleAddr = fmt.Sprintf("127.0.0.1:%d", ports[1])
		if err = m.start(); err == nil {
			return m, nil
		}
		if !errors.Is(err, devstack.ErrExited) {
			break
		}
	}
	return nil, err
}

// start starts the server process and waits until it is ready. m.mu must
// be held and the server stopped.
func (m *MinIOServer) start() error {
	srv, err := devstack.StartMinIO(context.Background(), m.opts)
	if err != nil {
		return fmt.Errorf("testenv: %w", err)
	}
	m.srv = srv
	return nil
}

// stopLocked stops the server if it is running. m.mu must be held.
func (m *MinIOServer) stopLocked() {
	if m.srv != nil {
		m.srv.Stop()
		m.srv = nil
	}
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
	m.stopLocked()
}

// Restart stops the server if it is running and starts the same binary
// again with the same endpoint, credentials and data directory.
func (m *MinIOServer) Restart(tb testing.TB) {
	tb.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stopLocked()
	if err := m.start(); err != nil {
		tb.Fatal(err)
	}
}

// running reports whether the server process is up.
func (m *MinIOServer) running() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.srv != nil
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
		// Empty it, then remove it, as S3 has it. (MinIO's forced removal
		// sometimes left the bucket listed, on a loaded machine.)
		objects := client.ListObjects(ctx, name, minio.ListObjectsOptions{Recursive: true})
		var err error
		for e := range client.RemoveObjects(ctx, name, objects, minio.RemoveObjectsOptions{}) {
			err = errors.Join(err, e.Err)
		}
		if err == nil {
			err = client.RemoveBucket(ctx, name)
		}
		if err != nil && minio.ToErrorResponse(err).Code != minio.NoSuchBucket {
			tb.Errorf("testenv: remove bucket %s on MinIO %s: %v", name, m.Endpoint, err)
		}
	})
	return name
}
