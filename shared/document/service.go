package document

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Config holds the rules the use cases enforce.
type Config struct {
	MaxUploadBytes int64 // largest accepted document
	// MultipartThreshold is the declared size above which an upload goes
	// in parts; 0 (or more than a PUT may store) means MaxSinglePut.
	MultipartThreshold int64
	// MultipartPartSize is the smallest part size (at least MinPartSize).
	MultipartPartSize int64
	// UploadsPerMinute bounds the upload URLs (multipart starts included)
	// one user may ask for in a minute's window; every request counts,
	// refused ones too, and a delete gives none back. 0 means no bound.
	UploadsPerMinute int
	// MaxPendingUploads bounds a user's documents waiting for their bytes;
	// 0 means no bound.
	MaxPendingUploads int
	// DeletesPerMinute bounds the deletes one user may ask for in a
	// minute's window; 0 means no bound.
	DeletesPerMinute int
	// StorageThrottle paces each user's requests that cost the object
	// store a call: a confirm of a pending upload (a stat), signing and
	// listing parts, completing. nil means no bound.
	StorageThrottle Throttle
	// ReclassifyPerMinute bounds the classification requests one user may
	// make in any minute; 0 means no bound.
	ReclassifyPerMinute int
	// RequireDeclaredSize refuses (Invalid) an upload request without a
	// size: every URL then carries a signed Content-Length and every
	// pending document a reservation.
	RequireDeclaredSize bool
	// RequireChecksum refuses (Invalid) a request for a single PUT without
	// a checksum: every document so uploaded is then proven by MinIO
	// (uploads in parts take no checksum yet).
	RequireChecksum bool
	UploadURLTTL    time.Duration // lifetime of a presigned PUT URL
	DownloadURLTTL  time.Duration // lifetime of a presigned GET URL
	// Classifier tells what a document is, for Classify; nil where nothing
	// is classified.
	Classifier ContentClassifier
	// ClassifyMaxBytes is how much of a document Classify reads: its first
	// bytes.
	ClassifyMaxBytes int64
	// ClassifyTimeout bounds the Classifier's parsing of them; a document
	// not done by then is failed (as too complex), not retried. 0 means no
	// bound but the caller's.
	ClassifyTimeout time.Duration
	// ClassifyRecoveryAfter is how long a document may wait for a stage
	// (the scan, the classification) before that stage's recovery takes
	// it up (its event dropped by the log, deferred by its owner's budget,
	// or lost with a replica), and how long a recovery claim keeps other
	// replicas off it; 0 means DefaultClassifyRecoveryAfter.
	ClassifyRecoveryAfter time.Duration
	// ScanRequired: every document stored is scanned for malware (its
	// scan pending until the scanner's verdict), downloadable only once
	// found clean, and classified only then.
	ScanRequired bool
	// Scanner scans documents' bytes, for Scan; nil where nothing is
	// scanned.
	Scanner MalwareScanner
	// ScanMaxBytes is the largest document Scan streams to the Scanner
	// (at most what the scanner takes); a larger one's scan fails
	// (ScanTooLarge). 0 means no bound but the scanner's.
	ScanMaxBytes int64
	// ScanTimeout bounds one document's scan, reading and verdict; 0
	// means no bound but the caller's.
	ScanTimeout time.Duration
	// Settlements wakes a confirm waiting for the other door (ConfirmWait);
	// nil means the user's confirm settles a pending document itself at
	// once.
	Settlements Awaiter
	// ConfirmWait bounds how long a confirm of a pending document (the
	// user's door) waits for the notification door to settle it, so that
	// one writer settles each upload; once it is over, the confirm stats
	// the object and settles it itself. 0 waits not at all.
	ConfirmWait time.Duration
	// OnClamp counts the bytes a quota write absorbed by not going below
	// zero (used, reserved): drift, logged too. nil counts nothing.
	OnClamp func(used, reserved int64)
	Now     func() time.Time
}

// Service runs DocuVault's use cases over a Store and an object store.
type Service struct {
	store   Store
	objects Objects
	cfg     Config
}

// NewService returns a Service. A zero Now means time.Now.
func NewService(store Store, objects Objects, cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{store: store, objects: objects, cfg: cfg}
}

// takeRate counts a request of action by user in its minute's window in
// the store (shared by every replica), and refuses it (RateLimitedError,
// naming what) past limit a minute; limit 0 means no bound.
func (s *Service) takeRate(ctx context.Context, user uuid.UUID, action, what string, limit int) error {
	if limit <= 0 {
		return nil
	}
	now := s.cfg.Now().UTC()
	w, ok, err := s.store.TakeRate(ctx, user, action, now, time.Minute, limit)
	if err != nil {
		return err
	}
	if !ok {
		return &RateLimitedError{
			Message:    fmt.Sprintf("too many %s requests: at most %d a minute", what, limit),
			RetryAfter: max(time.Second, w.Start.Add(time.Minute).Sub(now)),
		}
	}
	return nil
}
