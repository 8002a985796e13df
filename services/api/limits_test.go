package api_test

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/docuvault/docuvault/internal/apitest"
	"github.com/docuvault/docuvault/shared/config"
)

// wantTooMany checks r is a 429 with a Retry-After of 1 to most seconds
// and a {"detail": ...} saying why.
func wantTooMany(t *testing.T, what string, r apitest.Response, most int) {
	t.Helper()
	wait, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if r.Status != http.StatusTooManyRequests || err != nil || wait < 1 || wait > most {
		t.Fatalf("%s: %d %s, Retry-After %q; want 429 and 1..%d seconds", what, r.Status, r.Body, r.Header.Get("Retry-After"), most)
	}
	if d, ok := r.Detail(t).(string); !ok || d == "" {
		t.Fatalf("%s: detail %v, want a message", what, r.Detail(t))
	}
}

// TestCreateDeleteLoopIsRefused: upload-url then delete, again and again,
// never leaves more than one upload pending, yet the loop is refused after
// UPLOAD_RATE_PER_MINUTE requests: a delete gives none back. A multipart
// start is an upload request like any other.
func TestCreateDeleteLoopIsRefused(t *testing.T) {
	t.Parallel()
	const limit = 5
	s := apitest.Start(t, apitest.Options{Edit: func(c *config.Config) {
		c.UploadsPerMinute, c.MaxPendingUploads = limit, 1
	}})
	_, tok := s.NewUser(t)
	for i := range limit {
		var id uuid.UUID
		if i%2 == 0 {
			id = s.RequestUpload(t, tok, "loop.pdf", "application/pdf", 10).DocumentID
		} else {
			id = s.RequestMultipart(t, tok, "loop.pdf", 6<<20).DocumentID
		}
		if r := s.Do(t, http.MethodDelete, "/api/documents/"+id.String(), tok, nil); r.Status != http.StatusNoContent {
			t.Fatalf("delete %d: %d %s", i+1, r.Status, r.Body)
		}
	}
	r := s.Do(t, http.MethodPost, "/api/documents/upload-url", tok, map[string]any{"filename": "loop.pdf", "content_type": "application/pdf", "size_bytes": 10})
	wantTooMany(t, "upload-url after the loop", r, 60)
	r = s.Do(t, http.MethodPost, "/api/documents/upload-url", tok, map[string]any{"filename": "loop.pdf", "content_type": "application/pdf", "size_bytes": 6 << 20, "multipart": true})
	wantTooMany(t, "multipart start after the loop", r, 60)
	// Another user is not held back.
	_, other := s.NewUser(t)
	s.RequestUpload(t, other, "b.pdf", "application/pdf", 10)
}

// TestConcurrentUploadRequestsPassNoBound sends 50 upload-url requests of
// one user at once against MAX_PENDING_UPLOADS of 10: no more than 10 are
// created, though each request's count may have been read before the
// others committed.
func TestConcurrentUploadRequestsPassNoBound(t *testing.T) {
	t.Parallel()
	const n, bound = 50, 10
	s := apitest.Start(t, apitest.Options{Edit: func(c *config.Config) {
		c.UploadsPerMinute, c.MaxPendingUploads = 1000, bound
	}})
	_, tok := s.NewUser(t)
	var created, limited atomic.Int64
	var wg sync.WaitGroup
	gate := make(chan struct{})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n}}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := fmt.Sprintf(`{"filename":"c%d.pdf","content_type":"application/pdf","size_bytes":10}`, i)
			req, _ := http.NewRequest(http.MethodPost, s.URL+"/api/documents/upload-url", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/json")
			<-gate
			resp, err := client.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			switch resp.StatusCode {
			case http.StatusCreated:
				created.Add(1)
			case http.StatusTooManyRequests:
				limited.Add(1)
			default:
				t.Errorf("upload-url: %d", resp.StatusCode)
			}
		}()
	}
	close(gate)
	wg.Wait()
	t.Logf("%d concurrent upload-url requests, MAX_PENDING_UPLOADS %d: %d created, %d refused", n, bound, created.Load(), limited.Load())
	if created.Load() > bound || created.Load() < 1 || created.Load()+limited.Load() != n {
		t.Fatalf("%d created, %d refused; want at most %d created, the rest refused", created.Load(), limited.Load(), bound)
	}
	var page struct {
		Items []struct {
			Status string `json:"status"`
		} `json:"items"`
	}
	s.Do(t, http.MethodGet, "/api/documents?status=pending", tok, nil).Decode(t, &page)
	if len(page.Items) > bound {
		t.Fatalf("%d documents pending, bound %d", len(page.Items), bound)
	}
}

func TestDeletesAreRateLimited(t *testing.T) {
	t.Parallel()
	const limit = 3
	s := apitest.Start(t, apitest.Options{Edit: func(c *config.Config) { c.DeletesPerMinute = limit }})
	_, tok := s.NewUser(t)
	var ids []uuid.UUID
	for range limit + 1 {
		ids = append(ids, s.RequestUpload(t, tok, "d.pdf", "application/pdf", 10).DocumentID)
	}
	for _, id := range ids[:limit] {
		if r := s.Do(t, http.MethodDelete, "/api/documents/"+id.String(), tok, nil); r.Status != http.StatusNoContent {
			t.Fatalf("delete: %d %s", r.Status, r.Body)
		}
	}
	r := s.Do(t, http.MethodDelete, "/api/documents/"+ids[limit].String(), tok, nil)
	wantTooMany(t, "a delete past the limit", r, 60)
	if r := s.Do(t, http.MethodGet, "/api/documents/"+ids[limit].String(), tok, nil); r.Status != http.StatusOK {
		t.Fatalf("the document whose delete was refused: %d %s", r.Status, r.Body)
	}
	// Another user is not held back.
	_, other := s.NewUser(t)
	id := s.RequestUpload(t, other, "e.pdf", "application/pdf", 10).DocumentID
	if r := s.Do(t, http.MethodDelete, "/api/documents/"+id.String(), other, nil); r.Status != http.StatusNoContent {
		t.Fatalf("another user's delete: %d %s", r.Status, r.Body)
	}
}

// TestStorageCallsAreRateLimited: confirms of a pending upload, part
// signing and listing, and complete share one bucket per user: a burst of
// STORAGE_RATE_PER_MINUTE, then that many a minute; past it 429 with
// Retry-After. A confirm of an uploaded document asks MinIO nothing and is
// not counted.
func TestStorageCallsAreRateLimited(t *testing.T) {
	t.Parallel()
	const limit = 6 // one more every 10 s
	s := apitest.Start(t, apitest.Options{Edit: func(c *config.Config) { c.StoragePerMinute = limit }})
	_, tok := s.NewUser(t)
	// A confirm that may find it pending (a request) or confirmed by the
	// notification (none).
	done := s.Upload(t, tok, "done.pdf", apitest.BytesOf(10))
	if r := s.Confirm(t, tok, done); r.Status != http.StatusOK {
		t.Fatalf("confirm: %d %s", r.Status, r.Body)
	}
	start := time.Now()
	waiting := s.RequestUpload(t, tok, "waiting.pdf", "application/pdf", 10).DocumentID
	p := s.RequestMultipart(t, tok, "big.pdf", 6<<20)
	base := "/api/documents/" + p.DocumentID.String()
	calls := []struct {
		what, method, path string
		body               any
	}{
		{"confirm of a pending upload", http.MethodPost, "/api/documents/" + waiting.String() + "/confirm", nil},
		{"sign parts", http.MethodPost, base + "/parts", map[string]any{"part_numbers": []int{1}}},
		{"list parts", http.MethodGet, base + "/parts", nil},
		{"complete", http.MethodPost, base + "/complete", map[string]any{"parts": []map[string]any{{"part_number": 1, "etag": "x"}}}},
	}
	// Each passes (whatever it answers) until the bucket is empty.
	passed := 0
	for ; passed <= 2*limit; passed++ {
		c := calls[passed%len(calls)]
		if r := s.Do(t, c.method, c.path, tok, c.body); r.Status == http.StatusTooManyRequests {
			break
		}
	}
	if most := limit + int(time.Since(start)/(10*time.Second)); passed < limit-1 || passed > most {
		t.Fatalf("%d requests passed, want %d to %d: a burst of %d, less the first confirm's", passed, limit-1, most, limit)
	}
	for _, c := range calls {
		wantTooMany(t, c.what+" past the limit", s.Do(t, c.method, c.path, tok, c.body), 10)
	}
	if r := s.Confirm(t, tok, done); r.Status != http.StatusOK {
		t.Fatalf("confirm of an uploaded document, no request left: %d %s", r.Status, r.Body)
	}
	// Another user is not held back.
	_, other := s.NewUser(t)
	s.Upload(t, other, "o.pdf", apitest.BytesOf(10))
}
