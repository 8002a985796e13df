package devstack

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

const (
	minioReadyAfter = 60 * time.Second // how long MinIO may take to become ready
	minioStopGrace  = 5 * time.Second  // how long MinIO may take to exit on SIGTERM
)

// MinIOOptions configures a MinIO server run as a child process.
type MinIOOptions struct {
	Bin         string // the minio binary
	DataDir     string // where objects are stored
	StateDir    string // holds the server's log (minio.log) and an empty certs directory
	Addr        string // S3 API listen address, host:port
	ConsoleAddr string // console listen address, host:port
	AccessKey   string // MINIO_ROOT_USER
	SecretKey   string // MINIO_ROOT_PASSWORD, at least 8 characters
	// Env holds more environment for the server, as "KEY=value", such as
	// the MINIO_NOTIFY_NATS_* settings; it overrides the defaults.
	Env []string
	// BaseEnv, when not nil, is the environment the server starts from,
	// instead of this process's environment without its MINIO_ settings:
	// tests give it little more than PATH and HOME.
	BaseEnv []string
}

// ErrExited is wrapped by StartMinIO's error when the server exited before
// it became ready, perhaps because another process took its port first.
var ErrExited = errors.New("server exited before it became ready")

// MinIO is a MinIO server running as a child process. It is killed if this
// process dies without stopping it.
type MinIO struct {
	Endpoint  string // host:port clients connect to
	AccessKey string
	SecretKey string
	LogPath   string // the server's output

	proc *process
}

// StartMinIO starts the MinIO server and waits until it is live and ready,
// the server exits or ctx ends.
func StartMinIO(ctx context.Context, opts MinIOOptions) (*MinIO, error) {
	if !IsExecutable(opts.Bin) {
		return nil, fmt.Errorf("MinIO server binary not found at %s: run `make tools` (builds it into ./bin), or set DEV_MINIO_BIN or --minio-bin", opts.Bin)
	}
	host, port, err := splitAddr(opts.Addr, "MinIO address")
	if err != nil {
		return nil, err
	}
	certs := filepath.Join(opts.StateDir, "minio-certs")
	for _, d := range []string{opts.DataDir, certs} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	m := &MinIO{
		Endpoint:  fmt.Sprintf("%s:%d", dialHost(host), port),
		AccessKey: opts.AccessKey,
		SecretKey: opts.SecretKey,
		LogPath:   filepath.Join(opts.StateDir, "minio.log"),
	}
	// An empty certs directory keeps certificates in $HOME/.minio from
	// turning TLS on.
	cmd := exec.Command(opts.Bin, "server", opts.DataDir,
		"--address", opts.Addr,
		"--console-address", opts.ConsoleAddr,
		"--certs-dir", certs,
		"--quiet")
	base := opts.BaseEnv
	if base == nil {
		base = inheritedEnv()
	}
	cmd.Env = append(slices.Clip(base),
		"MINIO_ROOT_USER="+opts.AccessKey,
		"MINIO_ROOT_PASSWORD="+opts.SecretKey,
		"MINIO_UPDATE=off",
	)
	cmd.Env = append(cmd.Env, opts.Env...)
	logFile, err := os.OpenFile(m.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(logFile, "=== devstack %s: %s\n", time.Now().Format(time.RFC3339), strings.Join(cmd.Args, " "))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	p, err := startProcess(cmd)
	logFile.Close() // the child has its own copy
	if err != nil {
		return nil, fmt.Errorf("start MinIO server %s: %w", opts.Bin, err)
	}
	if err := waitMinIOReady(ctx, m.Endpoint, p); err != nil {
		p.stop(minioStopGrace)
		return nil, fmt.Errorf("MinIO server %s on %s: %w\n%s (last lines):\n%s", opts.Bin, opts.Addr, err, m.LogPath, logTail(m.LogPath, 20))
	}
	m.proc = p
	return m, nil
}

// Stop stops the server with SIGTERM, then SIGKILL if it has not exited
// after 5 s, and waits for it to exit. Stop does nothing the second time.
func (m *MinIO) Stop() {
	if m == nil || m.proc == nil {
		return
	}
	m.proc.stop(minioStopGrace)
	m.proc = nil
}

// inheritedEnv is this process's environment without MinIO's own
// settings, so that none from the user's shell changes the dev server.
func inheritedEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MINIO_") {
			env = append(env, kv)
		}
	}
	return env
}

// waitMinIOReady polls the server's liveness and then readiness endpoints
// until both answer 200 OK, then until its IAM is loaded, p exits, ctx ends
// or minioReadyAfter passes. A restarted server answers ready before it has
// loaded its users, and until then refuses every identity but root with
// 503 XMinioIAMNotInitialized.
func waitMinIOReady(ctx context.Context, endpoint string, p *process) error {
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
			if err := waitRetry(ctx, p, deadline, err); err != nil {
				return err
			}
		}
	}
	// An unknown identity is refused as unknown (403) once IAM is loaded.
	probe, err := minio.New(endpoint, &minio.Options{
		Creds: credentials.NewStaticV4("devstack-iam-probe", "devstack-iam-probe-secret", ""), MaxRetries: 1,
	})
	if err != nil {
		return err
	}
	for {
		_, err := probe.ListBuckets(ctx)
		if code := minio.ToErrorResponse(err).Code; code != "XMinioIAMNotInitialized" && code != "XMinioServerNotInitialized" {
			return nil
		}
		if err := waitRetry(ctx, p, deadline, err); err != nil {
			return err
		}
	}
}

// waitRetry waits before the next readiness poll; it fails once deadline
// has passed (with the last poll's error), p has exited or ctx has ended.
func waitRetry(ctx context.Context, p *process, deadline time.Time, last error) error {
	if time.Now().After(deadline) {
		return fmt.Errorf("not ready after %v: %v", minioReadyAfter, last)
	}
	select {
	case <-p.exited:
		return fmt.Errorf("%w: %v", ErrExited, p.err)
	case <-ctx.Done():
		return errors.Join(errors.New("interrupted while starting"), ctx.Err())
	case <-time.After(25 * time.Millisecond):
	}
	return nil
}
