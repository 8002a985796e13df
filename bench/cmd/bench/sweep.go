package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/minio/minio-go/v7"
	"github.com/nats-io/nats.go/jetstream"

	root "github.com/docuvault/docuvault/services/docuvault/stack"
	"github.com/docuvault/docuvault/services/sweeper"
	"github.com/docuvault/docuvault/shared/document"
	"github.com/docuvault/docuvault/shared/events"
)

// swRun is one sweep of workload 5.
type swRun struct {
	door                   string // "Sweep() direct", "admin sweep → sweeper service" or doorTick
	rows, orphans, lost    int    // what was set up
	live                   int    // doorTick: live documents (charged rows and their objects)
	slice                  bool   // doorTick: the tick also checked a reconciliation slice
	elapsed                time.Duration
	res                    document.SweepResult
	maxBatchLock           time.Duration
	leftRows, leftObjects  int
	setupRows, setupObject time.Duration
}

// sweepBench runs workload 5. Set-up: p.swRows stale pending documents
// (rows only, aged 2 h, by one INSERT … generate_series over 1,000 users):
// uploads whose bytes never came, which the sweep must stat and purge;
// p.swOrphans objects that no row names (1 KiB each), which it must list
// and delete; p.swLost stale pending documents whose objects did arrive
// (a lost notification), which it must confirm and charge. Then one
// document.Service.Sweep with the service's settings (SWEEP_BATCH_SIZE,
// 16 object-store workers), except PENDING_TTL = 1 s so that the orphans,
// just written, are old enough, and a reconciliation pass that starts on
// every call. Timed: the whole Sweep call.
func sweepBench(ctx context.Context, s *stack, p plan) ([]swRun, error) {
	cfg := root.SweepConfig(s.cfg)
	cfg.PendingTTL = time.Second
	// Each repetition's sweep starts a reconciliation pass, whatever the
	// one before did (the cursor outlives the wipe).
	cfg.ReconcilePeriod = time.Nanosecond
	var out []swRun
	for rep := range p.swReps {
		if err := s.wipeDocuments(ctx); err != nil {
			return out, err
		}
		r := swRun{door: "Sweep() direct", rows: p.swRows, orphans: p.swOrphans, lost: p.swLost}
		if err := s.sweepSetup(ctx, &r); err != nil {
			return out, err
		}
		time.Sleep(cfg.PendingTTL + 100*time.Millisecond)
		start := time.Now()
		res, err := s.svc.Docs.Sweep(s.log.WithContext(ctx), cfg)
		r.elapsed = time.Since(start)
		if err != nil {
			return out, fmt.Errorf("sweep: %w", err)
		}
		r.res, r.maxBatchLock = res, res.MaxBatchLock
		if err := s.sweepLeft(ctx, &r); err != nil {
			return out, err
		}
		out = append(out, r)
		logSweep(rep, r)
	}
	if p.swServiceRows > 0 {
		// Once through the real door: POST /api/admin/sweep → tick →
		// the sweeper service → sweeper.run.completed. Its PENDING_TTL is
		// the configured 1 h: the rows are 2 h old, orphans would be too
		// young, so rows only.
		if err := s.wipeDocuments(ctx); err != nil {
			return out, err
		}
		r := swRun{door: "admin sweep → sweeper service", rows: p.swServiceRows}
		if err := s.sweepSetup(ctx, &r); err != nil {
			return out, err
		}
		done, err := s.sweepViaService(ctx)
		if err != nil {
			return out, err
		}
		r.elapsed = time.Duration(done.DurationMS) * time.Millisecond
		r.res = done.SweepResult
		r.maxBatchLock = time.Duration(done.MaxBatchLockMS * float64(time.Millisecond))
		if err := s.sweepLeft(ctx, &r); err != nil {
			return out, err
		}
		out = append(out, r)
		logSweep(len(out)-1, r)
	}
	for _, live := range swTickLive(p) {
		ticks, err := s.sweepTicks(ctx, live)
		out = append(out, ticks...)
		if err != nil {
			return out, err
		}
	}
	return out, s.wipeDocuments(ctx)
}

// doorTick is the door of the runs that time one tick over many live
// documents.
const doorTick = "tick, default settings"

// swTickStale is the stale pending rows of each timed tick.
const swTickStale = 1000

// swTickLive returns the live documents of the two ticks compared (the
// goal: the larger costs at most 1.2 times the smaller): 10,000 and
// 200,000, or 2,000 and 20,000 in the quick plan.
func swTickLive(p plan) []int {
	if p.swRows >= 100_000 {
		return []int{10_000, 200_000}
	}
	return []int{2_000, 20_000}
}

// sweepTicks sets up live charged documents with their objects, then
// times two sweeps with the sweeper's own settings (stack.SweepConfig, the
// configured PENDING_TTL of 1 h), each over swTickStale fresh stale
// pending rows (2 h old, never uploaded, spread over the live documents'
// 1,000 users): the first as a tick that also checks a reconciliation
// slice (a pass starts), the second as one between passes.
func (s *stack) sweepTicks(ctx context.Context, live int) ([]swRun, error) {
	if err := s.wipeDocuments(ctx); err != nil {
		return nil, err
	}
	var setupRows, setupObjects time.Duration
	if err := s.liveSetup(ctx, live, &setupRows, &setupObjects); err != nil {
		return nil, fmt.Errorf("set up %d live documents: %w", live, err)
	}
	logf("  %d live documents set up: rows %.1fs, objects %.1fs", live, setupRows.Seconds(), setupObjects.Seconds())
	cfg := root.SweepConfig(s.cfg)
	var out []swRun
	for _, slice := range []bool{true, false} {
		r := swRun{door: doorTick, rows: swTickStale, live: live, slice: slice, setupRows: setupRows, setupObject: setupObjects}
		if err := s.insertStale(ctx, swTickStale); err != nil {
			return out, err
		}
		// A zero cursor starts a pass; a pass started just now is not due.
		cur := document.ReconcileCursor{}
		if !slice {
			cur.PassStarted = time.Now()
		}
		if err := s.h.Store.SaveReconcileCursor(ctx, cur); err != nil {
			return out, err
		}
		start := time.Now()
		res, err := s.svc.Docs.Sweep(s.log.WithContext(ctx), cfg)
		r.elapsed = time.Since(start)
		if err != nil {
			return out, fmt.Errorf("sweep: %w", err)
		}
		r.res, r.maxBatchLock = res, res.MaxBatchLock
		if err := s.h.Pool.QueryRow(ctx, `SELECT count(*) FROM documents WHERE status = 'pending'`).Scan(&r.leftRows); err != nil {
			return out, err
		}
		out = append(out, r)
		logf("  tick over %d live documents (reconciliation slice %v): %.2fs, purged %d, pending keys listed %d, stats %d, keys checked %d, errors %d, left %d pending",
			live, slice, r.elapsed.Seconds(), res.Purged, res.PendingListed, res.PendingStats, res.KeysChecked, res.Errors, r.leftRows)
	}
	return out, nil
}

// liveSetup writes n uploaded documents (64 bytes each, charged, spread
// over 1,000 users) and their objects, with the bucket's notifications off.
// The rows go in by one COPY; the objects by MinIO's snowball upload (a tar
// of 10,000 objects per request, extracted by the server), four at once.
func (s *stack) liveSetup(ctx context.Context, n int, rowsTook, objectsTook *time.Duration) error {
	if err := s.notifications(ctx, false); err != nil {
		return err
	}
	defer func() { _ = s.notifications(context.Background(), true) }()
	data := payload(64)
	etag := fmt.Sprintf("%x", md5.Sum(data))
	at := time.Now().Add(-24 * time.Hour).UTC().Truncate(time.Microsecond)
	keys := make([]string, n)
	rows := make([][]any, n)
	for i := range n {
		u, id := uuid.MustParse(fmt.Sprintf("00000000-0000-4000-8000-%012x", i%1000)), uuid.New()
		keys[i] = document.ObjectKey(u, id, "live.pdf")
		rows[i] = []any{id, u, "live.pdf", "application/pdf", int64(len(data)), int64(len(data)), etag, keys[i], "uploaded", at, at, at}
	}
	start := time.Now()
	if _, err := s.h.Pool.CopyFrom(ctx, pgx.Identifier{"documents"},
		[]string{"id", "user_id", "filename", "content_type", "declared_size", "size_bytes", "etag", "object_key", "status", "created_at", "updated_at", "confirmed_at"},
		pgx.CopyFromRows(rows)); err != nil {
		return err
	}
	if _, err := s.h.Pool.Exec(ctx, `ANALYZE documents`); err != nil {
		return err
	}
	*rowsTook = time.Since(start)
	start = time.Now()
	const perTar = 10_000
	st := run(ctx, 4, (n+perTar-1)/perTar, 0, func(ctx context.Context, _, i int) error {
		objs := make(chan minio.SnowballObject, 100)
		go func() {
			defer close(objs)
			for _, k := range keys[i*perTar : min(n, (i+1)*perTar)] {
				select {
				case objs <- minio.SnowballObject{Key: k, Size: int64(len(data)), Content: bytes.NewReader(data)}:
				case <-ctx.Done():
					return
				}
			}
		}()
		err := s.mc.PutObjectsSnowball(ctx, s.cfg.MinIOBucket, minio.SnowballOptions{InMemory: true, Opts: minio.PutObjectOptions{ContentType: "application/pdf"}}, objs)
		for range objs { // drained if the upload stopped early
		}
		return err
	})
	if st.errs > 0 {
		return fmt.Errorf("snowball upload: %v", st.firstErr)
	}
	*objectsTook = time.Since(start)
	for _, k := range []string{keys[0], keys[n/2], keys[n-1]} { // a sample: are they there?
		if _, err := s.mc.StatObject(ctx, s.cfg.MinIOBucket, k, minio.StatObjectOptions{}); err != nil {
			return fmt.Errorf("after the snowball upload: %w", err)
		}
	}
	return nil
}

// insertStale inserts n stale pending rows: 2 h old, never uploaded,
// spread over 1,000 users.
func (s *stack) insertStale(ctx context.Context, n int) error {
	if _, err := s.h.Pool.Exec(ctx, insertStaleSQL, n); err != nil {
		return fmt.Errorf("insert stale rows: %w", err)
	}
	_, err := s.h.Pool.Exec(ctx, `ANALYZE documents`)
	return err
}

// insertStaleSQL inserts $1 stale pending rows.
const insertStaleSQL = `INSERT INTO documents (id, user_id, filename, content_type, declared_size, object_key, status, created_at, updated_at)
		SELECT d.id, d.u, 'stale.pdf', 'application/pdf', 1024, d.u::text || '/' || d.id::text || '/' || gen_random_uuid()::text || '.pdf',
		       'pending', now() - interval '2 hours', now() - interval '2 hours'
		FROM (SELECT gen_random_uuid() AS id,
		             ('00000000-0000-4000-8000-' || lpad(to_hex(i % 1000), 12, '0'))::uuid AS u
		      FROM generate_series(1, $1) AS i) d`

func logSweep(rep int, r swRun) {
	logf("  %s #%d: %d rows + %d orphans + %d lost uploads swept in %.2fs (purged %d, orphans_removed %d, confirmed %d, errors %d); longest batch %.1f ms; left: %d rows, %d objects",
		r.door, rep+1, r.rows, r.orphans, r.lost, r.elapsed.Seconds(), r.res.Purged, r.res.OrphansRemoved, r.res.Confirmed, r.res.Errors,
		ms(r.maxBatchLock), r.leftRows, r.leftObjects)
}

// sweepSetup writes r's rows and objects (with the bucket's notifications
// off, so that the confirmer does not see the objects).
func (s *stack) sweepSetup(ctx context.Context, r *swRun) error {
	if err := s.notifications(ctx, false); err != nil {
		return err
	}
	defer func() { _ = s.notifications(context.Background(), true) }()
	start := time.Now()
	if err := s.insertStale(ctx, r.rows); err != nil {
		return err
	}
	r.setupRows = time.Since(start)
	start = time.Now()
	data := payload(1024)
	keys := make([]string, 0, r.orphans+r.lost)
	for range r.orphans {
		keys = append(keys, document.ObjectKey(uuid.New(), uuid.New(), "orphan.pdf"))
	}
	var lostRows [][]any
	old := time.Now().Add(-2 * time.Hour).UTC().Truncate(time.Microsecond)
	for range r.lost {
		u, id := s.users[0], uuid.New()
		key := document.ObjectKey(u, id, "lost.pdf")
		keys = append(keys, key)
		lostRows = append(lostRows, []any{id, u, "lost.pdf", "application/pdf", int64(len(data)), key, "pending", old, old})
	}
	if len(lostRows) > 0 {
		if _, err := s.h.Pool.CopyFrom(ctx, pgx.Identifier{"documents"},
			[]string{"id", "user_id", "filename", "content_type", "declared_size", "object_key", "status", "created_at", "updated_at"},
			pgx.CopyFromRows(lostRows)); err != nil {
			return err
		}
	}
	st := run(ctx, 32, len(keys), 0, func(ctx context.Context, _, i int) error {
		_, err := s.mc.PutObject(ctx, s.cfg.MinIOBucket, keys[i], bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{ContentType: "application/pdf"})
		return err
	})
	if st.errs > 0 {
		return fmt.Errorf("put objects: %v", st.firstErr)
	}
	r.setupObject = time.Since(start)
	return nil
}

// sweepLeft counts what the sweep left: pending rows and objects no
// uploaded document owns.
func (s *stack) sweepLeft(ctx context.Context, r *swRun) error {
	if err := s.h.Pool.QueryRow(ctx, `SELECT count(*) FROM documents WHERE status = 'pending'`).Scan(&r.leftRows); err != nil {
		return err
	}
	var uploaded int
	if err := s.h.Pool.QueryRow(ctx, `SELECT count(*) FROM documents WHERE status <> 'pending'`).Scan(&uploaded); err != nil {
		return err
	}
	n := 0
	for o := range s.mc.ListObjects(ctx, s.cfg.MinIOBucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err != nil {
			return o.Err
		}
		n++
	}
	r.leftObjects = n - uploaded
	return nil
}

// sweepViaService asks for a sweep as an admin would and waits for the
// sweeper service's sweeper.run.completed.
func (s *stack) sweepViaService(ctx context.Context) (sweeper.Completed, error) {
	var done sweeper.Completed
	cons, err := s.h.JS.OrderedConsumer(ctx, events.StreamSweeper, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{sweeper.SubjectCompleted},
		DeliverPolicy:  jetstream.DeliverNewPolicy,
	})
	if err != nil {
		return done, err
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.apiURL+"/api/admin/sweep", nil)
	req.Header.Set("Authorization", "Bearer "+s.admin)
	var accepted struct {
		RunID string `json:"run_id"`
	}
	if err := s.do(req, http.StatusAccepted, &accepted); err != nil {
		return done, err
	}
	deadline := time.Now().Add(10 * time.Minute)
	for time.Now().Before(deadline) {
		msg, err := cons.Next(jetstream.FetchMaxWait(30 * time.Second))
		if err != nil {
			if ctx.Err() != nil {
				return done, ctx.Err()
			}
			continue
		}
		if err := json.Unmarshal(msg.Data(), &done); err != nil {
			return done, err
		}
		if done.RunID == accepted.RunID {
			return done, nil
		}
	}
	return done, fmt.Errorf("no sweeper.run.completed for run %s", accepted.RunID)
}
