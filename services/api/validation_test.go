package api_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/docuvault/docuvault/internal/apitest"
	"github.com/docuvault/docuvault/internal/testenv"
	"github.com/docuvault/docuvault/shared/config"
)

func TestUploadURLRejectsBadInput(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{Edit: func(c *config.Config) { c.MaxUploadBytes = 1 << 20 }})
	user, tok := s.NewUser(t)
	for _, tc := range []struct {
		name   string
		body   string
		status int
	}{
		{"malformed JSON", `{"filename": "a.pdf",`, http.StatusBadRequest},
		{"not an object", `["a.pdf"]`, http.StatusBadRequest},
		{"empty body", ``, http.StatusBadRequest},
		{"two objects", `{"filename":"a.pdf","content_type":"application/pdf"}{}`, http.StatusBadRequest},
		{"unknown field", `{"filename":"a.pdf","content_type":"application/pdf","owner":"me"}`, http.StatusBadRequest},
		{"size not a number", `{"filename":"a.pdf","content_type":"application/pdf","size_bytes":"12"}`, http.StatusBadRequest},
		{"missing filename", `{"content_type":"application/pdf"}`, http.StatusUnprocessableEntity},
		{"empty filename", `{"filename":"","content_type":"application/pdf"}`, http.StatusUnprocessableEntity},
		{"blank filename", `{"filename":"   ","content_type":"application/pdf"}`, http.StatusUnprocessableEntity},
		{"missing content type", `{"filename":"a.pdf"}`, http.StatusUnprocessableEntity},
		{"bad content type", `{"filename":"a.pdf","content_type":"pdf please"}`, http.StatusUnprocessableEntity},
		{"filename over 255 bytes", fmt.Sprintf(`{"filename":%q,"content_type":"application/pdf"}`, strings.Repeat("é", 128)), http.StatusUnprocessableEntity},
		{"control characters", `{"filename":"a\u0000b.pdf","content_type":"application/pdf"}`, http.StatusUnprocessableEntity},
		{"newline in filename", `{"filename":"a\nb.pdf","content_type":"application/pdf"}`, http.StatusUnprocessableEntity},
		{"right-to-left override in filename", `{"filename":"invoice\u202efdp.exe","content_type":"application/pdf"}`, http.StatusUnprocessableEntity},
		{"right-to-left isolate in filename", `{"filename":"a\u2067b\u2069.pdf","content_type":"application/pdf"}`, http.StatusUnprocessableEntity},
		{"zero width space in filename", `{"filename":"in\u200bvoice.pdf","content_type":"application/pdf"}`, http.StatusUnprocessableEntity},
		{"byte order mark in filename", `{"filename":"\ufeffa.pdf","content_type":"application/pdf"}`, http.StatusUnprocessableEntity},
		{"zero size", `{"filename":"a.pdf","content_type":"application/pdf","size_bytes":0}`, http.StatusUnprocessableEntity},
		{"negative size", `{"filename":"a.pdf","content_type":"application/pdf","size_bytes":-5}`, http.StatusUnprocessableEntity},
		{"size over MAX_UPLOAD_BYTES", `{"filename":"a.pdf","content_type":"application/pdf","size_bytes":1048577}`, http.StatusRequestEntityTooLarge},
		{"body over 64 KiB", `{"filename":"a.pdf","content_type":"application/pdf","x":"` + strings.Repeat("a", 70<<10) + `"}`, http.StatusRequestEntityTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := s.Do(t, http.MethodPost, "/api/documents/upload-url", tok, tc.body)
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tc.status, r.Body)
			}
			if _, ok := r.Detail(t).(string); !ok {
				t.Fatalf("detail is not a message: %s", r.Body)
			}
		})
	}
	var n int
	if err := s.DB.QueryRow(context.Background(), "SELECT count(*) FROM documents WHERE user_id = $1", user).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d documents written by refused requests", n)
	}
	// Exactly 255 bytes is allowed, and so is right-to-left text.
	s.RequestUpload(t, tok, strings.Repeat("b", 251)+".pdf", "application/pdf", 10)
	s.RequestUpload(t, tok, "\u05d7\u05e9\u05d1\u05d5\u05e0\u05d9\u05ea.pdf", "application/pdf", 10)
}

// TestRequireDeclaredSize: with REQUIRE_DECLARED_SIZE an upload URL asked
// for without size_bytes is refused 422 and nothing is made; with a size
// it is given as ever.
func TestRequireDeclaredSize(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{Edit: func(c *config.Config) { c.RequireDeclaredSize = true }})
	user, tok := s.NewUser(t)
	r := s.Do(t, http.MethodPost, "/api/documents/upload-url", tok, map[string]any{"filename": "a.pdf", "content_type": "application/pdf"})
	if r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("upload-url without size_bytes: %d %s, want 422", r.Status, r.Body)
	}
	if d, _ := r.Detail(t).(string); !strings.Contains(d, "size_bytes") {
		t.Errorf("detail %q does not name size_bytes", d)
	}
	var n int
	if err := s.DB.QueryRow(context.Background(), "SELECT count(*) FROM documents WHERE user_id = $1", user).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d documents made by a refused request", n)
	}
	tk := s.RequestUpload(t, tok, "a.pdf", "application/pdf", 10)
	if !strings.Contains(tk.UploadURL, "content-length") {
		t.Errorf("the declared size is not signed into %s", tk.UploadURL)
	}
}

func TestListPagesNewestFirstAndFilters(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	_, tok := s.NewUser(t)
	var ids []string
	for i := range 5 {
		tk := s.RequestUpload(t, tok, fmt.Sprintf("f%d.txt", i), "text/plain", -1)
		ids = append(ids, tk.DocumentID.String())
	}
	confirmed := s.Upload(t, tok, "done.pdf", apitest.BytesOf(5))
	if r := s.Confirm(t, tok, confirmed); r.Status != http.StatusOK {
		t.Fatal(r.Status)
	}

	var seen []string
	cursor := ""
	pages := 0
	for {
		path := "/api/documents?status=pending&limit=2"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		r := s.Do(t, http.MethodGet, path, tok, nil)
		if r.Status != http.StatusOK {
			t.Fatalf("list: %d %s", r.Status, r.Body)
		}
		var page struct {
			Items []struct {
				ID     string `json:"id"`
				Status string `json:"status"`
			} `json:"items"`
			NextCursor *string `json:"next_cursor"`
		}
		r.Decode(t, &page)
		pages++
		for _, it := range page.Items {
			if it.Status != "pending" {
				t.Fatalf("status filter let %s through", it.Status)
			}
			seen = append(seen, it.ID)
		}
		if page.NextCursor == nil {
			break
		}
		cursor = *page.NextCursor
	}
	want := []string{ids[4], ids[3], ids[2], ids[1], ids[0]}
	if strings.Join(seen, ",") != strings.Join(want, ",") || pages != 3 {
		t.Fatalf("pages=%d seen %v, want newest first %v", pages, seen, want)
	}

	for _, bad := range []string{"?limit=0", "?limit=abc", "?limit=1000", "?status=done", "?cursor=zzz"} {
		if r := s.Do(t, http.MethodGet, "/api/documents"+bad, tok, nil); r.Status != http.StatusUnprocessableEntity && r.Status != http.StatusBadRequest {
			t.Errorf("list%s: %d %s", bad, r.Status, r.Body)
		}
	}
}

func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	if r := s.Do(t, http.MethodGet, "/healthz", "", nil); r.Status != http.StatusOK {
		t.Fatalf("healthz: %d", r.Status)
	}
	r := s.Do(t, http.MethodGet, "/readyz", "", nil)
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `"postgres":"ok"`) || !strings.Contains(string(r.Body), `"minio":"ok"`) {
		t.Fatalf("readyz: %d %s", r.Status, r.Body)
	}
	if r := s.Do(t, http.MethodGet, "/nope", "", nil); r.Status != http.StatusNotFound || r.Detail(t) == nil {
		t.Fatalf("unknown route: %d %s", r.Status, r.Body)
	}
}

func TestObjectStoreOutage(t *testing.T) {
	t.Parallel()
	mi := testenv.StartMinIO(t, testenv.MinIOOptions{})
	s := apitest.Start(t, apitest.Options{MinIO: mi})
	_, tok := s.NewUser(t)
	tk := s.RequestUpload(t, tok, "a.pdf", "application/pdf", 3)
	if st := s.Put(t, tk, "", []byte("abc")); st != http.StatusOK {
		t.Fatalf("PUT: %d", st)
	}

	s.MinIO.Stop()
	r := s.Do(t, http.MethodGet, "/readyz", "", nil)
	if r.Status != http.StatusServiceUnavailable || !strings.Contains(string(r.Body), `"minio":"unavailable"`) || !strings.Contains(string(r.Body), `"postgres":"ok"`) {
		t.Fatalf("readyz with MinIO down: %d %s", r.Status, r.Body)
	}
	if r := s.Confirm(t, tok, tk.DocumentID); r.Status != http.StatusServiceUnavailable {
		t.Fatalf("confirm with MinIO down: %d %s", r.Status, r.Body)
	}
	if used, _ := s.Quota(t, tok); used != 0 {
		t.Fatalf("used_bytes = %d after a failed confirm", used)
	}

	s.MinIO.Restart(t)
	r = s.Confirm(t, tok, tk.DocumentID)
	var c apitest.Confirmation
	r.Decode(t, &c)
	if r.Status != http.StatusOK || c.UsedBytes != 3 {
		t.Fatalf("confirm after MinIO returned: %d %s", r.Status, r.Body)
	}
}

func TestPageIsServedWithItsSecurityHeaders(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	r := s.Do(t, http.MethodGet, "/", "", nil)
	csp := r.Header.Get("Content-Security-Policy")
	if r.Status != http.StatusOK || !strings.Contains(string(r.Body), `id="file-input"`) || !strings.Contains(csp, "connect-src 'self' http://"+s.Cfg.MinIOEndpoint) {
		t.Fatalf("GET /: %d, CSP %q", r.Status, csp)
	}
	if r := s.Do(t, http.MethodGet, "/app.js", "", nil); r.Status != http.StatusOK || !strings.Contains(r.Header.Get("Content-Type"), "javascript") {
		t.Fatalf("GET /app.js: %d %s", r.Status, r.Header.Get("Content-Type"))
	}
	// Outside dev mode the dev token endpoint does not exist: it is just
	// another /api path, behind authentication like the rest.
	if r := s.Do(t, http.MethodPost, "/api/dev/token", "", nil); r.Status != http.StatusUnauthorized {
		t.Fatalf("dev token outside dev mode, no token: %d %s", r.Status, r.Body)
	}
	_, tok := s.NewUser(t)
	if r := s.Do(t, http.MethodPost, "/api/dev/token", tok, nil); r.Status != http.StatusNotFound {
		t.Fatalf("dev token outside dev mode: %d %s", r.Status, r.Body)
	}
	if r := s.Do(t, http.MethodGet, "/../go.mod", "", nil); r.Status != http.StatusNotFound {
		t.Fatalf("path escape: %d", r.Status)
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	_, tok := s.NewUser(t)
	id := s.Upload(t, tok, "m.pdf", apitest.BytesOf(10))
	if r := s.Confirm(t, tok, id); r.Status != http.StatusOK {
		t.Fatal(r.Status)
	}
	r := s.Do(t, http.MethodGet, "/metrics", "", nil)
	body := string(r.Body)
	for _, want := range []string{
		`docuvault_confirms_total{door="endpoint",outcome="uploaded"}`,
		`docuvault_http_requests_total{method="POST",route="/api/documents/{id}/confirm",status="200"}`,
		`docuvault_http_request_duration_seconds_bucket{method="POST",route="/api/documents/upload-url"`,
		`docuvault_outbox_waiting`,
	} {
		if r.Status != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(body, id.String()) {
		t.Error("a document id leaked into metric labels")
	}
}
