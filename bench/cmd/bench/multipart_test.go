package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// fakeMultipartAPI answers upload-url, parts and complete as the contract
// of issue 16 says, and takes the part PUTs itself, checking each body's
// length against the part's size.
type fakeMultipartAPI struct {
	t          *testing.T
	partSize   int64
	size       int64
	srv        *httptest.Server
	mu         sync.Mutex
	etags      map[int]string
	partsCalls [][]int
	inFlight   atomic.Int32
	maxFlight  atomic.Int32
	completed  bool
}

func (f *fakeMultipartAPI) count() int { return int((f.size + f.partSize - 1) / f.partSize) }

func (f *fakeMultipartAPI) part(n int) mpPart {
	size := min(f.partSize, f.size-int64(n-1)*f.partSize)
	return mpPart{Number: n, Size: size, URL: f.srv.URL + "/minio/part?n=" + strconv.Itoa(n) + "&size=" + strconv.FormatInt(size, 10)}
}

func (f *fakeMultipartAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := "7b0c2a52-1d1f-4b1e-9a57-3f0a4c7e2d10"
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/api/documents/upload-url":
		var req struct {
			SizeBytes int64 `json:"size_bytes"`
			Multipart bool  `json:"multipart"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || !req.Multipart || req.SizeBytes != f.size {
			http.Error(w, `{"detail":"bad upload-url"}`, http.StatusBadRequest)
			return
		}
		var parts []mpPart
		for n := 1; n <= min(f.count(), 10); n++ {
			parts = append(parts, f.part(n))
		}
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]any{"document_id": id, "upload_id": "up", "part_size": f.partSize,
			"part_count": f.count(), "expires_at": "2030-01-01T00:00:00Z", "parts": parts})
	case r.Method == http.MethodPost && r.URL.Path == "/api/documents/"+id+"/parts":
		var req struct {
			PartNumbers []int `json:"part_numbers"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.PartNumbers) == 0 || len(req.PartNumbers) > 100 {
			http.Error(w, `{"detail":"bad part numbers"}`, http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		f.partsCalls = append(f.partsCalls, req.PartNumbers)
		f.mu.Unlock()
		var parts []mpPart
		for _, n := range req.PartNumbers {
			parts = append(parts, f.part(n))
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"expires_at": "2030-01-01T00:00:00Z", "parts": parts})
	case r.Method == http.MethodPut && r.URL.Path == "/minio/part":
		n := f.inFlight.Add(1)
		defer f.inFlight.Add(-1)
		for m := f.maxFlight.Load(); n > m && !f.maxFlight.CompareAndSwap(m, n); m = f.maxFlight.Load() {
		}
		got, _ := io.Copy(io.Discard, r.Body)
		if strconv.FormatInt(got, 10) != r.URL.Query().Get("size") || r.ContentLength != got {
			http.Error(w, "wrong length", http.StatusForbidden)
			return
		}
		num, _ := strconv.Atoi(r.URL.Query().Get("n"))
		etag := fmt.Sprintf(`"etag-%d"`, num)
		f.mu.Lock()
		f.etags[num] = etag
		f.mu.Unlock()
		w.Header().Set("ETag", etag)
	case r.Method == http.MethodPost && r.URL.Path == "/api/documents/"+id+"/complete":
		var req struct {
			Parts []mpETag `json:"parts"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Parts) != f.count() {
			http.Error(w, `{"detail":"bad parts"}`, http.StatusBadRequest)
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		for i, p := range req.Parts {
			if p.Number != i+1 || p.ETag != f.etags[p.Number] {
				http.Error(w, `{"detail":"wrong part"}`, http.StatusBadRequest)
				return
			}
		}
		f.completed = true
		_ = json.NewEncoder(w).Encode(map[string]any{"id": id, "size_bytes": f.size, "used_bytes": f.size, "status": "uploaded"})
	default:
		f.t.Errorf("unexpected %s %s", r.Method, r.URL)
		http.NotFound(w, r)
	}
}

// TestDocuVaultMultipartClient checks the bench's DocuVault client against
// the contract: every part PUT with its size, at most mpConcurrency at a
// time, the URLs beyond the first 10 asked for in order, the ETags
// completed in order.
func TestDocuVaultMultipartClient(t *testing.T) {
	for _, tc := range []struct {
		name      string
		size      int64
		wantCalls int
	}{
		{"one part", 3 << 10, 0},
		{"ten parts exactly", 10 << 10, 0},
		{"uneven last part", 64<<10 + 17, 6},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeMultipartAPI{t: t, partSize: 1 << 10, size: tc.size, etags: map[int]string{}}
			f.srv = httptest.NewServer(f)
			defer f.srv.Close()
			s := &stack{client: f.srv.Client(), apiURL: f.srv.URL}
			r := s.mpUpload(context.Background(), mpDocuVault, "token", tc.size, &mpBody{})
			if r.err != nil {
				t.Fatal(r.err)
			}
			if !f.completed || r.parts != f.count() || r.partSize != f.partSize {
				t.Fatalf("completed %v, parts %d of %d bytes; want %d of %d", f.completed, r.parts, r.partSize, f.count(), f.partSize)
			}
			if len(f.partsCalls) != tc.wantCalls || r.requests != 2+tc.wantCalls {
				t.Fatalf("%d calls to /parts (%v), %d requests; want %d calls", len(f.partsCalls), f.partsCalls, r.requests, tc.wantCalls)
			}
			next := 11
			for _, c := range f.partsCalls {
				for _, n := range c {
					if n != next {
						t.Fatalf("/parts asked for %v, want part %d next", f.partsCalls, next)
					}
					next++
				}
			}
			if m := f.maxFlight.Load(); m > mpConcurrency {
				t.Fatalf("%d parts in flight at once, want at most %d", m, mpConcurrency)
			}
		})
	}
}

// TestDocuVaultMultipartRefusedPart checks that a refused part fails the
// upload (and that the client then deletes the document).
func TestDocuVaultMultipartRefusedPart(t *testing.T) {
	f := &fakeMultipartAPI{t: t, partSize: 1 << 10, size: 20 << 10, etags: map[int]string{}}
	var deleted atomic.Bool
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPut && r.URL.Query().Get("n") == "13":
			_, _ = io.Copy(io.Discard, r.Body)
			http.Error(w, "no", http.StatusForbidden)
		case r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, "/api/documents/"):
			deleted.Store(true)
			w.WriteHeader(http.StatusNoContent)
		default:
			f.ServeHTTP(w, r)
		}
	}))
	defer f.srv.Close()
	s := &stack{client: f.srv.Client(), apiURL: f.srv.URL}
	r := s.mpUpload(context.Background(), mpDocuVault, "token", f.size, &mpBody{})
	if r.err == nil || !strings.Contains(r.err.Error(), "part 13") {
		t.Fatalf("error %v, want one about part 13", r.err)
	}
	if f.completed || !deleted.Load() {
		t.Fatalf("completed %v, deleted %v; want not completed, deleted", f.completed, deleted.Load())
	}
}
