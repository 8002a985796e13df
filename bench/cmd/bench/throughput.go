package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// system is one way to get a file into MinIO.
type system string

const (
	sysDocuVault    system = "docuvault"        // upload-url + presigned PUT + confirm
	sysDocuVaultSum system = "docuvault+sha256" // the same with the file's SHA-256 declared and signed (issue 26)
	sysRaw          system = "presigned"        // presigned PUT alone, signed locally: the physical limit
	sysNotify       system = "presigned+notify" // the same into a bucket with DocuVault's notification rules
	sysTusd         system = "tusd"             // tusd v2 s3store: POST + one PATCH
)

// notifyBucket has the documents bucket's notification rules (targets
// PRIMARY and LIVE → JetStream MINIO_EVENTS, which the confirmer reads and
// acknowledges as another bucket's), but no API in front of it: the
// presigned+notify runs tell what MinIO's notifications cost by themselves.
const notifyBucket = "bench-notify"

// tpRun is one run of one system at one size.
type tpRun struct {
	sys     system
	size    int
	rep     int
	st      runStats
	cpu     cpuSnap       // CPU seconds used during the run
	cost    cpuSnap       // CPU seconds used from the start of the run to the end of its drain: all the work its files caused
	pg      pgStats       // PostgreSQL transactions and WAL syncs, run and drain
	drain   time.Duration // DocuVault only: end of the run → confirmer and outbox idle
	drainOK bool
	s3      map[string]float64 // MinIO S3 requests by API during the run and its drain
	stmts   []stmtStat         // statementsAt only: the services' statements, run and drain
}

// statementsAt is the size at which DocuVault's runs read
// pg_stat_statements.
const statementsAt = 64 << 10

func (r tpRun) filesPerSec() float64 { return r.st.perSec() }
func (r tpRun) pgXacts() float64     { return r.pg.xacts }
func (r tpRun) walSyncs() float64    { return r.pg.walSyncs }

// s3Requests is f of a run that reads its MinIO requests of api.
func s3Requests(api string) func(tpRun) float64 {
	return func(r tpRun) float64 { return r.s3[api] }
}
func (r tpRun) mibPerSec() float64 { return r.st.perSec() * float64(r.size) / (1 << 20) }

// tpSize is the workload at one file size.
type tpSize struct {
	idle       cpuSnap // CPU seconds per second our processes use when idle, measured before the runs
	baseIdle   cpuSnap // the same for the baseline's stack
	size, reps int
	dur        time.Duration
	systems    []system
	runs       []tpRun
}

// uploadOp returns the operation that uploads one file with sys. DocuVault
// uploads go round-robin to the users of tokens, as many users' uploads
// do: one user uploading hundreds of files a minute is refused in
// production (UPLOAD_RATE_PER_MINUTE, 120 by default).
func (s *stack) uploadOp(sys system, apiURL string, data []byte, tokens []string) opFunc {
	switch sys {
	case sysDocuVault:
		var next atomic.Uint64
		return func(ctx context.Context, _, _ int) error {
			_, err := s.docuvaultUpload(ctx, apiURL, tokens[next.Add(1)%uint64(len(tokens))], data)
			return err
		}
	case sysDocuVaultSum:
		// Each file's bytes differ (uniqueData), or the api would answer
		// every upload after the first a duplicate, with nothing to send.
		var next atomic.Uint64
		bufs := sync.Pool{New: func() any { return bytes.Clone(data) }}
		return func(ctx context.Context, _, _ int) error {
			buf := bufs.Get().([]byte)
			uniqueData(buf)
			err := s.docuvaultUploadSHA256(ctx, apiURL, tokens[next.Add(1)%uint64(len(tokens))], buf)
			if err == nil {
				// On an error the transport may still be reading buf:
				// leave it to the garbage collector.
				bufs.Put(buf)
			}
			return err
		}
	case sysRaw:
		return func(ctx context.Context, _, _ int) error { return s.rawUpload(ctx, rawBucket, data) }
	case sysNotify:
		return func(ctx context.Context, _, _ int) error { return s.rawUpload(ctx, notifyBucket, data) }
	default:
		return func(ctx context.Context, _, _ int) error { return s.tusUpload(ctx, data) }
	}
}

// fileSeq numbers the files of docuvault+sha256 over the whole bench run:
// the stack's document rows outlive a run (they are wiped per size).
var fileSeq atomic.Uint64

// uniqueData writes the next file number into buf's first 8 bytes (buf is
// at least 8 bytes, the rest random), so that no two files of the bench
// have the same SHA-256.
func uniqueData(buf []byte) {
	binary.BigEndian.PutUint64(buf, fileSeq.Add(1))
}

// drains reports whether sys's files cause MinIO notifications that the
// confirmer handles, so that a run of it waits for its event drain.
func (sys system) drains() bool {
	plain, _ := sys.onBaseline()
	return plain == sysDocuVault || plain == sysDocuVaultSum || plain == sysNotify
}

// bucketOf is where sys stores its files.
func (s *stack) bucketOf(sys system) string {
	switch sys {
	case sysDocuVault, sysDocuVaultSum:
		return s.cfg.MinIOBucket
	case sysRaw:
		return rawBucket
	case sysNotify:
		return notifyBucket
	}
	return tusdBucket
}

// throughput runs workloads 1 and 2: at each size, each repetition runs
// every system for the same time back to back (in an order that rotates
// from one repetition to the next), so that every ratio compares runs made
// side by side, seconds apart. A run counts the files whose upload
// completed and the time until the last one did (uploads in flight at the
// deadline finish and count).
//
// With a baseline's stack (base, else nil), the sizes that have
// presigned+notify have two systems more, DocuVault and presigned+notify
// on the baseline's stack, in the same rotation: the before/after compares
// runs seconds apart too, and each stack has its own presigned+notify
// reference (its own MinIO, NATS and confirmer).
func throughput(ctx context.Context, s, base *stack, p plan) ([]*tpSize, error) {
	stacks := []*stack{s}
	if base != nil {
		stacks = append(stacks, base)
	}
	// on returns the stack sys runs on and the system it is there.
	on := func(sys system) (*stack, system) {
		if plain, ok := sys.onBaseline(); ok {
			return base, plain
		}
		return s, sys
	}
	var out []*tpSize
	for n, sz := range p.tpSizes {
		res := &tpSize{size: sz.size, reps: sz.reps, dur: sz.dur, systems: sz.systems}
		if base != nil && slices.Contains(sz.systems, sysNotify) {
			res.systems = append(slices.Clone(sz.systems), atBaseline(sysDocuVault), atBaseline(sysNotify))
		}
		out = append(out, res)
		data := payload(sz.size)
		// Warm-up: connections open, code paths hot.
		warm := p.tpClients
		if n > 0 {
			warm = min(p.tpClients, max(4, int((64<<20)/sz.size)))
		}
		for _, sys := range res.systems {
			st, plain := on(sys)
			r := run(ctx, p.tpClients, warm, 0, st.uploadOp(plain, st.apiURL, data, st.tokens))
			if r.errs > 0 {
				return out, fmt.Errorf("warm-up %s %s: %d errors, first: %v", sys, human(sz.size), r.errs, r.firstErr)
			}
		}
		for _, st := range stacks {
			if err := st.cleanUploads(ctx); err != nil {
				return out, err
			}
			// What our processes burn while nothing happens: a drain's
			// share of it is not the files' cost.
			if _, err := st.waitIdle(ctx, 0, 20*time.Second); err != nil {
				logf("  %v", err)
			}
		}
		i0 := make([]cpuSnap, len(stacks))
		for i, st := range stacks {
			i0[i] = st.cpu()
		}
		time.Sleep(2 * time.Second)
		for i, st := range stacks {
			idle := st.cpu().sub(i0[i]).scale(1 / 2.0)
			line := ""
			for p, v := range idle.proc {
				line += fmt.Sprintf(" %s %.0f%%", procNames[p], 100*v)
			}
			if st == base {
				res.baseIdle = idle
				logf("  idle CPU of the baseline's stack, of a core:%s", line)
			} else {
				res.idle = idle
				logf("  idle CPU, of a core:%s", line)
			}
		}
		for rep := range sz.reps {
			for k := range res.systems {
				sys := res.systems[(k+rep)%len(res.systems)]
				s, plain := on(sys) // from here on, s is the stack of this run
				idle := res.idle
				if s == base {
					idle = res.baseIdle
				}
				seq0, err := s.minioLastSeq(ctx)
				if err != nil {
					return out, err
				}
				s30, err := s.minioRequests(ctx)
				if err != nil {
					return out, err
				}
				own0 := s.ownXacts.Load()
				pg0, err := s.pgStats(ctx)
				if err != nil {
					return out, err
				}
				stmts := plain == sysDocuVault && sz.size == statementsAt
				if stmts {
					if err := s.resetStatements(ctx); err != nil {
						return out, fmt.Errorf("pg_stat_statements_reset: %w", err)
					}
				}
				c0 := s.cpu()
				st := run(ctx, p.tpClients, 0, sz.dur, s.uploadOp(plain, s.apiURL, data, s.tokens))
				r := tpRun{sys: sys, size: sz.size, rep: rep, st: st, cpu: s.cpu().sub(c0)}
				if ctx.Err() != nil {
					return out, ctx.Err()
				}
				if plain.drains() {
					// Two notifications per object (targets PRIMARY and LIVE).
					var err error
					r.drain, err = s.waitIdle(ctx, seq0+uint64(2*st.ops), 20*time.Second)
					r.drainOK = err == nil
					if err != nil {
						logf("  %v", err)
					}
				}
				r.cost = s.cpu().sub(c0).sub(idle.scale(r.drain.Seconds())).atLeast(r.cpu)
				s31, err := s.minioRequests(ctx)
				if err != nil {
					return out, err
				}
				pg1, err := s.pgStats(ctx)
				if err != nil {
					return out, err
				}
				r.pg = pg1.sub(pg0)
				r.pg.xacts -= float64(s.ownXacts.Load() - own0)
				r.s3 = subCounts(s31, s30)
				if stmts {
					if r.stmts, err = s.statements(ctx); err != nil {
						return out, fmt.Errorf("pg_stat_statements: %w", err)
					}
				}
				res.runs = append(res.runs, r)
				logf("  %-16s %7s rep %d: %6.1f files/s %7.1f MiB/s  %5d files  errors %d  (%.1fs)%s", sys, human(sz.size), rep+1,
					r.filesPerSec(), r.mibPerSec(), st.ops, st.errs, st.elapsed.Seconds(), drainNote(r))
				if st.errs > 0 {
					logf("    first error: %v", st.firstErr)
				}
				if err := s.emptyBucket(ctx, s.bucketOf(plain)); err != nil {
					return out, err
				}
				if err := s.serviceError(); err != nil {
					return out, err
				}
			}
		}
		for _, st := range stacks {
			if err := st.cleanUploads(ctx); err != nil {
				return out, err
			}
		}
	}
	return out, nil
}

func drainNote(r tpRun) string {
	if !r.sys.drains() {
		return ""
	}
	return fmt.Sprintf(", events drained %.2fs later", r.drain.Seconds())
}

// cleanUploads empties the three buckets and the document rows.
func (s *stack) cleanUploads(ctx context.Context) error {
	if err := s.wipeDocuments(ctx); err != nil {
		return err
	}
	for _, b := range []string{rawBucket, notifyBucket, tusdBucket} {
		if err := s.emptyBucket(ctx, b); err != nil {
			return err
		}
	}
	return nil
}

func human(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d B", n)
}
