package document

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"
)

// SweepConfig says what a sweep removes.
type SweepConfig struct {
	// PendingTTL is how long a pending document may wait for its upload;
	// it must exceed the upload URL's lifetime. Objects without a document
	// are removed once they are older than this too.
	PendingTTL time.Duration
	// RejectedRetention is how long rejected documents stay visible.
	RejectedRetention time.Duration
	// BatchSize bounds the rows one query reads or one transaction deletes.
	BatchSize int
	// Workers bounds the object-store calls in flight.
	Workers int
}

// SweepResult counts what one sweep did.
type SweepResult struct {
	Confirmed       int           `json:"confirmed"`        // stale pending documents whose upload had arrived: confirmed and charged
	Rejected        int           `json:"rejected"`         // stale pending documents whose upload broke a rule (over quota, too large)
	Purged          int           `json:"purged"`           // stale pending documents never uploaded: rows deleted
	RejectedRemoved int           `json:"rejected_removed"` // rejected documents past retention: rows and objects deleted
	OrphansRemoved  int           `json:"orphans_removed"`  // objects no document owns: deleted
	Errors          int           `json:"errors"`           // items left for the next run
	MaxBatchLock    time.Duration `json:"-"`                // longest single deleting transaction
}

// Sweep brings the database and the bucket back together: it recovers
// uploads whose event was lost, purges stale pending documents, removes
// rejected documents past retention and deletes orphaned objects. Work
// that fails is counted in Errors and left for the next run; nothing is
// deleted before what it depends on is gone. Sweeps running at once skip
// each other's rows and never double-count.
func (s *Service) Sweep(ctx context.Context, cfg SweepConfig) (SweepResult, error) {
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = 500
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 16
	}
	var res SweepResult
	now := s.cfg.Now()
	if err := s.sweepPending(ctx, cfg, now.Add(-cfg.PendingTTL), &res); err != nil {
		return res, err
	}
	if err := s.sweepRejected(ctx, cfg, now.Add(-cfg.RejectedRetention), &res); err != nil {
		return res, err
	}
	if err := s.sweepOrphans(ctx, cfg, now.Add(-cfg.PendingTTL), &res); err != nil {
		return res, err
	}
	return res, nil
}

// sweepPending handles pending documents last changed before cutoff: an
// upload that arrived is confirmed through the one Confirm use case; a
// document whose object never came is purged.
func (s *Service) sweepPending(ctx context.Context, cfg SweepConfig, cutoff time.Time, res *SweepResult) error {
	var after *StaleCursor
	for {
		docs, err := s.store.StaleDocuments(ctx, StatusPending, cutoff, after, cfg.BatchSize)
		if err != nil {
			return err
		}
		if len(docs) == 0 {
			return nil
		}
		last := docs[len(docs)-1]
		after = &StaleCursor{UpdatedAt: last.UpdatedAt, ID: last.ID}

		var mu sync.Mutex
		var missing []uuid.UUID
		parallel(ctx, cfg.Workers, docs, func(d *Document) {
			// Confirm stats the object: a lost event is recovered and
			// charged once, a never-uploaded document answers UploadMissing.
			c, err := s.confirm(ctx, d)
			mu.Lock()
			defer mu.Unlock()
			switch code := ErrorCode(err); {
			case code == "":
				if c.Changed {
					res.Confirmed++
				}
			case code == UploadMissing:
				missing = append(missing, d.ID)
			case IsRejection(err):
				res.Rejected++
			case code == NotFound:
				// deleted by its owner meanwhile
			default:
				res.Errors++
				zerolog.Ctx(ctx).Warn().Err(err).Str("document_id", d.ID.String()).Msg("sweep: stale upload left for the next run")
			}
		})
		if len(missing) > 0 {
			start := time.Now()
			purged, err := s.store.PurgeDocuments(ctx, missing, StatusPending, cutoff)
			res.MaxBatchLock = max(res.MaxBatchLock, time.Since(start))
			if err != nil {
				return err
			}
			res.Purged += len(purged)
		}
		if len(docs) < cfg.BatchSize {
			return nil
		}
	}
}

// sweepRejected deletes rejected documents last changed before cutoff:
// the object first (again: confirm removed it), then the row, so a failed
// object delete keeps the row for the next run.
func (s *Service) sweepRejected(ctx context.Context, cfg SweepConfig, cutoff time.Time, res *SweepResult) error {
	var after *StaleCursor
	for {
		docs, err := s.store.StaleDocuments(ctx, StatusRejected, cutoff, after, cfg.BatchSize)
		if err != nil || len(docs) == 0 {
			return err
		}
		last := docs[len(docs)-1]
		after = &StaleCursor{UpdatedAt: last.UpdatedAt, ID: last.ID}
		var mu sync.Mutex
		var gone []uuid.UUID
		parallel(ctx, cfg.Workers, docs, func(d *Document) {
			err := s.objects.Remove(ctx, d.ObjectKey)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.Errors++
				return
			}
			gone = append(gone, d.ID)
		})
		if len(gone) > 0 {
			start := time.Now()
			removed, err := s.store.PurgeDocuments(ctx, gone, StatusRejected, cutoff)
			res.MaxBatchLock = max(res.MaxBatchLock, time.Since(start))
			if err != nil {
				return err
			}
			res.RejectedRemoved += len(removed)
		}
		if len(docs) < cfg.BatchSize {
			return nil
		}
	}
}

// sweepOrphans deletes objects older than cutoff whose key no document
// has. A client gets a document's URL only once its row is written, so an
// object without a row is never an upload in flight.
func (s *Service) sweepOrphans(ctx context.Context, cfg SweepConfig, cutoff time.Time, res *SweepResult) error {
	var keys []string
	flush := func() error {
		if len(keys) == 0 {
			return nil
		}
		known, err := s.store.KnownKeys(ctx, keys)
		if err != nil {
			return err
		}
		var orphans []string
		for _, k := range keys {
			if !known[k] {
				orphans = append(orphans, k)
			}
		}
		keys = keys[:0]
		var mu sync.Mutex
		parallel(ctx, cfg.Workers, orphans, func(key string) {
			err := s.objects.Remove(ctx, key)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.Errors++
				return
			}
			res.OrphansRemoved++
		})
		return nil
	}
	err := s.objects.List(ctx, cutoff, func(batch []string) error {
		keys = append(keys, batch...)
		if len(keys) >= cfg.BatchSize {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if ErrorCode(err) == Unavailable && ctx.Err() == nil {
		// The object store is away: the orphans wait for the next run.
		res.Errors++
		zerolog.Ctx(ctx).Warn().Err(err).Msg("sweep: orphan scan left for the next run")
		return nil
	}
	return err
}

// parallel calls fn for each item with at most workers at once.
func parallel[T any](ctx context.Context, workers int, items []T, fn func(T)) {
	sem := make(chan struct{}, workers)
	var wg sync.WaitGroup
	for _, it := range items {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			fn(it)
		}()
	}
	wg.Wait()
}
