package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/shared/auth"
	"github.com/docuvault/docuvault/shared/document"
	"github.com/docuvault/docuvault/shared/metrics"
)

// documentJSON is a document as the API shows it.
type documentJSON struct {
	ID           uuid.UUID `json:"id"`
	Filename     string    `json:"filename"`
	ContentType  string    `json:"content_type"`
	DeclaredSize *int64    `json:"declared_size"`
	SizeBytes    int64     `json:"size_bytes"`
	// Checksum is the one declared (left out when none was): MinIO took
	// no other bytes.
	Checksum       *document.Checksum `json:"checksum,omitempty"`
	Status         document.Status    `json:"status"`
	RejectReason   string             `json:"reject_reason,omitempty"`
	Classification string             `json:"classification,omitempty"`
	DetectedType   string             `json:"detected_type,omitempty"`
	Confidence     float64            `json:"confidence,omitempty"`
	// ClassificationReason says why classification failed (type_mismatch, unreadable, too_complex, …).
	ClassificationReason string `json:"classification_reason,omitempty"`
	// ScanStatus is where the malware scan of its bytes stands (pending,
	// clean, infected, failed; left out when stored while scanning was
	// off), and ScanDetail the signature found or why it was not scanned.
	ScanStatus  document.ScanState `json:"scan_status,omitempty"`
	ScanDetail  string             `json:"scan_detail,omitempty"`
	CreatedAt   time.Time          `json:"created_at"`
	ConfirmedAt *time.Time         `json:"confirmed_at"`
	UpdatedAt   time.Time          `json:"updated_at"`
	DownloadURL string             `json:"download_url,omitempty"`
}

func toJSON(d *document.Document) documentJSON {
	return documentJSON{
		ID:                   d.ID,
		Filename:             d.Filename,
		ContentType:          d.ContentType,
		DeclaredSize:         d.DeclaredSize,
		SizeBytes:            d.SizeBytes,
		Checksum:             d.Checksum.OrNil(),
		Status:               d.Status,
		RejectReason:         d.RejectReason,
		Classification:       d.Classification,
		DetectedType:         d.DetectedType,
		Confidence:           d.Confidence,
		ClassificationReason: d.ClassificationReason,
		ScanStatus:           d.ScanStatus,
		ScanDetail:           d.ScanDetail,
		CreatedAt:            d.CreatedAt,
		ConfirmedAt:          d.ConfirmedAt,
		UpdatedAt:            d.UpdatedAt,
	}
}

type handlers struct {
	docs    Docs
	live    EventStream
	sweeps  Sweeps
	closing <-chan struct{}
	metrics *metrics.Metrics
	streams *eventStreams
}

// caller returns the authenticated principal; the auth middleware guarantees one.
func caller(r *http.Request) auth.Principal {
	p, _ := auth.FromContext(r.Context())
	return p
}

// documentID parses the {id} path parameter. A malformed id is answered
// 404, like an unknown one.
func documentID(w http.ResponseWriter, r *http.Request) (uuid.UUID, bool) {
	id, err := uuid.Parse(chi.URLParam(r, "id"))
	if err != nil {
		writeDetail(w, http.StatusNotFound, "document not found")
		return uuid.Nil, false
	}
	logWith(r, "document_id", id.String())
	return id, true
}

// logWith adds a field to the request's logger.
func logWith(r *http.Request, key, value string) {
	zerolog.Ctx(r.Context()).UpdateContext(func(c zerolog.Context) zerolog.Context { return c.Str(key, value) })
}

type uploadURLRequest struct {
	Filename    string `json:"filename"`
	ContentType string `json:"content_type"`
	SizeBytes   *int64 `json:"size_bytes"`
	Multipart   bool   `json:"multipart"`
	// SHA256 is the base64 of the file's SHA-256 digest, signed into
	// the URL.
	SHA256 *string `json:"sha256"`
	// PartChecksum "sha256" asks, for an upload in parts, that each part
	// be signed with its SHA-256.
	PartChecksum document.ChecksumAlgorithm `json:"part_checksum"`
}

type uploadURLResponse struct {
	UploadURL  string            `json:"upload_url"`
	DocumentID uuid.UUID         `json:"document_id"`
	ExpiresAt  time.Time         `json:"expires_at"`
	Headers    map[string]string `json:"headers"`
}

func (h *handlers) uploadURL(w http.ResponseWriter, r *http.Request) {
	var req uploadURLRequest
	if !readJSON(w, r, &req) {
		return
	}
	var checksum document.Checksum
	if req.SHA256 != nil {
		var err error
		if checksum, err = document.SHA256("sha256", *req.SHA256); err != nil {
			writeError(w, r, err)
			return
		}
	}
	t, err := h.docs.RequestUpload(r.Context(), caller(r).UserID, document.UploadRequest{
		Filename:      req.Filename,
		ContentType:   req.ContentType,
		SizeBytes:     req.SizeBytes,
		Multipart:     req.Multipart,
		Checksum:      checksum,
		PartChecksums: req.PartChecksum,
	})
	if err != nil {
		writeError(w, r, err)
		return
	}
	logWith(r, "document_id", t.DocumentID.String())
	if t.Duplicate != nil {
		writeJSON(w, http.StatusOK, duplicateResponse{Duplicate: true, DocumentID: t.DocumentID, Document: toJSON(t.Duplicate)})
		return
	}
	if p := t.Multipart; p != nil {
		writeSecret(w, http.StatusCreated, multipartResponse{DocumentID: t.DocumentID, UploadID: p.UploadID,
			PartSize: p.PartSize, PartCount: p.PartCount, ExpiresAt: t.ExpiresAt, Parts: partURLs(p.Parts), PartChecksum: p.PartChecksums})
		return
	}
	writeSecret(w, http.StatusCreated, uploadURLResponse{UploadURL: t.URL, DocumentID: t.DocumentID, ExpiresAt: t.ExpiresAt, Headers: t.Headers})
}

// duplicateResponse answers an upload-url whose checksum one of the
// caller's stored documents has: no bytes to move, nothing reserved.
type duplicateResponse struct {
	Duplicate  bool         `json:"duplicate"` // always true
	DocumentID uuid.UUID    `json:"document_id"`
	Document   documentJSON `json:"document"`
}

type confirmResponse struct {
	ID        uuid.UUID       `json:"id"`
	SizeBytes int64           `json:"size_bytes"`
	UsedBytes int64           `json:"used_bytes"`
	Status    document.Status `json:"status"`
	// Checksum is the stored bytes' checksum, as declared and proven by
	// MinIO; left out when none was declared.
	Checksum *document.Checksum `json:"checksum,omitempty"`
	// ClassificationStatus is set once classification ran (the other door
	// and the classifier may finish before the client confirms): the
	// contract's status stays "uploaded".
	ClassificationStatus document.Status `json:"classification_status,omitempty"`
}

func (h *handlers) confirm(w http.ResponseWriter, r *http.Request) {
	id, ok := documentID(w, r)
	if !ok {
		return
	}
	c, err := h.docs.Confirm(r.Context(), caller(r).UserID, id)
	h.metrics.Confirms.WithLabelValues("endpoint", string(document.Outcome(c, err))).Inc()
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeConfirmation(w, c)
}

// writeConfirmation answers a confirmation, of either door of the API
// (confirm, complete).
func writeConfirmation(w http.ResponseWriter, c document.Confirmation) {
	upload, classification := c.Document.Status.Upload()
	writeJSON(w, http.StatusOK, confirmResponse{ID: c.Document.ID, SizeBytes: c.Document.SizeBytes, UsedBytes: c.UsedBytes,
		Status: upload, Checksum: c.Document.Checksum.OrNil(), ClassificationStatus: classification})
}

type classifyResponse struct {
	ID     uuid.UUID       `json:"id"`
	Status document.Status `json:"status"`
}

// classify sends the document through classification again.
func (h *handlers) classify(w http.ResponseWriter, r *http.Request) {
	id, ok := documentID(w, r)
	if !ok {
		return
	}
	d, err := h.docs.Reclassify(r.Context(), caller(r).UserID, id)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, classifyResponse{ID: d.ID, Status: d.Status})
}

type listResponse struct {
	Items      []documentJSON `json:"items"`
	NextCursor *string        `json:"next_cursor"`
}

func (h *handlers) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	req := document.ListRequest{Status: document.Status(q.Get("status")), Classification: q.Get("classification"), Cursor: q.Get("cursor")}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			writeDetail(w, http.StatusUnprocessableEntity, "limit must be a positive integer")
			return
		}
		req.Limit = n
	}
	page, err := h.docs.List(r.Context(), caller(r).UserID, req)
	if err != nil {
		writeError(w, r, err)
		return
	}
	resp := listResponse{Items: make([]documentJSON, 0, len(page.Documents))}
	for _, d := range page.Documents {
		resp.Items = append(resp.Items, toJSON(d))
	}
	if page.NextCursor != "" {
		resp.NextCursor = &page.NextCursor
	}
	writeJSON(w, http.StatusOK, resp)
}

func (h *handlers) get(w http.ResponseWriter, r *http.Request) {
	id, ok := documentID(w, r)
	if !ok {
		return
	}
	d, url, err := h.docs.Get(r.Context(), caller(r).UserID, id)
	if err != nil {
		writeError(w, r, err)
		return
	}
	out := toJSON(d)
	out.DownloadURL = url
	writeSecret(w, http.StatusOK, out)
}

func (h *handlers) delete(w http.ResponseWriter, r *http.Request) {
	id, ok := documentID(w, r)
	if !ok {
		return
	}
	if err := h.docs.Delete(r.Context(), caller(r).UserID, id); err != nil {
		writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type meResponse struct {
	ID   uuid.UUID `json:"id"`
	Role auth.Role `json:"role"`
}

func (h *handlers) me(w http.ResponseWriter, r *http.Request) {
	p := caller(r)
	writeJSON(w, http.StatusOK, meResponse{ID: p.UserID, Role: p.Role})
}

type quotaResponse struct {
	UsedBytes     int64 `json:"used_bytes"`
	LimitBytes    int64 `json:"limit_bytes"`
	ReservedBytes int64 `json:"reserved_bytes"`
}

func (h *handlers) myQuota(w http.ResponseWriter, r *http.Request) {
	q, err := h.docs.Quota(r.Context(), caller(r).UserID)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, quotaResponse{UsedBytes: q.UsedBytes, LimitBytes: q.LimitBytes, ReservedBytes: q.ReservedBytes})
}

type setQuotaRequest struct {
	LimitBytes *int64 `json:"limit_bytes"`
}

type userQuotaResponse struct {
	UserID     uuid.UUID `json:"user_id"`
	UsedBytes  int64     `json:"used_bytes"`
	LimitBytes int64     `json:"limit_bytes"`
}

// releaseScan releases, as an administrator, a document whose scan failed:
// it becomes downloadable, though never scanned. The administrator is
// logged with it.
func (h *handlers) releaseScan(w http.ResponseWriter, r *http.Request) {
	id, ok := documentID(w, r)
	if !ok {
		return
	}
	d, err := h.docs.ReleaseScan(r.Context(), id)
	if err != nil {
		writeError(w, r, err)
		return
	}
	zerolog.Ctx(r.Context()).Warn().Str("admin", caller(r).UserID.String()).Str("scan_detail", d.ScanDetail).
		Msg("document released by an administrator without a scan")
	writeJSON(w, http.StatusOK, toJSON(d))
}

func (h *handlers) setQuota(w http.ResponseWriter, r *http.Request) {
	user, err := uuid.Parse(chi.URLParam(r, "id"))
	if err != nil {
		writeDetail(w, http.StatusUnprocessableEntity, "user id must be a UUID")
		return
	}
	var req setQuotaRequest
	if !readJSON(w, r, &req) {
		return
	}
	if req.LimitBytes == nil {
		writeDetail(w, http.StatusUnprocessableEntity, "limit_bytes is required")
		return
	}
	q, err := h.docs.SetQuotaLimit(r.Context(), user, *req.LimitBytes)
	if err != nil {
		writeError(w, r, err)
		return
	}
	zerolog.Ctx(r.Context()).Info().Str("target_user_id", user.String()).Int64("limit_bytes", q.LimitBytes).Msg("quota limit set")
	writeJSON(w, http.StatusOK, userQuotaResponse{UserID: user, UsedBytes: q.UsedBytes, LimitBytes: q.LimitBytes})
}

type sweepResponse struct {
	RunID string `json:"run_id"`
}

// sweep asks the sweeper for a run now; its result is logged and published
// on sweeper.run.completed under the returned run id.
func (h *handlers) sweep(w http.ResponseWriter, r *http.Request) {
	id, err := h.sweeps.TriggerSweep(r.Context())
	if err != nil {
		writeError(w, r, document.Wrap(document.Unavailable, err, "sweeper unavailable"))
		return
	}
	zerolog.Ctx(r.Context()).Info().Str("run_id", id).Msg("sweep requested")
	writeJSON(w, http.StatusAccepted, sweepResponse{RunID: id})
}
