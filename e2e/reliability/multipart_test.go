package reliability_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/docuvault/docuvault/internal/apitest"
	"github.com/docuvault/docuvault/shared/document"
)

// The multipart uploads of the run: small ones (one part) by every user,
// big ones (5 to 12 MiB, one to three parts of 5 MiB) by the big users.
const (
	numBigUsers = 4
	// partSize is MULTIPART_PART_SIZE: the smallest part MinIO takes.
	partSize = document.MinPartSize
	// multipartThreshold is MULTIPART_THRESHOLD: every big upload is over
	// it, and goes in parts whether it asks or not.
	multipartThreshold = 4 << 20
	// maxUploadBytes is MAX_UPLOAD_BYTES: above every quota, which an
	// attack overshoots by one byte.
	maxUploadBytes = 64 << 20
	minBigBytes    = 5 << 20
	maxBigBytes    = 12 << 20
	// freshFor is how long after it was asked for a part URL is used: one
	// lives at least UPLOAD_URL_TTL - 1 s (X-Amz-Date has whole seconds).
	freshFor = 700 * time.Millisecond
	// tries bounds the tries of one part, or one complete, while a fault
	// lasts; then the upload is left for the sweeper.
	tries = 5
)

// The wrong part lists a client may send to complete: each must be
// refused (422) with nothing completed or charged.
const (
	wrongMissing   = "a part left out"
	wrongExtra     = "a part beyond the plan"
	wrongDuplicate = "a part twice"
	wrongETag      = "a wrong ETag"
	wrongEarly     = "the last part not stored yet"
)

var wrongLists = []string{wrongMissing, wrongExtra, wrongDuplicate, wrongETag, wrongEarly}

// signed is a part URL and when it was asked for.
type signed struct {
	url string
	at  time.Time
}

// upload is one multipart upload as its client sees it.
type upload struct {
	d     *doc
	data  []byte
	urls  map[int]signed
	parts []apitest.CompletedPart // the parts stored, as complete takes them
}

// multipartETag is the ETag MinIO gives an object of u.content(n)
// completed from parts of partSize bytes: the MD5 of the parts' MD5s,
// and their count.
func (u *user) multipartETag(n, partSize int64) string {
	data := u.content(int(n))
	sums := md5.New()
	count := 0
	for start := int64(0); start < n; start += partSize {
		sum := md5.Sum(data[start:min(start+partSize, n)])
		sums.Write(sum[:])
		count++
	}
	return hex.EncodeToString(sums.Sum(nil)) + "-" + strconv.Itoa(count)
}

// multipart uploads a document in parts as u, as a browser would: it
// asks for the plan, PUTs the parts (asking for new URLs once the plan's
// may have expired, now and then listing the stored parts as a resuming
// client does) and then, at random, completes it — now and then first
// with a wrong part list, which must be refused with nothing charged, and
// now and then twice — or deletes it part-way, or abandons it part-way:
// aged in PostgreSQL, it is the sweeper's. The document is shared at once:
// other workers confirm, get, list and delete it meanwhile as any other.
func (r *rig) multipart(rng *rand.Rand, u *user) {
	if u.limited() {
		r.quota(u)
		return
	}
	d := &doc{user: u, size: 1 + rng.Int64N(maxDocBytes), declared: true, askParts: true, contentType: "application/pdf"}
	kind := "small"
	if u.big {
		kind = "big"
		d.size = minBigBytes + rng.Int64N(maxBigBytes-minBigBytes+1)
		d.askParts = rng.IntN(2) == 0
	}
	if rng.IntN(2) == 0 {
		d.contentType = "text/plain"
	}
	if !r.issue(d, true) {
		return
	}
	count := d.plan.PartCount
	r.outcome("multipart", fmt.Sprintf("started: %s in %d part(s)", kind, count), false)
	up := &upload{d: d, data: u.content(int(d.size)), urls: map[int]signed{}}
	for _, p := range d.plan.Parts {
		up.urls[p.PartNumber] = signed{p.URL, d.issued}
	}

	fate := rng.IntN(100)
	if fate >= 50 {
		// Part-way: none, some or all of the parts.
		if !r.uploadParts(rng, up, 1, rng.IntN(count+1)) {
			return
		}
		switch {
		case fate < 62:
			r.stall(rng, up)
		case fate < 80:
			r.deletePartWay(up)
		default:
			r.abandon(up)
		}
		return
	}
	wrong := ""
	if rng.IntN(100) < 35 {
		wrong = wrongLists[rng.IntN(len(wrongLists))]
	}
	last := count
	if wrong == wrongEarly {
		last = count - 1
	}
	if !r.uploadParts(rng, up, 1, last) {
		return
	}
	if wrong != "" && !r.completeWrong(rng, up, wrong) {
		return
	}
	if last < count && !r.uploadParts(rng, up, last+1, count) {
		return
	}
	if rng.IntN(4) == 0 && !r.listParts(up) {
		return
	}
	if r.complete(rng, up, "complete") && rng.IntN(4) == 0 {
		r.complete(rng, up, "complete again")
	}
}

// readPlan reads a multipart upload-url answer into d and checks it
// against the contract: parts of MULTIPART_PART_SIZE but the last, the
// first ten parts' URLs.
func (r *rig) readPlan(d *doc, data []byte) bool {
	var p apitest.Plan
	if err := json.Unmarshal(data, &p); err != nil || p.DocumentID == uuid.Nil || p.UploadID == "" {
		r.fail("upload-url (multipart): %v: %s", err, data)
		return false
	}
	count := int((d.size + partSize - 1) / partSize)
	bad := p.PartSize != partSize || p.PartCount != count || len(p.Parts) != min(count, 10)
	for i, part := range p.Parts {
		want := int64(partSize)
		if part.PartNumber == count {
			want = d.size - int64(count-1)*partSize
		}
		bad = bad || part.PartNumber != i+1 || part.Size != want || part.URL == ""
	}
	if bad {
		r.fail("upload-url of %d bytes in parts: plan %s, want %d part(s) of %d bytes", d.size, data, count, partSize)
		return false
	}
	d.plan = &p
	d.id = p.DocumentID
	d.key = r.objectKey(d)
	return true
}

// uploadParts PUTs up's parts from to last (in order); false when the
// upload is gone, or a fault outlasted the tries.
func (r *rig) uploadParts(rng *rand.Rand, up *upload, from, last int) bool {
	for n := from; n <= last; n++ {
		etag, ok := r.sendPart(rng, up, n)
		if !ok {
			return false
		}
		up.parts = append(up.parts, apitest.CompletedPart{PartNumber: n, ETag: etag})
	}
	return true
}

// partBytes returns part n of up's bytes.
func (up *upload) partBytes(n int) []byte {
	start := int64(n-1) * partSize
	return up.data[start:min(start+partSize, int64(len(up.data)))]
}

// sendPart PUTs part n, asking for a new URL when its own may have
// expired, and tries again while a fault lasts. It returns the part's
// ETag, or false when the upload is gone or the tries ran out.
func (r *rig) sendPart(rng *rand.Rand, up *upload, n int) (string, bool) {
	for try := 1; try <= tries; try++ {
		if try > 1 {
			time.Sleep(time.Duration(try) * 200 * time.Millisecond)
		}
		u, ok := up.urls[n]
		// Now and then a client asks again although its URL is fresh.
		if !ok || time.Since(u.at) > freshFor || rng.IntN(5) == 0 {
			switch r.signParts(rng, up, n) {
			case callGone:
				return "", false
			case callFault:
				continue
			}
			u = up.urls[n]
		}
		etag, res := r.putPart(up, n, u)
		switch res {
		case callOK:
			return etag, true
		case callGone:
			return "", false
		case callFault:
			delete(up.urls, n) // it may expire meanwhile
		default:
			return "", false
		}
	}
	r.outcome("multipart", "left for the sweeper: a fault outlasted the tries", true)
	return "", false
}

// callResult is how a call about a multipart upload ended.
type callResult int

const (
	callOK    callResult = iota
	callGone             // the document or its upload is gone
	callFault            // a fault: try again
	callBad              // a failure, reported
)

// signParts asks for the URL of part n (now and then with the later
// parts, and with n twice, which the answer must drop) and stores the
// URLs in up.
func (r *rig) signParts(rng *rand.Rand, up *upload, n int) callResult {
	d := up.d
	numbers := []int{n}
	if rng.IntN(4) == 0 {
		numbers = append(numbers, n)
		for m := n + 1; m <= d.plan.PartCount; m++ {
			numbers = append(numbers, m)
		}
	}
	at := time.Now()
	st, data, _, ok := r.api("parts sign", http.MethodPost, "/api/documents/"+d.id.String()+"/parts", d.user.token,
		map[string]any{"part_numbers": numbers})
	if !ok {
		return callBad
	}
	switch st {
	case http.StatusNotFound:
		r.gone(d, "parts sign: 404", true)
		return callGone
	case http.StatusServiceUnavailable:
		return callFault
	}
	d.user.mu.Lock()
	aged := d.aged
	d.user.mu.Unlock()
	if st == http.StatusConflict && aged {
		// Purged by a sweep while the API renewed it.
		r.gone(d, "parts sign: 409", false)
		return callGone
	}
	if st != http.StatusOK {
		// 409 is for a document no longer pending: only this client
		// completes it, and no sweep may take it yet.
		r.fail("parts sign %v of %s: %d %s", numbers, d.id, st, data)
		return callBad
	}
	var out struct {
		Parts []apitest.PartURL `json:"parts"`
	}
	want := slices.Compact(slices.Clone(numbers)) // the duplicate follows n
	if err := json.Unmarshal(data, &out); err != nil || len(out.Parts) != len(want) {
		r.fail("parts sign %v of %s: %v: %s", numbers, d.id, err, data)
		return callBad
	}
	for i, p := range out.Parts {
		if p.PartNumber != want[i] || p.Size != int64(len(up.partBytes(p.PartNumber))) || p.URL == "" {
			r.fail("parts sign %v of %s: %s", numbers, d.id, data)
			return callBad
		}
		up.urls[p.PartNumber] = signed{p.URL, at}
	}
	return callOK
}

// putPart PUTs part n through u and returns MinIO's ETag for it.
func (r *rig) putPart(up *upload, n int, u signed) (string, callResult) {
	defer r.count("part")()
	d := up.d
	body := up.partBytes(n)
	req, err := http.NewRequest(http.MethodPut, u.url, bytes.NewReader(body))
	if err != nil {
		r.fail("part %d of %s: %v", n, d.id, err)
		return "", callBad
	}
	resp, err := r.client.Do(req)
	if err != nil {
		r.outcome("part", "transport error", true)
		return "", callFault
	}
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	code := s3Code(answer)
	failed := resp.StatusCode >= 500 || resp.StatusCode == 499
	r.outcome("part", strings.TrimSpace(strconv.Itoa(resp.StatusCode)+" "+code), failed)
	switch age := time.Since(u.at); {
	case resp.StatusCode == http.StatusOK:
		sum := md5.Sum(body)
		etag := strings.Trim(resp.Header.Get("ETag"), `"`)
		if etag != hex.EncodeToString(sum[:]) {
			r.fail("part %d of %s: MinIO answered ETag %q for bytes whose MD5 is %x", n, d.id, etag, sum)
			return "", callBad
		}
		return etag, callOK
	case resp.StatusCode == http.StatusNotFound && code == "NoSuchUpload":
		r.gone(d, "part PUT: NoSuchUpload", false)
		return "", callGone
	case resp.StatusCode == http.StatusForbidden && age > uploadURLTTL/2:
		return "", callFault // expired: sign it again
	case failed:
		return "", callFault
	default:
		r.fail("PUT of part %d of %s, %s after its URL was asked for: MinIO answered %d %s", n, d.id, age.Round(time.Millisecond), resp.StatusCode, answer)
		return "", callBad
	}
}

// s3Code returns the Code of an S3 error answer, or "".
func s3Code(answer []byte) string {
	i := bytes.Index(answer, []byte("<Code>"))
	if i < 0 {
		return ""
	}
	code, _, _ := strings.Cut(string(answer[i+len("<Code>"):]), "<")
	return code
}

// gone records that d, or its upload, was found gone part-way (how says
// how); rowGone when the API answered 404. Younger than PENDING_TTL, no
// sweep may have removed it: the check at the end wants a DELETE then.
func (r *rig) gone(d *doc, how string, rowGone bool) {
	u := d.user
	age := time.Since(d.issued)
	u.mu.Lock()
	young := age < pendingTTL && !d.aged
	if young && d.goneYoung == "" {
		d.goneYoung = fmt.Sprintf("%s, %s after its upload URL was asked for", how, age.Round(time.Millisecond))
	}
	u.mu.Unlock()
	if rowGone {
		u.forget(d)
		u.release(d)
	}
	when := "stale: deleted or swept"
	if young {
		when = "young: deleted by another worker"
	}
	r.outcome("multipart", "found gone part-way ("+when+")", false)
}

// listParts reads the parts stored, as a resuming client would: they
// must be the parts up PUT, with their sizes and ETags.
func (r *rig) listParts(up *upload) bool {
	d := up.d
	st, data, _, ok := r.api("parts list", http.MethodGet, "/api/documents/"+d.id.String()+"/parts", d.user.token, nil)
	if !ok {
		return false
	}
	switch st {
	case http.StatusOK:
	case http.StatusNotFound:
		r.gone(d, "parts list: 404", true)
		return false
	case http.StatusConflict:
		// The upload was aborted under a row still there: by a delete or
		// a sweep in progress.
		r.gone(d, "parts list: 409", false)
		return false
	case http.StatusServiceUnavailable:
		return true
	default:
		r.fail("parts list of %s: %d %s", d.id, st, data)
		return false
	}
	var got struct {
		DocumentID string `json:"document_id"`
		UploadID   string `json:"upload_id"`
		PartSize   int64  `json:"part_size"`
		PartCount  int    `json:"part_count"`
		Parts      []struct {
			PartNumber int    `json:"part_number"`
			Size       int64  `json:"size"`
			ETag       string `json:"etag"`
		} `json:"parts"`
	}
	err := json.Unmarshal(data, &got)
	bad := err != nil || got.DocumentID != d.id.String() || got.UploadID != d.plan.UploadID ||
		got.PartSize != d.plan.PartSize || got.PartCount != d.plan.PartCount || len(got.Parts) != len(up.parts)
	for i := range got.Parts {
		if bad {
			break
		}
		p, want := got.Parts[i], up.parts[i]
		bad = p.PartNumber != want.PartNumber || p.ETag != want.ETag || p.Size != int64(len(up.partBytes(p.PartNumber)))
	}
	if bad {
		r.fail("parts list of %s (%d parts PUT): %v %s", d.id, len(up.parts), err, data)
		return false
	}
	return true
}

// completeBody is up's parts as complete takes them, each ETag quoted or
// not at random (the quotes are optional).
func completeBody(rng *rand.Rand, parts []apitest.CompletedPart) map[string]any {
	list := slices.Clone(parts)
	for i := range list {
		if rng.IntN(2) == 0 {
			list[i].ETag = `"` + list[i].ETag + `"`
		}
	}
	return map[string]any{"parts": list}
}

// completeWrong completes up with a wrong part list of kind: the API must
// refuse it (422), complete nothing and charge nothing — the document
// stays pending. It reports whether the upload goes on.
func (r *rig) completeWrong(rng *rand.Rand, up *upload, kind string) bool {
	d := up.d
	parts := slices.Clone(up.parts)
	switch kind {
	case wrongMissing:
		parts = parts[:len(parts)-1]
	case wrongExtra:
		parts = append(parts, apitest.CompletedPart{PartNumber: d.plan.PartCount + 1, ETag: parts[0].ETag})
	case wrongDuplicate:
		if len(parts) == 1 {
			parts = append(parts, parts[0])
		} else {
			parts[len(parts)-1] = parts[0]
		}
	case wrongETag:
		i := rng.IntN(len(parts))
		if parts[i].ETag[0] == '0' {
			parts[i].ETag = "1" + parts[i].ETag[1:]
		} else {
			parts[i].ETag = "0" + parts[i].ETag[1:]
		}
	case wrongEarly:
		// The ETag it will have: the part is refused for not being there.
		sum := md5.Sum(up.partBytes(d.plan.PartCount))
		parts = append(parts, apitest.CompletedPart{PartNumber: d.plan.PartCount, ETag: hex.EncodeToString(sum[:])})
	}
	st, data, _, ok := r.api("complete (wrong)", http.MethodPost, "/api/documents/"+d.id.String()+"/complete", d.user.token, completeBody(rng, parts))
	if !ok {
		return false
	}
	r.outcome("complete wrong: "+kind, strconv.Itoa(st), st >= 500)
	switch st {
	case http.StatusUnprocessableEntity:
	case http.StatusNotFound:
		r.gone(d, "complete (wrong): 404", true)
		return false
	case http.StatusServiceUnavailable:
		// The checks that need MinIO's part listing wait for it.
		return true
	default:
		r.fail("complete of %s with %s (%d parts planned): %d %s", d.id, kind, d.plan.PartCount, st, data)
		return false
	}
	// Refused: nothing may have been completed or charged.
	st, data, _, ok = r.api("get", http.MethodGet, "/api/documents/"+d.id.String(), d.user.token, nil)
	if !ok {
		return false
	}
	switch st {
	case http.StatusOK:
		var a documentAnswer
		if err := json.Unmarshal(data, &a); err != nil || a.Status != string(document.StatusPending) || a.SizeBytes != 0 {
			r.fail("complete of %s with %s answered 422, but the document is now %v %s", d.id, kind, err, data)
			return false
		}
		return true
	case http.StatusNotFound:
		r.gone(d, "get after a wrong complete: 404", true)
	case http.StatusServiceUnavailable:
		return true
	default:
		r.fail("get %s: %d %s", d.id, st, data)
	}
	return false
}

// complete completes up with its parts (kind "complete", or "complete
// again" after a success, which must answer the same) and reports
// whether the document is charged.
func (r *rig) complete(rng *rand.Rand, up *upload, kind string) bool {
	d, u := up.d, up.d.user
	u.mu.Lock()
	if d.put == putNone {
		d.put = putInFlight
	}
	u.mu.Unlock()
	end := func(state putState) {
		u.mu.Lock()
		if d.put == putInFlight {
			d.put = state
		}
		u.mu.Unlock()
	}
	for try := 1; try <= tries; try++ {
		if try > 1 {
			time.Sleep(time.Duration(try) * 200 * time.Millisecond)
		}
		st, data, _, ok := r.api(kind, http.MethodPost, "/api/documents/"+d.id.String()+"/complete", u.token, completeBody(rng, up.parts))
		if !ok {
			end(putFailed)
			return false
		}
		switch st {
		case http.StatusOK:
			var c apitest.Confirmation
			if err := json.Unmarshal(data, &c); err != nil || c.ID != d.id || !document.Status(c.Status).Charged() ||
				c.SizeBytes != d.size || c.UsedBytes < c.SizeBytes || c.UsedBytes > u.limit {
				r.fail("%s %s (%d bytes, limit %d): 200 %s", kind, d.id, d.size, u.limit, data)
			}
			u.mu.Lock()
			d.confirmed = true
			u.mu.Unlock()
			end(putOK)
			u.release(d)
			r.outcome("multipart", strings.Replace(kind, "complete", "completed", 1), false)
			return true
		case http.StatusServiceUnavailable:
			continue
		case http.StatusNotFound:
			end(putFailed)
			r.gone(d, kind+": 404", true)
			return false
		case http.StatusUnprocessableEntity:
			if kind == "complete" {
				// The upload was aborted under it (the parts were checked
				// when PUT): a delete or a sweep is removing the row.
				end(putFailed)
				r.gone(d, kind+": 422 "+string(data), false)
				return false
			}
		}
		// 413 too: the declared size was reserved, the charge must fit.
		end(putFailed)
		r.fail("%s %s (%d bytes in %d parts, limit %d): %d %s", kind, d.id, d.size, d.plan.PartCount, u.limit, st, data)
		return false
	}
	end(putFailed)
	r.outcome("multipart", "left for the sweeper: a fault outlasted the tries", true)
	return false
}

// deletePartWay deletes up's document before it is complete: the API
// aborts the upload, so none is left under its key, and a part PUT
// through a URL still valid must find no upload.
func (r *rig) deletePartWay(up *upload) {
	d := up.d
	if !r.delete(d) {
		return // gone already, or MinIO away: the sweeper's
	}
	r.outcome("multipart", "deleted part-way", false)
	r.checkNoUpload(d, "after a DELETE answered 204")
	for n, u := range up.urls {
		if time.Since(u.at) > freshFor {
			continue
		}
		if _, res := r.putPart(up, n, u); res == callOK {
			r.fail("part %d of deleted document %s: MinIO stored it", n, d.id)
			r.checkNoUpload(d, "after a part was PUT again")
		}
		break
	}
}

// checkNoUpload checks that MinIO holds no incomplete upload under d's key.
func (r *rig) checkNoUpload(d *doc, when string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ids, err := r.s.ListOpenUploads(ctx, d.key)
	switch {
	case err != nil:
		r.outcome("upload check", "MinIO error", true)
	case len(ids) > 0:
		r.fail("multipart document %s, %s: MinIO still holds uploads %v under %s", d.id, when, ids, d.key)
	default:
		r.outcome("upload check", "none left", false)
	}
}

// abandon leaves up's document to the sweeper, aged as if its client had
// gone an hour ago: the next sweep (the workers ask for one every second or
// two) aborts its upload and purges it.
func (r *rig) abandon(up *upload) {
	r.age(up, "abandoned")
}

// stall ages up's document as if its client had stalled for an hour (now
// and then asking for a sweep at once), and goes on as the client would
// when it comes back: it asks for the URLs of the parts left, which
// renews the document, PUTs them and completes, racing the sweeps, which
// may abort the upload and purge the document first. Sweeps run one at a
// time: asking for more of them than the workers do would only queue them.
func (r *rig) stall(rng *rand.Rand, up *upload) {
	if !r.age(up, "stalled") {
		return
	}
	if rng.IntN(3) == 0 {
		r.sweep()
	}
	time.Sleep(time.Duration(rng.IntN(500)) * time.Millisecond)
	clear(up.urls)
	if r.uploadParts(rng, up, len(up.parts)+1, up.d.plan.PartCount) && r.complete(rng, up, "complete") {
		r.outcome("multipart", "stalled, then completed", false)
		return
	}
	// Where the sweep left it: a row still pending a second later had its
	// upload aborted by the sweep, but was renewed by the part URLs asked
	// for meanwhile, so the sweep's purge passed it by.
	time.Sleep(time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	state := "gone"
	var status string
	var renewed bool
	err := r.s.DB.QueryRow(ctx, `SELECT status, updated_at > now() - interval '10 minutes' FROM documents WHERE id = $1`,
		up.d.id).Scan(&status, &renewed)
	switch {
	case err == nil && status == string(document.StatusPending) && renewed:
		state = "pending, renewed"
	case err == nil:
		state = status
	case !errors.Is(err, pgx.ErrNoRows):
		state = err.Error()
	}
	r.outcome("multipart", "stalled, then its upload was gone; a second later its row is "+state, false)
}

// age makes up's document look an hour old to the sweeper, as if its
// client had gone away (what is one of abandoned, stalled); false if it
// is gone already.
func (r *rig) age(up *upload, what string) bool {
	d := up.d
	u := d.user
	u.mu.Lock()
	d.aged = true // from now on a sweep may remove it
	u.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	began := time.Now()
	tag, err := r.s.DB.Exec(ctx, `UPDATE documents SET created_at = created_at - interval '1 hour',
		updated_at = updated_at - interval '1 hour' WHERE id = $1 AND status = 'pending'`, d.id)
	if r.pgAway(began, err) {
		// The test could not make it look old; the final sweep, which
		// ages every pending row, still has to remove it.
		r.outcome("multipart", what+", but PostgreSQL was away to age it", false)
		return false
	}
	if err != nil {
		r.fail("age document %s: %v", d.id, err)
		return false
	}
	if tag.RowsAffected() == 0 {
		r.outcome("multipart", what+", but gone already", false)
		return false
	}
	r.outcome("multipart", fmt.Sprintf("%s with %d of %d part(s)", what, len(up.parts), d.plan.PartCount), false)
	return true
}
