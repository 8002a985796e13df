package api

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/shared/auth"
	"github.com/docuvault/docuvault/shared/metrics"
	"github.com/docuvault/docuvault/shared/probe"
)

// TestReadyzAndMetricsAreCheap sends 200 concurrent /readyz requests and
// 200 concurrent /metrics scrapes, none authenticated, and counts the
// backend calls they cause: at most one per probe.MaxAge for the checks
// and for the outbox count, not one per request. Then a check starts
// failing, and /readyz must say so within about probe.MaxAge.
func TestReadyzAndMetricsAreCheap(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, reg)
	if err != nil {
		t.Fatal(err)
	}
	var pings, counts atomic.Int64
	var minioDown atomic.Bool
	metrics.OutboxWaiting(reg, func() float64 { counts.Add(1); return 7 })
	checks := []Check{
		{Name: "postgres", Ping: func(context.Context) error { pings.Add(1); return nil }},
		{Name: "minio", Ping: func(context.Context) error {
			if minioDown.Load() {
				return errors.New("dial tcp 10.0.0.7:9000: connection refused")
			}
			return nil
		}},
	}
	v, err := auth.NewVerifier(auth.Config{Secret: []byte(strings.Repeat("k", 32))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(Handler(Deps{Verifier: v, Log: zerolog.Nop(), Metrics: m, Checks: checks, Closing: make(chan struct{})}))
	defer srv.Close()
	client := srv.Client()
	get := func(path string) (int, string, error) {
		resp, err := client.Get(srv.URL + path)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), err
	}

	const ready = `{"checks":{"minio":"ok","postgres":"ok"},"status":"ready"}` + "\n"
	start := time.Now()
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() {
			if status, body, err := get("/readyz"); err != nil || status != http.StatusOK || body != ready {
				t.Errorf("/readyz: %d %q %v", status, body, err)
			}
		})
		wg.Go(func() {
			if status, body, err := get("/metrics"); err != nil || status != http.StatusOK || !strings.Contains(body, "\ndocuvault_outbox_waiting 7\n") {
				t.Errorf("/metrics: %d %v, docuvault_outbox_waiting 7 not in %.500q", status, err, body)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	// One call, and one more for each MaxAge the burst lasted on a slow
	// machine: what matters is that it is not 200.
	allowed := 1 + int64(elapsed/probe.MaxAge)
	t.Logf("400 probes in %v: %d readiness checks, %d outbox counts (allowed %d each)", elapsed, pings.Load(), counts.Load(), allowed)
	if n := pings.Load(); n < 1 || n > allowed {
		t.Errorf("200 /readyz requests ran the checks %d times, want 1 to %d", n, allowed)
	}
	if n := counts.Load(); n < 1 || n > allowed {
		t.Errorf("200 /metrics scrapes counted the outbox %d times, want 1 to %d", n, allowed)
	}

	// Wait for a fresh check, so that the answer cached when MinIO goes
	// down is as young as it can be: the failure then waits out its age.
	for n := pings.Load(); pings.Load() == n; time.Sleep(10 * time.Millisecond) {
		if _, _, err := get("/readyz"); err != nil {
			t.Fatal(err)
		}
	}
	minioDown.Store(true)
	down := time.Now()
	const notReady = `{"checks":{"minio":"unavailable","postgres":"ok"},"detail":"not ready: minio unavailable"}` + "\n"
	for {
		status, body, err := get("/readyz")
		if err != nil {
			t.Fatal(err)
		}
		if status == http.StatusServiceUnavailable {
			if body != notReady {
				t.Fatalf("/readyz with MinIO down: %q, want %q", body, notReady)
			}
			break
		}
		if status != http.StatusOK || time.Since(down) > 3*probe.MaxAge {
			t.Fatalf("/readyz %v after MinIO went down: %d %s", time.Since(down), status, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(down)
	t.Logf("/readyz answered 503 %v after MinIO went down", took)
	if took > probe.MaxAge+500*time.Millisecond {
		t.Errorf("/readyz took %v to show the failure, want about %v at most", took, probe.MaxAge)
	}
}
