package api_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
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

func TestUploadURLsAreRateLimitedPerUser(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{Edit: func(c *config.Config) {
		c.UploadsPerMinute = 50
		c.MaxPendingUploads = 10000
	}})
	_, tok := s.NewUser(t)
	_, other := s.NewUser(t)

	// 10,000 requests from one user, 16 at a time.
	const n = 10000
	var created, limited, wrong atomic.Int64
	var retryAfter atomic.Value
	var wg sync.WaitGroup
	next := make(chan int)
	body := []byte(`{"filename":"a.pdf","content_type":"application/pdf","size_bytes":10}`)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				req, _ := http.NewRequest(http.MethodPost, s.URL+"/api/documents/upload-url", strings.NewReader(string(body)))
				req.Header.Set("Authorization", "Bearer "+tok)
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					wrong.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch resp.StatusCode {
				case http.StatusCreated:
					created.Add(1)
				case http.StatusTooManyRequests:
					limited.Add(1)
					retryAfter.Store(resp.Header.Get("Retry-After"))
				default:
					wrong.Add(1)
				}
			}
		}()
	}
	start := time.Now()
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	elapsed := time.Since(start)
	t.Logf("10,000 upload-url requests in %s: %d created, %d refused with 429", elapsed.Round(time.Millisecond), created.Load(), limited.Load())
	// A window starts with the first request after the last one ended: a
	// run longer than a minute earns another 50. The count is exact, racing
	// requests included.
	allowed := int64(50 * (int(elapsed/time.Minute) + 1))
	if created.Load() < 50 || created.Load() > allowed || limited.Load() != n-created.Load() || wrong.Load() != 0 {
		t.Fatalf("created %d, limited %d, other %d", created.Load(), limited.Load(), wrong.Load())
	}
	if ra, _ := strconv.Atoi(fmt.Sprint(retryAfter.Load())); ra < 1 || ra > 60 {
		t.Fatalf("Retry-After %v, want 1..60 seconds", retryAfter.Load())
	}
	// Another user is not affected.
	s.RequestUpload(t, other, "b.pdf", "application/pdf", 10)
}

func TestPendingUploadsAreCapped(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{Edit: func(c *config.Config) { c.MaxPendingUploads = 5 }})
	_, tok := s.NewUser(t)
	var first apitest.Ticket
	for i := range 5 {
		tk := s.RequestUpload(t, tok, "p.pdf", "application/pdf", 3)
		if i == 0 {
			first = tk
		}
	}
	r := s.Do(t, http.MethodPost, "/api/documents/upload-url", tok, map[string]any{"filename": "six.pdf", "content_type": "application/pdf"})
	if r.Status != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
		t.Fatalf("sixth pending upload: %d %s", r.Status, r.Body)
	}
	// Finishing one makes room.
	if st := s.Put(t, first, "", []byte("abc")); st != http.StatusOK {
		t.Fatal(st)
	}
	if r := s.Confirm(t, tok, first.DocumentID); r.Status != http.StatusOK {
		t.Fatal(r.Status)
	}
	s.RequestUpload(t, tok, "six.pdf", "application/pdf", 3)
}

func TestHugeBodyIsRefusedUnread(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	_, tok := s.NewUser(t)
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Announce 10 MB, send only the first bytes: the answer must come anyway.
	fmt.Fprintf(conn, "POST /api/documents/upload-url HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{\"filename\":\"", tok, 10<<20)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer while the body is still owed: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("10 MB body: %d", resp.StatusCode)
	}
}

func TestSlowHeadersTimeOut(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{Edit: func(c *config.Config) { c.ReadHeaderTimeout = 500 * time.Millisecond }})
	conn, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := fmt.Fprint(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	// Trickle a header byte at a time, never finishing: slowloris.
	closed := make(chan time.Duration, 1)
	go func() {
		buf := make([]byte, 512)
		for {
			if _, err := conn.Read(buf); err != nil {
				closed <- time.Since(start)
				return
			}
		}
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case d := <-closed:
			if d > 3*time.Second {
				t.Fatalf("connection closed after %s, want about the 500 ms header timeout", d)
			}
			return
		case <-tick.C:
			_, _ = conn.Write([]byte("X"))
		case <-time.After(5 * time.Second):
			t.Fatal("a client trickling its headers kept the connection for 5 s")
		}
	}
}

// TestReclassifyIsRateLimitedAndNotQueuedTwice asks again and again for
// the classification of a document still waiting for the classifier (none
// runs here): nothing more is published, and past the per-user limit the
// answer is 429 with Retry-After, for every document of that user.
func TestReclassifyIsRateLimitedAndNotQueuedTwice(t *testing.T) {
	t.Parallel()
	const limit = 5
	s := apitest.Start(t, apitest.Options{Edit: func(c *config.Config) { c.ReclassifyPerMinute = limit }})
	_, tok := s.NewUser(t)
	id := s.Upload(t, tok, "a.pdf", apitest.BytesOf(100))
	other := s.Upload(t, tok, "b.pdf", apitest.BytesOf(100))
	for _, d := range []uuid.UUID{id, other} {
		if r := s.Confirm(t, tok, d); r.Status != http.StatusOK {
			t.Fatalf("confirm: %d %s", r.Status, r.Body)
		}
	}
	for i := range limit {
		r := s.Do(t, http.MethodPost, "/api/documents/"+id.String()+"/classify", tok, nil)
		if r.Status != http.StatusAccepted || !strings.Contains(string(r.Body), `"status":"uploaded"`) {
			t.Fatalf("classify %d: %d %s", i+1, r.Status, r.Body)
		}
	}
	if n := s.CountEvents(t, id, "document.uploaded"); n != 1 {
		t.Errorf("%d document.uploaded events after %d classify requests of a queued document, want 1 (the upload's)", n, limit)
	}
	for _, d := range []uuid.UUID{id, other} {
		r := s.Do(t, http.MethodPost, "/api/documents/"+d.String()+"/classify", tok, nil)
		wait, err := strconv.Atoi(r.Header.Get("Retry-After"))
		if r.Status != http.StatusTooManyRequests || err != nil || wait < 1 || wait > 60 {
			t.Fatalf("classify past the limit: %d %s, Retry-After %q", r.Status, r.Body, r.Header.Get("Retry-After"))
		}
	}
	// Another user is not limited by this one.
	_, tok2 := s.NewUser(t)
	id2 := s.Upload(t, tok2, "c.pdf", apitest.BytesOf(100))
	s.Confirm(t, tok2, id2)
	if r := s.Do(t, http.MethodPost, "/api/documents/"+id2.String()+"/classify", tok2, nil); r.Status != http.StatusAccepted {
		t.Fatalf("another user's classify: %d %s", r.Status, r.Body)
	}
}
