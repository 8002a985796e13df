package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/minio/minio-go/v7"

	"github.com/docuvault/docuvault/shared/auth"
)

// mpSystem is one way to upload one large file in parts.
type mpSystem string

const (
	mpDocuVault mpSystem = "docuvault"       // upload-url (multipart) → presigned part PUTs (+ POST /parts) → POST /complete
	mpLimit     mpSystem = "presigned parts" // minio-go: NewMultipartUpload, locally presigned part PUTs, CompleteMultipartUpload
	mpTusd      mpSystem = "tusd"            // POST, then one 16 MiB PATCH after another
)

var mpSystems = []mpSystem{mpDocuVault, mpLimit, mpTusd}

const (
	// mpPartSize is the part size of the limit and the tus client's chunk
	// size: MULTIPART_PART_SIZE's default. DocuVault's parts are whatever
	// part_size the api answers.
	mpPartSize = 16 << 20
	// mpConcurrency is how many parts DocuVault's client and the limit's
	// upload at once.
	mpConcurrency = 4
	// mpURLBatch is how many part URLs the DocuVault client asks POST
	// /parts for at a time, when the URLs it holds have all been handed to
	// the part uploaders (so the next batch arrives while parts are in
	// flight): as many as upload-url gives at first.
	mpURLBatch = 10
	// mpWarmSize is the warm-up upload of each system: two parts.
	mpWarmSize = 2 * mpPartSize
)

// mpRun is one upload of one file by one system.
type mpRun struct {
	sys      mpSystem
	size     int64
	rep      int
	elapsed  time.Duration // first request → the answer that completes the upload
	err      error
	partSize int64   // the part (tusd: PATCH) size used
	parts    int     // parts (tusd: PATCHes)
	requests int     // HTTP requests to the api (DocuVault) or tusd; the limit's to MinIO outside the part PUTs
	cpu      cpuSnap // CPU seconds during the upload
	cost     cpuSnap // CPU seconds from its start to the end of its event drain, less idle
	drain    time.Duration
}

func (r mpRun) mbPerSec() float64 {
	if r.err != nil || r.elapsed <= 0 {
		return 0
	}
	return float64(r.size) / 1e6 / r.elapsed.Seconds()
}

// cpuPerGiB is CPU seconds per GiB uploaded, by process.
func (r mpRun) cpuPerGiB(f func(cpuSnap) float64) float64 {
	return f(r.cost) / (float64(r.size) / (1 << 30))
}

// mpSize is the workload at one file size.
type mpSize struct {
	size int64
	runs []mpRun
}

func (m *mpSize) of(sys mpSystem) []mpRun {
	var out []mpRun
	for _, r := range m.runs {
		if r.sys == sys && r.err == nil {
			out = append(out, r)
		}
	}
	return out
}

// ratios returns, per repetition, a/b of MB/s.
func (m *mpSize) ratios(a, b mpSystem, reps int) []float64 {
	var out []float64
	for rep := range reps {
		var va, vb float64
		for _, r := range m.runs {
			if r.rep != rep {
				continue
			}
			switch r.sys {
			case a:
				va = r.mbPerSec()
			case b:
				vb = r.mbPerSec()
			}
		}
		if va > 0 && vb > 0 {
			out = append(out, va/vb)
		}
	}
	return out
}

// costRatios returns, per repetition, b's CPU per GiB (every counted
// process, upload and drain) over a's: what a/b of MB/s would come out
// near on a machine whose CPU were the benchmark's alone.
func (m *mpSize) costRatios(a, b mpSystem, reps int) []float64 {
	var out []float64
	for rep := range reps {
		var ca, cb float64
		for _, r := range m.runs {
			if r.rep != rep || r.err != nil {
				continue
			}
			switch r.sys {
			case a:
				ca = r.cpuPerGiB(cpuSnap.total)
			case b:
				cb = r.cpuPerGiB(cpuSnap.total)
			}
		}
		if ca > 0 && cb > 0 {
			out = append(out, cb/ca)
		}
	}
	return out
}

// mpResult is the multipart workload's outcome.
type mpResult struct {
	reps       int
	idle       cpuSnap // CPU seconds per second of our processes at idle
	sizes      []*mpSize
	warmErr    map[mpSystem]error // a system whose warm-up failed is not measured
	dvPartSize int64              // the part_size the api answered
}

// mpBody is the bodies' bytes: one random buffer, generated once and
// sliced for every part, so that neither the disk nor the generation of
// bytes shows in the measurements.
type mpBody struct {
	mu  sync.Mutex
	buf []byte
}

// bytes returns n bytes of the buffer, growing it (once) if a part is
// larger than any before.
func (b *mpBody) bytes(n int64) []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	if int64(len(b.buf)) < n {
		b.buf = make([]byte, n)
		_, _ = rand.Read(b.buf)
	}
	return b.buf[:n]
}

// mpPart is a part to upload and its presigned URL.
type mpPart struct {
	Number int    `json:"part_number"`
	Size   int64  `json:"size"`
	URL    string `json:"url"`
}

// mpTicket is upload-url's answer for a multipart upload (UploadURL is
// set only if the api made a single-PUT upload instead).
type mpTicket struct {
	DocumentID uuid.UUID `json:"document_id"`
	UploadID   string    `json:"upload_id"`
	PartSize   int64     `json:"part_size"`
	PartCount  int       `json:"part_count"`
	Parts      []mpPart  `json:"parts"`
	UploadURL  string    `json:"upload_url"`
}

type mpETag struct {
	Number int    `json:"part_number"`
	ETag   string `json:"etag"`
}

// multipartBench runs the multipart workload: at each size, each
// repetition uploads one file with every system, back to back, in an order
// that rotates from one repetition to the next.
func multipartBench(ctx context.Context, s *stack, p plan) (*mpResult, error) {
	res := &mpResult{reps: p.mpReps, warmErr: map[mpSystem]error{}}
	body := &mpBody{}
	body.bytes(mpPartSize)
	if err := s.cleanUploads(ctx); err != nil {
		return res, err
	}
	// A user of its own whose quota holds every upload of the workload
	// (the declared size is reserved at upload-url).
	user := uuid.New()
	token, err := auth.Mint(s.authCfg, auth.Principal{UserID: user, Role: auth.RoleUser}, 24*time.Hour, time.Now())
	if err != nil {
		return res, err
	}
	if err := s.setQuota(ctx, user, 1<<50); err != nil {
		return res, fmt.Errorf("set the quota: %w", err)
	}

	// Warm-up: connections open, code paths hot, and each flow checked.
	for _, sys := range mpSystems {
		r := s.mpUpload(ctx, sys, token, mpWarmSize, body)
		if r.err == nil {
			r.err = s.mpClean(ctx, sys)
		}
		if r.err != nil {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			logf("  warm-up %s: %v (not measured)", sys, r.err)
			res.warmErr[sys] = r.err
			continue
		}
		if sys == mpDocuVault {
			res.dvPartSize = r.partSize
		}
	}
	if len(res.warmErr) == len(mpSystems) {
		return res, errors.New("every system failed its warm-up")
	}
	if err := s.cleanUploads(ctx); err != nil {
		return res, err
	}
	if _, err := s.waitIdle(ctx, 0, 20*time.Second); err != nil {
		logf("  %v", err)
	}
	i0 := s.cpu()
	time.Sleep(2 * time.Second)
	res.idle = s.cpu().sub(i0).scale(1 / 2.0)

	var failed []error
	for _, size := range p.mpSizes {
		m := &mpSize{size: size}
		res.sizes = append(res.sizes, m)
		for rep := range p.mpReps {
			for k := range mpSystems {
				sys := mpSystems[(k+rep)%len(mpSystems)]
				if res.warmErr[sys] != nil {
					continue
				}
				seq0, err := s.minioLastSeq(ctx)
				if err != nil {
					return res, err
				}
				c0 := s.cpu()
				r := s.mpUpload(ctx, sys, token, size, body)
				r.rep = rep
				r.cpu = s.cpu().sub(c0)
				if ctx.Err() != nil {
					return res, ctx.Err()
				}
				if sys == mpDocuVault && r.err == nil {
					// Two notifications for the completed object (targets
					// PRIMARY and LIVE), which the confirmer handles.
					var err error
					if r.drain, err = s.waitIdle(ctx, seq0+2, 20*time.Second); err != nil {
						logf("  %v", err)
					}
				}
				r.cost = s.cpu().sub(c0).sub(res.idle.scale(r.drain.Seconds())).atLeast(r.cpu)
				m.runs = append(m.runs, r)
				if r.err != nil {
					logf("  %-16s %8s rep %d: FAILED after %.1fs: %v", sys, human64(size), rep+1, r.elapsed.Seconds(), r.err)
					failed = append(failed, fmt.Errorf("%s %s rep %d: %w", sys, human64(size), rep+1, r.err))
				} else {
					logf("  %-16s %8s rep %d: %7.1f MB/s  %.2fs  %d parts of %s, %d requests, CPU %.2f s/GiB%s", sys, human64(size), rep+1,
						r.mbPerSec(), r.elapsed.Seconds(), r.parts, human64(r.partSize), r.requests, r.cpuPerGiB(cpuSnap.total), mpDrainNote(r))
				}
				if err := s.mpClean(ctx, sys); err != nil {
					return res, err
				}
				if err := s.serviceError(); err != nil {
					return res, err
				}
			}
		}
	}
	if err := s.cleanUploads(ctx); err != nil {
		return res, err
	}
	for sys, err := range res.warmErr {
		failed = append(failed, fmt.Errorf("%s warm-up: %w", sys, err))
	}
	return res, errors.Join(failed...)
}

func mpDrainNote(r mpRun) string {
	if r.sys != mpDocuVault {
		return ""
	}
	return fmt.Sprintf(", events drained %.2fs later", r.drain.Seconds())
}

// mpClean empties the bucket sys uploaded into, once DocuVault's event
// path is idle (the confirmer is done with the object).
func (s *stack) mpClean(ctx context.Context, sys mpSystem) error {
	switch sys {
	case mpDocuVault:
		_, _ = s.waitIdle(ctx, 0, 20*time.Second)
		return s.emptyBucket(ctx, s.cfg.MinIOBucket)
	case mpLimit:
		return s.emptyBucket(ctx, rawBucket)
	}
	return s.emptyBucket(ctx, tusdBucket)
}

// mpUpload uploads one file of size bytes with sys and times it.
func (s *stack) mpUpload(ctx context.Context, sys mpSystem, token string, size int64, body *mpBody) mpRun {
	r := mpRun{sys: sys, size: size}
	start := time.Now()
	switch sys {
	case mpDocuVault:
		r.err = s.dvMultipart(ctx, &r, token, body)
	case mpLimit:
		r.err = s.limitMultipart(ctx, &r, body)
	default:
		r.err = s.tusChunked(ctx, &r, body)
	}
	r.elapsed = time.Since(start)
	return r
}

// dvMultipart is DocuVault's multipart flow as a browser would run it:
// upload-url with the size, the parts PUT straight to MinIO mpConcurrency
// at a time on the URLs the api gave (asking POST /parts for the next
// ones as they run out), then POST /complete with the parts' ETags.
func (s *stack) dvMultipart(ctx context.Context, r *mpRun, token string, body *mpBody) error {
	api := func(ctx context.Context, method, path string, in, out any, want int) error {
		var rd io.Reader
		if in != nil {
			b, err := json.Marshal(in)
			if err != nil {
				return err
			}
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequestWithContext(ctx, method, s.apiURL+path, rd)
		req.Header.Set("Authorization", "Bearer "+token)
		if in != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		r.requests++
		return s.do(req, want, out)
	}
	var t mpTicket
	err := api(ctx, http.MethodPost, "/api/documents/upload-url", map[string]any{
		"filename": "bench-multipart.bin", "content_type": benchContentType, "size_bytes": r.size, "multipart": true,
	}, &t, http.StatusCreated)
	if err != nil {
		return err
	}
	if t.UploadID == "" || t.PartCount == 0 {
		// A version of the api without multipart answers a single-PUT ticket.
		return fmt.Errorf("upload-url answered no multipart upload (upload_url set: %v, part_count %d)", t.UploadURL != "", t.PartCount)
	}
	r.partSize, r.parts = t.PartSize, t.PartCount
	docPath := "/api/documents/" + t.DocumentID.String()
	// more runs in putParts' URL fetcher, while this goroutine waits.
	more := func(ctx context.Context, nums []int) ([]mpPart, error) {
		var out struct {
			Parts []mpPart `json:"parts"`
		}
		err := api(ctx, http.MethodPost, docPath+"/parts", map[string]any{"part_numbers": nums}, &out, http.StatusOK)
		return out.Parts, err
	}
	etags, err := s.putParts(ctx, t.PartCount, t.Parts, more, body)
	if err == nil {
		var done struct {
			SizeBytes int64  `json:"size_bytes"`
			Status    string `json:"status"`
		}
		err = api(ctx, http.MethodPost, docPath+"/complete", map[string]any{"parts": etags}, &done, http.StatusOK)
		if err == nil && (done.Status != "uploaded" || done.SizeBytes != r.size) {
			err = fmt.Errorf("complete answered status %q, size_bytes %d (want uploaded, %d)", done.Status, done.SizeBytes, r.size)
		}
	}
	if err != nil {
		// Aborts the multipart upload in MinIO (not timed: the run failed).
		req, _ := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodDelete, s.apiURL+docPath, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		_ = s.do(req, http.StatusNoContent, nil)
	}
	return err
}

// limitMultipart is the physical limit of a multipart upload here: the
// same parts presigned by the harness with minio-go (Content-Length
// signed, as the api signs them), no API at all, into a bucket without
// notifications: NewMultipartUpload, the part PUTs mpConcurrency at a time,
// CompleteMultipartUpload (If-None-Match: *).
func (s *stack) limitMultipart(ctx context.Context, r *mpRun, body *mpBody) error {
	core := minio.Core{Client: s.mc}
	key := "raw/" + uuid.NewString() + ".bin"
	r.requests++
	uploadID, err := core.NewMultipartUpload(ctx, rawBucket, key, minio.PutObjectOptions{ContentType: benchContentType})
	if err != nil {
		return err
	}
	count := int((r.size + mpPartSize - 1) / mpPartSize)
	r.partSize, r.parts = mpPartSize, count
	sign := func(ctx context.Context, nums []int) ([]mpPart, error) {
		var out []mpPart
		for _, n := range nums {
			size := min(int64(mpPartSize), r.size-int64(n-1)*mpPartSize)
			h := http.Header{}
			h.Set("Content-Length", strconv.FormatInt(size, 10))
			u, err := s.presign.PresignHeader(ctx, http.MethodPut, rawBucket, key, 15*time.Minute,
				url.Values{"partNumber": {strconv.Itoa(n)}, "uploadId": {uploadID}}, h)
			if err != nil {
				return nil, err
			}
			out = append(out, mpPart{Number: n, Size: size, URL: u.String()})
		}
		return out, nil
	}
	first := make([]int, 0, mpURLBatch)
	for n := 1; n <= min(count, mpURLBatch); n++ {
		first = append(first, n)
	}
	parts, err := sign(ctx, first)
	var etags []mpETag
	if err == nil {
		etags, err = s.putParts(ctx, count, parts, sign, body)
	}
	if err == nil {
		done := make([]minio.CompletePart, len(etags))
		for i, e := range etags {
			done[i] = minio.CompletePart{PartNumber: e.Number, ETag: e.ETag}
		}
		opts := minio.PutObjectOptions{}
		opts.SetMatchETagExcept("*")
		r.requests++
		_, err = core.CompleteMultipartUpload(ctx, rawBucket, key, uploadID, done, opts)
	}
	if err != nil {
		_ = core.AbortMultipartUpload(context.WithoutCancel(ctx), rawBucket, key, uploadID)
	}
	return err
}

// putParts uploads parts 1..count mpConcurrency at a time and returns
// their ETags in order. first are the URLs known at the start (parts 1,
// 2, …); more signs the next ones, asked for mpURLBatch at a time when
// every known URL has been handed out, i.e. while the last mpConcurrency
// known parts are still queued or in flight.
func (s *stack) putParts(ctx context.Context, count int, first []mpPart, more func(context.Context, []int) ([]mpPart, error), body *mpBody) ([]mpETag, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	todo := make(chan mpPart, mpConcurrency)
	go func() {
		defer close(todo)
		known := first
		for n := 1; n <= count; n++ {
			if len(known) == 0 {
				var nums []int
				for k := n; k <= count && len(nums) < mpURLBatch; k++ {
					nums = append(nums, k)
				}
				got, err := more(ctx, nums)
				if err == nil && len(got) != len(nums) {
					err = fmt.Errorf("asked for the URLs of %d parts, got %d", len(nums), len(got))
				}
				if err != nil {
					cancel(fmt.Errorf("part URLs: %w", err))
					return
				}
				known = got
			}
			p := known[0]
			known = known[1:]
			if p.Number != n {
				cancel(fmt.Errorf("expected the URL of part %d, got part %d", n, p.Number))
				return
			}
			select {
			case todo <- p:
			case <-ctx.Done():
				return
			}
		}
	}()
	etags := make([]mpETag, count)
	var wg sync.WaitGroup
	for range mpConcurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for p := range todo {
				etag, err := s.putPart(ctx, p.URL, body.bytes(p.Size))
				if err != nil {
					cancel(fmt.Errorf("part %d: %w", p.Number, err))
					continue // drains todo; the fetcher stops on ctx
				}
				etags[p.Number-1] = mpETag{Number: p.Number, ETag: etag}
			}
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	return etags, nil
}

// putPart PUTs one part's bytes to a presigned URL and returns MinIO's ETag.
func (s *stack) putPart(ctx context.Context, u string, data []byte) (string, error) {
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, u, bytes.NewReader(data))
	req.ContentLength = int64(len(data))
	resp, err := s.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return "", fmt.Errorf("PUT part: %s %s", resp.Status, bytes.TrimSpace(b))
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	etag := resp.Header.Get("ETag")
	if etag == "" {
		return "", errors.New("PUT part: no ETag in the answer")
	}
	return etag, nil
}

// tusChunked uploads with tus as a tus client with a chunk size does
// (tus-js-client's chunkSize, Uppy's Tus plugin): POST (Upload-Length),
// then PATCHes of mpPartSize bytes one after another — tus allows one
// PATCH at a time per upload, each at the offset the previous one ended.
// tusd's answer to the last PATCH comes after its CompleteMultipartUpload.
func (s *stack) tusChunked(ctx context.Context, r *mpRun, body *mpBody) error {
	r.requests++
	loc, err := s.tusCreate(ctx, r.size)
	if err != nil {
		return err
	}
	r.partSize = mpPartSize
	for off := int64(0); off < r.size; off += mpPartSize {
		n := min(int64(mpPartSize), r.size-off)
		req, _ := http.NewRequestWithContext(ctx, http.MethodPatch, loc.String(), bytes.NewReader(body.bytes(n)))
		req.ContentLength = n
		req.Header.Set("Tus-Resumable", "1.0.0")
		req.Header.Set("Upload-Offset", strconv.FormatInt(off, 10))
		req.Header.Set("Content-Type", "application/offset+octet-stream")
		r.requests++
		r.parts++
		resp, err := s.client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusNoContent {
				err = fmt.Errorf("tus PATCH at %d: %s", off, resp.Status)
			} else if got := resp.Header.Get("Upload-Offset"); got != strconv.FormatInt(off+n, 10) {
				err = fmt.Errorf("tus PATCH at %d: Upload-Offset %q, want %d", off, got, off+n)
			}
		}
		if err != nil {
			// Termination: tusd aborts the multipart upload.
			del, _ := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodDelete, loc.String(), nil)
			del.Header.Set("Tus-Resumable", "1.0.0")
			if resp, err := s.client.Do(del); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			return err
		}
	}
	return nil
}

// setQuota sets user's quota limit through the admin route.
func (s *stack) setQuota(ctx context.Context, user uuid.UUID, limit int64) error {
	b, _ := json.Marshal(map[string]int64{"limit_bytes": limit})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, s.apiURL+"/api/admin/users/"+user.String()+"/quota", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+s.admin)
	req.Header.Set("Content-Type", "application/json")
	return s.do(req, http.StatusOK, nil)
}

func human64(n int64) string {
	if n >= 1<<30 && n%(1<<30) == 0 {
		return fmt.Sprintf("%d GiB", n>>30)
	}
	return human(int(n))
}
