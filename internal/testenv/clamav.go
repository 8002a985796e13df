package testenv

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/docuvault/docuvault/internal/devstack"
)

// ClamAVServer is a clamd of the test's own (devstack.StartClamd: offline,
// with the local test signature database: EICAR and clamav-testfiles'
// samples).
type ClamAVServer struct {
	Addr            string // host:port, TCP
	StreamMaxLength int64  // the longest stream it scans

	mu   sync.Mutex
	opts devstack.ClamdOptions
	srv  *devstack.Clamd
}

// StartClamAV starts a clamd scanning streams of up to streamMaxLength
// bytes (0: 25 MiB, Debian's clamd.conf's) and stops it when the test ends. A
// machine without clamd fails the test, saying what to install.
func StartClamAV(tb testing.TB, streamMaxLength int64) *ClamAVServer {
	tb.Helper()
	SkipShort(tb, "a real clamd")
	if err := devstack.HaveClamd(); err != nil {
		tb.Fatalf("testenv: %v", err)
	}
	ports, err := freePorts(1)
	if err != nil {
		tb.Fatal(err)
	}
	s := &ClamAVServer{opts: devstack.ClamdOptions{Dir: tb.TempDir(), Addr: fmt.Sprintf("127.0.0.1:%d", ports[0]), StreamMaxLength: streamMaxLength}}
	start := time.Now()
	s.mu.Lock()
	err = s.start()
	s.mu.Unlock()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Logf("testenv: started clamd %s in %v", s.Addr, time.Since(start).Round(time.Millisecond))
	tb.Cleanup(s.Stop)
	return s
}

// start starts clamd; s.mu must be held and clamd stopped.
func (s *ClamAVServer) start() error {
	srv, err := devstack.StartClamd(context.Background(), s.opts)
	if err != nil {
		return fmt.Errorf("testenv: %w", err)
	}
	s.srv, s.Addr = srv, srv.Addr
	s.StreamMaxLength = s.opts.StreamMaxLength
	if s.StreamMaxLength <= 0 {
		s.StreamMaxLength = 25 << 20
	}
	return nil
}

// Stop stops clamd; it does nothing when it is stopped already.
func (s *ClamAVServer) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.srv.Stop()
	s.srv = nil
}

// Restart starts clamd again on the same address after a Stop.
func (s *ClamAVServer) Restart(tb testing.TB) {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.srv.Stop()
	if err := s.start(); err != nil {
		tb.Fatal(err)
	}
}
