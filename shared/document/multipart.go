package document

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"
)

// The object store's multipart limits, and DocuVault's own.
const (
	MinPartSize   = 5 << 20 // every part but the last is at least this
	MaxPartSize   = 5 << 30 // and at most this
	MaxParts      = 10_000  // parts of one upload
	MaxObjectSize = 5 << 40 // the largest object
	MaxSinglePut  = 5 << 30 // the largest object one PUT may store
	partSizeUnit  = 1 << 20 // part sizes are whole MiB
	firstParts    = 10      // part URLs given with the plan
	MaxPartsAsked = 100     // part URLs one request may ask for
	touchEvery    = time.Minute
)

// PartURL is a presigned URL for one part.
type PartURL struct {
	Number int
	Size   int64
	URL    string
}

// MultipartPlan is how a client uploads a multipart document: part_count
// parts of PartSize bytes, the last one the remainder.
type MultipartPlan struct {
	UploadID  string
	PartSize  int64
	PartCount int
	Parts     []PartURL // the first parts' URLs; none when parts are checksummed
	// PartChecksums is ChecksumSHA256 when each part's URL signs its
	// SHA-256, which the client sends when it asks for the URL.
	PartChecksums ChecksumAlgorithm
}

// partsChecksummed reports whether multipart document d's parts each come
// with their signed SHA-256.
func (d *Document) partsChecksummed() bool { return d.Checksum.Algorithm == ChecksumSHA256Composite }

// partPlan returns the part size and count for an object of size bytes:
// parts of at least minPart bytes, whole MiB, and no more than MaxParts.
func partPlan(size, minPart int64) (partSize int64, count int) {
	partSize = max(minPart, MinPartSize)
	if need := (size + MaxParts - 1) / MaxParts; need > partSize {
		partSize = (need + partSizeUnit - 1) / partSizeUnit * partSizeUnit
	}
	return partSize, int((size + partSize - 1) / partSize)
}

// partSpan returns d's part size and part count.
func partSpan(d *Document) (int64, int) {
	size := *d.DeclaredSize
	return d.PartSize, int((size + d.PartSize - 1) / d.PartSize)
}

// partSize returns the size of part number of multipart document d.
func partSize(d *Document, number int) int64 {
	size, count := partSpan(d)
	if number == count {
		return *d.DeclaredSize - int64(count-1)*size
	}
	return size
}

// wantsMultipart says whether req is uploaded in parts.
func (s *Service) wantsMultipart(req UploadRequest) bool {
	if req.Multipart {
		return true
	}
	if req.SizeBytes == nil {
		return false
	}
	threshold := s.cfg.MultipartThreshold
	if threshold <= 0 || threshold > MaxSinglePut {
		threshold = MaxSinglePut
	}
	return *req.SizeBytes > threshold
}

// startMultipart makes pending document d's multipart upload, now that its
// row (and reservation) is committed, and returns the plan with the first
// part URLs. On failure the row goes again, its reservation released.
func (s *Service) startMultipart(ctx context.Context, d *Document) (*MultipartPlan, error) {
	uploadID, err := s.objects.CreateMultipart(ctx, d.ObjectKey, d.ContentType, d.partsChecksummed())
	if err == nil {
		d.UploadID = uploadID
		if err = s.store.SetUpload(ctx, d.ID, uploadID); err != nil {
			if aerr := s.objects.AbortMultipart(ctx, d.ObjectKey, uploadID); aerr != nil {
				zerolog.Ctx(ctx).Warn().Err(aerr).Str("document_id", d.ID.String()).Msg("abort of an unrecorded upload failed; the object store's stale upload expiry removes it")
			}
		}
	}
	if err != nil {
		if derr := s.discard(ctx, d); derr != nil {
			zerolog.Ctx(ctx).Warn().Err(derr).Str("document_id", d.ID.String()).Msg("remove the document of a failed multipart start failed; the sweeper removes it")
		}
		return nil, err
	}
	size, count := partSpan(d)
	plan := &MultipartPlan{UploadID: uploadID, PartSize: size, PartCount: count}
	if d.partsChecksummed() {
		// A part's URL signs its SHA-256, which the client sends with its
		// request for it (SignParts).
		plan.PartChecksums = ChecksumSHA256
		return plan, nil
	}
	parts := make([]Part, min(count, firstParts))
	for i := range parts {
		parts[i].Number = i + 1
	}
	if plan.Parts, err = s.signParts(ctx, d, parts); err != nil {
		return nil, err
	}
	return plan, nil
}

// discard removes pending document d, which no client has heard of,
// releases its reservation, and aborts any upload of its key: MinIO may
// have made one whose id was lost with its answer. The removal is recorded
// with the delete, so the sweeper aborts it should it fail now.
func (s *Service) discard(ctx context.Context, d *Document) error {
	err := s.inTx(ctx, "discard", func(tx Tx) error {
		cur, err := tx.LockDocument(ctx, d.ID)
		if err != nil || cur.Status != StatusPending {
			return err
		}
		return remove(ctx, tx, cur, s.cfg.Now())
	})
	if err != nil {
		return err
	}
	if err := s.objects.AbortUploads(ctx, d.ObjectKey); err != nil {
		return nil // recorded: the sweeper's removals abort it
	}
	return s.store.ForgetRemovals(ctx, []string{d.ObjectKey})
}

// signParts signs the URLs of multipart document d's parts (numbers, and
// SHA-256s when its parts are checksummed).
func (s *Service) signParts(ctx context.Context, d *Document, parts []Part) ([]PartURL, error) {
	urls := make([]PartURL, 0, len(parts))
	for _, p := range parts {
		size := partSize(d, p.Number)
		u, err := s.objects.PresignPart(ctx, d.ObjectKey, d.UploadID, p, size, s.cfg.UploadURLTTL)
		if err != nil {
			return nil, err
		}
		urls = append(urls, PartURL{Number: p.Number, Size: size, URL: u})
	}
	return urls, nil
}

// pendingMultipart returns user's document id if it is a pending multipart
// upload: NotFound for another user's, Conflict otherwise.
func (s *Service) pendingMultipart(ctx context.Context, user, id uuid.UUID) (*Document, error) {
	d, err := s.ownDocument(ctx, user, id)
	if err != nil {
		return nil, err
	}
	switch {
	case !d.Multipart():
		return nil, Errorf(Conflict, "not a multipart upload")
	case d.Status != StatusPending:
		return nil, Errorf(Conflict, "the upload is complete: the document is %s", d.Status)
	case d.UploadID == "":
		return nil, Errorf(Conflict, "the upload was not started; ask for a new upload URL")
	}
	return d, nil
}

// SignParts returns presigned URLs for parts (their numbers and, when the
// document's parts are checksummed, each one's SHA-256, which its URL
// signs) of user's pending multipart document id, valid UploadURLTTL, and
// renews the document's pending lifetime: the sweeper counts PENDING_TTL
// from the last part signed.
func (s *Service) SignParts(ctx context.Context, user, id uuid.UUID, parts []Part) ([]PartURL, time.Time, error) {
	if len(parts) == 0 || len(parts) > MaxPartsAsked {
		return nil, time.Time{}, Errorf(Invalid, "1 to %d parts may be asked for at once", MaxPartsAsked)
	}
	d, err := s.pendingMultipart(ctx, user, id)
	if err != nil {
		return nil, time.Time{}, err
	}
	count := PartCount(d)
	seen := make(map[int]bool, len(parts))
	unique := parts[:0:0]
	for _, p := range parts {
		switch {
		case p.Number < 1 || p.Number > count:
			return nil, time.Time{}, Errorf(Invalid, "part number %d is not between 1 and %d", p.Number, count)
		case d.partsChecksummed() && p.ChecksumSHA256 == "":
			return nil, time.Time{}, Errorf(Invalid, "part %d needs its sha256: this upload's parts are checksummed", p.Number)
		case !d.partsChecksummed() && p.ChecksumSHA256 != "":
			return nil, time.Time{}, Errorf(Invalid, "part %d has a sha256, but this upload's parts are not checksummed (ask for the upload with part_checksum)", p.Number)
		}
		if !seen[p.Number] {
			seen[p.Number] = true
			unique = append(unique, p)
		}
	}
	if err := s.paceStorage(user); err != nil {
		return nil, time.Time{}, err
	}
	now := s.cfg.Now().UTC()
	pending, err := s.store.TouchPending(ctx, d.ID, now)
	if err != nil {
		return nil, time.Time{}, err
	}
	if !pending {
		// Deleted, purged or completed since it was read: answer what a
		// request arriving now would hear (404 for a document gone).
		if _, err := s.pendingMultipart(ctx, user, id); err != nil {
			return nil, time.Time{}, err
		}
		return nil, time.Time{}, Errorf(Conflict, "the upload is no longer pending")
	}
	urls, err := s.signParts(ctx, d, unique)
	if err != nil {
		return nil, time.Time{}, err
	}
	return urls, now.Add(s.cfg.UploadURLTTL), nil
}

// Parts returns user's pending multipart document id and the parts the
// object store holds for it, for a client resuming the upload.
func (s *Service) Parts(ctx context.Context, user, id uuid.UUID) (*Document, []Part, error) {
	d, err := s.pendingMultipart(ctx, user, id)
	if err != nil {
		return nil, nil, err
	}
	if err := s.paceStorage(user); err != nil {
		return nil, nil, err
	}
	parts, err := s.objects.ListParts(ctx, d.ObjectKey, d.UploadID)
	if ErrorCode(err) == UploadMissing {
		// Completed (its confirmation not done yet) or aborted: confirm
		// what is stored, so the client hears where the document stands.
		c, err := s.confirmOwn(ctx, user, id, false)
		switch {
		case err == nil:
			return nil, nil, Errorf(Conflict, "the upload is complete: the document is %s", c.Document.Status)
		case ErrorCode(err) == UploadMissing:
			return nil, nil, Errorf(Conflict, "the upload is no longer open (aborted); ask for a new upload URL")
		}
		return nil, nil, err
	}
	if err != nil {
		return nil, nil, err
	}
	return d, parts, nil
}

// PartCount returns the number of parts of multipart document d.
func PartCount(d *Document) int {
	_, n := partSpan(d)
	return n
}

// Complete completes user's multipart document id from parts (number and
// ETag, each part once) and confirms it as Confirm does. The object store
// must hold every planned part with its planned size and the ETag given;
// otherwise nothing is completed or charged. The upload is completed only
// if no object has the key yet. Completing a document confirmed before
// answers as Confirm does.
func (s *Service) Complete(ctx context.Context, user, id uuid.UUID, parts []Part) (Confirmation, error) {
	d, err := s.ownDocument(ctx, user, id)
	if err != nil {
		return Confirmation{}, err
	}
	if !d.Multipart() {
		return Confirmation{}, Errorf(Conflict, "not a multipart upload")
	}
	if d.Status != StatusPending {
		return s.Confirm(ctx, user, id)
	}
	if d.UploadID == "" {
		return Confirmation{}, Errorf(Conflict, "the upload was not started; ask for a new upload URL")
	}
	count := PartCount(d)
	if err := checkPartList(parts, count); err != nil {
		return Confirmation{}, err
	}
	// One token for the listing, the completion and the confirm's stat.
	if err := s.paceStorage(user); err != nil {
		return Confirmation{}, err
	}
	stored, err := s.objects.ListParts(ctx, d.ObjectKey, d.UploadID)
	switch {
	case ErrorCode(err) == UploadMissing:
		// Completed by an earlier call (whose confirm did not finish) or
		// aborted: the object, if any, is confirmed as any other.
		return s.confirmOwn(ctx, user, id, false)
	case err != nil:
		return Confirmation{}, err
	}
	if err := matchParts(d, parts, stored); err != nil {
		return Confirmation{}, err
	}
	if d.partsChecksummed() {
		// The object's checksum, from the parts MinIO took under their
		// signed SHA-256s, recorded before the object exists: whichever
		// door confirms it reads it with the row.
		sum, err := compositeSHA256(parts)
		if err != nil {
			return Confirmation{}, err
		}
		if _, err := s.store.SetChecksum(ctx, d.ID, sum); err != nil {
			return Confirmation{}, err
		}
	}
	err = s.objects.CompleteMultipart(ctx, d.ObjectKey, d.UploadID, parts)
	switch code := ErrorCode(err); {
	case err == nil, code == Conflict, code == UploadMissing:
		// Conflict: an object has the key (a completion raced this one).
		// UploadMissing: another call completed it meanwhile. Either way
		// the stored object is what is confirmed.
	default:
		return Confirmation{}, err
	}
	return s.confirmOwn(ctx, user, id, false)
}

// checkPartList checks that parts names each of the count parts once.
func checkPartList(parts []Part, count int) error {
	if len(parts) != count {
		return Errorf(Invalid, "parts must list all %d parts, got %d", count, len(parts))
	}
	seen := make([]bool, count+1)
	for _, p := range parts {
		switch {
		case p.Number < 1 || p.Number > count:
			return Errorf(Invalid, "part number %d is not between 1 and %d", p.Number, count)
		case seen[p.Number]:
			return Errorf(Invalid, "part %d is listed twice", p.Number)
		case p.ETag == "":
			return Errorf(Invalid, "part %d has no etag", p.Number)
		}
		seen[p.Number] = true
	}
	return nil
}

// matchParts checks parts (complete, each once) against the parts stored:
// each one there, with its planned size and the ETag the client gave. It
// sorts parts by number, normalises their ETags and gives each its size
// and checksum as stored.
func matchParts(d *Document, parts, stored []Part) error {
	byNumber := make(map[int]Part, len(stored))
	for _, p := range stored {
		byNumber[p.Number] = p
	}
	slices.SortFunc(parts, func(a, b Part) int { return a.Number - b.Number })
	for i := range parts {
		p := &parts[i]
		p.ETag = strings.Trim(p.ETag, `"`)
		got, ok := byNumber[p.Number]
		switch {
		case !ok:
			return Errorf(Invalid, "part %d is not uploaded", p.Number)
		case got.ETag != p.ETag:
			return Errorf(Invalid, "part %d is stored with another etag (%s): upload it again or send the stored etag", p.Number, got.ETag)
		case got.Size != partSize(d, p.Number):
			return Errorf(Invalid, "part %d holds %d bytes, not %d", p.Number, got.Size, partSize(d, p.Number))
		}
		p.Size, p.ChecksumSHA256 = got.Size, got.ChecksumSHA256
	}
	if len(stored) > len(parts) {
		return Errorf(Invalid, "the upload holds %d parts, %d planned", len(stored), len(parts))
	}
	return nil
}

// abortUpload drops pending multipart document d's upload in the object
// store, if it has one.
func (s *Service) abortUpload(ctx context.Context, d *Document) error {
	if d.Status != StatusPending || d.UploadID == "" {
		return nil
	}
	if err := s.objects.AbortMultipart(ctx, d.ObjectKey, d.UploadID); err != nil {
		return fmt.Errorf("abort the upload: %w", err)
	}
	return nil
}
