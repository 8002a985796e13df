package document

import (
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Status is where a document stands in its life.
type Status string

// Document statuses. Pending becomes Uploaded (charged) or Rejected (not
// charged); the classifier moves Uploaded on to Classified or
// ClassificationFailed, both still charged.
const (
	StatusPending              Status = "pending"
	StatusUploaded             Status = "uploaded"
	StatusClassified           Status = "classified"
	StatusClassificationFailed Status = "classification_failed"
	StatusRejected             Status = "rejected"
)

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	switch s {
	case StatusPending, StatusUploaded, StatusClassified, StatusClassificationFailed, StatusRejected:
		return true
	}
	return false
}

// Charged reports whether a document in status s counts against its owner's quota.
func (s Status) Charged() bool {
	switch s {
	case StatusUploaded, StatusClassified, StatusClassificationFailed:
		return true
	}
	return false
}

// Upload splits s as the confirm contract answers it: a stored and
// charged document's upload is StatusUploaded whatever classification did
// since, and classification, when it has run, is StatusClassified or
// StatusClassificationFailed apart from it ("" before it ran). Any other
// status is its own upload status.
func (s Status) Upload() (upload, classification Status) {
	switch s {
	case StatusClassified, StatusClassificationFailed:
		return StatusUploaded, s
	}
	return s, ""
}

// Reasons a document is rejected at confirmation.
const (
	ReasonOverQuota    = "over_quota"
	ReasonTooLarge     = "too_large"
	ReasonSizeMismatch = "size_mismatch"
	// ReasonChecksumMismatch: the stored object's checksum is not the one
	// declared (only a write that did not come through the upload URL can
	// store one: MinIO refuses other bytes under the signed checksum).
	ReasonChecksumMismatch = "checksum_mismatch"
	// ReasonInfected: the malware scanner found a signature in the stored
	// bytes (ScanDetail names it); the object is removed and the charge
	// released.
	ReasonInfected = "infected"
)

// ScanState is where a stored document stands with the malware scanner,
// beside its status: a document confirmed while scanning is on is
// ScanPending until the scanner records ScanClean, ScanInfected (it is
// then rejected, ReasonInfected) or ScanFailed (it could not be scanned:
// ScanDetail says why); an administrator may release a failed one
// (ScanReleased: downloadable, though never scanned). "" is a document
// stored while scanning was off.
type ScanState string

// Scan states.
const (
	ScanPending  ScanState = "pending"
	ScanClean    ScanState = "clean"
	ScanInfected ScanState = "infected"
	ScanFailed   ScanState = "failed"
	ScanReleased ScanState = "released"
)

// Why a scan failed (ScanDetail of a ScanFailed document).
const (
	// ScanTooLarge: the document is larger than the scanner takes
	// (SCAN_MAX_BYTES).
	ScanTooLarge = "too_large"
	// ScanLimitsExceeded: the scanner could not scan the whole document:
	// an archive holding more, larger or deeper nested files than it
	// unpacks (clamd's MaxScanSize, MaxFileSize, MaxRecursion).
	ScanLimitsExceeded = "limits_exceeded"
)

// Stage is the work a stored document waits for, if any.
type Stage string

// Stages, in the order a document goes through them.
const (
	StageNone     Stage = ""
	StageScan     Stage = "scan"     // its bytes are to be scanned
	StageClassify Stage = "classify" // it is to be classified
)

// Waiting returns the stage d waits for: a stored document (status
// uploaded) is scanned first when its scan is pending, and classified
// once clean (or released), or when it was stored while scanning was off;
// one whose scan failed waits for nothing. PostgreSQL's twin is the predicate of
// each stage's claim (shared/postgres, waitingFor) and index (migration
// 0018).
func (d *Document) Waiting() Stage {
	if d.Status != StatusUploaded {
		return StageNone
	}
	switch d.ScanStatus {
	case ScanPending:
		return StageScan
	case "", ScanClean, ScanReleased:
		return StageClassify
	}
	return StageNone
}

// Downloadable reports whether d's bytes may be downloaded: stored and
// charged, and, while scanning is required, found clean (or released by
// an administrator).
func (d *Document) Downloadable(scanRequired bool) bool {
	return d.Status.Charged() && (!scanRequired || d.ScanStatus == ScanClean || d.ScanStatus == ScanReleased)
}

// Document is one uploaded (or to be uploaded) file. Its bytes live in the
// object store under ObjectKey; the filename lives only here.
type Document struct {
	ID           uuid.UUID
	UserID       uuid.UUID
	Filename     string
	ContentType  string
	DeclaredSize *int64 // what the client announced, if it did
	// Checksum is the content checksum the client declared (zero if it
	// did not), signed into its upload URL: once the document is
	// confirmed it is the stored bytes' checksum, proven by MinIO.
	Checksum       Checksum
	SizeBytes      int64 // authoritative size from the object store, once confirmed
	ETag           string
	ObjectKey      string
	Status         Status
	RejectReason   string
	Classification string
	// DetectedType is the MIME type the classifier found in the bytes.
	DetectedType string
	// Confidence is how sure the classifier is of Classification, 0..1.
	Confidence float64
	// ClassificationReason says why classification failed, e.g. type_mismatch.
	ClassificationReason string
	CreatedAt            time.Time
	ConfirmedAt          *time.Time
	UpdatedAt            time.Time
	// UploadID is a multipart document's upload in the object store ("" for
	// a single PUT, or before the upload is made).
	UploadID string
	// PartSize is a multipart document's part size; 0 for a single PUT.
	PartSize int64
	// ReservedBytes is what the document holds of its owner's quota while
	// pending: its declared size. 0 once it leaves pending.
	ReservedBytes int64
	// ScanStatus is where the malware scan of its bytes stands, once
	// stored ("" when stored while scanning was off).
	ScanStatus ScanState
	// ScanDetail names the signature the scanner found (ScanInfected) or
	// why it could not scan (ScanFailed, e.g. ScanTooLarge).
	ScanDetail string
}

// Multipart reports whether d is uploaded in parts.
func (d *Document) Multipart() bool { return d.PartSize > 0 }

// Quota is a user's storage allowance and how much of it is used.
type Quota struct {
	UserID    uuid.UUID
	UsedBytes int64
	// ReservedBytes is held by pending uploads with a declared size: a new
	// upload must fit used + reserved + its size within the limit.
	ReservedBytes int64
	LimitBytes    int64
}

// Fits reports whether adding add bytes to q's used bytes keeps used and
// reserved bytes within the limit; taking bytes (add <= 0) always fits.
// The quota's one rule of arithmetic: PostgreSQL's quota_fits (migration
// 0013) is its twin, held to it by the store contract suite.
func (q Quota) Fits(add int64) bool {
	return add <= 0 || q.UsedBytes+q.ReservedBytes+add <= q.LimitBytes
}

// ObjectKey returns the key of a new object for document docID of user:
// {user_id}/{document_id}/{uuid}{ext}. Only the server computes keys.
func ObjectKey(user, docID uuid.UUID, filename string) string {
	return fmt.Sprintf("%s/%s/%s%s", user, docID, uuid.New(), Extension(filename))
}

// ParseObjectKey returns the user and document ids an object key was made
// for; ok is false for a key DocuVault did not make.
func ParseObjectKey(key string) (user, docID uuid.UUID, ok bool) {
	parts := strings.Split(key, "/")
	if len(parts) != 3 {
		return uuid.Nil, uuid.Nil, false
	}
	user, err := uuid.Parse(parts[0])
	if err != nil || len(parts[0]) != 36 {
		return uuid.Nil, uuid.Nil, false
	}
	docID, err = uuid.Parse(parts[1])
	if err != nil || len(parts[1]) != 36 {
		return uuid.Nil, uuid.Nil, false
	}
	return user, docID, true
}

// maxExtensionLen bounds the extension kept in an object key, dot included.
const maxExtensionLen = 16

// Extension returns the sanitised extension of filename for an object key:
// the lower-cased suffix from the last dot, kept only when it is made of
// ASCII letters and digits and is short; otherwise "".
func Extension(filename string) string {
	base := filename[strings.LastIndexAny(filename, `/\`)+1:]
	dot := strings.LastIndexByte(base, '.')
	if dot <= 0 || dot == len(base)-1 {
		return ""
	}
	ext := strings.ToLower(base[dot:])
	if len(ext) > maxExtensionLen {
		return ""
	}
	for _, c := range ext[1:] {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return ""
		}
	}
	return ext
}
