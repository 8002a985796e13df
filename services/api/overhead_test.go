package api

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/shared/auth"
	"github.com/docuvault/docuvault/shared/document"
	"github.com/docuvault/docuvault/shared/metrics"
)

// stubDocs answers the two requests of an upload at once, so that what a
// benchmark of them measures is the API's own cost per request.
type stubDocs struct {
	Docs // the other use cases are not called
	doc  document.Document
}

func (s *stubDocs) RequestUpload(context.Context, uuid.UUID, document.UploadRequest) (document.UploadTicket, error) {
	return document.UploadTicket{DocumentID: s.doc.ID, ExpiresAt: s.doc.CreatedAt.Add(15 * time.Minute),
		URL:     "http://127.0.0.1:9000/documents/" + s.doc.ID.String() + "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=0123456789abcdef",
		Headers: map[string]string{"Content-Type": "application/pdf", "If-None-Match": "*"}}, nil
}

func (s *stubDocs) Confirm(context.Context, uuid.UUID, uuid.UUID) (document.Confirmation, error) {
	return document.Confirmation{Document: &s.doc, UsedBytes: 65536, Changed: true}, nil
}

// BenchmarkUploadRequests is an upload's two requests to the API
// (upload-url, then confirm) through every middleware, with the use cases
// stubbed out: the API's cost per upload besides PostgreSQL and MinIO.
func BenchmarkUploadRequests(b *testing.B) {
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, reg)
	if err != nil {
		b.Fatal(err)
	}
	cfg := auth.Config{Secret: []byte("0123456789abcdef0123456789abcdef-bench")}
	v, err := auth.NewVerifier(cfg)
	if err != nil {
		b.Fatal(err)
	}
	tok, err := auth.Mint(cfg, auth.Principal{UserID: uuid.New(), Role: auth.RoleUser}, time.Hour, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	docs := &stubDocs{doc: document.Document{ID: uuid.New(), SizeBytes: 65536, Status: document.StatusUploaded, CreatedAt: time.Now()}}
	h := Handler(Deps{Docs: docs, Verifier: v, Metrics: m,
		Log: zerolog.New(io.Discard).With().Timestamp().Str("service", "api").Logger()})
	const body = `{"filename":"report.pdf","content_type":"application/pdf","size_bytes":65536}`
	confirmPath := "/api/documents/" + docs.doc.ID.String() + "/confirm"
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/api/documents/upload-url", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusCreated {
			b.Fatalf("upload-url: %d %s", rec.Code, rec.Body)
		}
		req = httptest.NewRequest(http.MethodPost, confirmPath, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("confirm: %d %s", rec.Code, rec.Body)
		}
	}
}
