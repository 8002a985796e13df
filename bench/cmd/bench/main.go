// Command bench measures DocuVault on this machine against the real stack
// (PostgreSQL and MinIO started by internal/devstack, NATS and tusd in this
// binary re-executed, the api, confirmer and sweeper as the real
// `docuvault` binary, each server a process of its own; load from Go
// clients in this process over loopback) and writes BENCHMARKS.md. With
// -baseline REV it also builds the docuvault binary at REV and measures
// it beside this tree's, in a stack of its own (baseline.go).
//
//	cd bench && go run ./cmd/bench -out ../BENCHMARKS.md -baseline d849a52   # what `make bench` runs (~20 min)
//	cd bench && go run ./cmd/bench -quick                                     # a smoke run, report on stdout
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

type options struct {
	quick           bool
	out             string
	repo            string
	keep            bool
	only            string
	tusdPartUploads int
	profDir         string
	poolMaxConns    int
	baseline        string
}

type sizePlan struct {
	size    int
	dur     time.Duration // per run
	reps    int
	systems []system
}

// plan is how much of each workload a run does.
type plan struct {
	tpClients int
	tpSizes   []sizePlan

	ctlClients, ctlHotClients []int
	ctlReps                   int
	ctlDuration, ctlWarmup    time.Duration
	ctlConfirms               func(clients int) int

	evReps, evUploads int

	flowReps, flowUploads int

	swReps, swRows, swOrphans, swLost int
	swServiceRows                     int // > 0: one sweep through the sweeper service too

	memClients int
	memSizes   []sizePlan

	whatIfClients, whatIfPer, whatIfPool, whatIfReps int

	profDuration    time.Duration
	profConfirmsPer int

	mpSizes []int64 // one file of each size per system and repetition
	mpReps  int
}

// allSystems run at the sizes where the notifications' share is measured
// (presigned+notify); docuvault+sha256 runs there too, for the checksums'
// cost beside plain docuvault.
var (
	allSystems   = []system{sysDocuVault, sysDocuVaultSum, sysRaw, sysNotify, sysTusd}
	threeSystems = []system{sysDocuVault, sysRaw, sysTusd}
)

func fullPlan() plan {
	return plan{
		tpClients: 32,
		tpSizes: []sizePlan{
			{64 << 10, 3 * time.Second, 7, allSystems},
			{1 << 20, 3 * time.Second, 7, allSystems},
			{16 << 20, 6 * time.Second, 3, threeSystems},
		},

		ctlClients: []int{1, 32, 256}, ctlHotClients: []int{256},
		ctlReps: 3, ctlDuration: 3 * time.Second, ctlWarmup: time.Second,
		ctlConfirms: func(c int) int {
			switch {
			case c == 1:
				return 200
			case c <= 32:
				return 960
			}
			return 1280
		},

		evReps: 3, evUploads: 1000,

		flowReps: 3, flowUploads: 200,

		swReps: 2, swRows: 100_000, swOrphans: 5_000, swLost: 500, swServiceRows: 10_000,

		memClients: 256,
		memSizes:   []sizePlan{{64 << 10, 4 * time.Second, 3, nil}, {1 << 20, 4 * time.Second, 3, nil}},

		whatIfClients: 256, whatIfPer: 6, whatIfPool: 32, whatIfReps: 3,

		profDuration: 10 * time.Second, profConfirmsPer: 100,

		mpSizes: []int64{1 << 30, 256 << 20}, mpReps: 3,
	}
}

func quickPlan() plan {
	return plan{
		tpClients: 32,
		tpSizes: []sizePlan{
			{64 << 10, time.Second, 2, allSystems},
			{1 << 20, time.Second, 1, allSystems},
			{16 << 20, time.Second, 1, threeSystems},
		},

		ctlClients: []int{1, 32, 256}, ctlHotClients: []int{256},
		ctlReps: 1, ctlDuration: time.Second, ctlWarmup: 300 * time.Millisecond,
		ctlConfirms: func(c int) int {
			switch {
			case c == 1:
				return 50
			case c <= 32:
				return 320
			}
			return 512
		},

		evReps: 1, evUploads: 30,

		flowReps: 1, flowUploads: 40,

		swReps: 1, swRows: 5_000, swOrphans: 300, swLost: 30,

		memClients: 256,
		memSizes:   []sizePlan{{64 << 10, 2 * time.Second, 1, nil}},

		whatIfClients: 256, whatIfPer: 2, whatIfPool: 32, whatIfReps: 1,

		profDuration: 1500 * time.Millisecond, profConfirmsPer: 10,

		mpSizes: []int64{1 << 30, 256 << 20}, mpReps: 1,
	}
}

var started = time.Now()

// logf prints progress on stderr.
func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(started).Seconds(), fmt.Sprintf(format, args...))
}

var workloads = []string{"throughput", "confirm-flow", "multipart", "control", "events", "memory", "whatif", "profile", "sweeper"}

func main() {
	// Re-executed as one of the stack's servers (children.go).
	if len(os.Args) > 1 && (os.Args[1] == serveNATSCmd || os.Args[1] == serveTusdCmd) {
		if err := serveChild(os.Args[1], os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "bench "+os.Args[1]+":", err)
			os.Exit(1)
		}
		return
	}
	var o options
	flag.BoolVar(&o.quick, "quick", false, "a short smoke run (< 2 minutes) instead of the full one (~15 minutes)")
	flag.StringVar(&o.out, "out", "", "write the report to this file (default: stdout)")
	flag.StringVar(&o.repo, "repo", "..", "the repository root (holds bin/minio, built by make tools)")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (server state and logs)")
	flag.StringVar(&o.only, "only", "", "comma-separated workloads to run (default all): "+strings.Join(workloads, ","))
	flag.IntVar(&o.tusdPartUploads, "tusd-part-uploads", 10, "tusd s3store concurrent part uploads (tusd's default is 10)")
	flag.StringVar(&o.profDir, "profdir", "out", "where CPU profiles are written (-quick: out/quick)")
	flag.IntVar(&o.poolMaxConns, "pool-max-conns", 0, "if > 0, sets pool_max_conns on DATABASE_URL for every service (default: pgxpool's default)")
	flag.StringVar(&o.baseline, "baseline", "", "a commit (any git revision) to compare with: its docuvault binary is built too and measured in a stack of its own, interleaved with this tree's, in the throughput workload at the sizes with presigned+notify and in confirm-flow (make bench BASELINE=<rev>)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := mainErr(ctx, o)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func mainErr(ctx context.Context, o options) error {
	repo, err := filepath.Abs(o.repo)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(repo, "bin", "minio")); err != nil {
		return fmt.Errorf("%s/bin/minio is missing: run `make tools` in the repository first", repo)
	}
	want := func(w string) bool {
		return o.only == "" || slices.Contains(strings.Split(o.only, ","), w)
	}
	for _, w := range strings.Split(o.only, ",") {
		if w != "" && !slices.Contains(workloads, w) {
			return fmt.Errorf("-only: unknown workload %q (have %s)", w, strings.Join(workloads, ","))
		}
	}
	p := fullPlan()
	if o.quick {
		p = quickPlan()
		if o.profDir == "out" {
			o.profDir = filepath.Join("out", "quick") // keep the full run's profiles
		}
	}
	rep := newReport(o, repo)

	// The product binary, whose processes are the services, built before
	// anything is measured so that the compiler does not compete.
	buildDir, err := os.MkdirTemp("", "dvb-bin-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(buildDir)
	logf("building ./services/docuvault (the api, confirmer and sweeper processes)")
	bin := filepath.Join(buildDir, "docuvault")
	if rep.build, err = buildDocuVault(ctx, repo, bin); err != nil {
		return err
	}
	// The baseline's binary and its stack, for the workloads that compare
	// with it; the baseline's stack starts first, so that this tree's
	// settings are the ones left in this process's environment.
	var base *stack
	if o.baseline != "" && (want("throughput") || want("confirm-flow")) {
		logf("building ./services/docuvault at %s (the baseline)", o.baseline)
		if rep.baseline, err = buildBaseline(ctx, repo, o.baseline, buildDir); err != nil {
			return err
		}
		logf("starting the baseline's stack (%s %s)", rep.baseline.commit, rep.baseline.subject)
		t0 := time.Now()
		if base, err = startStack(ctx, repo, rep.baseline.bin, rep.baseline, o); err != nil {
			return fmt.Errorf("the baseline's stack: %w", err)
		}
		defer func() {
			if base != nil {
				base.stop(o.keep)
			}
		}()
		rep.baselineStart = time.Since(t0)
		logf("baseline's stack ready in %.1fs: api %s, MinIO %s", rep.baselineStart.Seconds(), base.apiURL, base.ds.MinIOEndpoint)
	}

	logf("starting the stack (NATS; PostgreSQL, MinIO; docuvault api, confirmer, sweeper; tusd)")
	t0 := time.Now()
	s, err := startStack(ctx, repo, bin, nil, o)
	if err != nil {
		return err
	}
	defer s.stop(o.keep)
	rep.stackStart = time.Since(t0)
	pids := ""
	for p, pid := range s.pids {
		pids += fmt.Sprintf(" %s %d", procNames[p], pid)
	}
	logf("stack ready in %.1fs: api %s, tusd %s, MinIO %s; pids:%s", rep.stackStart.Seconds(), s.apiURL, s.tusURL, s.ds.MinIOEndpoint, pids)

	var failed []error
	step := func(name string, fn func() error) {
		if !want(name) || ctx.Err() != nil {
			return
		}
		logf("workload %s (load average %s)", name, loadavg())
		t := time.Now()
		err := fn()
		rep.took[name] = time.Since(t)
		if err != nil {
			logf("workload %s FAILED: %v", name, err)
			rep.failed[name] = err
			failed = append(failed, fmt.Errorf("%s: %w", name, err))
		}
	}
	step("throughput", func() (err error) { rep.tp, err = throughput(ctx, s, base, p); return })
	step("confirm-flow", func() (err error) { rep.flow, err = confirmFlow(ctx, s, base, p); return })
	if base != nil {
		// The rest compares with nothing: the baseline's servers would
		// only take memory and a little CPU from it.
		base.stop(o.keep)
		base = nil
	}
	step("multipart", func() (err error) { rep.mp, err = multipartBench(ctx, s, p); return })
	step("control", func() (err error) { rep.ctl, err = controlPlane(ctx, s, p); return })
	step("events", func() (err error) { rep.ev, err = eventPath(ctx, s, p); return })
	step("memory", func() (err error) { rep.mem, err = memory(ctx, s, p); return })
	step("whatif", func() (err error) { rep.whatif, err = poolWhatIf(ctx, s, p); return })
	step("profile", func() (err error) { rep.prof, err = profiles(ctx, s, p, o.profDir); return })
	step("sweeper", func() (err error) { rep.sw, err = sweepBench(ctx, s, p); return })
	rep.total = time.Since(started)
	rep.loadEnd = loadavg()

	text := rep.markdown(p)
	if o.out == "" {
		fmt.Print(text)
	} else {
		if old, err := os.ReadFile(o.out); err == nil {
			text += keptNotes(string(old))
		}
		if err := os.WriteFile(o.out, []byte(text), 0o644); err != nil {
			return err
		}
		logf("wrote %s", o.out)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return errors.Join(failed...)
}
