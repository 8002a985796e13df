package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

// notesMarker starts the hand-written part of BENCHMARKS.md, which a new
// run keeps.
const notesMarker = "<!-- hand-written notes below: kept by make bench -->"

func keptNotes(old string) string {
	_, notes, ok := strings.Cut(old, notesMarker)
	if !ok {
		return ""
	}
	return "\n" + notesMarker + notes
}

type report struct {
	o                  options
	repo               string
	date               time.Time
	command            string
	nproc, free, cpu   string
	goVersion, tree    string
	loadStart, loadEnd string
	stackStart, total  time.Duration
	build              time.Duration
	whatif             []*poolCase
	took               map[string]time.Duration
	failed             map[string]error
	tp                 []*tpSize
	ctl                []*ctlCase
	ev                 []evRun
	sw                 []swRun
	mem                *memResult
	prof               []*profResult
	mp                 *mpResult
	baseline           *baseline // -baseline, or nil
	baselineStart      time.Duration
	flow               []flowRun
}

func sh(dir string, name string, args ...string) string {
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Sprintf("(%s: %v)", name, err)
	}
	return strings.TrimRight(string(out), "\n")
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func newReport(o options, repo string) *report {
	r := &report{o: o, repo: repo, date: time.Now(), took: map[string]time.Duration{}, failed: map[string]error{}}
	r.command = "cd bench && go run ./cmd/bench " + strings.Join(os.Args[1:], " ")
	r.nproc = sh("", "nproc")
	r.free = sh("", "free", "-h")
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				r.cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	r.goVersion = sh(repo, "go", "version")
	head := sh(repo, "git", "rev-parse", "--short", "HEAD")
	var dirty []string
	for _, l := range strings.Split(sh(repo, "git", "status", "--porcelain", "--untracked-files=no"), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			dirty = append(dirty, strings.Fields(l)[len(strings.Fields(l))-1])
		}
	}
	r.tree = "commit " + head
	if len(dirty) > 0 {
		r.tree += fmt.Sprintf(" plus uncommitted changes to %d tracked files (%s)", len(dirty), strings.Join(dirty, ", "))
	}
	r.loadStart = loadavg()
	return r
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func minMax(xs []float64) (float64, float64) {
	if len(xs) == 0 {
		return 0, 0
	}
	return slices.Min(xs), slices.Max(xs)
}

func verdict(v, goal float64, lo, hi float64) string {
	switch {
	case lo >= goal:
		return "**met** (every run)"
	case v >= goal:
		return "met on the median, not in every run"
	case hi >= goal:
		return "**missed** on the median (some runs reached it)"
	}
	return "**missed**"
}

// ratios returns, per repetition, a/b of files/s at one size.
func (t *tpSize) ratios(a, b system) []float64 {
	var out []float64
	for rep := range t.reps {
		var fa, fb float64
		if !slices.Contains(t.systems, a) || !slices.Contains(t.systems, b) {
			return nil
		}
		for _, r := range t.runs {
			if r.rep != rep {
				continue
			}
			switch r.sys {
			case a:
				fa = r.filesPerSec()
			case b:
				fb = r.filesPerSec()
			}
		}
		if fa > 0 && fb > 0 {
			out = append(out, fa/fb)
		}
	}
	return out
}

// costRatios returns, per repetition, b's CPU per file over a's: how a/b
// of files/s would come out on a machine whose CPU were the benchmark's
// alone.
func (t *tpSize) costRatios(a, b system) []float64 {
	if !slices.Contains(t.systems, a) || !slices.Contains(t.systems, b) {
		return nil
	}
	var out []float64
	for rep := range t.reps {
		var ca, cb float64
		for _, r := range t.runs {
			if r.rep != rep || r.st.ops == 0 {
				continue
			}
			c := r.cost.total() / float64(r.st.ops)
			switch r.sys {
			case a:
				ca = c
			case b:
				cb = c
			}
		}
		if ca > 0 && cb > 0 {
			out = append(out, cb/ca)
		}
	}
	return out
}

// perFile is the median over sys's runs of f per uploaded file.
func (t *tpSize) perFile(sys system, f func(tpRun) float64) float64 {
	return median(collect(t.of(sys), func(x tpRun) float64 { return f(x) / float64(max(1, x.st.ops)) }))
}

// cpuPerFile is the median over sys's runs of f of their cost (run and
// drain), in CPU milliseconds per uploaded file.
func (t *tpSize) cpuPerFile(sys system, f func(cpuSnap) float64) float64 {
	return t.perFile(sys, func(x tpRun) float64 { return 1000 * f(x.cost) })
}

// ofProc is f of a cpuSnap that reads process p's CPU.
func ofProc(p proc) func(cpuSnap) float64 {
	return func(c cpuSnap) float64 { return c.proc[p] }
}

func (t *tpSize) of(sys system) []tpRun {
	var out []tpRun
	for _, r := range t.runs {
		if r.sys == sys {
			out = append(out, r)
		}
	}
	return out
}

func collect[T any](xs []T, f func(T) float64) []float64 {
	out := make([]float64, 0, len(xs))
	for _, x := range xs {
		out = append(out, f(x))
	}
	return out
}

func (r *report) markdown(p plan) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	mode := "full run"
	if r.o.quick {
		mode = "**quick smoke run** (-quick: few files, few repetitions; numbers are indicative only)"
	}
	w("# DocuVault benchmarks\n\n")
	w("Generated by `make bench` (%s) on %s. Every number below was measured in this one run, on this machine, against the real stack: ", mode, r.date.UTC().Format("2006-01-02 15:04 MST"))
	w("every server a process of its own, in a temporary directory on free ports: PostgreSQL and MinIO started by `internal/devstack`; NATS JetStream (devstack's embedded server) and tusd in the bench binary re-executed; the api, the confirmer and the sweeper as the real `docuvault` binary (built from this repository before anything is measured), one process per role as deployed, with the same environment (the classifier does not run). The load comes from Go clients in the bench process over loopback. ")
	w("Each measurement was repeated and the tables give the median; each ratio is computed per repetition from runs made back to back, seconds apart (the order of the systems rotates between repetitions), and the median of those ratios is reported with its range.\n\n")

	w("## Machine and run\n\n")
	w("| | |\n|---|---|\n")
	w("| command | `make bench` = `%s` |\n", r.command)
	w("| date | %s |\n", r.date.Format(time.RFC3339))
	w("| `nproc` | %s |\n", r.nproc)
	w("| CPU | %s |\n", r.cpu)
	w("| Go | %s (harness built with %s) |\n", r.goVersion, runtime.Version())
	w("| code | %s |\n", r.tree)
	w("| load average at start → end | %s → %s (other work shares this machine) |\n", r.loadStart, r.loadEnd)
	w("| stack start | %.1f s (after a %.1f s build of `./services/docuvault`); whole run %.0f s |\n", r.stackStart.Seconds(), r.build.Seconds(), r.total.Seconds())
	if b := r.baseline; b != nil {
		w("| baseline | `-baseline %s` = commit %s (\"%s\"), built in %.1f s, its stack started in %.1f s |\n", b.rev, b.commit, oneLine(b.subject, 160), b.build.Seconds(), r.baselineStart.Seconds())
	}
	w("\n`free -h`:\n\n```\n%s\n```\n\n", r.free)
	w("Settings: `config.Defaults()` with QUOTA_DEFAULT_BYTES = 2^50, MAX_UPLOAD_BYTES = 2^40, UPLOAD_RATE_PER_MINUTE, MAX_PENDING_UPLOADS, DELETE_RATE_PER_MINUTE and STORAGE_RATE_PER_MINUTE = 10^9 (so quotas and per-user limits never interfere; they are still counted), SWEEP_INTERVAL = 24h (no scheduled sweep during the run), LOG_LEVEL = info (every request is logged, to a file). PostgreSQL is a fresh `initdb` cluster with its defaults plus `%s` (the statement profile below); the pgx pool has its default size (max(4, cores) connections per service).\n\n", strings.Join(pgSettings, "`, `"))

	r.writeSummary(w, p)
	r.writeBeforeAfter(w, p)
	r.writeThroughput(w, p)
	r.writeControl(w, p)
	r.writeFlow(w, p)
	r.writeEvents(w, p)
	r.writeSweeper(w, p)
	r.writeMemory(w, p)
	r.writeMultipart(w, p)
	r.writeWhatIf(w, p)
	r.writeProfiles(w, p)
	return b.String()
}

type writer func(format string, args ...any)

func (r *report) failedNote(w writer, name string) bool {
	if err, ok := r.failed[name]; ok {
		w("**This workload failed:** `%v`\n\n", strings.ReplaceAll(err.Error(), "\n", " "))
	}
	_, ran := r.took[name]
	if !ran {
		w("Not run (-only).\n\n")
	}
	return ran
}

func (r *report) writeThroughput(w writer, p plan) {
	w("## 1 and 2. End-to-end upload throughput: DocuVault vs. presigned PUT vs. tusd\n\n")
	w("%d concurrent clients, each file its own upload, for a fixed time per run (uploads in flight at the deadline finish and count; files/s = files completed / time until the last completed). Per repetition the systems run back to back on the same MinIO:\n\n", p.tpClients)
	w("- **docuvault**: the full flow, `POST /api/documents/upload-url` → presigned `PUT` straight to MinIO → `POST /api/documents/{id}/confirm`; the uploads go round-robin to 256 users (one user uploading hundreds of files a minute would be refused by UPLOAD_RATE_PER_MINUTE in production). MinIO's notifications (two per object: targets PRIMARY and LIVE) reach the confirmer too, as in production; after each DocuVault run the harness waits until the confirmer and the outbox are idle (\"drain\", not counted) so that this work does not spill into the next system's run.\n")
	w("- **docuvault+sha256** (64 KiB and 1 MiB only, no goal: the cost of issue 26's checksums): the same full flow, but the client hashes each file (SHA-256, in the bench process, so in the load column), declares the digest as `sha256` in `upload-url` and sends the `x-amz-checksum-sha256` header the ticket returns signed on its PUT; MinIO verifies the body against it. Each file's first 8 bytes are a counter, so that no two files share a digest (the api answers an upload of a checksum the user already stored as a duplicate, with nothing to send).\n")
	w("- **presigned**: the physical limit here: a PUT presigned by the harness with minio-go (size, type and `If-None-Match: *` signed, exactly as the api signs), no API at all, into a bucket without notifications.\n")
	w("- **presigned+notify** (64 KiB and 1 MiB only, not a goal, a diagnosis): the same presigned PUT into a bucket with DocuVault's notification rules (targets PRIMARY with its disk queue and LIVE → JetStream → the confirmer, which acknowledges them as another bucket's). Between presigned and presigned+notify lies what MinIO's notifications cost; between presigned+notify and docuvault lies what the API, PostgreSQL and the confirm cost.\n")
	w("- **tusd**: tusd %s with its S3 store on the same MinIO (own bucket, no notifications), in a process of its own (the bench binary re-executed) on a loopback port; the client does `POST` (Upload-Length) then one `PATCH` with the whole body at offset 0. Content hashes off (`DisableContentHashes`), checksums of the AWS SDK only when required; other settings are tusd's defaults (concurrent part uploads: %d, part size 50 MiB, min part 5 MiB).\n", tusdVersion, r.o.tusdPartUploads)
	if r.baseline != nil {
		w("- **docuvault (baseline)** and **presigned+notify (baseline)** (at the sizes with presigned+notify): the same two flows on the baseline's stack (%s), in the same rotation; the ratios below are this tree's, the baseline's are in \"Before/after\".\n", r.baseline.commit)
	}
	w("\n")
	if !r.failedNote(w, "throughput") {
		return
	}
	w("| size | system | runs × time | files/s (median) | MiB/s (median) | files/s min–max | files per run (median) | errors |\n|---|---|---|---|---|---|---|---|\n")
	for _, t := range r.tp {
		for _, sys := range t.systems {
			runs := t.of(sys)
			fps := collect(runs, tpRun.filesPerSec)
			lo, hi := minMax(fps)
			errs := 0
			for _, x := range runs {
				errs += x.st.errs
			}
			w("| %s | %s | %d × %s | %.1f | %.1f | %.1f–%.1f | %.0f | %d |\n", human(t.size), sys, len(runs), t.dur, median(fps), median(collect(runs, tpRun.mibPerSec)), lo, hi,
				median(collect(runs, func(x tpRun) float64 { return float64(x.st.ops) })), errs)
		}
	}
	w("\n**Ratios** (files/s, per repetition, median and range):\n\n")
	w("| size | DocuVault / presigned | DocuVault / presigned+notify | DocuVault / tusd | presigned / tusd |\n|---|---|---|---|---|\n")
	for _, t := range r.tp {
		cell := func(xs []float64) string {
			if len(xs) == 0 {
				return "—"
			}
			lo, hi := minMax(xs)
			return fmt.Sprintf("%.2f (%.2f–%.2f)", median(xs), lo, hi)
		}
		w("| %s | %s | %s | %s | %s |\n", human(t.size), cell(t.ratios(sysDocuVault, sysRaw)), cell(t.ratios(sysDocuVault, sysNotify)),
			cell(t.ratios(sysDocuVault, sysTusd)), cell(t.ratios(sysRaw, sysTusd)))
	}
	w("\nThe goals these ratios are held to are in the summary at the top.\n")
	w("\n**CPU-cost ratios** — the same comparison made robust to the other work on this machine: the other system's CPU per file (every process of the table \"Where the CPU went\" below, run and drain, load clients included) divided by DocuVault's, per repetition. On a machine whose 2 cores were the benchmark's alone and CPU-bound, the throughput ratio would come out near this:\n\n")
	w("| size | DocuVault / presigned | DocuVault / presigned+notify | DocuVault / tusd |\n|---|---|---|---|\n")
	for _, t := range r.tp {
		cell := func(xs []float64) string {
			if len(xs) == 0 {
				return "—"
			}
			lo, hi := minMax(xs)
			return fmt.Sprintf("%.2f (%.2f–%.2f)", median(xs), lo, hi)
		}
		w("| %s | %s | %s | %s |\n", human(t.size), cell(t.costRatios(sysDocuVault, sysRaw)), cell(t.costRatios(sysDocuVault, sysNotify)), cell(t.costRatios(sysDocuVault, sysTusd)))
	}
	w("\nFor reference, measured before (32 clients, tusd v2.9.1, content hashes off): presigned / tusd ≈ 4.3 at 64 KiB and 2.4 at 1 MiB.\n\n")
	w("Decomposition of the gap to the physical limit (median per-repetition ratios): ")
	for _, t := range r.tp {
		n, d := t.ratios(sysNotify, sysRaw), t.ratios(sysDocuVault, sysNotify)
		if len(n) == 0 {
			continue
		}
		w("at %s, presigned+notify / presigned = %.2f and docuvault / presigned+notify = %.2f; ", human(t.size), median(n), median(d))
	}
	w("the first is the notifications' share, the second the API's, PostgreSQL's and the confirm's.\n\n")

	w("**Where the CPU went** (median over the runs, CPU milliseconds per uploaded file, from /proc/PID/stat of each process, counted from the start of a run to the end of its event drain so that the asynchronous work an upload causes is included, less what these processes burn when idle (measured for 2 s before each size's runs) over the drain). The processes: load = the bench process (the load clients and the harness's polls); api, confirmer, sweeper = the `docuvault` children (each with its outbox relay); NATS; MinIO; PostgreSQL = postmaster and all backends; tusd. The machine has %s cores, i.e. %s CPU-seconds per second; \"busy\" is the whole machine during the run, \"other\" is what processes outside this benchmark used meanwhile.\n\n", r.nproc, r.nproc)
	w("| size | system |")
	for _, name := range procNames {
		w(" %s ms/file |", name)
	}
	w(" total ms/file | machine busy | other | event drain |\n|---|---|%s---|---|---|---|\n", strings.Repeat("---|", int(numProcs)))
	for _, t := range r.tp {
		for _, sys := range t.systems {
			runs := t.of(sys)
			busy := median(collect(runs, func(x tpRun) float64 { return 100 * x.cpu.machine / x.st.elapsed.Seconds() }))
			other := median(collect(runs, func(x tpRun) float64 {
				return 100 * max(0, x.cpu.machine-x.cpu.total()) / x.st.elapsed.Seconds()
			}))
			drain := "—"
			if sys.drains() {
				drain = fmt.Sprintf("%.2f s", median(collect(runs, func(x tpRun) float64 { return x.drain.Seconds() })))
			}
			w("| %s | %s |", human(t.size), sys)
			for p := range numProcs {
				w(" %.2f |", t.cpuPerFile(sys, ofProc(p)))
			}
			w(" %.2f | %.0f%% | %.0f%% | %s |\n", t.cpuPerFile(sys, cpuSnap.total), busy, other, drain)
		}
	}
	w("\nRequests per uploaded file (median over the runs, over the run and its drain): MinIO S3 requests by API (MinIO's own counters, `minio_api_requests_total` of /minio/metrics/v3/api/requests); PostgreSQL transactions (`xact_commit + xact_rollback` of pg_stat_database: every statement outside a transaction counts as one; the harness's own polls are taken out) and WAL syncs (`wal_sync` of pg_stat_wal, i.e. commits that waited for the disk):\n\n")
	w("| size | system | MinIO requests per file | PostgreSQL transactions per file | WAL syncs per file |\n|---|---|---|---|---|\n")
	for _, t := range r.tp {
		for _, sys := range t.systems {
			runs := t.of(sys)
			apis := map[string]bool{}
			for _, x := range runs {
				for k := range x.s3 {
					apis[k] = true
				}
			}
			var names []string
			for k := range apis {
				names = append(names, k)
			}
			slices.Sort(names)
			var parts []string
			total := 0.0
			for _, k := range names {
				v := t.perFile(sys, s3Requests(k))
				total += v
				if v >= 0.005 {
					parts = append(parts, fmt.Sprintf("%s %.2f", k, v))
				}
			}
			w("| %s | %s | %.2f: %s | %.1f | %.2f |\n", human(t.size), sys, total, strings.Join(parts, ", "),
				t.perFile(sys, tpRun.pgXacts), t.perFile(sys, tpRun.walSyncs))
		}
	}
	r.writeStatements(w)
	w("\n\"event drain\" is how long after the last upload of a run the confirmer and the outbox took to go idle (MinIO's PRIMARY target sends from its disk queue every 3 s); the harness waits for it before the next run.\n\n")
	r.writeChecksums(w)
}

// writeChecksums sets docuvault+sha256 beside docuvault, at the sizes
// where both ran: what the checksum of issue 26 costs.
func (r *report) writeChecksums(w writer) {
	var sizes []*tpSize
	for _, t := range r.tp {
		if len(t.of(sysDocuVault)) > 0 && len(t.of(sysDocuVaultSum)) > 0 {
			sizes = append(sizes, t)
		}
	}
	if len(sizes) == 0 {
		return
	}
	w("### Checksums: with and without\n\n")
	w("What issue 26's checksum costs: **docuvault+sha256** against **docuvault**, the same flow with and without the file's SHA-256 declared in `upload-url` and signed into the PUT (`x-amz-checksum-sha256`), which MinIO verifies against the body. The two ran back to back in every repetition of the rotation above. Files/s are medians over the repetitions, with / without is per repetition (median and range); CPU is milliseconds per uploaded file, every run and its drain, as in \"Where the CPU went\" (medians over the runs; a difference is with's median minus without's). load is the bench process, where the client's hashing is; MinIO is where the body's verification is.\n\n")
	w("| size | files/s without | files/s with | with / without, files/s | MinIO ms/file without | MinIO ms/file with | MinIO difference | load ms/file without | load ms/file with | load difference | every process, difference |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, t := range sizes {
		fps := func(sys system) float64 { return median(collect(t.of(sys), tpRun.filesPerSec)) }
		minio0, minio1 := t.cpuPerFile(sysDocuVault, ofProc(procMinIO)), t.cpuPerFile(sysDocuVaultSum, ofProc(procMinIO))
		load0, load1 := t.cpuPerFile(sysDocuVault, ofProc(procLoad)), t.cpuPerFile(sysDocuVaultSum, ofProc(procLoad))
		all := t.cpuPerFile(sysDocuVaultSum, cpuSnap.total) - t.cpuPerFile(sysDocuVault, cpuSnap.total)
		w("| %s | %.1f | %.1f | %s | %.2f | %.2f | %+.2f | %.2f | %.2f | %+.2f | %+.2f |\n", human(t.size), fps(sysDocuVault), fps(sysDocuVaultSum),
			perRepCell(t.ratios(sysDocuVaultSum, sysDocuVault)), minio0, minio1, minio1-minio0, load0, load1, load1-load0, all)
	}
	w("\nThe ratios against presigned, presigned+notify and tusd above, and the goals in the summary, are plain docuvault's; docuvault+sha256 has no goal.\n\n")
}

// perRepCell is a per-repetition figure: median and range, or "—".
func perRepCell(xs []float64) string {
	if len(xs) == 0 {
		return "—"
	}
	lo, hi := minMax(xs)
	return fmt.Sprintf("%.2f (%.2f–%.2f)", median(xs), lo, hi)
}

func (r *report) writeControl(w writer, p plan) {
	w("## 3. Control plane alone\n\n")
	w("`upload-url` (1 KiB declared) runs for %s per measurement; `confirm` confirms documents prepared beforehand — rows written as upload-url writes them and their 1 KiB objects already PUT, with the bucket's notifications switched off meanwhile so that no confirmer gets there first, and set back to pending between repetitions — so each timed confirm is a real first confirm (StatObject on MinIO, then the one statement that locks the row, charges the quota, saves the document and writes the outbox event). The confirms go to a second `docuvault api` child started with CONFIRM_WAIT=0: with the notifications off nothing would settle a document but the endpoint itself, after waiting the whole CONFIRM_WAIT for the notification door. \"users\" is how many distinct users the clients are: each client its own user, or all clients one hot user (every confirm charges the same quota row). %d repetitions, medians.\n\n", p.ctlDuration, p.ctlReps)
	if !r.failedNote(w, "control") {
		return
	}
	w("| operation | clients | users | requests/s | p50 ms | p99 ms | requests per run | errors |\n|---|---|---|---|---|---|---|---|\n")
	for _, c := range r.ctl {
		if len(c.runs) == 0 {
			continue
		}
		errs := 0
		for _, x := range c.runs {
			errs += x.errs
		}
		w("| %s | %d | %s | %.0f | %.2f | %.2f | %.0f | %d |\n", c.op, c.clients, c.users(),
			median(collect(c.runs, runStats.perSec)),
			median(collect(c.runs, func(x runStats) float64 { return ms(pct(x.lat, .5)) })),
			median(collect(c.runs, func(x runStats) float64 { return ms(pct(x.lat, .99)) })),
			median(collect(c.runs, func(x runStats) float64 { return float64(x.ops) })), errs)
	}
	w("\n")
}

func (r *report) writeEvents(w writer, p plan) {
	w("## 4. Event path: PUT completion → `document.uploaded`\n\n")
	w("One client uploads 1 KiB files one after another (upload-url, PUT, **no** confirm: MinIO's notification → confirmer → outbox → relay → DOCUMENTS); a JetStream ordered consumer on DOCUMENTS (`document.uploaded.>`, deliver new) notes each event's arrival. Latency = arrival − the moment the PUT's 200 was read; the next upload starts once the event is in. %d runs of %d uploads.\n\n", p.evReps, p.evUploads)
	if !r.failedNote(w, "events") {
		return
	}
	w("| run | uploads | p50 ms | p90 ms | p99 ms | max ms | missing |\n|---|---|---|---|---|---|---|\n")
	for i, e := range r.ev {
		w("| %d | %d | %.2f | %.2f | %.2f | %.2f | %d |\n", i+1, len(e.lat), ms(pct(e.lat, .5)), ms(pct(e.lat, .9)), ms(pct(e.lat, .99)), ms(pct(e.lat, 1)), e.missing)
	}
	if len(r.ev) > 1 {
		w("| **median** | | %.2f | %.2f | %.2f | %.2f | |\n",
			median(collect(r.ev, func(e evRun) float64 { return ms(pct(e.lat, .5)) })),
			median(collect(r.ev, func(e evRun) float64 { return ms(pct(e.lat, .9)) })),
			median(collect(r.ev, func(e evRun) float64 { return ms(pct(e.lat, .99)) })),
			median(collect(r.ev, func(e evRun) float64 { return ms(pct(e.lat, 1)) })))
	}
	w("\n")
}

func (r *report) writeSweeper(w writer, p plan) {
	w("## 5. Sweeper\n\n")
	w("What was measured: each run starts from an empty table and bucket and sets up\n\n")
	w("- **%d stale pending documents** (rows only, `updated_at` 2 h ago, one `INSERT … SELECT … generate_series`, spread over 1,000 users): uploads whose bytes never arrived. The sweep runs each through the Confirm use case, whose StatObject answers 404, and purges them in batches of SWEEP_BATCH_SIZE (500) rows, each batch one `DELETE … FOR UPDATE SKIP LOCKED` statement;\n", p.swRows)
	w("- **%d orphan objects** (1 KiB, keys shaped like documents' but no row): the sweep's reconciliation lists the next slice of the bucket (SWEEP_RECONCILE_KEYS keys, 10,000), asks PostgreSQL which keys it knows, and deletes the others (`orphans_removed`);\n", p.swOrphans)
	w("- **%d lost uploads**: stale pending rows whose objects did arrive but whose notification was lost; the sweep confirms and charges them (`confirmed`).\n\n", p.swLost)
	w("Then one `document.Service.Sweep` call (the use case the sweeper service runs for a tick) with the sweeper's settings (`stack.SweepConfig`: batch 500, 16 object-store workers, 10,000 keys reconciled) except PENDING_TTL = 1 s, so that the orphans just written count as old, and a reconciliation pass started on every call; the time is the whole call, and \"longest batch\" is the longest single deleting transaction (`max_batch_lock_ms`). ")
	if p.swServiceRows > 0 {
		w("The last row goes through the real door once, with %d rows: `POST /api/admin/sweep` → JetStream tick → the sweeper service → `sweeper.run.completed` (its `duration_ms` and `max_batch_lock_ms`), with the configured PENDING_TTL of 1 h, so rows only.", p.swServiceRows)
	}
	w("\n\n")
	if !r.failedNote(w, "sweeper") {
		return
	}
	w("| door | stale rows | orphans | lost | set-up s | sweep s | rows/s | purged | orphans_removed | confirmed | errors | longest batch ms | left: pending rows / stray objects |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	var direct, ticks []swRun
	for _, s := range r.sw {
		if s.door == doorTick {
			ticks = append(ticks, s)
			continue
		}
		if s.door == "Sweep() direct" {
			direct = append(direct, s)
		}
		w("| %s | %d | %d | %d | %.1f | %.2f | %.0f | %d | %d | %d | %d | %.1f | %d / %d |\n", s.door, s.rows, s.orphans, s.lost,
			(s.setupRows + s.setupObject).Seconds(), s.elapsed.Seconds(), float64(s.rows)/s.elapsed.Seconds(),
			s.res.Purged, s.res.OrphansRemoved, s.res.Confirmed, s.res.Errors, ms(s.maxBatchLock), s.leftRows, s.leftObjects)
	}
	if len(direct) > 1 {
		w("| **median (direct)** | | | | | %.2f | | | | | | %.1f | |\n",
			median(collect(direct, func(s swRun) float64 { return s.elapsed.Seconds() })),
			median(collect(direct, func(s swRun) float64 { return ms(s.maxBatchLock) })))
	}
	w("\n")
	r.writeSweepTicks(w, ticks)
}

// writeSweepTicks reports the ticks over many live documents: does a tick
// cost what it finds, or what the bucket holds?
func (r *report) writeSweepTicks(w writer, ticks []swRun) {
	if len(ticks) == 0 {
		return
	}
	w("### A tick over many live documents\n\n")
	w("Set-up: N uploaded documents (charged rows by one COPY, spread over 1,000 users; their 64-byte objects in MinIO by snowball uploads, tars of 10,000 objects extracted by the server, four at once), then, before each tick, %d stale pending rows (2 h old, never uploaded, spread over the same users, so their keys fall between the live ones). ", ticks[0].rows)
	w("One `document.Service.Sweep` with the sweeper's own settings (`stack.SweepConfig`: PENDING_TTL 1 h, batch 500, 16 workers, SWEEP_RECONCILE_KEYS 10,000): first as a tick that also checks a reconciliation slice (the cursor reset, so a pass starts), then, over %d new stale rows, as a tick between passes. ", ticks[0].rows)
	w("`pending listed` is the bucket keys listed to find the stale rows' objects, `stats` the stale rows stat'ed one by one, `keys checked` the reconciliation's slice. Goal: the tick over the most live documents costs at most 1.2 times the tick over the fewest, and no tick lists the whole bucket.\n\n")
	w("| live documents | set-up s (rows + objects) | reconciliation slice | tick s | purged | pending listed | stats | keys checked | errors | left pending |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, t := range ticks {
		w("| %d | %.1f + %.1f | %v | %.2f | %d | %d | %d | %d | %d | %d |\n", t.live, t.setupRows.Seconds(), t.setupObject.Seconds(), t.slice,
			t.elapsed.Seconds(), t.res.Purged, t.res.PendingListed, t.res.PendingStats, t.res.KeysChecked, t.res.Errors, t.leftRows)
	}
	w("\n")
	for _, slice := range []bool{true, false} {
		var small, large *swRun
		for i := range ticks {
			t := &ticks[i]
			if t.slice != slice {
				continue
			}
			if small == nil || t.live < small.live {
				small = t
			}
			if large == nil || t.live > large.live {
				large = t
			}
		}
		if small == nil || small == large {
			continue
		}
		ratio := large.elapsed.Seconds() / small.elapsed.Seconds()
		verdict := "met"
		if ratio > 1.2 {
			verdict = "missed"
		}
		what := "with a reconciliation slice"
		if !slice {
			what = "between reconciliation passes"
		}
		w("- Tick %s: %d live documents %.2f s, %d live %.2f s: ratio **%.2f** (goal ≤ 1.2: %s); the larger tick listed %d keys of a bucket of %d.\n",
			what, small.live, small.elapsed.Seconds(), large.live, large.elapsed.Seconds(), ratio, verdict, large.res.PendingListed+large.res.KeysChecked, large.live)
	}
	w("\n")
}

func (r *report) writeMemory(w writer, p plan) {
	w("## 6. Memory: peak RSS of the api\n\n")
	w("A second `docuvault api` child, started fresh for this workload (the binary the stack's services run, built from this repository with its own go.mod, `go build ./services/docuvault`), on the same PostgreSQL, NATS and MinIO with the same settings, under workload 1's DocuVault flow at %d concurrent clients. Only the api runs in that process (the stack's confirmer child handles MinIO's notifications), so its RSS is the api's alone. Peak = the child's VmHWM from /proc/PID/status, reset by writing 5 to /proc/PID/clear_refs before each run; a 20 ms VmRSS sampler cross-checks it.\n\n", p.memClients)
	if !r.failedNote(w, "memory") || r.mem == nil {
		return
	}
	w("The build took %.1f s (before the stack started, so it competed with nothing). RSS at idle after start: **%s**.\n\n", r.build.Seconds(), mib(r.mem.idleRSS))
	w("| size | runs × time | files/s (median) | RSS at run start (median) | **peak RSS (median)** | peak RSS max | errors |\n|---|---|---|---|---|---|---|\n")
	for _, sz := range p.memSizes {
		var runs []memRun
		for _, m := range r.mem.runs {
			if m.size == sz.size {
				runs = append(runs, m)
			}
		}
		if len(runs) == 0 {
			continue
		}
		errs := 0
		for _, m := range runs {
			errs += m.st.errs
		}
		peaks := collect(runs, func(m memRun) float64 { return float64(m.peakRSS) })
		_, hi := minMax(peaks)
		w("| %s | %d × %s | %.1f | %s | **%s** | %s | %d |\n", human(sz.size), len(runs), sz.dur,
			median(collect(runs, func(m memRun) float64 { return m.st.perSec() })),
			mib(int64(median(collect(runs, func(m memRun) float64 { return float64(m.startRSS) })))),
			mib(int64(median(peaks))), mib(int64(hi)), errs)
	}
	w("\n")
}

func (r *report) writeWhatIf(w writer, p plan) {
	w("## What if: a bigger PostgreSQL pool\n\n")
	w("Not a product change, a configuration one: two more `docuvault api` children (the stack's binary, with CONFIRM_WAIT=0 as in workload 3) differing only in `pool_max_conns` on DATABASE_URL — pgxpool's default, max(4, cores) = 4 connections here, against %d — under confirm alone at %d clients, each its own user (documents prepared as in workload 3, %d per client, reset to pending between runs). %d repetitions, the two runs of a repetition back to back.\n\n", p.whatIfPool, p.whatIfClients, p.whatIfPer, p.whatIfReps)
	if !r.failedNote(w, "whatif") {
		return
	}
	w("| api | confirms/s (median) | min–max | p50 ms | p99 ms | errors |\n|---|---|---|---|---|---|\n")
	for _, c := range r.whatif {
		rates := collect(c.runs, runStats.perSec)
		lo, hi := minMax(rates)
		errs := 0
		for _, x := range c.runs {
			errs += x.errs
		}
		w("| %s | %.0f | %.0f–%.0f | %.1f | %.1f | %d |\n", c.name, median(rates), lo, hi,
			median(collect(c.runs, func(x runStats) float64 { return ms(pct(x.lat, .5)) })),
			median(collect(c.runs, func(x runStats) float64 { return ms(pct(x.lat, .99)) })), errs)
	}
	if len(r.whatif) == 2 && len(r.whatif[0].runs) == len(r.whatif[1].runs) {
		var ratios []float64
		for i := range r.whatif[0].runs {
			if a := r.whatif[0].runs[i].perSec(); a > 0 {
				ratios = append(ratios, r.whatif[1].runs[i].perSec()/a)
			}
		}
		lo, hi := minMax(ratios)
		w("\nRatio bigger pool / default, per repetition: %.2f (%.2f–%.2f).\n", median(ratios), lo, hi)
	}
	w("\n")
}

func (r *report) writeProfiles(w writer, p plan) {
	w("## Profile\n\n")
	w("CPU profiles of the `docuvault api` and `docuvault confirmer` children, fetched from their `PPROF_ADDR` (`/debug/pprof/profile?seconds=N`, both at once) while they serve the load; each profile holds its process only (the load clients run in the bench process), including the client libraries it calls (pgx, minio-go, nats.go) and its outbox relay. A profile covers N seconds from the start of the load: the upload load runs exactly that long; the confirm load confirms a fixed set of documents and may end earlier (idle time adds no samples) or later (its tail is not profiled). Profiles are in `bench/%s/`; open one with `go tool pprof -http=: bench/%s/<name>-<process>.pprof`.\n\n", r.o.profDir, r.o.profDir)
	if !r.failedNote(w, "profile") {
		return
	}
	for _, pr := range r.prof {
		w("### %s\n\n%s: %.0f operations/s, %d errors; profiles of %d s.\n\n", pr.name, pr.what, pr.st.perSec(), pr.st.errs, pr.seconds)
		for _, pp := range pr.procs {
			w("#### %s\n\n```\n%s\n```\n\nTop by flat time:\n\n```\n%s\n```\n\nTop by cumulative time:\n\n```\n%s\n```\n\n", pp.proc, pp.header, pp.flat, pp.cum)
		}
	}
}

// stalePurgeBefore is the reference for the purge goal: the direct sweep's
// rows/s in the last full run before issue 15 changed the stale pass
// (100,000 stale rows + 5,000 orphans + 500 lost uploads in 43.9 s, at
// c39f9ae on this machine, 2026-12-01).
const stalePurgeBefore = 100_000 / 43.9

// sizeGoals are issue 25's goals that differ by file size: DocuVault /
// presigned+notify (files/s and CPU cost) and DocuVault / tusd (files/s).
var sizeGoals = map[int]struct{ notify, tusd float64 }{64 << 10: {0.75, 2.0}, 1 << 20: {0.88, 1.65}}

// The goals of issue 25 that hold at every size of workload 1 (32 clients,
// notifications flowing), per uploaded file.
const (
	goalAddedCPU    = 1.5  // ms of CPU over presigned+notify
	goalPGCPU       = 0.6  // ms of PostgreSQL CPU
	goalWALSyncs    = 0.5  // WAL syncs
	goalHeadObject  = 0.1  // HeadObject requests
	goalAPIRequest  = 0.4  // ms of api CPU per request (two requests per upload)
	goalSettlements = 1.05 // settlements (settle_documents rows) per upload
	goalMultipart   = 0.95 // kept: DocuVault multipart / presigned parts
	goalConfirmP50  = 2.0  // kept: ms the confirm's p50 at 1 client may add to the baseline's
)

// atMost is the verdict of a figure that must not exceed goal.
func atMost(v, goal float64) string {
	if v <= goal {
		return "met"
	}
	return "**missed**"
}

// ratioCell is a per-repetition figure as the summary writes it (median and
// range), and its verdict against the least it must reach.
func ratioCell(xs []float64, goal float64) (string, string) {
	if len(xs) == 0 {
		return "—", "not measured"
	}
	lo, hi := minMax(xs)
	return fmt.Sprintf("%.2f (%.2f–%.2f)", median(xs), lo, hi), verdict(median(xs), goal, lo, hi)
}

// writeSummary states each goal of issue 25, those it keeps and issue
// 15's sweep goals, against this run's numbers.
func (r *report) writeSummary(w writer, p plan) {
	w("## Summary against the goals\n\n")
	w("The goals of issue 25 (one writer per upload, group commit, a cheap request) and the goals it keeps, then the sweep goals of issue 15, each against this run's median (and the range over its repetitions where a ratio is per repetition). \"added CPU\" is DocuVault's CPU per file minus presigned+notify's, every process counted (load clients, services, NATS, MinIO, PostgreSQL), run and drain. The per-upload counts are workload 1's (%d clients, MinIO's notifications flowing, run and drain). ", p.tpClients)
	if r.baseline != nil {
		w("The baseline is %s (see \"Before/after\" below).\n\n", r.baseline.commit)
	} else {
		w("No baseline in this run (-baseline).\n\n")
	}
	w("| goal | this run | met |\n|---|---|---|\n")
	for _, t := range r.tp {
		g, ok := sizeGoals[t.size]
		if !ok || len(t.of(sysDocuVault)) == 0 {
			continue
		}
		size := human(t.size)
		if len(t.of(sysNotify)) > 0 {
			dv, notify := t.cpuPerFile(sysDocuVault, cpuSnap.total), t.cpuPerFile(sysNotify, cpuSnap.total)
			w("| %s: added CPU ≤ %.1f ms per upload | %.2f ms (%.2f − %.2f) | %s |\n", size, goalAddedCPU, dv-notify, dv, notify, atMost(dv-notify, goalAddedCPU))
			v, met := ratioCell(t.ratios(sysDocuVault, sysNotify), g.notify)
			w("| %s: DocuVault / presigned+notify ≥ %.2f, files/s | %s | %s |\n", size, g.notify, v, met)
			v, met = ratioCell(t.costRatios(sysDocuVault, sysNotify), g.notify)
			w("| %s: DocuVault / presigned+notify ≥ %.2f, CPU cost | %s | %s |\n", size, g.notify, v, met)
		}
		v, met := ratioCell(t.ratios(sysDocuVault, sysTusd), g.tusd)
		w("| %s: DocuVault / tusd ≥ %.2f, files/s | %s | %s |\n", size, g.tusd, v, met)
		pgCPU := t.cpuPerFile(sysDocuVault, ofProc(procPG))
		w("| %s: PostgreSQL ≤ %.1f ms CPU per upload | %.2f ms | %s |\n", size, goalPGCPU, pgCPU, atMost(pgCPU, goalPGCPU))
		syncs := t.perFile(sysDocuVault, tpRun.walSyncs)
		w("| %s: PostgreSQL ≤ %.1f WAL syncs per upload | %.2f | %s |\n", size, goalWALSyncs, syncs, atMost(syncs, goalWALSyncs))
		heads := t.perFile(sysDocuVault, s3Requests("HeadObject"))
		w("| %s: HeadObject ≤ %.1f per upload | %.2f | %s |\n", size, goalHeadObject, heads, atMost(heads, goalHeadObject))
		api := t.cpuPerFile(sysDocuVault, ofProc(procAPI)) / 2
		w("| %s: api ≤ %.1f ms CPU per request (api CPU per upload / 2 requests) | %.2f ms | %s |\n", size, goalAPIRequest, api, atMost(api, goalAPIRequest))
		if t.size == statementsAt {
			w("| %s: confirm statements ≤ %.2f per upload | %s |\n", size, goalSettlements, settlementsCell(t))
		}
		if xs := t.ratios(sysDocuVaultSum, sysDocuVault); len(xs) > 0 {
			w("| %s: docuvault+sha256 / docuvault, files/s (issue 26's checksums) | %s | no goal (informative) |\n", size, perRepCell(xs))
		}
	}
	if r.mp != nil && len(r.mp.sizes) > 0 {
		var vals, mets []string
		for _, m := range r.mp.sizes {
			v, met := ratioCell(m.ratios(mpDocuVault, mpLimit, r.mp.reps), goalMultipart)
			vals, mets = append(vals, human64(m.size)+" "+v), append(mets, human64(m.size)+": "+met)
		}
		w("| kept: multipart 1 GiB and 256 MiB: DocuVault / presigned parts ≥ %.2f | %s | %s |\n", goalMultipart, strings.Join(vals, "; "), strings.Join(mets, "; "))
	}
	if len(r.ev) > 0 {
		p99 := median(collect(r.ev, func(e evRun) float64 { return ms(pct(e.lat, .99)) }))
		w("| kept: event path p99 ≤ 10 ms | %.1f ms (p50 %.1f) | %s |\n", p99,
			median(collect(r.ev, func(e evRun) float64 { return ms(pct(e.lat, .5)) })), atMost(p99, 10))
	}
	if r.mem != nil && len(r.mem.runs) > 0 {
		peak := slices.Max(collect(r.mem.runs, func(m memRun) float64 { return float64(m.peakRSS) }))
		w("| kept: api peak RSS ≤ 64 MiB at %d clients | %s | %s |\n", p.memClients, mib(int64(peak)), atMost(peak, 64<<20))
	}
	for _, hot := range r.ctl {
		if !hot.hot || len(hot.runs) == 0 {
			continue
		}
		for _, spread := range r.ctl {
			if spread.hot || spread.op != hot.op || spread.clients != hot.clients || len(spread.runs) == 0 {
				continue
			}
			x := median(collect(hot.runs, runStats.perSec)) / median(collect(spread.runs, runStats.perSec))
			met := "met"
			if x < 0.8 {
				met = "**missed**"
			}
			w("| kept: one hot user ≥ 0.8× distinct users, %s at %d clients | %.2f | %s |\n", hot.op, hot.clients, x, met)
		}
	}
	if _, ran := r.took["confirm-flow"]; ran {
		w("| kept: confirm p50 at 1 client ≤ the baseline's + %.0f ms (workload 3b, in the flow) | %s |\n", goalConfirmP50, r.confirmP50Cell())
	}
	r.writeSweepGoals(w)
	w("\nNoise: the machine has 2 cores and other work ran beside this benchmark (see \"other\" below and the load average above). Ratios come from runs seconds apart, which cancels slow drift but not bursts; the ranges show how much a single run can move.\n\n")
}

// settlementsCell is the figure and the verdict of the confirm statements
// goal, two cells: a batch of the group commit is one statement for many
// uploads, so the statement's calls would not show two writers of one
// upload; its rows do, one per settlement tried, applied or not.
func settlementsCell(t *tpSize) string {
	runs := t.of(sysDocuVault)
	calls := median(collect(runs, func(x tpRun) float64 { c, _ := x.statementsPerFile(settles); return c }))
	rows := median(collect(runs, func(x tpRun) float64 { _, n := x.statementsPerFile(settles); return n }))
	if rows == 0 {
		return "no settle_documents statement ran (pg_stat_statements) | not measured"
	}
	return fmt.Sprintf("%.2f settlements (rows of settle_documents) per upload, in %.2f statements | %s", rows, calls, atMost(rows, goalSettlements))
}

// confirmP50Cell is the figure and the verdict, two cells, of the goal on
// the confirm's p50 at 1 client in the flow: per repetition, this tree's
// minus the baseline's.
func (r *report) confirmP50Cell() string {
	var this []float64
	for _, f := range r.flow {
		if !f.baseline {
			this = append(this, ms(pct(f.lat, .5)))
		}
	}
	diffs := flowP50Diffs(r.flow)
	if len(diffs) == 0 {
		return fmt.Sprintf("p50 %.2f ms; the baseline's not measured (no -baseline) | not measured", median(this))
	}
	lo, hi := minMax(diffs)
	return fmt.Sprintf("%+.2f ms (%+.2f to %+.2f; p50 %.2f ms, the baseline's %.2f) | %s", median(diffs), lo, hi, median(this),
		median(this)-median(diffs), atMost(median(diffs), goalConfirmP50))
}

// writeSweepGoals states issue 15's sweep goals, kept as they were.
func (r *report) writeSweepGoals(w writer) {
	var direct, ticks []swRun
	for _, s := range r.sw {
		switch s.door {
		case "Sweep() direct":
			direct = append(direct, s)
		case doorTick:
			ticks = append(ticks, s)
		}
	}
	var small, large *swRun
	for i := range ticks {
		t := &ticks[i]
		if !t.slice {
			continue
		}
		if small == nil || t.live < small.live {
			small = t
		}
		if large == nil || t.live > large.live {
			large = t
		}
	}
	if small != nil && large != small {
		x := large.elapsed.Seconds() / small.elapsed.Seconds()
		w("| issue 15: sweep: a tick over %d live documents ≤ 1.2× the tick over %d (1,000 stale rows) | %.2f (%.2f s / %.2f s; it listed %d keys of %d) | %s |\n",
			large.live, small.live, x, large.elapsed.Seconds(), small.elapsed.Seconds(), large.res.PendingListed+large.res.KeysChecked, large.live, atMost(x, 1.2))
	}
	if len(direct) > 0 {
		rate := median(collect(direct, func(s swRun) float64 { return float64(s.rows) / s.elapsed.Seconds() }))
		met := "**missed**"
		if rate >= 2*stalePurgeBefore {
			met = "met"
		}
		w("| issue 15: sweep: stale rows purged at ≥ 2× the rate before (%.0f rows/s at c39f9ae) | %.0f rows/s (%.1f×) | %s |\n", stalePurgeBefore, rate, rate/stalePurgeBefore, met)
	}
}

// tusdVersion is the tusd module the harness links (bench/go.mod).
const tusdVersion = "v2.9.1"

func (r *report) writeMultipart(w writer, p plan) {
	w("## 7. Large files in parts: DocuVault multipart vs. presigned parts vs. tusd\n\n")
	var sizes []string
	for _, s := range p.mpSizes {
		sizes = append(sizes, human64(s))
	}
	w("One file of each size (%s), uploaded once by each system per repetition, the systems back to back (their order rotating between repetitions), %d repetitions; medians. The time runs from the client's first request to the answer that completes the upload; MB/s = 10^6 bytes per second. The bodies are one 16 MiB random buffer, generated once and sliced for every part (nothing is read from disk). The same MinIO as workload 1:\n\n", strings.Join(sizes, " and "), p.mpReps)
	dvPart := "the part_size the api answered"
	if r.mp != nil && r.mp.dvPartSize > 0 {
		dvPart += fmt.Sprintf(" (%s here, MULTIPART_PART_SIZE's default)", human64(r.mp.dvPartSize))
	}
	w("- **docuvault**: `POST /api/documents/upload-url` with `size_bytes` and `\"multipart\": true` (the declared size is reserved in the quota) → the parts `PUT` straight to MinIO on the presigned URLs, %d at a time, in %s; the client holds the first %d URLs from upload-url and asks `POST /api/documents/{id}/parts` for the next %d whenever it has handed out all it holds (so the next URLs arrive while parts are in flight) → `POST /api/documents/{id}/complete` with the ETags (the api checks the parts with ListParts, completes the upload and charges the quota), timed to its 200. One user, its quota raised by `PUT /api/admin/users/{id}/quota`. MinIO's two notifications of the completed object reach the confirmer, as in production; the harness waits for them to be handled (\"drain\", not timed, counted in the CPU below).\n", mpConcurrency, dvPart, mpURLBatch, mpURLBatch)
	w("- **presigned parts**: the limit here: the same %s parts, %d at a time, with no API at all: the harness's minio-go `NewMultipartUpload`, part `PUT`s on URLs it presigns itself (partNumber, uploadId and Content-Length signed, as the api signs them; presigning is local), `CompleteMultipartUpload` with `If-None-Match: *`, into a bucket without notifications.\n", human(mpPartSize), mpConcurrency)
	w("- **tusd**: the tusd %s child of workload 1, unchanged (S3 store, content hashes off, %d concurrent part uploads, preferred part size 50 MiB, min 5 MiB, parts buffered in a temporary directory on disk); the client does what tus-js-client (Uppy's Tus plugin) does with `chunkSize` = %s: `POST` (Upload-Length), then `PATCH`es of %s one after another, each at the offset the previous one ended (tus allows one PATCH at a time per upload, so there is no parallelism on the client's side). Each PATCH becomes one %s S3 part (a body at least the minimum part size is stored as a part of its own); the answer to the last PATCH comes after tusd's CompleteMultipartUpload.\n\n", tusdVersion, r.o.tusdPartUploads, human(mpPartSize), human(mpPartSize), human(mpPartSize))
	if !r.failedNote(w, "multipart") || r.mp == nil {
		return
	}
	for _, sys := range mpSystems {
		if err := r.mp.warmErr[sys]; err != nil {
			w("**%s was not measured**: its warm-up failed: `%s`\n\n", sys, strings.ReplaceAll(err.Error(), "\n", " "))
		}
	}
	w("| size | system | runs | MB/s (median) | MiB/s (median) | MB/s min–max | seconds (median) | parts × size | requests (median) | failed runs |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, m := range r.mp.sizes {
		for _, sys := range mpSystems {
			if r.mp.warmErr[sys] != nil {
				continue
			}
			runs := m.of(sys)
			failed := 0
			for _, x := range m.runs {
				if x.sys == sys && x.err != nil {
					failed++
				}
			}
			mbs := collect(runs, mpRun.mbPerSec)
			lo, hi := minMax(mbs)
			parts := "—"
			if len(runs) > 0 {
				parts = fmt.Sprintf("%d × %s", runs[0].parts, human64(runs[0].partSize))
			}
			w("| %s | %s | %d | %.0f | %.0f | %.0f–%.0f | %.2f | %s | %.0f | %d |\n", human64(m.size), sys, len(runs), median(mbs), median(mbs)*1e6/(1<<20), lo, hi,
				median(collect(runs, func(x mpRun) float64 { return x.elapsed.Seconds() })), parts,
				median(collect(runs, func(x mpRun) float64 { return float64(x.requests) })), failed)
		}
	}
	w("\n\"requests\" are the client's requests to the api (DocuVault: upload-url, parts, complete) or to tusd (POST and PATCHes); for presigned parts, its S3 requests besides the part PUTs (initiate and complete).\n\n")
	w("**Ratios** (MB/s, per repetition, median and range):\n\n")
	w("| size | DocuVault / presigned parts | DocuVault / tusd | presigned parts / tusd | DocuVault / presigned parts, CPU cost | DocuVault / tusd, CPU cost |\n|---|---|---|---|---|---|\n")
	cell := func(xs []float64) string {
		if len(xs) == 0 {
			return "—"
		}
		lo, hi := minMax(xs)
		return fmt.Sprintf("%.2f (%.2f–%.2f)", median(xs), lo, hi)
	}
	for _, m := range r.mp.sizes {
		w("| %s | %s | %s | %s | %s | %s |\n", human64(m.size), cell(m.ratios(mpDocuVault, mpLimit, r.mp.reps)),
			cell(m.ratios(mpDocuVault, mpTusd, r.mp.reps)), cell(m.ratios(mpLimit, mpTusd, r.mp.reps)),
			cell(m.costRatios(mpDocuVault, mpLimit, r.mp.reps)), cell(m.costRatios(mpDocuVault, mpTusd, r.mp.reps)))
	}
	w("\nThe CPU-cost ratios are the other system's CPU per GiB (every process below, upload and drain) over DocuVault's, per repetition: when the machine's cores are busy throughout (\"machine busy\" below), throughput is bound by CPU, and this is near what the MB/s ratio would be were the cores the benchmark's alone.\n")
	w("\n**CPU per GiB uploaded** (median over the runs, CPU seconds per GiB, from /proc/PID/stat of each process as in workload 1: from the start of the upload to the end of its event drain, less what the processes burn idle over the drain, measured for 2 s before the runs). load = the bench process (the clients, presigning included for presigned parts):\n\n")
	w("| size | system |")
	for _, name := range procNames {
		w(" %s |", name)
	}
	w(" total | machine busy | event drain |\n|---|---|%s---|---|---|\n", strings.Repeat("---|", int(numProcs)))
	for _, m := range r.mp.sizes {
		for _, sys := range mpSystems {
			runs := m.of(sys)
			if len(runs) == 0 {
				continue
			}
			per := func(f func(cpuSnap) float64) float64 {
				return median(collect(runs, func(x mpRun) float64 { return x.cpuPerGiB(f) }))
			}
			w("| %s | %s |", human64(m.size), sys)
			for p := range numProcs {
				w(" %.2f |", per(func(c cpuSnap) float64 { return c.proc[p] }))
			}
			busy := median(collect(runs, func(x mpRun) float64 { return 100 * x.cpu.machine / x.elapsed.Seconds() }))
			drain := "—"
			if sys == mpDocuVault {
				drain = fmt.Sprintf("%.2f s", median(collect(runs, func(x mpRun) float64 { return x.drain.Seconds() })))
			}
			w(" %.2f | %.0f%% | %s |\n", per(cpuSnap.total), busy, drain)
		}
	}
	w("\n\"machine busy\" is the whole machine during the upload, as a share of one core (%s cores: %s00%% is everything).\n\n", r.nproc, r.nproc)
	var failed []string
	for _, m := range r.mp.sizes {
		for _, x := range m.runs {
			if x.err != nil {
				failed = append(failed, fmt.Sprintf("- %s %s, repetition %d: `%s`", x.sys, human64(m.size), x.rep+1, strings.ReplaceAll(x.err.Error(), "\n", " ")))
			}
		}
	}
	if len(failed) > 0 {
		w("Failed runs (not in the medians):\n\n%s\n\n", strings.Join(failed, "\n"))
	}
}

// writeBeforeAfter sets this tree's DocuVault beside the baseline's, from
// workload 1's runs on both stacks and from workload 3b.
func (r *report) writeBeforeAfter(w writer, p plan) {
	w("## Before/after: this tree against the baseline\n\n")
	if r.baseline == nil {
		w("No baseline in this run: `-baseline REV` (`make bench BASELINE=REV`) builds the docuvault binary at REV too and measures it beside this tree's.\n\n")
		return
	}
	b := r.baseline
	w("The baseline is commit %s (\"%s\"), given as `-baseline %s`. Its docuvault binary was built from that commit's tree (`git archive`, its own go.mod, %.1f s) and ran in a stack of its own, started as this tree's is (%.1f s): its own PostgreSQL cluster, with the schema its own `docuvault setup` migrated, its own MinIO and NATS, its api, confirmer and sweeper, the same settings; no tusd. ", b.commit, oneLine(b.subject, 160), b.rev, b.build.Seconds(), r.baselineStart.Seconds())
	w("Both stacks were up together during workloads 1 and 3b, and the baseline's runs took their turn in workload 1's rotation: at each size with presigned+notify, \"docuvault (baseline)\" and \"presigned+notify (baseline)\" ran back to back with this tree's systems in every repetition, so a before/after ratio compares runs seconds apart, and each stack's DocuVault / presigned+notify is taken against the presigned+notify of its own stack (its own MinIO, NATS and confirmer). While one stack runs, the other's idle servers count as \"other\" work on the machine. Medians over the repetitions; CPU per upload counted as in \"Where the CPU went\" (run and drain, less the stack's own idle CPU).\n\n")
	var sizes []*tpSize
	for _, t := range r.tp {
		if len(t.of(atBaseline(sysDocuVault))) > 0 {
			sizes = append(sizes, t)
		}
	}
	if len(sizes) == 0 {
		w("Workload 1 did not run the baseline (-only, or it failed).\n\n")
	} else {
		w("| |")
		for _, t := range sizes {
			w(" %s baseline | %s this tree |", human(t.size), human(t.size))
		}
		w("\n|---|%s\n", strings.Repeat("---|---|", len(sizes)))
		row := func(name string, cell func(t *tpSize, dv, notify system) string) {
			w("| %s |", name)
			for _, t := range sizes {
				w(" %s | %s |", cell(t, atBaseline(sysDocuVault), atBaseline(sysNotify)), cell(t, sysDocuVault, sysNotify))
			}
			w("\n")
		}
		num := func(format string, f func(t *tpSize, dv, notify system) float64) func(t *tpSize, dv, notify system) string {
			return func(t *tpSize, dv, notify system) string { return fmt.Sprintf(format, f(t, dv, notify)) }
		}
		perRep := func(xs []float64) string {
			if len(xs) == 0 {
				return "—"
			}
			lo, hi := minMax(xs)
			return fmt.Sprintf("%.2f (%.2f–%.2f)", median(xs), lo, hi)
		}
		row("DocuVault files/s", num("%.1f", func(t *tpSize, dv, _ system) float64 { return median(collect(t.of(dv), tpRun.filesPerSec)) }))
		row("this tree / baseline, files/s (per repetition)", func(t *tpSize, dv, _ system) string {
			if _, base := dv.onBaseline(); base {
				return "—"
			}
			return perRep(t.ratios(sysDocuVault, atBaseline(sysDocuVault)))
		})
		row("DocuVault / presigned+notify, files/s", func(t *tpSize, dv, notify system) string { return perRep(t.ratios(dv, notify)) })
		row("DocuVault / presigned+notify, CPU cost", func(t *tpSize, dv, notify system) string { return perRep(t.costRatios(dv, notify)) })
		for _, pr := range []proc{procAPI, procConfirmer, procPG, procMinIO, procNATS} {
			row("CPU ms per upload: "+procNames[pr], num("%.2f", func(t *tpSize, dv, _ system) float64 { return t.cpuPerFile(dv, ofProc(pr)) }))
		}
		row("CPU ms per upload: every process", num("%.2f", func(t *tpSize, dv, _ system) float64 { return t.cpuPerFile(dv, cpuSnap.total) }))
		row("added CPU over presigned+notify, ms per upload", num("%.2f", func(t *tpSize, dv, notify system) float64 {
			return t.cpuPerFile(dv, cpuSnap.total) - t.cpuPerFile(notify, cpuSnap.total)
		}))
		row("PostgreSQL transactions per upload", num("%.2f", func(t *tpSize, dv, _ system) float64 { return t.perFile(dv, tpRun.pgXacts) }))
		row("WAL syncs per upload", num("%.2f", func(t *tpSize, dv, _ system) float64 { return t.perFile(dv, tpRun.walSyncs) }))
		row("HeadObject per upload", num("%.2f", func(t *tpSize, dv, _ system) float64 { return t.perFile(dv, s3Requests("HeadObject")) }))
		row("PostgreSQL statements sent per upload", func(t *tpSize, dv, _ system) string {
			if t.size != statementsAt {
				return "—"
			}
			return fmt.Sprintf("%.2f", median(collect(t.of(dv), func(x tpRun) float64 { c, _ := x.statementsPerFile(sent); return c })))
		})
		w("\nStatements sent per upload are pg_stat_statements' calls of the statements the services sent at %s (utility statements included; those run inside a function or a trigger left out, so that a statement counts once however much it does; \"—\" at the other sizes, where they are not read).\n\n", human(statementsAt))
	}
	if len(r.flow) > 0 {
		var base, this []float64
		for _, f := range r.flow {
			if f.baseline {
				base = append(base, ms(pct(f.lat, .5)))
			} else {
				this = append(this, ms(pct(f.lat, .5)))
			}
		}
		if len(base) > 0 {
			w("Confirm at 1 client in the flow (workload 3b), p50: baseline %.2f ms, this tree %.2f ms.\n\n", median(base), median(this))
		}
	}
}

// writeFlow reports workload 3b.
func (r *report) writeFlow(w writer, p plan) {
	w("## 3b. Confirm in the flow, 1 client\n\n")
	w("One client uploads %s files one after another in DocuVault's whole flow — `upload-url`, the presigned `PUT`, `confirm` — with MinIO's notifications flowing as in production, and times each confirm, from its request to its answer: what a user waits for once the bytes are in. Since issue 25 a pending document's confirm waits up to CONFIRM_WAIT for the notification door (the confirmer, woken by MinIO's notification) to settle it, and answers from the committed row; a release before it stats the object and settles at once. %d repetitions of %d uploads, after %d untimed ones, as one user. ", human(flowSize), p.flowReps, p.flowUploads, flowWarmUp)
	if r.baseline != nil {
		w("Each repetition ran on both stacks, this tree's and the baseline's (%s), one after the other, the order alternating; after each run the harness waited until that stack's event path was idle.", r.baseline.commit)
	}
	w("\n\n")
	if !r.failedNote(w, "confirm-flow") {
		return
	}
	w("| stack | repetition | confirms | p50 ms | p90 ms | p99 ms | max ms |\n|---|---|---|---|---|---|---|\n")
	for _, f := range r.flow {
		w("| %s | %d | %d | %.2f | %.2f | %.2f | %.2f |\n", f.stackName(), f.rep+1, len(f.lat), ms(pct(f.lat, .5)), ms(pct(f.lat, .9)), ms(pct(f.lat, .99)), ms(pct(f.lat, 1)))
	}
	w("\n")
}
