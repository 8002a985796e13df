package document

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"
)

// MalwareScanner scans a stream of bytes for malware (clamd, in
// production). It must return once ctx ends. An error is no verdict: the
// bytes are not scanned, never clean.
type MalwareScanner interface {
	Scan(ctx context.Context, r io.Reader) (ScanVerdict, error)
}

// ScanVerdict is what a MalwareScanner found in a stream.
type ScanVerdict struct {
	Infected  bool
	Signature string // what it found, when Infected
	// Failure says why the stream could not be scanned whole ("" when it
	// was): ScanTooLarge, ScanLimitsExceeded. Neither infected nor clean.
	Failure string
}

// What Scan did with a document.
const (
	ScanDone     = "scanned"  // it is clean: it goes on to the classifier
	ScanRejected = "infected" // it is infected: rejected, uncharged, its object removed
	ScanNotDone  = "failed"   // it could not be scanned whole (too large, limits): never downloadable
	ScanSkipped  = "skipped"  // deleted, or scanned already: nothing to do
)

// Scan scans document id if its scan is pending: it streams the object,
// as confirmed (its etag), to the Config's Scanner and records the verdict
// with its event under the row lock, unless the document changed
// meanwhile. Clean, the document goes on to the classifier
// (EventScanned); infected, it is rejected (ReasonInfected, the signature
// in ScanDetail), its charge released and the removal of its object
// recorded in the same transaction (EventRejected), and the object removed
// after commit; larger than ScanMaxBytes, or not scanned whole by the
// scanner (v.Failure), its scan failed (ScanDetail says why) and it is
// never downloadable while scanning is required. An error is
// passing (clamd or a store away, ctx ended): the document stays pending,
// worth another try, never clean.
func (s *Service) Scan(ctx context.Context, id uuid.UUID) (string, ScanVerdict, error) {
	if s.cfg.Scanner == nil {
		return "", ScanVerdict{}, Errorf(Internal, "no scanner configured")
	}
	d, err := s.store.Document(ctx, id)
	switch {
	case ErrorCode(err) == NotFound:
		return ScanSkipped, ScanVerdict{}, nil // deleted before its turn
	case err != nil:
		return "", ScanVerdict{}, err
	case d.Waiting() != StageScan:
		return ScanSkipped, ScanVerdict{}, nil // scanned already: a redelivery or an old event
	}
	v, err := s.scanObject(ctx, d)
	if err != nil {
		if ErrorCode(err) == UploadMissing {
			if _, gone := s.store.Document(ctx, id); ErrorCode(gone) == NotFound {
				return ScanSkipped, ScanVerdict{}, nil // deleted while we read
			}
		}
		return "", ScanVerdict{}, err
	}
	scanned, applied, err := s.applyScan(ctx, d, v)
	switch {
	case err != nil:
		return "", ScanVerdict{}, err
	case !applied:
		return ScanSkipped, v, nil // deleted or changed while we read
	case v.Infected:
		// The rejection is committed, with the removal recorded: should
		// this removal fail, the sweeper retries it.
		s.removeObject(ctx, scanned)
		return ScanRejected, v, nil
	case v.Failure != "":
		return ScanNotDone, v, nil
	}
	return ScanDone, v, nil
}

// scanObject streams d's object to the scanner, within ScanTimeout; a
// document larger than ScanMaxBytes is not read.
func (s *Service) scanObject(ctx context.Context, d *Document) (ScanVerdict, error) {
	if s.cfg.ScanMaxBytes > 0 && d.SizeBytes > s.cfg.ScanMaxBytes {
		return ScanVerdict{Failure: ScanTooLarge}, nil
	}
	if s.cfg.ScanTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.ScanTimeout)
		defer cancel()
	}
	r, err := s.objects.Open(ctx, d.ObjectKey, d.ETag)
	if err != nil {
		return ScanVerdict{}, err
	}
	defer r.Close()
	v, err := s.cfg.Scanner.Scan(ctx, r)
	if err != nil {
		return ScanVerdict{}, fmt.Errorf("scan %s: %w", d.ID, err)
	}
	return v, nil
}

// applyScan records verdict v of d's bytes (as d was read: its etag), if
// its scan is still pending; applied reports whether this call changed
// it, and scanned is the document as recorded.
func (s *Service) applyScan(ctx context.Context, read *Document, v ScanVerdict) (scanned *Document, applied bool, err error) {
	err = s.store.InTx(ctx, func(tx Tx) error {
		d, err := tx.LockDocument(ctx, read.ID)
		if ErrorCode(err) == NotFound {
			return nil
		}
		if err != nil {
			return err
		}
		if d.Waiting() != StageScan || d.ETag != read.ETag {
			return nil
		}
		now := s.cfg.Now().UTC()
		d.UpdatedAt = now
		event := EventScanned
		switch {
		case v.Infected:
			// What it holds goes with it, as for any rejection.
			if used, reserved := Ledger().Holds(d); used > 0 || reserved > 0 {
				if err := tx.Release(ctx, d.UserID, used, reserved); err != nil {
					return err
				}
			}
			if err := tx.RecordRemoval(ctx, d.ObjectKey, now); err != nil {
				return err
			}
			d.reject(ReasonInfected)
			d.ScanStatus, d.ScanDetail = ScanInfected, v.Signature
			event = EventRejected
		case v.Failure != "":
			d.ScanStatus, d.ScanDetail = ScanFailed, v.Failure
		default:
			d.ScanStatus, d.ScanDetail = ScanClean, ""
		}
		scanned, applied = d, true
		return tx.Save(ctx, d, NewEvent(event, d, now))
	})
	return scanned, applied, err
}

// ReleaseScan releases document id, whose scan failed (not scanned whole),
// as an administrator may: it becomes downloadable though never scanned
// (ScanReleased, its ScanDetail kept: why it was not scanned) and goes on
// to the classifier (EventScanned). Any other document is Conflict.
func (s *Service) ReleaseScan(ctx context.Context, id uuid.UUID) (*Document, error) {
	var out *Document
	err := s.store.InTx(ctx, func(tx Tx) error {
		d, err := tx.LockDocument(ctx, id)
		if err != nil {
			return err
		}
		if d.Status != StatusUploaded || d.ScanStatus != ScanFailed {
			return Errorf(Conflict, "only a stored document whose scan failed can be released; this one is %s, scan %q", d.Status, d.ScanStatus)
		}
		d.ScanStatus, d.UpdatedAt = ScanReleased, s.cfg.Now().UTC()
		out = d
		return tx.Save(ctx, d, NewEvent(EventScanned, d, d.UpdatedAt))
	})
	return out, err
}

// scanOnStore is the scan state a document stored now starts in.
func (s *Service) scanOnStore() ScanState {
	if s.cfg.ScanRequired {
		return ScanPending
	}
	return ""
}

// ClaimUnscanned claims up to limit documents whose scan has been pending
// for longer than the recovery delay (ClassifyRecoveryAfter), for the
// scanner's recovery, as ClaimUnclassified does for the classifier's.
func (s *Service) ClaimUnscanned(ctx context.Context, perUser, limit int) ([]Waiting, error) {
	return s.claimWaiting(ctx, StageScan, perUser, limit)
}

// claimWaiting claims up to limit documents waiting for stage (at most
// perUser of one user) for longer than the recovery delay.
func (s *Service) claimWaiting(ctx context.Context, stage Stage, perUser, limit int) ([]Waiting, error) {
	if perUser <= 0 || limit <= 0 {
		return nil, nil
	}
	wait := s.classifyRecoveryAfter()
	now := s.cfg.Now().UTC()
	return s.store.ClaimWaiting(ctx, ClaimQuery{
		Stage:       stage,
		WaitedSince: now.Add(-wait),
		Now:         now,
		Until:       now.Add(wait),
		PerUser:     perUser,
		Limit:       limit,
	})
}

// Postpone keeps the recoveries off document id for d, if it still waits
// for a stage: a scanner or classifier that gave up on it for now (its
// store or clamd failing again and again) lets it rest, then the recovery
// tries it again.
func (s *Service) Postpone(ctx context.Context, id uuid.UUID, d time.Duration) error {
	return s.store.Postpone(ctx, id, s.cfg.Now().UTC().Add(d))
}
