package document

import (
	"context"
	"fmt"
	"mime"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
)

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
	// Checksum is the checksum of the bytes to come (zero: none): signed
	// into the URL, so that MinIO stores no other bytes.
	Checksum Checksum
	// PartChecksums, for an upload in parts, asks that each part come with
	// its SHA-256, signed into its URL (ChecksumSHA256 or ""); a single PUT
	// ignores it (Checksum is its checksum).
	PartChecksums ChecksumAlgorithm
}

// UploadTicket tells a client where and how to PUT its document.
type UploadTicket struct {
	DocumentID uuid.UUID
	URL        string // the single PUT's; "" for a multipart upload
	ExpiresAt  time.Time
	Headers    map[string]string
	// Multipart is the plan of an upload in parts; nil for a single PUT.
	Multipart *MultipartPlan
	// Duplicate, when set, is the caller's stored document with the
	// checksum asked for: nothing was made, reserved or signed, and
	// DocumentID is its id.
	Duplicate *Document
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
	// Checksums are taken for a single PUT: those of uploads in parts are
	// not supported yet, so RequireChecksum binds single PUTs only.
	multipart := s.wantsMultipart(req)
	switch {
	case req.PartChecksums != "" && req.PartChecksums != ChecksumSHA256:
		return UploadTicket{}, Errorf(Invalid, "part_checksum must be %q", ChecksumSHA256)
	case multipart && !req.Checksum.IsZero():
		return UploadTicket{}, Errorf(Invalid, "sha256 is taken for an upload in one PUT only: an upload in parts checksums each part (part_checksum %q)", ChecksumSHA256)
	case req.Checksum.IsZero() && s.cfg.RequireChecksum && (!multipart || req.PartChecksums == ""):
		if multipart {
			return UploadTicket{}, Errorf(Invalid, "part_checksum %q is required for an upload in parts", ChecksumSHA256)
		}
		return UploadTicket{}, Errorf(Invalid, "sha256 is required: the base64 of the file's SHA-256 digest")
	}
	if !req.Checksum.IsZero() {
		dup, err := s.store.DocumentWithChecksum(ctx, user, req.Checksum, Ledger().Used)
		switch {
		case err == nil:
			// Counted as any upload request, so that asking again and
			// again is bounded as uploading is.
			if err := s.takeRate(ctx, user, RateActionUpload, "upload", s.cfg.UploadsPerMinute); err != nil {
				return UploadTicket{}, err
			}
			return UploadTicket{DocumentID: dup.ID, Duplicate: dup}, nil
		case ErrorCode(err) != NotFound:
			return UploadTicket{}, err
		}
	}
	now := s.cfg.Now().UTC()
	d := &Document{
		ID:           uuid.New(),
		UserID:       user,
		Filename:     req.Filename,
		ContentType:  req.ContentType,
		DeclaredSize: req.SizeBytes,
		Checksum:     req.Checksum,
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
		if req.PartChecksums != "" {
			d.Checksum = Checksum{Algorithm: ChecksumSHA256Composite} // its value once the parts are in
		}
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
	url, headers, err := s.objects.PresignPut(ctx, d.ObjectKey, d.ContentType, limits.Reserve, d.Checksum, s.cfg.UploadURLTTL)
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
