package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeRun is a run of sys in repetition rep: files uploaded in one second,
// cpu milliseconds per file in each of procs, and per file: transactions,
// WAL syncs and HeadObject requests.
func fakeRun(sys system, rep, files int, cpu map[proc]float64, xacts, syncs, heads float64) tpRun {
	r := tpRun{sys: sys, size: 64 << 10, rep: rep, st: runStats{ops: files, elapsed: time.Second}}
	n := float64(files)
	for p, v := range cpu {
		r.cost.proc[p] = v * n / 1000
	}
	r.cpu = r.cost
	r.pg = pgStats{xacts: xacts * n, walSyncs: syncs * n}
	r.s3 = map[string]float64{"PutObject": n, "HeadObject": heads * n}
	return r
}

// summaryLines returns the summary's table rows, by goal.
func summaryLines(t *testing.T, r *report) map[string]string {
	t.Helper()
	var b strings.Builder
	r.writeSummary(func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }, quickPlan())
	rows := map[string]string{}
	for _, l := range strings.Split(b.String(), "\n") {
		cells := strings.Split(l, " | ")
		if len(cells) == 3 && strings.HasPrefix(l, "| ") {
			rows[strings.TrimPrefix(cells[0], "| ")] = cells[1] + " | " + strings.TrimSuffix(cells[2], " |")
		}
	}
	return rows
}

func TestSummaryHoldsIssue25Goals(t *testing.T) {
	dv := fakeRun(sysDocuVault, 0, 100, map[proc]float64{procAPI: 0.9, procPG: 0.5, procMinIO: 3}, 1.5, 0.4, 0.2)
	dv.stmts = []stmtStat{
		{query: "SELECT * FROM settle_documents($1, $2)", toplevel: true, calls: 25, rows: 103},
		{query: "SELECT version FROM accounting", calls: 300},
	}
	notify := fakeRun(sysNotify, 0, 120, map[proc]float64{procMinIO: 3, procNATS: 0.2}, 0, 0, 0)
	tusd := fakeRun(sysTusd, 0, 40, map[proc]float64{procTusd: 8}, 0, 0, 1)
	r := &report{took: map[string]time.Duration{"confirm-flow": time.Second}, tp: []*tpSize{{
		size: 64 << 10, reps: 1, systems: []system{sysDocuVault, sysNotify, sysTusd},
		runs: []tpRun{dv, notify, tusd},
	}}}
	r.flow = []flowRun{{rep: 0, lat: []time.Duration{5 * time.Millisecond}}}
	rows := summaryLines(t, r)
	for goal, want := range map[string]string{
		// 4.4 − 3.2 ms of CPU per upload.
		"64 KiB: added CPU ≤ 1.5 ms per upload":                                            "1.20 ms (4.40 − 3.20) | met",
		"64 KiB: DocuVault / presigned+notify ≥ 0.75, files/s":                             "0.83 (0.83–0.83) | **met** (every run)",
		"64 KiB: DocuVault / presigned+notify ≥ 0.75, CPU cost":                            "0.73 (0.73–0.73) | **missed**",
		"64 KiB: DocuVault / tusd ≥ 2.00, files/s":                                         "2.50 (2.50–2.50) | **met** (every run)",
		"64 KiB: PostgreSQL ≤ 0.6 ms CPU per upload":                                       "0.50 ms | met",
		"64 KiB: PostgreSQL ≤ 0.5 WAL syncs per upload":                                    "0.40 | met",
		"64 KiB: HeadObject ≤ 0.1 per upload":                                              "0.20 | **missed**",
		"64 KiB: api ≤ 0.4 ms CPU per request (api CPU per upload / 2 requests)":           "0.45 ms | **missed**",
		"64 KiB: confirm statements ≤ 1.05 per upload":                                     "1.03 settlements (rows of settle_documents) per upload, in 0.25 statements | met",
		"kept: confirm p50 at 1 client ≤ the baseline's + 2 ms (workload 3b, in the flow)": "p50 5.00 ms; the baseline's not measured (no -baseline) | not measured",
	} {
		if got, ok := rows[goal]; !ok {
			t.Errorf("no goal %q in the summary; it has %v", goal, rows)
		} else if got != want {
			t.Errorf("%s: got %q, want %q", goal, got, want)
		}
	}
}

func TestBeforeAfterComparesEachStackWithItsOwnReference(t *testing.T) {
	size := &tpSize{size: 64 << 10, reps: 2,
		systems: []system{sysDocuVault, sysNotify, atBaseline(sysDocuVault), atBaseline(sysNotify)}}
	for rep, f := range []int{100, 120} {
		size.runs = append(size.runs,
			fakeRun(sysDocuVault, rep, f, map[proc]float64{procAPI: 1}, 2, 0.5, 0),
			fakeRun(sysNotify, rep, 200, nil, 0, 0, 0),
			fakeRun(atBaseline(sysDocuVault), rep, 50, map[proc]float64{procAPI: 2}, 3, 1.5, 0.9),
			fakeRun(atBaseline(sysNotify), rep, 250, nil, 0, 0, 0))
	}
	r := &report{baseline: &baseline{rev: "base", commit: "abc1234", subject: "before"}, tp: []*tpSize{size},
		flow: []flowRun{
			{baseline: true, rep: 0, lat: []time.Duration{4 * time.Millisecond}},
			{rep: 0, lat: []time.Duration{7 * time.Millisecond}},
		}}
	var b strings.Builder
	r.writeBeforeAfter(func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }, quickPlan())
	for _, want := range []string{
		"| DocuVault files/s | 50.0 | 110.0 |",
		"| this tree / baseline, files/s (per repetition) | — | 2.20 (2.00–2.40) |",
		// Each against its own stack's presigned+notify: 50/250 and 100/200, 120/200.
		"| DocuVault / presigned+notify, files/s | 0.20 (0.20–0.20) | 0.55 (0.50–0.60) |",
		"| CPU ms per upload: api | 2.00 | 1.00 |",
		"| WAL syncs per upload | 1.50 | 0.50 |",
		"| HeadObject per upload | 0.90 | 0.00 |",
		"p50: baseline 4.00 ms, this tree 7.00 ms.",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("before/after lacks %q:\n%s", want, b.String())
		}
	}
}

func TestFlowP50DiffsPairsRepetitions(t *testing.T) {
	lat := func(d ...time.Duration) []time.Duration { return d }
	runs := []flowRun{
		{rep: 0, lat: lat(5 * time.Millisecond)},
		{baseline: true, rep: 0, lat: lat(4 * time.Millisecond)},
		{baseline: true, rep: 1, lat: lat(6 * time.Millisecond)},
		{rep: 1, lat: lat(3 * time.Millisecond)},
	}
	got := flowP50Diffs(runs)
	if len(got) != 2 || got[0] != 1 || got[1] != -3 {
		t.Errorf("flowP50Diffs = %v, want [1 -3]", got)
	}
	if got := flowP50Diffs(runs[:1]); got != nil {
		t.Errorf("without a baseline: %v, want nil", got)
	}
}

func TestStatementsPerFile(t *testing.T) {
	x := tpRun{st: runStats{ops: 10}, stmts: []stmtStat{
		{query: "SELECT * FROM settle_documents($1, $2)", toplevel: true, calls: 4, rows: 11},
		{query: "SELECT * FROM  settle_documents(1,\n 2)", toplevel: true, calls: 1, rows: 1},
		{query: "UPDATE documents SET status = $1 WHERE id = $2", calls: 12, rows: 12},
		{query: "INSERT INTO documents VALUES ($1)", toplevel: true, calls: 10, rows: 10},
	}}
	if calls, rows := x.statementsPerFile(settles); calls != 0.5 || rows != 1.2 {
		t.Errorf("settles: %v calls, %v rows per file; want 0.5, 1.2", calls, rows)
	}
	if calls, _ := x.statementsPerFile(sent); calls != 1.5 {
		t.Errorf("sent: %v calls per file, want 1.5 (the UPDATE ran inside a function)", calls)
	}
}

func TestBaselineSystems(t *testing.T) {
	sys, ok := atBaseline(sysNotify).onBaseline()
	if !ok || sys != sysNotify {
		t.Errorf("atBaseline(%s).onBaseline() = %s, %v", sysNotify, sys, ok)
	}
	if sys, ok := sysNotify.onBaseline(); ok || sys != sysNotify {
		t.Errorf("%s.onBaseline() = %s, %v", sysNotify, sys, ok)
	}
}

func TestExtractWritesTheCommitsTree(t *testing.T) {
	repo := t.TempDir()
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
		cmd.Dir = repo
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	write := func(name, text string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(repo, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(repo, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git("init", "-q")
	write("a/b.txt", "before")
	git("add", ".")
	git("commit", "-q", "-m", "before")
	before := git("rev-parse", "HEAD")
	write("a/b.txt", "after")
	git("commit", "-q", "-am", "after")

	dir := t.TempDir()
	if err := extract(context.Background(), repo, before, dir); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "a", "b.txt")); err != nil || string(b) != "before" {
		t.Errorf("a/b.txt = %q, %v; want the first commit's", b, err)
	}
	if err := extract(context.Background(), repo, "0000000000000000000000000000000000000000", t.TempDir()); err == nil {
		t.Error("extract of a missing commit: no error")
	}
}

func TestChecksumsSetWithBesideWithout(t *testing.T) {
	size := &tpSize{size: 64 << 10, reps: 2, systems: []system{sysDocuVault, sysDocuVaultSum, sysNotify}}
	for rep, f := range []int{100, 120} {
		size.runs = append(size.runs,
			fakeRun(sysDocuVault, rep, f, map[proc]float64{procLoad: 0.5, procMinIO: 3}, 1.5, 0.4, 0),
			fakeRun(sysDocuVaultSum, rep, 90, map[proc]float64{procLoad: 0.75, procMinIO: 3.5}, 1.5, 0.4, 0),
			fakeRun(sysNotify, rep, 200, map[proc]float64{procMinIO: 3}, 0, 0, 0))
	}
	r := &report{took: map[string]time.Duration{"throughput": time.Second}, tp: []*tpSize{size}}
	var b strings.Builder
	r.writeChecksums(func(format string, args ...any) { fmt.Fprintf(&b, format, args...) })
	// 90/100 and 90/120; MinIO 3 → 3.5, load 0.5 → 0.75 ms per file.
	want := "| 64 KiB | 110.0 | 90.0 | 0.82 (0.75–0.90) | 3.00 | 3.50 | +0.50 | 0.50 | 0.75 | +0.25 | +0.75 |"
	if !strings.Contains(b.String(), want) {
		t.Errorf("checksums lack %q:\n%s", want, b.String())
	}
	rows := summaryLines(t, r)
	if got, want := rows["64 KiB: docuvault+sha256 / docuvault, files/s (issue 26's checksums)"], "0.82 (0.75–0.90) | no goal (informative)"; got != want {
		t.Errorf("summary's checksum line: got %q, want %q", got, want)
	}
	// The goals stay plain docuvault's: 100/200 and 120/200.
	if got, want := rows["64 KiB: DocuVault / presigned+notify ≥ 0.75, files/s"], "0.55 (0.50–0.60) | **missed**"; got != want {
		t.Errorf("DocuVault / presigned+notify: got %q, want %q", got, want)
	}

	// Without docuvault+sha256 (the 16 MiB size, an older run): no section.
	b.Reset()
	r.tp = []*tpSize{{size: 16 << 20, reps: 1, systems: []system{sysDocuVault}, runs: []tpRun{fakeRun(sysDocuVault, 0, 10, nil, 0, 0, 0)}}}
	r.writeChecksums(func(format string, args ...any) { fmt.Fprintf(&b, format, args...) })
	if b.Len() != 0 {
		t.Errorf("checksums without docuvault+sha256 runs: %q", b.String())
	}
}
