package api

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/docuvault/docuvault/shared/document"
)

// FuzzUploadURLDecoder feeds arbitrary bodies to the upload-url decoder:
// it never panics, answers only 400, 413 or 415 on refusal, and what it
// accepts is exactly one JSON object with known fields.
func FuzzUploadURLDecoder(f *testing.F) {
	f.Add([]byte(`{"filename":"a.pdf","content_type":"application/pdf","size_bytes":10}`))
	f.Add([]byte(`{"filename":"a.pdf"}{}`))
	f.Add([]byte(`{"filename":1}`))
	f.Add([]byte(`{"x":`))
	f.Add([]byte(`{"filename":"\u0000","content_type":"","size_bytes":-1}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		r := httptest.NewRequest(http.MethodPost, "/api/documents/upload-url", strings.NewReader(string(body)))
		r.Header.Set("Content-Type", "application/json")
		var req uploadURLRequest
		status, err := decodeJSON(httptest.NewRecorder(), r, &req)
		if err != nil {
			if status != http.StatusBadRequest && status != http.StatusRequestEntityTooLarge {
				t.Fatalf("refused with %d: %v", status, err)
			}
			return
		}
		if len(body) > maxBodyBytes {
			t.Fatalf("accepted a %d-byte body", len(body))
		}
		ur := document.UploadRequest{Filename: req.Filename, ContentType: req.ContentType, SizeBytes: req.SizeBytes}
		if err := ur.Validate(100 << 20); err == nil && (req.Filename == "" || req.ContentType == "") {
			t.Fatalf("validated an incomplete request %+v", req)
		}
	})
}
