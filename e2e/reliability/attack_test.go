package reliability_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The attacks an upload URL's holder tries beside the honest clients.
// Each is counted in the report as "attack <name> <status> <code>": how
// MinIO answered. What MinIO took (a PUT again after a rejection or a
// delete) the confirmer must remove: invariants 5 and 6 check the end.
const (
	attackCopyAcross      = "copy from another user"
	attackCopyOnConfirmed = "copy onto a confirmed document"
	attackRejectedAgain   = "PUT again after a rejection"
	attackDeletedAgain    = "PUT again after a delete"
	attackHeader          = "header injection"
	attackWrongBody       = "other bytes under a signed checksum"
)

// injectedHeaders would each store an object otherwise than as the plain
// PUT that was signed; the upload identity's policy refuses them all.
var injectedHeaders = []http.Header{
	{"X-Amz-Tagging": {"owner=attacker"}},
	{"X-Amz-Storage-Class": {"REDUCED_REDUNDANCY"}},
	{"X-Amz-Server-Side-Encryption": {"AES256"}},
	{"X-Amz-Object-Lock-Legal-Hold": {"ON"}},
	{"X-Amz-Object-Lock-Mode": {"GOVERNANCE"}, "X-Amz-Object-Lock-Retain-Until-Date": {"2099-01-01T00:00:00Z"}},
	{"X-Amz-Meta-Owner": {"attacker"}},
}

// attack runs one attack, chosen at random, as u.
func (r *rig) attack(rng *rand.Rand, u *user) {
	switch rng.IntN(6) {
	case 0:
		r.copyAcross(rng, u)
	case 1:
		r.copyOntoConfirmed(rng, u)
	case 2:
		r.putAgainAfterRejection(u)
	case 3:
		r.putAgainAfterDelete(rng, u)
	case 4:
		r.wrongBody(rng, u)
	default:
		r.injectHeader(rng, u)
	}
}

// victim returns the object key of a confirmed document of a user other
// than u, or "".
func (r *rig) victim(rng *rand.Rand, u *user) string {
	v := r.users[rng.IntN(len(r.users))]
	if v == u {
		return ""
	}
	d := v.pick(rng, func(d *doc) bool { return d.confirmed && !d.deleted })
	if d == nil {
		return ""
	}
	return d.key
}

// objectKey is d's object key, read off its upload URL's path (its first
// part's for a multipart document).
func (r *rig) objectKey(d *doc) string {
	u := d.ticket.UploadURL
	if d.plan != nil {
		u = d.plan.Parts[0].URL
	}
	p, err := url.Parse(u)
	if err != nil {
		r.fail("upload URL of %s: %v", d.id, err)
		return ""
	}
	return strings.TrimPrefix(p.Path, "/"+r.s.Bucket+"/")
}

// attackPut sends a PUT of d's URL with its headers, extra and body, and
// records how MinIO answered; ok is false when MinIO could not answer
// (away, or stopping).
func (r *rig) attackPut(kind string, d *doc, extra http.Header, body []byte) (status int, code string, ok bool) {
	defer r.count("attack")()
	req, err := http.NewRequest(http.MethodPut, d.ticket.UploadURL, bytes.NewReader(body))
	if err != nil {
		r.fail("%s: %v", kind, err)
		return 0, "", false
	}
	for k, v := range d.ticket.Headers {
		if k != "Content-Length" {
			req.Header.Set(k, v)
		}
	}
	for k, v := range extra {
		req.Header[k] = v
	}
	resp, err := r.client.Do(req)
	if err != nil {
		r.outcome("attack "+kind, "transport error", true)
		time.Sleep(20 * time.Millisecond)
		return 0, "", false
	}
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if i := bytes.Index(answer, []byte("<Code>")); i >= 0 {
		code, _, _ = strings.Cut(string(answer[i+len("<Code>"):]), "<")
	}
	failed := resp.StatusCode >= 500 || resp.StatusCode == 499
	r.outcome("attack "+kind, strings.TrimSpace(strconv.Itoa(resp.StatusCode)+" "+code), failed)
	if resp.StatusCode == http.StatusOK {
		d.user.mu.Lock()
		d.storedAt = time.Now()
		d.user.mu.Unlock()
	}
	if failed {
		time.Sleep(20 * time.Millisecond)
	}
	return resp.StatusCode, code, !failed
}

// copyAcross asks for a fresh upload URL and PUTs it as a server-side copy
// of another user's object. MinIO must refuse: the upload identity may not
// read.
func (r *rig) copyAcross(rng *rand.Rand, u *user) {
	from := r.victim(rng, u)
	if from == "" {
		return
	}
	d := &doc{user: u, size: 1 + rng.Int64N(maxDocBytes), declared: rng.IntN(2) == 0, contentType: "application/pdf"}
	if !r.issue(d, false) {
		return
	}
	d.put = putFailed // until MinIO says otherwise
	st, code, ok := r.attackPut(attackCopyAcross, d, http.Header{"X-Amz-Copy-Source": {"/" + r.s.Bucket + "/" + from}}, u.content(int(d.size)))
	switch {
	case ok && st/100 == 2:
		r.fail("%s: MinIO answered %d %s to a copy of %s into document %s", attackCopyAcross, st, code, from, d.id)
	case ok:
		d.put = putRefused
	}
	r.share(d)
}

// copyOntoConfirmed PUTs a confirmed document's URL again as a copy of
// another user's object. MinIO must refuse (no read, or If-None-Match, or
// the URL has expired).
func (r *rig) copyOntoConfirmed(rng *rand.Rand, u *user) {
	d := u.pick(rng, func(d *doc) bool { return d.confirmed && !d.deleted && !d.multipart })
	from := r.victim(rng, u)
	if d == nil || from == "" {
		return
	}
	st, code, ok := r.attackPut(attackCopyOnConfirmed, d, http.Header{"X-Amz-Copy-Source": {"/" + r.s.Bucket + "/" + from}}, u.content(int(d.size)))
	if ok && st/100 == 2 {
		r.fail("%s: MinIO answered %d %s to a copy of %s onto document %s", attackCopyOnConfirmed, st, code, from, d.id)
	}
}

// putAgainAfterRejection uploads more than u's whole quota without
// declaring it, confirms (413), and PUTs the same bytes again through the
// same URL: MinIO takes them (If-None-Match: the object is gone), and the
// confirmer must remove them.
func (r *rig) putAgainAfterRejection(u *user) {
	d := &doc{user: u, size: u.limit + 1, contentType: "application/pdf"}
	if !r.issue(d, false) {
		return
	}
	if r.put(d) != putOK {
		r.share(d)
		return
	}
	r.confirm(d)
	u.mu.Lock()
	rejected := d.rejected
	u.mu.Unlock()
	if rejected {
		r.attackPut(attackRejectedAgain, d, nil, u.content(int(d.size)))
	}
	r.share(d)
}

// putAgainAfterDelete uploads, confirms and deletes a document, then PUTs
// its bytes again through its URL: the confirmer must remove them.
func (r *rig) putAgainAfterDelete(rng *rand.Rand, u *user) {
	d := &doc{user: u, size: 1 + rng.Int64N(4<<10), declared: true, contentType: "application/pdf"}
	if !r.issue(d, false) {
		return
	}
	if r.put(d) != putOK {
		r.share(d)
		return
	}
	r.confirm(d)
	u.mu.Lock()
	confirmed := d.confirmed
	u.mu.Unlock()
	if confirmed && r.delete(d) {
		r.attackPut(attackDeletedAgain, d, nil, u.content(int(d.size)))
		return
	}
	r.share(d)
}

// injectHeader PUTs a fresh upload URL with a header that would store the
// object otherwise (tags, storage class, encryption, object lock,
// metadata). MinIO must refuse it.
func (r *rig) injectHeader(rng *rand.Rand, u *user) {
	d := &doc{user: u, size: 1 + rng.Int64N(maxDocBytes), declared: true, contentType: "application/pdf"}
	if !r.issue(d, false) {
		return
	}
	d.put = putFailed
	h := injectedHeaders[rng.IntN(len(injectedHeaders))]
	st, code, ok := r.attackPut(attackHeader, d, h, u.content(int(d.size)))
	switch {
	case ok && st/100 == 2:
		r.fail("%s %v: MinIO answered %d %s", attackHeader, h, st, code)
	case ok:
		d.put = putRefused
	}
	r.share(d)
}

// wrongBody asks for an upload URL with the SHA-256 of some bytes (random:
// none of u's stored documents has them, so it is no duplicate) and PUTs
// other bytes of the same length. MinIO must refuse them (400
// XAmzContentChecksumMismatch): nothing is stored or charged.
func (r *rig) wrongBody(rng *rand.Rand, u *user) {
	signed := make([]byte, 1+rng.IntN(maxDocBytes))
	for i := range signed {
		signed[i] = byte(rng.Uint32())
	}
	sum := sha256.Sum256(signed)
	d := &doc{user: u, size: int64(len(signed)), declared: true, contentType: "application/pdf",
		sha256: base64.StdEncoding.EncodeToString(sum[:])}
	if !r.issue(d, false) {
		return
	}
	d.put = putFailed
	st, code, ok := r.attackPut(attackWrongBody, d, nil, u.content(len(signed)))
	switch {
	case ok && st/100 == 2:
		r.fail("%s: MinIO answered %d %s", attackWrongBody, st, code)
	case ok:
		d.put = putRefused
	}
	r.share(d)
}
