package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// clockTicks is USER_HZ, 100 on every Linux this runs on.
const clockTicks = 100

// procStat is the CPU fields of /proc/PID/stat, in seconds, and the parent.
type procStat struct {
	ppid                       int
	comm                       string
	utime, stime, cutime, cstm float64
}

func readStat(pid int) (procStat, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, false
	}
	s := string(b)
	open, close := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || close < 0 {
		return procStat{}, false
	}
	f := strings.Fields(s[close+1:])
	// f[0] is field 3 (state): field n is f[n-3].
	if len(f) < 15 {
		return procStat{}, false
	}
	num := func(n int) float64 {
		v, _ := strconv.ParseFloat(f[n-3], 64)
		return v / clockTicks
	}
	ppid, _ := strconv.Atoi(f[4-3])
	return procStat{ppid: ppid, comm: s[open+1 : close], utime: num(14), stime: num(15), cutime: num(16), cstm: num(17)}, true
}

// allStats returns the stat of every process.
func allStats() map[int]procStat {
	ents, _ := os.ReadDir("/proc")
	out := make(map[int]procStat, len(ents))
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ok := readStat(pid); ok {
			out[pid] = st
		}
	}
	return out
}

// proc is one process (or process tree) whose CPU the harness counts.
type proc int

// The processes, in the report's order.
const (
	procLoad      proc = iota // this process: the load clients and the harness's polls
	procAPI                   // docuvault api
	procConfirmer             // docuvault confirmer
	procSweeper               // docuvault sweeper
	procNATS                  // the embedded NATS server, in a child of its own
	procMinIO
	procPG   // the postmaster and every backend, live or exited
	procTusd // tusd, in a child of its own
	numProcs
)

// procNames are the processes' names in the report.
var procNames = [numProcs]string{"load", "api", "confirmer", "sweeper", "NATS", "MinIO", "PostgreSQL", "tusd"}

// findPIDs notes the pid of every process the harness counts: itself, its
// children, MinIO (devstack's child, so ours: the one serving this stack's
// directory, when two stacks run) and the PostgreSQL postmaster (from its
// pid file).
func (s *stack) findPIDs() {
	self := os.Getpid()
	s.pids[procLoad] = self
	for p, c := range map[proc]*child{procAPI: s.api, procConfirmer: s.confirmer, procSweeper: s.sweeper, procNATS: s.nats, procTusd: s.tusd} {
		if c != nil {
			s.pids[p] = c.pid
		}
	}
	for pid, st := range allStats() {
		if st.ppid == self && st.comm == "minio" && strings.Contains(cmdline(pid), s.dir) {
			s.pids[procMinIO] = pid
		}
	}
	matches, _ := filepath.Glob(filepath.Join(s.dir, "data", "pg", "*", "postmaster.pid"))
	for _, m := range matches {
		if b, err := os.ReadFile(m); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0])); err == nil {
				s.pids[procPG] = pid
			}
		}
	}
}

// cmdline returns pid's command line, its arguments joined by spaces.
func cmdline(pid int) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return strings.Join(strings.Split(strings.TrimRight(string(b), "\x00"), "\x00"), " ")
}

// cpuSnap is CPU seconds used so far by each counted process, and by the
// whole machine.
type cpuSnap struct {
	proc    [numProcs]float64
	machine float64
}

func (a cpuSnap) sub(b cpuSnap) cpuSnap {
	for i := range a.proc {
		a.proc[i] -= b.proc[i]
	}
	a.machine -= b.machine
	return a
}

func (a cpuSnap) scale(f float64) cpuSnap {
	for i := range a.proc {
		a.proc[i] *= f
	}
	a.machine *= f
	return a
}

// atLeast returns a with every field raised to b's at least.
func (a cpuSnap) atLeast(b cpuSnap) cpuSnap {
	for i := range a.proc {
		a.proc[i] = max(a.proc[i], b.proc[i])
	}
	a.machine = max(a.machine, b.machine)
	return a
}

// total is the CPU of every counted process.
func (a cpuSnap) total() float64 {
	t := 0.0
	for _, v := range a.proc {
		t += v
	}
	return t
}

func (s *stack) cpu() cpuSnap {
	var c cpuSnap
	all := allStats()
	for p, pid := range s.pids {
		st, ok := all[pid]
		if !ok || pid == 0 {
			continue
		}
		switch proc(p) {
		case procLoad:
			// Its own time only: the children it waited for (go build, go
			// tool pprof) are not load.
			c.proc[p] = st.utime + st.stime
		case procPG:
			c.proc[p] = st.utime + st.stime + st.cutime + st.cstm
			for _, ch := range all {
				if ch.ppid == pid {
					c.proc[p] += ch.utime + ch.stime + ch.cutime + ch.cstm
				}
			}
		default:
			c.proc[p] = st.utime + st.stime + st.cutime + st.cstm
		}
	}
	c.machine = machineBusy()
	return c
}

// machineBusy returns the CPU seconds all cores spent not idle, from /proc/stat.
func machineBusy() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var busy float64
	for i, v := range f[1:] {
		n, _ := strconv.ParseFloat(v, 64)
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		if i >= 7 { // steal and guest are counted in user already / not ours
			break
		}
		busy += n
	}
	return busy / clockTicks
}

// rss reads VmRSS and VmHWM (peak) of pid in bytes.
func rss(pid int) (cur, peak int64) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			cur = n << 10
		case "VmHWM":
			peak = n << 10
		}
	}
	return cur, peak
}

// resetPeak resets VmHWM of pid to its current RSS.
func resetPeak(pid int) error {
	return os.WriteFile("/proc/"+strconv.Itoa(pid)+"/clear_refs", []byte("5"), 0)
}

// minioRequests returns MinIO's S3 request counters by API (PutObject,
// HeadObject, …), read live from its metrics v3 endpoint with a token made
// as `mc admin prometheus generate` makes it.
func (s *stack) minioRequests(ctx context.Context) (map[string]float64, error) {
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS512, jwt.RegisteredClaims{
		ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour)),
		Subject:   s.ds.MinIOAccessKey,
		Issuer:    "prometheus",
	}).SignedString([]byte(s.ds.MinIOSecretKey))
	if err != nil {
		return nil, err
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.ds.MinIOEndpoint+"/minio/metrics/v3/api/requests", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("minio metrics: %s", resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "minio_api_requests_total{") {
			continue
		}
		labels, value, ok := strings.Cut(strings.TrimPrefix(line, "minio_api_requests_total{"), "} ")
		if !ok {
			continue
		}
		_, api, ok := strings.Cut(labels, `name="`)
		if !ok {
			continue
		}
		api, _, _ = strings.Cut(api, `"`)
		v, _ := strconv.ParseFloat(strings.TrimSpace(value), 64)
		out[api] += v
	}
	return out, sc.Err()
}

// subCounts returns a − b per key, without zeros.
func subCounts(a, b map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range a {
		if d := v - b[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

// pgStats is PostgreSQL's transaction and WAL-sync counters for the
// documents database (cumulative statistics, flushed by the server within
// about a second).
type pgStats struct{ xacts, walSyncs float64 }

func (a pgStats) sub(b pgStats) pgStats { return pgStats{a.xacts - b.xacts, a.walSyncs - b.walSyncs} }

func (s *stack) pgStats(ctx context.Context) (pgStats, error) {
	var st pgStats
	s.ownXacts.Add(2)
	// A fresh snapshot each time (stats_fetch_consistency may cache).
	if _, err := s.h.Pool.Exec(ctx, `SELECT pg_stat_clear_snapshot()`); err != nil {
		return st, err
	}
	err := s.h.Pool.QueryRow(ctx, `SELECT (SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database())::float8,
		(SELECT wal_sync FROM pg_stat_wal)::float8`).Scan(&st.xacts, &st.walSyncs)
	return st, err
}
