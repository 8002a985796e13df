package api

import (
	"fmt"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/docuvault/docuvault/shared/document"
)

// maxCompleteBytes bounds a complete request's body: 10,000 parts of
// about 60 bytes each, with room for spaces.
const maxCompleteBytes = 1 << 20

type partURLJSON struct {
	PartNumber int    `json:"part_number"`
	Size       int64  `json:"size"`
	URL        string `json:"url"`
}

func partURLs(parts []document.PartURL) []partURLJSON {
	out := make([]partURLJSON, len(parts))
	for i, p := range parts {
		out[i] = partURLJSON{PartNumber: p.Number, Size: p.Size, URL: p.URL}
	}
	return out
}

// multipartResponse is upload-url's answer for an upload in parts.
type multipartResponse struct {
	DocumentID uuid.UUID     `json:"document_id"`
	UploadID   string        `json:"upload_id"`
	PartSize   int64         `json:"part_size"`
	PartCount  int           `json:"part_count"`
	ExpiresAt  time.Time     `json:"expires_at"`
	Parts      []partURLJSON `json:"parts"`
	// PartChecksum is "sha256" when each part's URL signs its SHA-256:
	// the plan then gives no part URLs, and the client asks for each with
	// its digest.
	PartChecksum document.ChecksumAlgorithm `json:"part_checksum,omitempty"`
}

// signPartsRequest asks for part URLs by number (part_numbers) or, for
// an upload whose parts are checksummed, by number and SHA-256 (parts).
type signPartsRequest struct {
	PartNumbers []int             `json:"part_numbers"`
	Parts       []checksummedPart `json:"parts"`
}

type checksummedPart struct {
	PartNumber int    `json:"part_number"`
	SHA256     string `json:"sha256"`
}

// asked returns the parts req asks for.
func (req signPartsRequest) asked() ([]document.Part, error) {
	if len(req.PartNumbers) > 0 && len(req.Parts) > 0 {
		return nil, document.Errorf(document.Invalid, "send part_numbers or parts, not both")
	}
	out := make([]document.Part, 0, len(req.PartNumbers)+len(req.Parts))
	for _, n := range req.PartNumbers {
		out = append(out, document.Part{Number: n})
	}
	for _, p := range req.Parts {
		sum, err := document.SHA256(fmt.Sprintf("the sha256 of part %d", p.PartNumber), p.SHA256)
		if err != nil {
			return nil, err
		}
		out = append(out, document.Part{Number: p.PartNumber, ChecksumSHA256: sum.Value})
	}
	return out, nil
}

type signPartsResponse struct {
	ExpiresAt time.Time     `json:"expires_at"`
	Parts     []partURLJSON `json:"parts"`
}

// signParts answers URLs for more parts of a multipart upload.
func (h *handlers) signParts(w http.ResponseWriter, r *http.Request) {
	id, ok := documentID(w, r)
	if !ok {
		return
	}
	var req signPartsRequest
	if !readJSON(w, r, &req) {
		return
	}
	asked, err := req.asked()
	if err != nil {
		writeError(w, r, err)
		return
	}
	urls, expires, err := h.docs.SignParts(r.Context(), caller(r).UserID, id, asked)
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeSecret(w, http.StatusOK, signPartsResponse{ExpiresAt: expires, Parts: partURLs(urls)})
}

type partJSON struct {
	PartNumber int    `json:"part_number"`
	Size       int64  `json:"size"`
	ETag       string `json:"etag"`
	SHA256     string `json:"sha256,omitempty"` // as MinIO took it, when the parts are checksummed
}

type partsResponse struct {
	DocumentID uuid.UUID  `json:"document_id"`
	UploadID   string     `json:"upload_id"`
	PartSize   int64      `json:"part_size"`
	PartCount  int        `json:"part_count"`
	Parts      []partJSON `json:"parts"`
}

// parts lists the parts the object store holds, for a client resuming.
func (h *handlers) parts(w http.ResponseWriter, r *http.Request) {
	id, ok := documentID(w, r)
	if !ok {
		return
	}
	d, parts, err := h.docs.Parts(r.Context(), caller(r).UserID, id)
	if err != nil {
		writeError(w, r, err)
		return
	}
	out := make([]partJSON, len(parts))
	for i, p := range parts {
		out[i] = partJSON{PartNumber: p.Number, Size: p.Size, ETag: p.ETag, SHA256: p.ChecksumSHA256}
	}
	writeJSON(w, http.StatusOK, partsResponse{DocumentID: d.ID, UploadID: d.UploadID, PartSize: d.PartSize,
		PartCount: document.PartCount(d), Parts: out})
}

type completePart struct {
	PartNumber int    `json:"part_number"`
	ETag       string `json:"etag"`
}

type completeRequest struct {
	Parts []completePart `json:"parts"`
}

// complete completes a multipart upload and confirms it: the multipart
// door of the Confirm use case.
func (h *handlers) complete(w http.ResponseWriter, r *http.Request) {
	id, ok := documentID(w, r)
	if !ok {
		return
	}
	var req completeRequest
	if !readJSONUpTo(w, r, &req, maxCompleteBytes) {
		return
	}
	if len(req.Parts) > document.MaxParts {
		writeDetail(w, http.StatusBadRequest, "parts must list at most 10000 parts")
		return
	}
	parts := make([]document.Part, len(req.Parts))
	for i, p := range req.Parts {
		parts[i] = document.Part{Number: p.PartNumber, ETag: p.ETag}
	}
	c, err := h.docs.Complete(r.Context(), caller(r).UserID, id, parts)
	h.metrics.Confirms.WithLabelValues("complete", string(document.Outcome(c, err))).Inc()
	if err != nil {
		writeError(w, r, err)
		return
	}
	writeConfirmation(w, c)
}
