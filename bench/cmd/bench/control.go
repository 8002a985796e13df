package main

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/minio/minio-go/v7"

	root "github.com/docuvault/docuvault/services/docuvault/stack"
	"github.com/docuvault/docuvault/shared/document"
)

// ctlCase is one control-plane measurement: an operation at a concurrency,
// with every client its own user or all clients one hot user.
type ctlCase struct {
	op      string // "upload-url" or "confirm"
	clients int
	hot     bool
	runs    []runStats
	// confirm only: the documents, docs[w] confirmed by client w.
	docs [][]uuid.UUID
}

func (c *ctlCase) users() string {
	if c.hot {
		return "1 (hot)"
	}
	return strconv.Itoa(c.clients)
}

// token of client w.
func (s *stack) ctlToken(c *ctlCase, w int) string {
	if c.hot {
		return s.hotToken
	}
	return s.tokens[w]
}

func (s *stack) ctlUser(c *ctlCase, w int) uuid.UUID {
	if c.hot {
		return s.hotUser
	}
	return s.users[w]
}

// controlPlane runs workload 3. upload-url runs for a fixed time. Confirm
// runs confirm documents prepared beforehand: rows as upload-url writes
// them and their objects already PUT, with the bucket's notifications off
// meanwhile so that no confirmer gets there first; between repetitions the
// same documents are set back to pending. So each timed confirm is a real
// first confirm: StatObject, then the statement that charges the quota.
func controlPlane(ctx context.Context, s *stack, p plan) ([]*ctlCase, error) {
	var cases []*ctlCase
	for _, op := range []string{"upload-url", "confirm"} {
		for _, c := range p.ctlClients {
			cases = append(cases, &ctlCase{op: op, clients: c})
		}
		for _, c := range p.ctlHotClients {
			cases = append(cases, &ctlCase{op: op, clients: c, hot: true})
		}
	}
	// Prepare the confirm cases' documents.
	for _, c := range cases {
		if c.op != "confirm" {
			continue
		}
		per := max(1, p.ctlConfirms(c.clients)/c.clients)
		if err := s.prepareConfirms(ctx, c, per); err != nil {
			return nil, err
		}
	}
	// The confirms go to an api child that does not wait for the
	// notification door (CONFIRM_WAIT=0): the notifications are off, so
	// nothing would settle them but the endpoint, after the whole wait.
	nowait, err := s.startDocuVault(ctx, root.API, "api-confirm-nowait", noConfirmWait(nil))
	if err != nil {
		return nil, err
	}
	defer nowait.stop()
	// Warm-up.
	if st := run(ctx, 32, 0, p.ctlWarmup, func(ctx context.Context, w, _ int) error {
		_, err := s.uploadURL(ctx, s.tokens[w], 1024)
		return err
	}); st.errs > 0 {
		return nil, fmt.Errorf("warm-up: %v", st.firstErr)
	}
	for rep := range p.ctlReps {
		for _, c := range cases {
			var st runStats
			switch c.op {
			case "upload-url":
				st = run(ctx, c.clients, 0, p.ctlDuration, func(ctx context.Context, w, _ int) error {
					_, err := s.uploadURL(ctx, s.ctlToken(c, w), 1024)
					return err
				})
			case "confirm":
				if rep > 0 {
					if err := s.resetPending(ctx, c); err != nil {
						return nil, err
					}
				}
				st = s.runConfirms(ctx, nowait.url, c)
			}
			c.runs = append(c.runs, st)
			logf("  %-10s clients %3d users %-7s rep %d: %7.0f req/s  p50 %6.2f ms  p99 %7.2f ms  errors %d",
				c.op, c.clients, c.users(), rep+1, st.perSec(), ms(pct(st.lat, .5)), ms(pct(st.lat, .99)), st.errs)
			if st.errs > 0 {
				logf("    first error: %v", st.firstErr)
			}
			if err := s.serviceError(); err != nil {
				return cases, err
			}
		}
	}
	return cases, s.wipeDocuments(ctx)
}

// noConfirmWait is env with CONFIRM_WAIT=0, for an api child whose
// confirms find the notifications off (workload 3, the what-if): the
// endpoint then settles at once, as it does when its wait ends.
func noConfirmWait(env map[string]string) map[string]string {
	out := map[string]string{"CONFIRM_WAIT": "0"}
	for k, v := range env {
		out[k] = v
	}
	return out
}

// runConfirms confirms each client's documents, in order, once, through
// the api at apiURL.
func (s *stack) runConfirms(ctx context.Context, apiURL string, c *ctlCase) runStats {
	return run(ctx, c.clients, 0, time.Hour, func(ctx context.Context, w, i int) error {
		if i >= len(c.docs[w]) {
			return errDone
		}
		return s.confirm(ctx, apiURL, s.ctlToken(c, w), c.docs[w][i])
	})
}

// prepareConfirms writes per pending documents for each client of c, as
// RequestUpload writes them, and PUTs their 1 KiB objects, with the
// bucket's notifications off.
func (s *stack) prepareConfirms(ctx context.Context, c *ctlCase, per int) error {
	if err := s.notifications(ctx, false); err != nil {
		return err
	}
	defer func() { _ = s.notifications(context.Background(), true) }()
	const size = 1024
	now := time.Now().UTC().Truncate(time.Microsecond)
	var rows [][]any
	type obj struct{ key string }
	var objs []obj
	c.docs = make([][]uuid.UUID, c.clients)
	users := map[uuid.UUID]bool{}
	for w := range c.clients {
		u := s.ctlUser(c, w)
		users[u] = true
		for range per {
			id := uuid.New()
			key := document.ObjectKey(u, id, "bench.bin")
			rows = append(rows, []any{id, u, "bench.bin", benchContentType, int64(size), key, "pending", now, now})
			objs = append(objs, obj{key})
			c.docs[w] = append(c.docs[w], id)
		}
	}
	for u := range users {
		if _, err := s.h.Pool.Exec(ctx, `INSERT INTO quotas (user_id, limit_bytes) VALUES ($1, $2) ON CONFLICT (user_id) DO NOTHING`, u, s.cfg.QuotaDefaultBytes); err != nil {
			return err
		}
	}
	if _, err := s.h.Pool.CopyFrom(ctx, pgx.Identifier{"documents"},
		[]string{"id", "user_id", "filename", "content_type", "declared_size", "object_key", "status", "created_at", "updated_at"},
		pgx.CopyFromRows(rows)); err != nil {
		return fmt.Errorf("insert documents: %w", err)
	}
	data := payload(size)
	var mu sync.Mutex
	var firstErr error
	st := run(ctx, 32, len(objs), 0, func(ctx context.Context, _, i int) error {
		_, err := s.mc.PutObject(ctx, s.cfg.MinIOBucket, objs[i].key, bytes.NewReader(data), size, minio.PutObjectOptions{ContentType: benchContentType})
		if err != nil {
			mu.Lock()
			firstErr = err
			mu.Unlock()
		}
		return err
	})
	if st.errs > 0 {
		return fmt.Errorf("put objects: %d errors, first: %v", st.errs, firstErr)
	}
	return nil
}

// resetPending sets c's documents back to pending, as they were before
// the last confirm run.
func (s *stack) resetPending(ctx context.Context, c *ctlCase) error {
	var ids []uuid.UUID
	for _, d := range c.docs {
		ids = append(ids, d...)
	}
	_, err := s.h.Pool.Exec(ctx, `UPDATE documents SET status = 'pending', size_bytes = 0, etag = '', confirmed_at = NULL
		WHERE id = ANY($1)`, ids)
	if err != nil {
		return err
	}
	_, err = s.h.Pool.Exec(ctx, `VACUUM ANALYZE documents`)
	return err
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
