package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"
)

// buildDocuVault builds the product binary from the repository's own
// module (its go.mod, not the harness's) into dir.
func buildDocuVault(ctx context.Context, repo, dir string) (string, time.Duration, error) {
	start := time.Now()
	bin := filepath.Join(dir, "docuvault")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./services/docuvault")
	cmd.Dir = repo
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", 0, fmt.Errorf("go build ./services/docuvault: %v\n%s", err, out)
	}
	return bin, time.Since(start), nil
}

// child is a `docuvault api` process on the harness's stack.
type child struct {
	url, pid string
	exited   chan struct{}
	exitErr  error
	cmd      *exec.Cmd
}

// startChild runs `bin api` with the stack's settings, overridden by
// extra, on a free port, and waits until it is ready.
func (s *stack) startChild(ctx context.Context, bin, name string, extra map[string]string) (*child, error) {
	ports, err := freePorts(1)
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	lf, err := os.Create(filepath.Join(s.dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, "api")
	cmd.Env = os.Environ()
	for k, v := range s.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	for k, v := range extra {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Env = append(cmd.Env, "HTTP_ADDR="+addr)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, err
	}
	c := &child{url: "http://" + addr, pid: strconv.Itoa(cmd.Process.Pid), exited: make(chan struct{}), cmd: cmd}
	go func() { c.exitErr = cmd.Wait(); lf.Close(); close(c.exited) }()
	if err := waitReady(ctx, s.client, c.url+"/readyz", 60*time.Second); err != nil {
		c.stop()
		return nil, fmt.Errorf("docuvault api child: %w (log: %s)", err, lf.Name())
	}
	return c, nil
}

// stop ends the child with SIGTERM (SIGKILL after 20 s) and waits for it.
func (c *child) stop() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(20 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
}

// alive returns an error if the child has exited.
func (c *child) alive() error {
	select {
	case <-c.exited:
		return fmt.Errorf("docuvault api child exited during the run: %v", c.exitErr)
	default:
		return nil
	}
}

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
	build   time.Duration
}

// memory runs workload 6: `docuvault api` (the real binary, built from
// this repository) as a child process on the same PostgreSQL, NATS and
// MinIO, with the same settings as the in-process services, and
// workload 1's DocuVault flow at p.memClients clients against it. The
// in-process confirmer still confirms from MinIO's notifications. Peak
// RSS is the child's VmHWM, reset through /proc/PID/clear_refs before each run.
func memory(ctx context.Context, s *stack, p plan, bin string, buildTime time.Duration) (*memResult, error) {
	res := &memResult{build: buildTime}
	c, err := s.startChild(ctx, bin, "api-child", nil)
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
func poolWhatIf(ctx context.Context, s *stack, p plan, bin string) ([]*poolCase, error) {
	cases := []*poolCase{
		{name: "default pool (max(4, cores) connections)"},
		{name: fmt.Sprintf("pool_max_conns=%d", p.whatIfPool), env: map[string]string{"DATABASE_URL": withPoolMaxConns(s.ds.DatabaseURL, p.whatIfPool)}},
	}
	children := make([]*child, len(cases))
	for i, pc := range cases {
		c, err := s.startChild(ctx, bin, fmt.Sprintf("api-pool-%d", i), pc.env)
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
