package document

import (
	"context"
	"fmt"
	"mime"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/rs/zerolog"
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
	UploadURLTTL        time.Duration // lifetime of a presigned PUT URL
	DownloadURLTTL      time.Duration // lifetime of a presigned GET URL
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
	// ClassifyRecoveryAfter is how long a document may wait in status
	// uploaded before the classifier's recovery takes it up (its event
	// dropped by the log, deferred by its owner's budget, or lost with a
	// classifier), and how long a recovery claim keeps other replicas off
	// it; 0 means DefaultClassifyRecoveryAfter.
	ClassifyRecoveryAfter time.Duration
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

// Limits on what a client may send.
const (
	MaxFilenameBytes    = 255
	MaxContentTypeBytes = 255
)

// UploadRequest is a client's request for an upload URL.
type UploadRequest struct {
	Filename    string
	ContentType string
	SizeBytes   *int64 // optional; when given it is signed into the URL
	// Multipart asks for an upload in parts whatever the size; SizeBytes is
	// then required.
	Multipart bool
}

// UploadTicket tells a client where and how to PUT its document.
type UploadTicket struct {
	DocumentID uuid.UUID
	URL        string // the single PUT's; "" for a multipart upload
	ExpiresAt  time.Time
	Headers    map[string]string
	// Multipart is the plan of an upload in parts; nil for a single PUT.
	Multipart *MultipartPlan
}

// Validate checks the request's fields against maxSize.
func (r UploadRequest) Validate(maxSize int64) error {
	return r.validate(maxSize, false)
}

// validate is Validate; requireSize refuses a request without a size.
func (r UploadRequest) validate(maxSize int64, requireSize bool) error {
	if err := validateText("filename", r.Filename, MaxFilenameBytes); err != nil {
		return err
	}
	if err := validateText("content_type", r.ContentType, MaxContentTypeBytes); err != nil {
		return err
	}
	if _, _, err := mime.ParseMediaType(r.ContentType); err != nil {
		return Errorf(Invalid, "content_type is not a valid media type")
	}
	switch {
	case r.Multipart && r.SizeBytes == nil:
		return Errorf(Invalid, "size_bytes is required for a multipart upload")
	case requireSize && r.SizeBytes == nil:
		return Errorf(Invalid, "size_bytes is required")
	}
	if r.SizeBytes != nil {
		if *r.SizeBytes <= 0 {
			return Errorf(Invalid, "size_bytes must be positive")
		}
		if *r.SizeBytes > maxSize {
			return Errorf(TooLarge, "file too large: %d bytes, the limit is %d bytes", *r.SizeBytes, maxSize)
		}
	}
	return nil
}

// validateText is the one rule of the text a client names things with (a
// filename, a content type): present, at most maxBytes of UTF-8, and free
// of control characters and of format characters (Unicode category Cf):
// the bidirectional controls (U+202A–U+202E, U+2066–U+2069, U+200E, U+200F,
// U+061C) that show "invoice", U+202E, "fdp.exe" as "invoiceexe.pdf", and
// the invisible ones (U+200B, U+2060, U+FEFF, the tag characters, …) that
// make two different names look alike. The joiners U+200C and U+200D are
// kept between two non-ASCII characters, where Persian and Indic spelling
// and emoji sequences need them, and refused anywhere else.
func validateText(field, s string, maxBytes int) error {
	switch {
	case s == "" || isBlank(s):
		return Errorf(Invalid, "%s is required", field)
	case len(s) > maxBytes:
		return Errorf(Invalid, "%s is longer than %d bytes", field, maxBytes)
	case !utf8.ValidString(s):
		return Errorf(Invalid, "%s is not valid UTF-8", field)
	}
	prev := rune(0) // the character before c
	for i, c := range s {
		if unicode.IsControl(c) {
			return Errorf(Invalid, "%s contains control characters", field)
		}
		if unicode.Is(unicode.Cf, c) && !(isJoiner(c) && joinable(prev) && joinable(nextRune(s[i+utf8.RuneLen(c):]))) {
			return Errorf(Invalid, "%s contains invisible or bidirectional formatting characters (U+%04X)", field, c)
		}
		prev = c
	}
	return nil
}

// isJoiner reports whether c is ZERO WIDTH NON-JOINER or ZERO WIDTH JOINER.
func isJoiner(c rune) bool { return c == '\u200c' || c == '\u200d' }

// joinable reports whether a joiner may stand beside c: a non-ASCII
// character that is not itself a format character.
func joinable(c rune) bool {
	return c > unicode.MaxASCII && c != utf8.RuneError && !unicode.Is(unicode.Cf, c)
}

// nextRune returns the first character of s; 0 when s is empty.
func nextRune(s string) rune {
	if s == "" {
		return 0
	}
	c, _ := utf8.DecodeRuneInString(s)
	return c
}

func isBlank(s string) bool {
	for _, c := range s {
		if !unicode.IsSpace(c) {
			return false
		}
	}
	return true
}

// RequestUpload creates a pending document for user and returns a presigned
// PUT URL for its bytes, or, for a large or multipart request, the plan of
// a multipart upload with its first part URLs. A declared size is reserved
// in the quota with the document, and refused before any byte flows when
// it cannot fit with what is used and reserved.
func (s *Service) RequestUpload(ctx context.Context, user uuid.UUID, req UploadRequest) (UploadTicket, error) {
	if err := req.validate(min(s.cfg.MaxUploadBytes, MaxObjectSize), s.cfg.RequireDeclaredSize); err != nil {
		return UploadTicket{}, err
	}
	multipart := s.wantsMultipart(req)
	// PostgreSQL keeps microseconds; the cursor must match what is stored.
	now := s.cfg.Now().UTC().Truncate(time.Microsecond)
	d := &Document{
		ID:           uuid.New(),
		UserID:       user,
		Filename:     req.Filename,
		ContentType:  req.ContentType,
		DeclaredSize: req.SizeBytes,
		Status:       StatusPending,
		CreatedAt:    now,
		UpdatedAt:    now,
	}
	d.ObjectKey = ObjectKey(user, d.ID, req.Filename)
	limits := UploadLimits{Now: now, Window: time.Minute, MaxRequests: s.cfg.UploadsPerMinute, MaxPending: s.cfg.MaxPendingUploads}
	if req.SizeBytes != nil {
		limits.Reserve = *req.SizeBytes
	}
	if multipart {
		// The row (and its reservation) first: a refusal then costs the
		// object store nothing.
		d.PartSize, _ = partPlan(*req.SizeBytes, s.cfg.MultipartPartSize)
		usage, created, err := s.store.CreateDocument(ctx, d, limits)
		if err != nil {
			return UploadTicket{}, err
		}
		if !created {
			return UploadTicket{}, refusal(limits, usage, now)
		}
		plan, err := s.startMultipart(ctx, d)
		if err != nil {
			return UploadTicket{}, err
		}
		return UploadTicket{DocumentID: d.ID, ExpiresAt: now.Add(s.cfg.UploadURLTTL), Multipart: plan}, nil
	}
	// Sign first: a failure then leaves nothing behind.
	url, headers, err := s.objects.PresignPut(ctx, d.ObjectKey, d.ContentType, limits.Reserve, s.cfg.UploadURLTTL)
	if err != nil {
		return UploadTicket{}, err
	}
	usage, created, err := s.store.CreateDocument(ctx, d, limits)
	if err != nil {
		return UploadTicket{}, err
	}
	if !created {
		return UploadTicket{}, refusal(limits, usage, now)
	}
	return UploadTicket{DocumentID: d.ID, URL: url, ExpiresAt: now.Add(s.cfg.UploadURLTTL), Headers: headers}, nil
}

// refusal says which of limits usage reached. The requests and the
// pending documents are counted by the store, so the bounds hold across
// every API replica, and requests racing each other cannot pass them.
func refusal(limits UploadLimits, usage UploadUsage, now time.Time) error {
	switch {
	case limits.MaxRequests > 0 && usage.Requests.Count > limits.MaxRequests:
		return &RateLimitedError{
			Message:    fmt.Sprintf("too many upload requests: at most %d a minute", limits.MaxRequests),
			RetryAfter: max(time.Second, usage.Requests.Start.Add(limits.Window).Sub(now)),
		}
	case limits.MaxPending > 0 && usage.Pending >= limits.MaxPending:
		return &RateLimitedError{
			Message:    fmt.Sprintf("too many uploads pending (%d): finish or delete some first", usage.Pending),
			RetryAfter: time.Minute,
		}
	}
	return &QuotaExceededError{UsedBytes: usage.Quota.UsedBytes, LimitBytes: usage.Quota.LimitBytes, RejectedBytes: limits.Reserve}
}

// Confirmation is the state of a confirmed document and its owner's quota.
type Confirmation struct {
	Document  *Document
	UsedBytes int64
	// Changed is true when this call confirmed the document, false when it
	// had been confirmed before.
	Changed bool
	// Stray, when not empty, says what ConfirmObject found wrong with the
	// object and did about it (StrayUnknown, …). With StrayOverQuota the
	// error says why the document was rejected.
	Stray string
	// Leftover is set with a rejection whose object could not be removed:
	// the bytes are stored uncharged until a caller tries again (the
	// notification door does, the sweeper does at REJECTED_RETENTION).
	Leftover bool
}

// What ConfirmObject finds when an object does not match its document, and
// does. Stored bytes must equal charged bytes: an object no live document
// owns is removed at once (the sweeper is the backstop), and a charged
// document whose object was replaced (by a tool with other credentials:
// DocuVault's URLs cannot) is charged for what is stored now.
const (
	// StrayUnknown: no document has the key (deleted, purged, never made,
	// or another document's key): the object is removed.
	StrayUnknown = "unknown"
	// StrayRejected: the document was rejected, and its upload URL used
	// again: the object is removed.
	StrayRejected = "rejected"
	// StrayReconciled: a charged document's object changed size or ETag;
	// the document and the quota now hold the stored size.
	StrayReconciled = "reconciled"
	// StrayOverQuota: the changed object no longer fits the quota (or
	// MaxUploadBytes): the document is rejected, its charge released and
	// its object removed.
	StrayOverQuota = "reconcile_rejected"
)

// Confirm confirms user's document id: the object store gives the
// authoritative size, and the document becomes uploaded and charged, or
// rejected. Confirming again answers the same result and charges nothing.
// A confirm of a pending document stats its object: it is paced by the
// StorageThrottle.
func (s *Service) Confirm(ctx context.Context, user, id uuid.UUID) (Confirmation, error) {
	return s.confirmOwn(ctx, user, id, true)
}

// confirmOwn is Confirm; paced says whether the stat takes a token of the
// StorageThrottle (not when the request that asks took one already).
func (s *Service) confirmOwn(ctx context.Context, user, id uuid.UUID, paced bool) (Confirmation, error) {
	// One read answers a document confirmed before, the other door's
	// usual win, with no second query.
	d, q, err := s.store.DocumentAndQuota(ctx, id)
	if err != nil {
		return Confirmation{}, err
	}
	if d.UserID != user {
		return Confirmation{}, Errorf(NotFound, "document not found")
	}
	if d.Status != StatusPending {
		return answer(d, q)
	}
	if paced {
		if err := s.paceStorage(user); err != nil {
			return Confirmation{}, err
		}
	}
	c, err := s.confirm(ctx, d)
	if ErrorCode(err) == UploadMissing {
		// The other door may have settled it since the read: a rejection
		// removes the object. Then its answer is the answer.
		if cur, q, rerr := s.store.DocumentAndQuota(ctx, id); rerr == nil && cur.Status != StatusPending {
			return answer(cur, q)
		}
	}
	return c, err
}

// ConfirmObject handles the object-store notification that key was
// written: it is the door the notifications come through. written is the
// size and etag the notification reports for the write. A pending document
// with a declared size is confirmed with them, without asking the object
// store again: its key takes one write only (its URL is signed with
// If-None-Match: *) of exactly the declared size (signed Content-Length),
// so a notification can say nothing else without being rejected for it. A
// pending document without a declared size is charged only what a stat
// finds stored: a notification that names the etag its sender is about to
// PUT and size 1 would otherwise charge 1 byte, and MinIO's own
// notification of that etag would then be skipped as already confirmed (a
// notification is a message on a stream, not proof that MinIO sent it).
// Without an etag the object is stat'ed too. The object of a charged
// document is checked against the row (an unchanged etag spares the
// check); any other object whose key is shaped like a document's is
// removed (Confirmation.Stray says what was done). A key DocuVault did not
// make is NotFound and left alone.
func (s *Service) ConfirmObject(ctx context.Context, key string, written ObjectInfo) (Confirmation, error) {
	user, id, ok := ParseObjectKey(key)
	if !ok {
		return Confirmation{}, Errorf(NotFound, "object key is not a document's")
	}
	d, err := s.store.Document(ctx, id)
	switch {
	case ErrorCode(err) == NotFound:
		return s.removeStray(ctx, key, StrayUnknown)
	case err != nil:
		return Confirmation{}, err
	case d.UserID != user || d.ObjectKey != key:
		return s.removeStray(ctx, key, StrayUnknown)
	case d.Status == StatusRejected:
		return s.removeStray(ctx, key, StrayRejected)
	case d.Status.Charged() && written.ETag != "" && written.ETag == d.ETag:
		// The other door won, or this is MinIO's second copy of the
		// notification. Nobody reads the quota here: skip that query.
		return Confirmation{Document: d}, nil
	case d.Status.Charged():
		return s.reconcile(ctx, d)
	}
	var c Confirmation
	if written.ETag != "" && d.DeclaredSize != nil {
		c, err = s.confirmStored(ctx, d, written)
	} else {
		c, err = s.confirm(ctx, d)
	}
	if c.Document == nil && IsRejection(err) {
		// The other door rejected it between our read and the store's
		// lock; its removal of the object may have failed: make sure.
		if err := s.objects.Remove(ctx, key); err != nil {
			c.Leftover = true
		}
	}
	return c, err
}

// removeStray removes the object under key, which no live document owns.
func (s *Service) removeStray(ctx context.Context, key, stray string) (Confirmation, error) {
	if err := s.objects.Remove(ctx, key); err != nil {
		return Confirmation{}, err
	}
	return Confirmation{Stray: stray}, nil
}

// reconcile brings charged document d, and its owner's quota, in line with
// the object stored under its key now. The store's row lock orders it with
// confirms, deletes and other reconciles of the same document.
func (s *Service) reconcile(ctx context.Context, d *Document) (Confirmation, error) {
	info, err := s.objects.Stat(ctx, d.ObjectKey)
	switch {
	case ErrorCode(err) == UploadMissing:
		return Confirmation{Document: d}, nil // removed since, by a delete
	case err != nil:
		return Confirmation{}, err
	case info.ETag == d.ETag && info.Size == d.SizeBytes:
		return Confirmation{Document: d}, nil // the notification was of the charged object
	}
	now := s.cfg.Now().UTC()
	var (
		res      Confirmation
		quota    Quota
		rejected bool
	)
	err = s.inTx(ctx, "reconcile", func(tx Tx) error {
		cur, err := tx.LockDocument(ctx, d.ID)
		if err != nil {
			return err
		}
		res, rejected = Confirmation{Document: cur}, false
		if !cur.Status.Charged() || cur.ETag == info.ETag && cur.SizeBytes == info.Size {
			return nil // another call got here first
		}
		if info.Size <= s.cfg.MaxUploadBytes {
			q, charged, err := tx.ChargeQuota(ctx, cur.UserID, info.Size-cur.SizeBytes)
			if err != nil {
				return err
			}
			if charged {
				cur.SizeBytes, cur.ETag, cur.UpdatedAt = info.Size, info.ETag, now
				res = Confirmation{Document: cur, UsedBytes: q.UsedBytes, Stray: StrayReconciled}
				return tx.SetObject(ctx, cur)
			}
		}
		q, err := tx.ReleaseQuota(ctx, cur.UserID, cur.SizeBytes)
		if err != nil {
			return err
		}
		reason := ReasonOverQuota
		if info.Size > s.cfg.MaxUploadBytes {
			reason = ReasonTooLarge
		}
		cur.SizeBytes, cur.ETag, cur.UpdatedAt = info.Size, info.ETag, now
		cur.reject(reason)
		res, quota, rejected = Confirmation{Document: cur, Stray: StrayOverQuota}, q, true
		return tx.Save(ctx, cur, NewEvent(EventRejected, cur, now))
	})
	if err != nil {
		return Confirmation{}, err
	}
	if !rejected {
		return res, nil
	}
	// Committed: the charge is released, the bytes must go.
	if err := s.objects.Remove(ctx, d.ObjectKey); err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Str("document_id", d.ID.String()).Msg("remove reconciled object failed")
		res.Leftover = true
	}
	return res, rejection(res.Document, quota)
}

// confirm confirms d with its object's stat.
func (s *Service) confirm(ctx context.Context, d *Document) (Confirmation, error) {
	if d.Status != StatusPending {
		return s.confirmed(ctx, d)
	}
	info, err := s.objects.Stat(ctx, d.ObjectKey)
	if err != nil {
		return Confirmation{}, err
	}
	return s.confirmStored(ctx, d, info)
}

// confirmStored confirms d, charged (or rejected) for the object stored
// as info says.
func (s *Service) confirmStored(ctx context.Context, d *Document, info ObjectInfo) (Confirmation, error) {
	if d.Status != StatusPending {
		return s.confirmed(ctx, d)
	}
	now := s.cfg.Now().UTC()
	// The whole reject decision, here: a rule the object breaks rejects it
	// outright; otherwise it is charged, and rejected over quota only if
	// the charge does not fit, which the store checks atomically.
	change := ConfirmChange{ID: d.ID, SizeBytes: info.Size, ETag: info.ETag, At: now,
		Charge: true, RejectReason: ReasonOverQuota}
	if reason := brokenRule(d, info.Size, s.cfg.MaxUploadBytes); reason != "" {
		change.Charge, change.RejectReason = false, reason
	}
	// The document as it will be either way: the store picks one, under
	// the row locks, from the quota it finds.
	uploaded, rejected := *d, *d
	for _, c := range []*Document{&uploaded, &rejected} {
		// Out of pending either way: the reservation is released (or
		// becomes the charge), as the stores write it.
		c.SizeBytes, c.ETag, c.UpdatedAt, c.ReservedBytes = info.Size, info.ETag, now, 0
	}
	uploaded.Status, uploaded.ConfirmedAt = StatusUploaded, &now
	rejected.reject(change.RejectReason)
	change.Uploaded = NewEvent(EventUploaded, &uploaded, now)
	change.Rejected = NewEvent(EventRejected, &rejected, now)

	res, err := s.store.ConfirmDocument(ctx, change)
	s.clamped(ctx, "confirm", res.Clamp)
	switch {
	case err != nil:
		return Confirmation{}, err
	case !res.Changed:
		// Another door confirmed it between our read and the store's lock:
		// the store answers the quota with that door's charge.
		return answer(res.Document, res.Quota)
	case res.Charged:
		return Confirmation{Document: &uploaded, UsedBytes: res.Quota.UsedBytes, Changed: true}, nil
	}
	// The rejection is committed; the bytes must not stay.
	c := Confirmation{Document: &rejected}
	if err := s.objects.Remove(ctx, d.ObjectKey); err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Str("document_id", d.ID.String()).Msg("remove rejected object failed")
		c.Leftover = true
	}
	return c, rejection(&rejected, res.Quota)
}

// brokenRule returns the reason a stored object of size bytes cannot be
// d's content whatever the quota ("" when none): larger than the largest
// document, or not the size the client declared.
func brokenRule(d *Document, size, maxSize int64) string {
	switch {
	case size > maxSize:
		return ReasonTooLarge
	case d.DeclaredSize != nil && *d.DeclaredSize != size:
		return ReasonSizeMismatch
	}
	return ""
}

// ConfirmOutcome names how a confirmation ended: "uploaded" (this call
// confirmed it), "already" (confirmed before), "rejected" (it broke a rule),
// "stray_" and the Stray case (the object matched no live document as
// charged: see StrayUnknown) or "error" (nothing changed; try again).
func ConfirmOutcome(c Confirmation, err error) string {
	if c.Stray != "" {
		return "stray_" + c.Stray
	}
	switch {
	case err == nil && c.Changed:
		return "uploaded"
	case err == nil:
		return "already"
	case IsRejection(err):
		return "rejected"
	}
	return "error"
}

// confirmed answers a confirm of a document that is no longer pending.
func (s *Service) confirmed(ctx context.Context, d *Document) (Confirmation, error) {
	q, err := s.store.Quota(ctx, d.UserID)
	if err != nil {
		return Confirmation{}, err
	}
	return answer(d, q)
}

// answer is the answer to a confirm of d, no longer pending, whose owner's
// quota is q.
func answer(d *Document, q Quota) (Confirmation, error) {
	if d.Status == StatusRejected {
		return Confirmation{}, rejection(d, q)
	}
	return Confirmation{Document: d, UsedBytes: q.UsedBytes}, nil
}

func (d *Document) reject(reason string) {
	d.Status = StatusRejected
	d.RejectReason = reason
}

// rejection is the error a confirm of rejected document d answers, marked
// so that IsRejection tells it from other errors of its code.
func rejection(d *Document, q Quota) error {
	switch d.RejectReason {
	case ReasonOverQuota:
		return rejectionError{&QuotaExceededError{UsedBytes: q.UsedBytes, LimitBytes: q.LimitBytes, RejectedBytes: d.SizeBytes}}
	case ReasonTooLarge:
		return rejectionError{Errorf(TooLarge, "file too large: %d bytes", d.SizeBytes)}
	default:
		return rejectionError{Errorf(Invalid, "upload rejected: %s", d.RejectReason)}
	}
}

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

// Get returns user's document id and, once its bytes are stored, a
// presigned download URL.
func (s *Service) Get(ctx context.Context, user, id uuid.UUID) (*Document, string, error) {
	d, err := s.ownDocument(ctx, user, id)
	if err != nil {
		return nil, "", err
	}
	if !d.Status.Charged() {
		return d, "", nil
	}
	url, err := s.objects.PresignGet(ctx, d.ObjectKey, d.Filename, s.cfg.DownloadURLTTL)
	if err != nil {
		return nil, "", err
	}
	return d, url, nil
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

// Delete removes user's document id: the row and, when it had been charged,
// its size from the quota, in one transaction; then its object.
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
		if d.Status.Charged() {
			if _, err := tx.ReleaseQuota(ctx, d.UserID, d.SizeBytes); err != nil {
				return err
			}
		}
		if d.ReservedBytes > 0 {
			if err := tx.Unreserve(ctx, d.UserID, d.ReservedBytes); err != nil {
				return err
			}
		}
		// The parts go before the row that names them: should the
		// transaction fail after, the document stays, and a delete again
		// (or the sweeper) finds an upload already gone.
		if err := s.abortUpload(ctx, d); err != nil {
			return err
		}
		if err := tx.DeleteDocument(ctx, d.ID); err != nil {
			return err
		}
		// Recorded with the delete: should the removal below fail, the
		// sweeper finds the object here, not by listing the bucket.
		if err := tx.RecordRemoval(ctx, d.ObjectKey, s.cfg.Now()); err != nil {
			return err
		}
		deleted = d
		return tx.AppendEvent(ctx, NewEvent(EventDeleted, d, s.cfg.Now()))
	})
	if err != nil {
		return err
	}
	// After commit: the row and the quota are already right.
	log := zerolog.Ctx(ctx).With().Str("document_id", id.String()).Logger()
	if err := s.objects.Remove(ctx, deleted.ObjectKey); err != nil {
		log.Warn().Err(err).Msg("remove deleted object failed; the sweeper retries it")
		return nil
	}
	if err := s.store.ForgetRemovals(ctx, []string{deleted.ObjectKey}); err != nil {
		log.Warn().Err(err).Msg("forget the removal record failed; the sweeper clears it")
	}
	return nil
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
