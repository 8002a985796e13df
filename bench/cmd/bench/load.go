package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/docuvault/docuvault/shared/events"
)

// runStats is what one load run measured.
type runStats struct {
	ops      int // operations that succeeded
	errs     int // operations that failed
	firstErr error
	elapsed  time.Duration
	lat      []time.Duration // sorted latencies of the successful operations
}

func (r runStats) perSec() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.ops) / r.elapsed.Seconds()
}

// pct returns the q-quantile (0..1) of the sorted latencies.
func pct(lat []time.Duration, q float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	// Nearest rank.
	i := int(math.Ceil(q*float64(len(lat)))) - 1
	i = max(0, min(i, len(lat)-1))
	return lat[i]
}

// errDone, returned by an operation, ends its worker without counting.
var errDone = errors.New("done")

// opFunc is one operation of client worker; i counts the operations the
// run started so far (count mode) or this worker's operations (duration mode).
type opFunc func(ctx context.Context, worker, i int) error

// run runs op with clients workers, either total operations in all
// (total > 0) or for d.
func run(ctx context.Context, clients, total int, d time.Duration, op opFunc) runStats {
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		mu       sync.Mutex
		st       runStats
		deadline = time.Now().Add(d)
	)
	lats := make([][]time.Duration, clients)
	start := time.Now()
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				i := n
				if total > 0 {
					i = int(next.Add(1)) - 1
					if i >= total {
						return
					}
				} else if !time.Now().Before(deadline) {
					return
				}
				if ctx.Err() != nil {
					return
				}
				t := time.Now()
				err := op(ctx, w, i)
				el := time.Since(t)
				if err == errDone {
					return
				}
				if err != nil {
					mu.Lock()
					st.errs++
					if st.firstErr == nil {
						st.firstErr = err
					}
					mu.Unlock()
					continue
				}
				lats[w] = append(lats[w], el)
			}
		}()
	}
	wg.Wait()
	st.elapsed = time.Since(start)
	for _, l := range lats {
		st.lat = append(st.lat, l...)
	}
	slices.Sort(st.lat)
	st.ops = len(st.lat)
	return st
}

// payload returns n random bytes (MinIO does not compress by default; random
// keeps it honest anyway).
func payload(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// do sends req and reads the whole answer; a status other than want is an error.
func (s *stack) do(req *http.Request, want int, into any) error {
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s %s: %s %s", req.Method, req.URL.Path, resp.Status, bytes.TrimSpace(b))
	}
	if into != nil {
		if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
			return err
		}
	}
	_, err = io.Copy(io.Discard, resp.Body)
	return err
}

type ticket struct {
	UploadURL  string            `json:"upload_url"`
	DocumentID uuid.UUID         `json:"document_id"`
	Headers    map[string]string `json:"headers"`
}

const benchContentType = "application/octet-stream"

// uploadURL asks the stack's api for an upload URL.
func (s *stack) uploadURL(ctx context.Context, token string, size int) (ticket, error) {
	return s.uploadURLAt(ctx, s.apiURL, token, size)
}

// uploadURLAt asks the api at apiURL for an upload URL.
func (s *stack) uploadURLAt(ctx context.Context, apiURL, token string, size int) (ticket, error) {
	return s.uploadURLSum(ctx, apiURL, token, size, "")
}

// uploadURLSum asks the api at apiURL for an upload URL; with sum (the
// standard base64 of the file's SHA-256 digest) the request declares it as
// "sha256", and the api signs it into the URL. A duplicate (200, the
// user's stored document of that checksum, no URL) is an error here.
func (s *stack) uploadURLSum(ctx context.Context, apiURL, token string, size int, sum string) (ticket, error) {
	body := `{"filename":"bench.bin","content_type":"` + benchContentType + `","size_bytes":` + strconv.Itoa(size)
	if sum != "" {
		body += `,"sha256":"` + sum + `"`
	}
	body += `}`
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, apiURL+"/api/documents/upload-url", bytes.NewReader([]byte(body)))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	var t ticket
	err := s.do(req, http.StatusCreated, &t)
	return t, err
}

// put sends data to a presigned URL with the signed headers.
func (s *stack) put(ctx context.Context, u string, headers map[string]string, data []byte) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, u, bytes.NewReader(data))
	req.ContentLength = int64(len(data))
	for k, v := range headers {
		if http.CanonicalHeaderKey(k) == "Content-Length" {
			continue // set by ContentLength
		}
		req.Header.Set(k, v)
	}
	return s.do(req, http.StatusOK, nil)
}

// confirm confirms a document through the api at apiURL.
func (s *stack) confirm(ctx context.Context, apiURL, token string, id uuid.UUID) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, apiURL+"/api/documents/"+id.String()+"/confirm", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	return s.do(req, http.StatusOK, nil)
}

// docuvaultUpload is DocuVault's whole flow for one file: upload-url, PUT
// straight to MinIO, confirm. It returns how long the confirm took.
func (s *stack) docuvaultUpload(ctx context.Context, apiURL, token string, data []byte) (time.Duration, error) {
	t, err := s.uploadURLAt(ctx, apiURL, token, len(data))
	if err != nil {
		return 0, err
	}
	if err := s.put(ctx, t.UploadURL, t.Headers, data); err != nil {
		return 0, err
	}
	start := time.Now()
	err = s.confirm(ctx, apiURL, token, t.DocumentID)
	return time.Since(start), err
}

// checksumHeader is the header that carries a PUT's signed SHA-256.
const checksumHeader = "x-amz-checksum-sha256"

// docuvaultUploadSHA256 is docuvaultUpload with a checksum: the client
// hashes the file (SHA-256, here, in the load's CPU), declares the digest
// in upload-url, and sends it on the PUT as the x-amz-checksum-sha256
// header the ticket returns signed; MinIO verifies the body against it.
func (s *stack) docuvaultUploadSHA256(ctx context.Context, apiURL, token string, data []byte) error {
	digest := sha256.Sum256(data)
	sum := base64.StdEncoding.EncodeToString(digest[:])
	t, err := s.uploadURLSum(ctx, apiURL, token, len(data), sum)
	if err != nil {
		return err
	}
	var signed string
	for k, v := range t.Headers {
		if http.CanonicalHeaderKey(k) == http.CanonicalHeaderKey(checksumHeader) {
			signed = v
		}
	}
	if signed != sum {
		return fmt.Errorf("upload-url with sha256: the ticket's %s is %q, want %q", checksumHeader, signed, sum)
	}
	if err := s.put(ctx, t.UploadURL, t.Headers, data); err != nil {
		return err
	}
	return s.confirm(ctx, apiURL, token, t.DocumentID)
}

// rawUpload is the physical limit: a presigned PUT, signed here with
// minio-go as the api would sign it (size, type and If-None-Match: *
// pinned), straight to MinIO's bucket.
func (s *stack) rawUpload(ctx context.Context, bucket string, data []byte) error {
	h := http.Header{}
	h.Set("Content-Type", benchContentType)
	h.Set("Content-Length", strconv.Itoa(len(data)))
	h.Set("If-None-Match", "*")
	u, err := s.presign.PresignHeader(ctx, http.MethodPut, bucket, "raw/"+uuid.NewString()+".bin", 15*time.Minute, nil, h)
	if err != nil {
		return err
	}
	return s.put(ctx, u.String(), map[string]string{"Content-Type": benchContentType, "If-None-Match": "*"}, data)
}

// tusUpload is the tus protocol's shortest upload: POST to create with
// Upload-Length, then one PATCH with the whole body at offset 0.
// tusCreate creates a tus upload of size bytes and returns its location.
func (s *stack) tusCreate(ctx context.Context, size int64) (*url.URL, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.tusURL, nil)
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Upload-Length", strconv.FormatInt(size, 10))
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return nil, fmt.Errorf("tus create: %s", resp.Status)
	}
	base, _ := url.Parse(s.tusURL)
	loc, err := base.Parse(resp.Header.Get("Location"))
	if err != nil {
		return nil, fmt.Errorf("tus create: Location: %w", err)
	}
	return loc, nil
}

func (s *stack) tusUpload(ctx context.Context, data []byte) error {
	loc, err := s.tusCreate(ctx, int64(len(data)))
	if err != nil {
		return err
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPatch, loc.String(), bytes.NewReader(data))
	req.ContentLength = int64(len(data))
	req.Header.Set("Tus-Resumable", "1.0.0")
	req.Header.Set("Upload-Offset", "0")
	req.Header.Set("Content-Type", "application/offset+octet-stream")
	return s.do(req, http.StatusNoContent, nil)
}

// minioLastSeq returns the last sequence of the MINIO_EVENTS stream.
func (s *stack) minioLastSeq(ctx context.Context) (uint64, error) {
	st, err := s.h.JS.Stream(ctx, events.StreamMinIO)
	if err != nil {
		return 0, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.LastSeq, nil
}

// waitIdle waits until MINIO_EVENTS holds at least untilSeq, the confirmer
// has handled every notification and the outbox has been relayed: the
// asynchronous work of an upload run is over. It returns how long that took.
func (s *stack) waitIdle(ctx context.Context, untilSeq uint64, within time.Duration) (time.Duration, error) {
	start := time.Now()
	for {
		seq, err := s.minioLastSeq(ctx)
		idle := err == nil && seq >= untilSeq
		if idle {
			cons, err := s.h.JS.Consumer(ctx, events.StreamMinIO, "confirmer")
			if err != nil {
				return 0, err
			}
			info, err := cons.Info(ctx)
			idle = err == nil && info.NumPending == 0 && info.NumAckPending == 0
		}
		if idle {
			s.ownXacts.Add(1)
			n, err := s.h.Store.OutboxWaiting(ctx)
			idle = err == nil && n == 0
		}
		if idle {
			return time.Since(start), nil
		}
		if time.Since(start) > within {
			return time.Since(start), fmt.Errorf("event path not idle after %v (stream at %d, waiting for %d)", within, seq, untilSeq)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
