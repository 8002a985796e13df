package apitest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// PartURL is one part's presigned URL as the API answers it.
type PartURL struct {
	PartNumber int    `json:"part_number"`
	Size       int64  `json:"size"`
	URL        string `json:"url"`
}

// Plan is upload-url's answer for a multipart upload.
type Plan struct {
	DocumentID uuid.UUID `json:"document_id"`
	UploadID   string    `json:"upload_id"`
	PartSize   int64     `json:"part_size"`
	PartCount  int       `json:"part_count"`
	ExpiresAt  time.Time `json:"expires_at"`
	Parts      []PartURL `json:"parts"`
}

// CompletedPart is a part as complete takes it.
type CompletedPart struct {
	PartNumber int    `json:"part_number"`
	ETag       string `json:"etag"`
}

// RequestMultipart asks for a multipart upload of size bytes and expects 201.
func (s *Stack) RequestMultipart(tb testing.TB, token, filename string, size int64) Plan {
	tb.Helper()
	r := s.Do(tb, http.MethodPost, "/api/documents/upload-url", token,
		map[string]any{"filename": filename, "content_type": "application/pdf", "size_bytes": size, "multipart": true})
	if r.Status != http.StatusCreated {
		tb.Fatalf("upload-url (multipart): %d %s", r.Status, r.Body)
	}
	var p Plan
	r.Decode(tb, &p)
	return p
}

// SignParts asks for the URLs of parts numbers and expects 200.
func (s *Stack) SignParts(tb testing.TB, token string, id uuid.UUID, numbers ...int) []PartURL {
	tb.Helper()
	r := s.Do(tb, http.MethodPost, "/api/documents/"+id.String()+"/parts", token, map[string]any{"part_numbers": numbers})
	if r.Status != http.StatusOK {
		tb.Fatalf("sign parts: %d %s", r.Status, r.Body)
	}
	var out struct {
		Parts []PartURL `json:"parts"`
	}
	r.Decode(tb, &out)
	return out.Parts
}

// PutPart sends data to a part URL, with extra headers, and returns MinIO's
// status and the part's ETag (without quotes).
func (s *Stack) PutPart(tb testing.TB, url string, data []byte, header http.Header) (int, string) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPut, url, bytes.NewReader(data))
	if err != nil {
		tb.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := s.client.Do(req)
	if err != nil {
		tb.Fatalf("PUT part: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, strings.Trim(resp.Header.Get("ETag"), `"`)
}

// UploadParts uploads data in the plan's parts (signing those the plan
// did not hold) and returns them as complete takes them.
func (s *Stack) UploadParts(tb testing.TB, token string, p Plan, data []byte) []CompletedPart {
	tb.Helper()
	urls := map[int]PartURL{}
	for _, u := range p.Parts {
		urls[u.PartNumber] = u
	}
	var parts []CompletedPart
	for n := 1; n <= p.PartCount; n++ {
		u, ok := urls[n]
		if !ok {
			u = s.SignParts(tb, token, p.DocumentID, n)[0]
		}
		start := int64(n-1) * p.PartSize
		body := data[start : start+u.Size]
		st, etag := s.PutPart(tb, u.URL, body, nil)
		if st != http.StatusOK {
			tb.Fatalf("PUT part %d: MinIO answered %d", n, st)
		}
		parts = append(parts, CompletedPart{PartNumber: n, ETag: etag})
	}
	return parts
}

// Complete posts /api/documents/{id}/complete.
func (s *Stack) Complete(tb testing.TB, token string, id uuid.UUID, parts []CompletedPart) Response {
	tb.Helper()
	return s.Do(tb, http.MethodPost, "/api/documents/"+id.String()+"/complete", token, map[string]any{"parts": parts})
}

// OpenUploads returns the ids of the incomplete multipart uploads of
// exactly key (MinIO lists them by exact key only).
func (s *Stack) OpenUploads(tb testing.TB, key string) []string {
	tb.Helper()
	ids, err := s.ListOpenUploads(context.Background(), key)
	if err != nil {
		tb.Fatal(err)
	}
	return ids
}

// ListOpenUploads is OpenUploads for a goroutine other than the test's:
// it returns MinIO's error (MinIO may be away) instead of failing.
func (s *Stack) ListOpenUploads(ctx context.Context, key string) ([]string, error) {
	res, err := minio.Core{Client: s.minio}.ListMultipartUploads(ctx, s.Bucket, key, "", "", "", 1000)
	if err != nil {
		return nil, fmt.Errorf("list multipart uploads of %s: %w", key, err)
	}
	var ids []string
	for _, u := range res.Uploads {
		if u.Key == key {
			ids = append(ids, u.UploadID)
		}
	}
	return ids, nil
}

// ObjectKey returns the object key of document id.
func (s *Stack) ObjectKey(tb testing.TB, id uuid.UUID) string {
	tb.Helper()
	return s.objectKey(tb, id)
}

// Reserved returns the caller's reserved bytes from GET /api/auth/me/quota.
func (s *Stack) Reserved(tb testing.TB, token string) int64 {
	tb.Helper()
	r := s.Do(tb, http.MethodGet, "/api/auth/me/quota", token, nil)
	var q struct {
		ReservedBytes int64 `json:"reserved_bytes"`
	}
	r.Decode(tb, &q)
	return q.ReservedBytes
}

// CompleteInMinIO completes the plan's upload from parts as the api's
// upload identity does, without the confirm the api's complete does next
// (as if the api replica died after MinIO answered).
func (s *Stack) CompleteInMinIO(tb testing.TB, p Plan, parts []CompletedPart) {
	tb.Helper()
	writer, err := minio.NewCore(s.MinIO.Endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(s.Cfg.MinIOUploadAccessKey, s.Cfg.MinIOUploadSecretKey, ""),
		Region: s.Cfg.MinIORegion,
	})
	if err != nil {
		tb.Fatal(err)
	}
	complete := make([]minio.CompletePart, len(parts))
	for i, cp := range parts {
		complete[i] = minio.CompletePart{PartNumber: cp.PartNumber, ETag: cp.ETag}
	}
	if _, err := writer.CompleteMultipartUpload(context.Background(), s.Bucket, s.ObjectKey(tb, p.DocumentID), p.UploadID, complete, minio.PutObjectOptions{}); err != nil {
		tb.Fatalf("complete in MinIO: %v", err)
	}
}
