package main

import (
	"bytes"
	"context"
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
	door                   string // "Sweep() direct" or "admin sweep → sweeper service"
	rows, orphans, lost    int    // what was set up
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
	return out, s.wipeDocuments(ctx)
}

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
	if _, err := s.h.Pool.Exec(ctx, `INSERT INTO documents (id, user_id, filename, content_type, declared_size, object_key, status, created_at, updated_at)
		SELECT d.id, d.u, 'stale.pdf', 'application/pdf', 1024, d.u::text || '/' || d.id::text || '/' || gen_random_uuid()::text || '.pdf',
		       'pending', now() - interval '2 hours', now() - interval '2 hours'
		FROM (SELECT gen_random_uuid() AS id,
		             ('00000000-0000-4000-8000-' || lpad(to_hex(i % 1000), 12, '0'))::uuid AS u
		      FROM generate_series(1, $1) AS i) d`, r.rows); err != nil {
		return fmt.Errorf("insert stale rows: %w", err)
	}
	if _, err := s.h.Pool.Exec(ctx, `ANALYZE documents`); err != nil {
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
