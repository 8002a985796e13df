package testenv

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
)

// mainRunning reports whether the tests run under Main, which is required
// before starting a server shared by the whole process.
var mainRunning atomic.Bool

// stops holds the functions that stop the shared servers, in start order.
var stops struct {
	sync.Mutex
	fns  []stopFunc
	once sync.Once
}

type stopFunc struct {
	name string
	fn   func() error
}

// Main runs the package's tests and then stops every server this package
// started; it exits the process with the tests' exit code. Call it from
// TestMain:
//
//	func TestMain(m *testing.M) { testenv.Main(m) }
//
// An interrupt (SIGINT or SIGTERM) also stops the servers before the process
// exits.
func Main(m *testing.M) {
	mainRunning.Store(true)

	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig := <-sigs
		fmt.Fprintf(os.Stderr, "testenv: %v: stopping test servers\n", sig)
		stopServers()
		os.Exit(1)
	}()

	code := m.Run()
	signal.Stop(sigs)
	stopServers()
	os.Exit(code)
}

// SkipShort skips tb under `go test -short` (`make test-short`), the fast
// tier that starts no server and no browser; needs says what the test
// needs, such as "a real PostgreSQL server". Every function of this package
// that starts a server calls it first, so an integration test is skipped in
// that explicit tier only: without -short (`make test`) it runs, or fails
// saying what to install.
func SkipShort(tb testing.TB, needs string) {
	tb.Helper()
	if testing.Short() {
		tb.Skip("-short: needs " + needs)
	}
}

// requireMain fails tb unless the tests run under Main, so that a shared
// server is never left running after the test process.
func requireMain(tb testing.TB) {
	tb.Helper()
	if !mainRunning.Load() {
		tb.Fatalf("testenv: shared test servers need testenv.Main to stop them; add to the package's tests:\n\tfunc TestMain(m *testing.M) { testenv.Main(m) }")
	}
}

// registerStop arranges for Main to call fn once the tests have finished.
func registerStop(name string, fn func() error) {
	stops.Lock()
	defer stops.Unlock()
	stops.fns = append(stops.fns, stopFunc{name, fn})
}

// stopServers stops the shared servers, the last started first. It runs at
// most once; concurrent callers wait for it to finish.
func stopServers() {
	stops.once.Do(func() {
		stops.Lock()
		defer stops.Unlock()
		for i := len(stops.fns) - 1; i >= 0; i-- {
			s := stops.fns[i]
			if err := s.fn(); err != nil {
				fmt.Fprintf(os.Stderr, "testenv: stopping %s: %v\n", s.name, err)
			}
		}
		stops.fns = nil
	})
}

// randomHex returns 2*n random lowercase hexadecimal digits.
func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails; see crypto/rand.Read
	return hex.EncodeToString(b)
}

// freePorts returns n distinct TCP ports on 127.0.0.1 that were free a
// moment ago.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		// Keep the listener open until all ports are picked so they differ.
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// repoRoot returns the nearest directory at or above the working directory
// that holds a go.mod file.
func repoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod in %s or any directory above it", wd)
		}
		dir = parent
	}
}
