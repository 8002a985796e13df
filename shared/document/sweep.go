package document

import (
	"cmp"
	"context"
	"slices"
	"strings"
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
	// ReconcileKeys bounds the bucket keys one sweep checks against the
	// table: the slice of the incremental reconciliation.
	ReconcileKeys int
	// ReconcilePeriod is how often a reconciliation pass over the whole
	// bucket starts; it takes as many sweeps as it needs, ReconcileKeys
	// keys each.
	ReconcilePeriod time.Duration
	// LedgerUsers bounds the quota rows one sweep checks against their
	// users' documents: the slice of the incremental ledger check.
	LedgerUsers int
	// LedgerReportOnly makes the ledger check count and log the quota rows
	// off their documents without repairing them (LEDGER_REPAIR=false).
	LedgerReportOnly bool
}

// Defaults of a zero SweepConfig field.
const (
	DefaultSweepBatchSize  = 500
	DefaultSweepWorkers    = 16
	DefaultReconcileKeys   = 10000
	DefaultReconcilePeriod = 24 * time.Hour
)

// SweepResult counts what one sweep did.
type SweepResult struct {
	Confirmed       int `json:"confirmed"`        // stale pending documents whose upload had arrived: confirmed and charged
	Rejected        int `json:"rejected"`         // stale pending documents whose upload broke a rule (over quota, too large)
	Purged          int `json:"purged"`           // stale pending documents never uploaded: rows deleted
	UploadsAborted  int `json:"uploads_aborted"`  // multipart uploads of purged documents: aborted with their parts
	RejectedRemoved int `json:"rejected_removed"` // rejected documents past retention: rows and objects deleted
	RemovalsRetried int `json:"removals_retried"` // objects of deleted documents whose removal had failed: deleted
	OrphansRemoved  int `json:"orphans_removed"`  // objects no document owns, found by the reconciliation: deleted
	LedgerChecked   int `json:"ledger_checked"`   // quota rows the ledger check recomputed from their documents
	LedgerDrifted   int `json:"ledger_drifted"`   // of those, rows off their documents (used or reserved bytes)
	LedgerRepaired  int `json:"ledger_repaired"`  // of those, rows set back to their documents' sums (none with LedgerReportOnly)
	// LedgerDriftUsedBytes and LedgerDriftReservedBytes are how far off
	// the drifted rows were, in absolute bytes.
	LedgerDriftUsedBytes     int64         `json:"ledger_drift_used_bytes"`
	LedgerDriftReservedBytes int64         `json:"ledger_drift_reserved_bytes"`
	KeysChecked              int           `json:"keys_checked"`   // bucket keys the reconciliation checked in this sweep
	PendingListed            int           `json:"pending_listed"` // bucket keys listed to find stale pending documents' objects
	PendingStats             int           `json:"pending_stats"`  // stale pending documents whose object was stat'ed one by one
	Errors                   int           `json:"errors"`         // items left for the next run
	MaxBatchLock             time.Duration `json:"-"`              // longest single deleting transaction
}

// Sweep brings the database and the bucket back together: it recovers
// uploads whose event was lost, purges stale pending documents, removes
// rejected documents past retention, retries the removals of deleted
// documents' objects that failed, and checks the next slice of the bucket
// for orphaned objects, and the next slice of the quota ledger against
// the documents (checkLedger). Its cost follows what it finds and the slice size,
// never the size of the bucket. Work that fails is counted in Errors and
// left for the next run; nothing is deleted before what it depends on is
// gone. Sweeps running at once skip each other's rows and never
// double-count.
func (s *Service) Sweep(ctx context.Context, cfg SweepConfig) (SweepResult, error) {
	cfg.BatchSize = cmp.Or(max(cfg.BatchSize, 0), DefaultSweepBatchSize)
	cfg.Workers = cmp.Or(max(cfg.Workers, 0), DefaultSweepWorkers)
	cfg.ReconcileKeys = cmp.Or(max(cfg.ReconcileKeys, 0), DefaultReconcileKeys)
	cfg.ReconcilePeriod = cmp.Or(max(cfg.ReconcilePeriod, 0), DefaultReconcilePeriod)
	cfg.LedgerUsers = cmp.Or(max(cfg.LedgerUsers, 0), DefaultLedgerUsers)
	var res SweepResult
	now := s.cfg.Now()
	if err := s.sweepPending(ctx, cfg, now.Add(-cfg.PendingTTL), &res); err != nil {
		return res, err
	}
	if err := s.sweepRejected(ctx, cfg, now.Add(-cfg.RejectedRetention), &res); err != nil {
		return res, err
	}
	if err := s.sweepRemovals(ctx, cfg, now, &res); err != nil {
		return res, err
	}
	if err := s.reconcileSlice(ctx, cfg, now, &res); err != nil {
		return res, err
	}
	if err := s.checkLedger(ctx, cfg, &res); err != nil {
		return res, err
	}
	return res, nil
}

// sweepPending handles pending documents last changed before cutoff: an
// upload that arrived is confirmed through the one Confirm use case; a
// document whose object never came is purged. Whether an object came is
// found by listing the bucket along a window's keys (findStaleObjects),
// or, where the bucket is dense between them, by a stat per document.
func (s *Service) sweepPending(ctx context.Context, cfg SweepConfig, cutoff time.Time, res *SweepResult) error {
	var after *StaleCursor
	for {
		// A window of batches: the more stale keys one listing walks
		// along, the fewer keys it lists per document settled.
		var docs []*Document
		more := true
		for n := 0; more && n < max(1, staleWindow/cfg.BatchSize); n++ {
			batch, err := s.store.StaleDocuments(ctx, StatusPending, cutoff, after, cfg.BatchSize)
			if err != nil {
				return err
			}
			if len(batch) > 0 {
				last := batch[len(batch)-1]
				after = &StaleCursor{UpdatedAt: last.UpdatedAt, ID: last.ID}
			}
			docs = append(docs, batch...)
			more = len(batch) == cfg.BatchSize
		}
		if len(docs) == 0 {
			return nil
		}

		checks, missing := s.findStaleObjects(ctx, docs, res)
		byID := make(map[uuid.UUID]*Document, len(docs))
		for _, d := range docs {
			byID[d.ID] = d
		}
		var mu sync.Mutex
		parallel(ctx, cfg.Workers, checks, func(sc staleCheck) {
			// Either way through the one Confirm use case: a lost event
			// is recovered and charged once. An object the listing showed
			// is confirmed as listed; any other is stat'ed, and a
			// never-uploaded document answers UploadMissing.
			var c Confirmation
			var err error
			if sc.listed != nil {
				c, err = s.settleUpload(ctx, sc.doc, *sc.listed)
			} else {
				c, err = s.statAndSettle(ctx, sc.doc)
			}
			mu.Lock()
			defer mu.Unlock()
			switch code := ErrorCode(err); {
			case code == "":
				if c.Changed {
					res.Confirmed++
				}
			case code == UploadMissing:
				missing = append(missing, sc.doc.ID)
			case IsRejection(err):
				res.Rejected++
			case code == NotFound:
				// deleted by its owner meanwhile
			default:
				res.Errors++
				zerolog.Ctx(ctx).Warn().Err(err).Str("document_id", sc.doc.ID.String()).Msg("sweep: stale upload left for the next run")
			}
		})
		for ids := range slices.Chunk(missing, cfg.BatchSize) {
			start := time.Now()
			purged, clamps, err := s.store.PurgeDocuments(ctx, Purge{IDs: ids, Status: StatusPending, Before: cutoff, At: s.cfg.Now(), Rule: Ledger()})
			res.MaxBatchLock = max(res.MaxBatchLock, time.Since(start))
			if err != nil {
				return err
			}
			s.clamped(ctx, "purge", clamps...)
			res.Purged += len(purged)
			if err := s.abortPurged(ctx, byID, purged, res); err != nil {
				return err
			}
		}
		if !more {
			return nil
		}
	}
}

// abortPurged aborts the multipart uploads of the purged documents (docs
// by id) and forgets their removal records; an upload whose abort failed
// keeps its record, and sweepRemovals aborts it by its key.
func (s *Service) abortPurged(ctx context.Context, docs map[uuid.UUID]*Document, purged []uuid.UUID, res *SweepResult) error {
	var aborted []string
	for _, id := range purged {
		d := docs[id]
		if d.UploadID == "" {
			continue
		}
		if err := s.abortUpload(ctx, d); err != nil {
			res.Errors++
			zerolog.Ctx(ctx).Warn().Err(err).Str("document_id", id.String()).Msg("sweep: abort of a purged document's upload failed; retried by its key")
			continue
		}
		aborted = append(aborted, d.ObjectKey)
		res.UploadsAborted++
	}
	if len(aborted) == 0 {
		return nil
	}
	return s.store.ForgetRemovals(ctx, aborted)
}

// staleCheck is a stale pending document to confirm, with its object as
// the bucket's listing showed it (nil when not listed: to be stat'ed).
type staleCheck struct {
	doc    *Document
	listed *ObjectInfo
}

// Listing the bucket for a window of stale pending documents. Measured on
// MinIO (2 cores, one drive, busy): a page of 1,000 keys takes 140-190 ms,
// of 100 keys 16 ms, and a stat 0.35-0.45 ms (16 at once): a listed key
// costs about half a stat, since MinIO reads each listed object's
// metadata. A listing wins only where the window's keys are about as
// dense as the bucket's.
const (
	// staleWindow is the most stale documents whose keys one walk along
	// the bucket settles: 20,000 documents (of a few hundred bytes each)
	// in memory at once.
	staleWindow = 20_000
	// staleListProbe is the keys of a window's first listing page: small,
	// as in a dense bucket it is wasted.
	staleListProbe = 100
	// staleListPage is the keys of the next pages: one page of the S3
	// listing API.
	staleListPage = 1000
)

// findStaleObjects settles, for as many of docs as listing the bucket
// cheaply can, whether their object arrived: it merges docs' keys, in
// order, with listing pages that start just before the first key not yet
// settled. Every key up to the last one a page lists is settled — found,
// to be confirmed with the listed size and ETag, or missing, to be purged —
// and the next page starts after it. A page that settles fewer documents
// than half the keys it lists (a listed key costs about half a stat) ends
// the listing: the bucket is dense between the keys. The documents left
// (all of them if a listing fails) are checked with a stat each, so a
// dense bucket costs one small page per window more than stats alone.
func (s *Service) findStaleObjects(ctx context.Context, docs []*Document, res *SweepResult) (checks []staleCheck, missing []uuid.UUID) {
	sorted := slices.Clone(docs)
	slices.SortFunc(sorted, func(a, b *Document) int { return strings.Compare(a.ObjectKey, b.ObjectKey) })
	i := 0 // sorted[:i] are settled
	for i < len(sorted) {
		limit := staleListPage
		if i == 0 {
			limit = staleListProbe
		}
		objs, err := s.objects.ListAfter(ctx, listStart(sorted[i].ObjectKey), limit)
		if err != nil {
			// The stats will tell, document by document, what is wrong.
			zerolog.Ctx(ctx).Warn().Err(err).Msg("sweep: listing failed, stale uploads are stat'ed")
			break
		}
		res.PendingListed += len(objs)
		// A short page reached the end of the bucket: it settles every key.
		complete := len(objs) < limit
		settled, j := 0, 0
		for ; i < len(sorted); i++ {
			d := sorted[i]
			if !complete && d.ObjectKey > objs[len(objs)-1].Key {
				break
			}
			for j < len(objs) && objs[j].Key < d.ObjectKey {
				j++
			}
			switch {
			case j == len(objs) || objs[j].Key != d.ObjectKey:
				missing = append(missing, d.ID)
			case objs[j].ETag == "":
				// Not the listing Stat's answer would be: ask Stat.
				checks = append(checks, staleCheck{doc: d})
				res.PendingStats++
			default:
				o := objs[j]
				checks = append(checks, staleCheck{doc: d, listed: &ObjectInfo{Size: o.Size, ETag: o.ETag, LastModified: o.LastModified}})
			}
			settled++
		}
		if 2*settled < len(objs) {
			break
		}
	}
	for _, d := range sorted[i:] {
		checks = append(checks, staleCheck{doc: d})
	}
	res.PendingStats += len(sorted) - i
	return checks, missing
}

// listStart returns where a listing that must show key starts: its
// document's prefix (<user>/<document id>, without the slash), which sorts
// just before the key and after every other document's keys before it.
func listStart(key string) string {
	if i := strings.LastIndexByte(key, '/'); i >= 0 {
		return key[:i]
	}
	return ""
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
		removed, failed := removeObjects(ctx, cfg.Workers, docs, func(d *Document) string { return d.ObjectKey }, s.objects.Remove)
		res.Errors += failed
		gone := make([]uuid.UUID, len(removed))
		for i, d := range removed {
			gone[i] = d.ID
		}
		if len(gone) > 0 {
			start := time.Now()
			removed, clamps, err := s.store.PurgeDocuments(ctx, Purge{IDs: gone, Status: StatusRejected, Before: cutoff, At: s.cfg.Now(), Rule: Ledger()})
			res.MaxBatchLock = max(res.MaxBatchLock, time.Since(start))
			if err != nil {
				return err
			}
			s.clamped(ctx, "purge", clamps...)
			res.RejectedRemoved += len(removed)
		}
		if len(docs) < cfg.BatchSize {
			return nil
		}
	}
}

// sweepRemovals removes the objects recorded for removal before cutoff —
// deleted documents whose object could not be removed at the time — and
// any incomplete multipart upload of their keys (purged or discarded
// multipart documents whose abort failed), and forgets each record once
// both are gone. A delete still removing its object itself may be
// overtaken: removing twice is harmless.
func (s *Service) sweepRemovals(ctx context.Context, cfg SweepConfig, cutoff time.Time, res *SweepResult) error {
	for {
		keys, err := s.store.PendingRemovals(ctx, cutoff, cfg.BatchSize)
		if err != nil || len(keys) == 0 {
			return err
		}
		gone, failed := removeObjects(ctx, cfg.Workers, keys, func(k string) string { return k }, s.removeKey)
		res.Errors += failed
		if len(gone) > 0 {
			if err := s.store.ForgetRemovals(ctx, gone); err != nil {
				return err
			}
			res.RemovalsRetried += len(gone)
		}
		if len(gone) < len(keys) || len(keys) < cfg.BatchSize {
			return nil // what failed waits for the next run
		}
	}
}

// reconcileSlice checks the next ReconcileKeys keys of the bucket against
// the table, resuming where the last sweep stopped, and deletes the objects
// no live document owns — no row, or a rejected one, whose bytes must be
// gone (its URL used again while the notification was lost) — that are
// older than PendingTTL. A client gets a document's URL only once its row
// is written, so an object without a row is never an upload in flight.
// Orphans mostly never get here: the notification door removes an object of
// no live document as it is written, and deletes record their removals;
// this pass is the backstop, one full pass over the bucket per
// ReconcilePeriod.
func (s *Service) reconcileSlice(ctx context.Context, cfg SweepConfig, now time.Time, res *SweepResult) error {
	cur, err := s.store.ReconcileCursor(ctx)
	if err != nil {
		return err
	}
	if cur.After == "" {
		if !cur.PassStarted.IsZero() && now.Sub(cur.PassStarted) < cfg.ReconcilePeriod {
			return nil // the last pass is recent: nothing to do until the period is over
		}
		cur.PassStarted = now // a new pass
	}
	objs, err := s.objects.ListAfter(ctx, cur.After, cfg.ReconcileKeys)
	if ErrorCode(err) == Unavailable && ctx.Err() == nil {
		// The object store is away: the slice waits for the next run.
		res.Errors++
		zerolog.Ctx(ctx).Warn().Err(err).Msg("sweep: reconciliation left for the next run")
		return nil
	}
	if err != nil {
		return err
	}
	res.KeysChecked += len(objs)
	if len(objs) > 0 {
		keys := make([]string, len(objs))
		for i, o := range objs {
			keys[i] = o.Key
		}
		known, err := s.store.KnownKeys(ctx, keys)
		if err != nil {
			return err
		}
		cutoff := now.Add(-cfg.PendingTTL)
		var orphans []string
		for _, o := range objs {
			if !known[o.Key] && o.LastModified.Before(cutoff) {
				orphans = append(orphans, o.Key)
			}
		}
		removed, failed := removeObjects(ctx, cfg.Workers, orphans, func(k string) string { return k }, s.objects.Remove)
		res.OrphansRemoved += len(removed)
		res.Errors += failed // found again by the next pass
	}
	if len(objs) < cfg.ReconcileKeys {
		cur.After = "" // the pass is complete
	} else {
		cur.After = objs[len(objs)-1].Key
	}
	return s.store.SaveReconcileCursor(ctx, cur)
}

// removeObjects removes the object of each item (under key(item)) with
// remove, at most workers at once, and returns the items whose object is
// gone and how many removals failed.
func removeObjects[T any](ctx context.Context, workers int, items []T, key func(T) string, remove func(context.Context, string) error) (removed []T, failed int) {
	var mu sync.Mutex
	parallel(ctx, workers, items, func(it T) {
		err := remove(ctx, key(it))
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			failed++
			return
		}
		removed = append(removed, it)
	})
	return removed, failed
}

// removeKey removes the object of key and any incomplete upload of it.
func (s *Service) removeKey(ctx context.Context, key string) error {
	if err := s.objects.Remove(ctx, key); err != nil {
		return err
	}
	return s.objects.AbortUploads(ctx, key)
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
