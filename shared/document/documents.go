package document

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"
)

// ownDocument returns document id if user owns it. Another user's document
// is NotFound, so its existence is not leaked.
func (s *Service) ownDocument(ctx context.Context, user, id uuid.UUID) (*Document, error) {
	d, err := s.store.Document(ctx, id)
	if err != nil {
		return nil, err
	}
	if d.UserID != user {
		return nil, Errorf(NotFound, "document not found")
	}
	return d, nil
}

// lockOwnDocument locks document id in tx if user owns it. Another user's
// document is NotFound, as in ownDocument.
func lockOwnDocument(ctx context.Context, tx Tx, user, id uuid.UUID) (*Document, error) {
	d, err := tx.LockDocument(ctx, id)
	if err != nil {
		return nil, err
	}
	if d.UserID != user {
		return nil, Errorf(NotFound, "document not found")
	}
	return d, nil
}

// Get returns user's document id and, once its bytes are stored (and,
// while scanning is required, found clean), a presigned download URL.
func (s *Service) Get(ctx context.Context, user, id uuid.UUID) (*Document, string, error) {
	d, err := s.ownDocument(ctx, user, id)
	if err != nil {
		return nil, "", err
	}
	if !d.Downloadable(s.cfg.ScanRequired) {
		return d, "", nil
	}
	url, err := s.objects.PresignGet(ctx, d.ObjectKey, d.Filename, s.cfg.DownloadURLTTL)
	if err != nil {
		return nil, "", err
	}
	return d, url, nil
}

// Delete removes user's document id: the row with what it holds of the
// quota (remove), and its multipart upload, in one transaction; then its
// object.
func (s *Service) Delete(ctx context.Context, user, id uuid.UUID) error {
	// Counted apart from the rows, before any is read: a delete costs a
	// transaction, an object removal (and an upload's abort) and an event,
	// whatever it finds.
	if err := s.takeRate(ctx, user, "delete", "delete", s.cfg.DeletesPerMinute); err != nil {
		return err
	}
	var deleted *Document
	err := s.inTx(ctx, "delete", func(tx Tx) error {
		d, err := lockOwnDocument(ctx, tx, user, id)
		if err != nil {
			return err
		}
		// The parts go before the row that names them: should the
		// transaction fail after, the document stays, and a delete again
		// (or the sweeper) finds an upload already gone.
		if err := s.abortUpload(ctx, d); err != nil {
			return err
		}
		// The removal of its key is recorded with the delete: should the
		// removal below fail, the sweeper finds the object there, not by
		// listing the bucket.
		if err := remove(ctx, tx, d, s.cfg.Now()); err != nil {
			return err
		}
		deleted = d
		return tx.AppendEvent(ctx, NewEvent(EventDeleted, d, s.cfg.Now()))
	})
	if err != nil {
		return err
	}
	// After commit: the row and the quota are already right.
	s.removeObject(ctx, deleted)
	return nil
}

// removeObject removes d's object, whose removal is recorded
// (Tx.RecordRemoval) in a committed transaction, then forgets the record;
// should either fail, the sweeper retries from the record.
func (s *Service) removeObject(ctx context.Context, d *Document) {
	log := zerolog.Ctx(ctx).With().Str("document_id", d.ID.String()).Logger()
	if err := s.objects.Remove(ctx, d.ObjectKey); err != nil {
		log.Warn().Err(err).Msg("remove object failed; the sweeper retries it")
		return
	}
	if err := s.store.ForgetRemovals(ctx, []string{d.ObjectKey}); err != nil {
		log.Warn().Err(err).Msg("forget the removal record failed; the sweeper clears it")
	}
}

// remove deletes document d, locked in tx, with what it holds of its
// owner's quota (its charge or its reservation: the Ledger rule), and
// records as of at that its object must go (Tx.RecordRemoval). The one way
// a document is removed; Store.PurgeDocuments is its batched twin.
func remove(ctx context.Context, tx Tx, d *Document, at time.Time) error {
	if used, reserved := Ledger().Holds(d); used > 0 || reserved > 0 {
		if err := tx.Release(ctx, d.UserID, used, reserved); err != nil {
			return err
		}
	}
	if err := tx.DeleteDocument(ctx, d.ID); err != nil {
		return err
	}
	return tx.RecordRemoval(ctx, d.ObjectKey, at)
}

// Quota returns user's quota.
func (s *Service) Quota(ctx context.Context, user uuid.UUID) (Quota, error) {
	return s.store.Quota(ctx, user)
}

// SetQuotaLimit sets user's quota limit.
func (s *Service) SetQuotaLimit(ctx context.Context, user uuid.UUID, limit int64) (Quota, error) {
	if limit < 0 {
		return Quota{}, Errorf(Invalid, "limit_bytes must not be negative")
	}
	return s.store.SetQuotaLimit(ctx, user, limit)
}
