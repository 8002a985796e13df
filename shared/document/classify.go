package document

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// ReasonTypeMismatch is the classification failure of a document whose
// bytes are not of its declared content type.
const ReasonTypeMismatch = "type_mismatch"

// Classification is what a classifier concluded about a document.
type Classification struct {
	Category     string  // e.g. invoice; "" when Failure is set
	DetectedType string  // MIME type found in the bytes
	Confidence   float64 // 0..1
	Failure      string  // "" on success, else a reason code such as type_mismatch
}

// ContentClassifier tells what a document is from its first bytes and its
// declared content type. It must return once ctx ends, with a Failure if it
// had not finished.
type ContentClassifier interface {
	Classify(ctx context.Context, data []byte, contentType string) Classification
}

// What Classify did with a document.
const (
	ClassifyDone    = "classified" // it got a category
	ClassifyFailed  = "failed"     // its classification failed for good (type mismatch, unreadable, too complex)
	ClassifySkipped = "skipped"    // deleted, or classified already: nothing to do
)

// Classify classifies document id if it still waits for it (Waiting: stored
// and, while scanning, found clean): it reads the first ClassifyMaxBytes of the object, runs the
// Config's Classifier on them (for at most ClassifyTimeout) and
// records the result and its event under the row lock, unless the document
// changed meanwhile. It returns what it did (ClassifyDone, …) and the
// classification; an error is passing (a store away, ctx ended) and the
// document is worth another try.
func (s *Service) Classify(ctx context.Context, id uuid.UUID) (string, Classification, error) {
	if s.cfg.Classifier == nil {
		return "", Classification{}, Errorf(Internal, "no classifier configured")
	}
	d, err := s.store.Document(ctx, id)
	switch {
	case ErrorCode(err) == NotFound:
		return ClassifySkipped, Classification{}, nil // deleted before its turn
	case err != nil:
		return "", Classification{}, err
	case d.Waiting() != StageClassify:
		// Classified already (a redelivery or an old event), or not
		// found clean yet: its scan's event brings it back.
		return ClassifySkipped, Classification{}, nil
	}
	data, err := s.objects.ReadPrefix(ctx, d.ObjectKey, s.cfg.ClassifyMaxBytes)
	if ErrorCode(err) == UploadMissing {
		return ClassifySkipped, Classification{}, nil // deleted while we looked
	}
	if err != nil {
		return "", Classification{}, err
	}
	cctx, cancel := ctx, context.CancelFunc(func() {})
	if s.cfg.ClassifyTimeout > 0 {
		cctx, cancel = context.WithTimeout(ctx, s.cfg.ClassifyTimeout)
	}
	result := s.cfg.Classifier.Classify(cctx, data, d.ContentType)
	cancel()
	if err := ctx.Err(); err != nil {
		// The caller itself is out of time (the reads were slow) or
		// stopping: a failure may be its doing, and nothing can be
		// recorded now. The document is worth another try.
		return "", Classification{}, fmt.Errorf("classification cut short: %w", err)
	}
	applied, err := s.applyClassification(ctx, id, result)
	switch {
	case err != nil:
		return "", Classification{}, err
	case !applied:
		return ClassifySkipped, result, nil // deleted or reclassified while we read
	case result.Failure != "":
		return ClassifyFailed, result, nil
	}
	return ClassifyDone, result, nil
}

// applyClassification records c on document id, if it is still waiting for
// classification (status uploaded): the document becomes classified or
// classification_failed and the matching event is written in the same
// transaction. A document classified already, or gone, is left as it is;
// applied reports whether this call changed it.
func (s *Service) applyClassification(ctx context.Context, id uuid.UUID, c Classification) (applied bool, err error) {
	err = s.store.InTx(ctx, func(tx Tx) error {
		d, err := tx.LockDocument(ctx, id)
		if ErrorCode(err) == NotFound {
			return nil
		}
		if err != nil {
			return err
		}
		if d.Waiting() != StageClassify {
			return nil
		}
		d.DetectedType = c.DetectedType
		d.Confidence = c.Confidence
		d.UpdatedAt = s.cfg.Now().UTC()
		event := EventClassified
		if c.Failure != "" {
			d.Status = StatusClassificationFailed
			d.Classification = ""
			d.ClassificationReason = c.Failure
			event = EventClassificationFailed
		} else {
			d.Status = StatusClassified
			d.Classification = c.Category
			d.ClassificationReason = ""
		}
		applied = true
		return tx.Save(ctx, d, NewEvent(event, d, d.UpdatedAt))
	})
	return applied, err
}

// Reclassify sends user's document id through classification again: its
// status goes back to uploaded and document.uploaded is published anew. Only
// a document whose bytes are stored can be classified; one waiting for the
// classifier already (uploaded) is not queued again. A user asking more
// than ReclassifyPerMinute times a minute is refused (RateLimitedError).
func (s *Service) Reclassify(ctx context.Context, user, id uuid.UUID) (*Document, error) {
	if err := s.takeRate(ctx, user, "reclassify", "classification", s.cfg.ReclassifyPerMinute); err != nil {
		return nil, err
	}
	var out *Document
	err := s.store.InTx(ctx, func(tx Tx) error {
		d, err := lockOwnDocument(ctx, tx, user, id)
		if err != nil {
			return err
		}
		out = d
		switch {
		case d.Status == StatusUploaded:
			return nil // queued already: its document.uploaded is on its way to the classifier
		case !d.Status.Charged():
			return Errorf(Conflict, "document is %s: only an uploaded document can be classified", d.Status)
		}
		d.Status = StatusUploaded
		d.Classification, d.ClassificationReason, d.DetectedType, d.Confidence = "", "", "", 0
		if d.ScanStatus == "" {
			// Stored while scanning was off: scanned first, if it is on now.
			d.ScanStatus = s.scanOnStore()
		}
		d.UpdatedAt = s.cfg.Now().UTC()
		return tx.Save(ctx, d, NewEvent(EventUploaded, d, d.UpdatedAt))
	})
	return out, err
}

// DefaultClassifyRecoveryAfter is the wait before the classifier's recovery
// takes up a document still uploaded, when Config sets none: long enough
// that a document.uploaded event in the log, read within seconds, is
// normally handled first.
const DefaultClassifyRecoveryAfter = time.Minute

// ClaimUnclassified claims up to limit documents that have waited for the
// classifier (Stage) for longer than ClassifyRecoveryAfter, for the
// classifier's recovery to classify: each user's oldest first, taking
// turns between users, at most perUser of one user. The claim keeps other
// replicas' recovery off them for ClassifyRecoveryAfter; one not
// classified by then (its classifier stopped) is claimed again. The event
// path may still handle a claimed document: Classify is idempotent.
func (s *Service) ClaimUnclassified(ctx context.Context, perUser, limit int) ([]Waiting, error) {
	return s.claimWaiting(ctx, StageClassify, perUser, limit)
}

func (s *Service) classifyRecoveryAfter() time.Duration {
	if s.cfg.ClassifyRecoveryAfter > 0 {
		return s.cfg.ClassifyRecoveryAfter
	}
	return DefaultClassifyRecoveryAfter
}
