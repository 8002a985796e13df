package main

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	root "github.com/docuvault/docuvault/services/docuvault/stack"
)

// memRun is one run of workload 6 against the `docuvault api` child.
type memRun struct {
	size      int
	st        runStats
	startRSS  int64 // RSS when the run began (VmHWM was reset to it)
	peakRSS   int64 // VmHWM at the end of the run
	sampledHi int64 // highest VmRSS seen by 20 ms sampling (a cross-check)
}

// memResult is workload 6.
type memResult struct {
	idleRSS int64 // after start and /readyz, before any load
	runs    []memRun
}

// memory runs workload 6: a second `docuvault api` child, fresh, on the
// same PostgreSQL, NATS and MinIO with the same settings as the stack's,
// and workload 1's DocuVault flow at p.memClients clients against it. The
// stack's confirmer child confirms from MinIO's notifications. Peak RSS is
// the child's VmHWM, reset through /proc/PID/clear_refs before each run.
func memory(ctx context.Context, s *stack, p plan) (*memResult, error) {
	res := &memResult{}
	c, err := s.startDocuVault(ctx, root.API, "api-memory", nil)
	if err != nil {
		return nil, err
	}
	defer c.stop()
	time.Sleep(500 * time.Millisecond)
	res.idleRSS, _ = rss(c.pid)

	for _, sz := range p.memSizes {
		data := payload(sz.size)
		// Warm-up at the same concurrency: connections and pools opened.
		if st := run(ctx, p.memClients, p.memClients, 0, s.uploadOp(sysDocuVault, c.url, data, s.tokens[:p.memClients])); st.errs > 0 {
			return res, fmt.Errorf("warm-up: %v", st.firstErr)
		}
		for rep := range sz.reps {
			if err := resetPeak(c.pid); err != nil {
				return res, fmt.Errorf("reset peak RSS: %w", err)
			}
			r := memRun{size: sz.size}
			r.startRSS, _ = rss(c.pid)
			var hi atomic.Int64
			stop := make(chan struct{})
			sampled := make(chan struct{})
			go func() {
				defer close(sampled)
				t := time.NewTicker(20 * time.Millisecond)
				defer t.Stop()
				for {
					select {
					case <-stop:
						return
					case <-t.C:
						if cur, _ := rss(c.pid); cur > hi.Load() {
							hi.Store(cur)
						}
					}
				}
			}()
			r.st = run(ctx, p.memClients, 0, sz.dur, s.uploadOp(sysDocuVault, c.url, data, s.tokens[:p.memClients]))
			close(stop)
			<-sampled
			_, r.peakRSS = rss(c.pid)
			r.sampledHi = hi.Load()
			res.runs = append(res.runs, r)
			logf("  %7s rep %d: %6.1f files/s (%d files), api RSS %s at start → peak %s (sampled max %s), errors %d",
				human(sz.size), rep+1, r.st.perSec(), r.st.ops, mib(r.startRSS), mib(r.peakRSS), mib(r.sampledHi), r.st.errs)
			if r.st.errs > 0 {
				logf("    first error: %v", r.st.firstErr)
			}
			if _, err := s.waitIdle(ctx, 0, 20*time.Second); err != nil {
				logf("  %v", err)
			}
			if err := s.emptyBucket(ctx, s.cfg.MinIOBucket); err != nil {
				return res, err
			}
			if err := c.alive(); err != nil {
				return res, err
			}
		}
	}
	return res, s.wipeDocuments(ctx)
}

// poolCase is one api configuration of the what-if workload.
type poolCase struct {
	name string
	env  map[string]string
	runs []runStats
}

// poolWhatIf measures confirm alone at p.whatIfClients clients (each its
// own user) against two `docuvault api` children that differ only in the
// size of their PostgreSQL pool: pgxpool's default (max(4, cores)) and
// pool_max_conns=p.whatIfPool. The two runs of a repetition are back to
// back; documents are prepared as in workload 3 and reset between runs.
func poolWhatIf(ctx context.Context, s *stack, p plan) ([]*poolCase, error) {
	cases := []*poolCase{
		{name: "default pool (max(4, cores) connections)"},
		{name: fmt.Sprintf("pool_max_conns=%d", p.whatIfPool), env: map[string]string{"DATABASE_URL": withPoolMaxConns(s.ds.DatabaseURL, p.whatIfPool)}},
	}
	children := make([]*child, len(cases))
	for i, pc := range cases {
		c, err := s.startDocuVault(ctx, root.API, fmt.Sprintf("api-pool-%d", i), noConfirmWait(pc.env))
		if err != nil {
			return nil, err
		}
		defer c.stop()
		children[i] = c
	}
	cc := &ctlCase{op: "confirm", clients: p.whatIfClients}
	if err := s.prepareConfirms(ctx, cc, p.whatIfPer); err != nil {
		return nil, err
	}
	first := true
	for rep := range p.whatIfReps {
		for k := range cases {
			i := (k + rep) % len(cases)
			if !first {
				if err := s.resetPending(ctx, cc); err != nil {
					return cases, err
				}
			}
			first = false
			st := s.runConfirms(ctx, children[i].url, cc)
			cases[i].runs = append(cases[i].runs, st)
			logf("  confirm, %d clients, %-42s rep %d: %6.0f req/s  p50 %7.2f ms  p99 %7.2f ms  errors %d",
				cc.clients, cases[i].name, rep+1, st.perSec(), ms(pct(st.lat, .5)), ms(pct(st.lat, .99)), st.errs)
			if st.errs > 0 {
				logf("    first error: %v", st.firstErr)
			}
			if err := children[i].alive(); err != nil {
				return cases, err
			}
		}
	}
	return cases, s.wipeDocuments(ctx)
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
