package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/minio/minio-go/v7"

	"github.com/docuvault/docuvault/internal/apitest"
	"github.com/docuvault/docuvault/shared/config"
)

// sha256Of is data's SHA-256 digest as upload-url takes it: base64.
func sha256Of(data []byte) string {
	sum := sha256.Sum256(data)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// checksumJSON is a document's checksum as the API shows it.
type checksumJSON struct {
	Algorithm string `json:"algorithm"`
	Value     string `json:"value"`
}

// requestChecksummed asks for an upload URL of data with its size and
// SHA-256 declared.
func requestChecksummed(t *testing.T, s *apitest.Stack, tok string, data []byte) apitest.Ticket {
	t.Helper()
	r := s.Do(t, http.MethodPost, "/api/documents/upload-url", tok, map[string]any{
		"filename": "contract.pdf", "content_type": "application/pdf", "size_bytes": len(data), "sha256": sha256Of(data)})
	if r.Status != http.StatusCreated {
		t.Fatalf("upload-url with sha256: %d %s", r.Status, r.Body)
	}
	var tk apitest.Ticket
	r.Decode(t, &tk)
	return tk
}

// putAs sends body to the ticket's URL with its headers, changed by edit,
// and returns MinIO's status and error code.
func putAs(t *testing.T, tk apitest.Ticket, body []byte, edit func(http.Header)) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, tk.UploadURL, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range tk.Headers {
		req.Header.Set(k, v)
	}
	edit(req.Header)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	code := ""
	if i, j := bytes.Index(b, []byte("<Code>")), bytes.Index(b, []byte("</Code>")); i >= 0 && j > i {
		code = string(b[i+len("<Code>") : j])
	}
	return resp.StatusCode, code
}

// TestASignedChecksumStoresOnlyItsBytes is the holder of an upload URL
// with a declared SHA-256 trying to store other bytes of the same length,
// against the real MinIO: every attempt is refused and nothing is stored
// or charged; the declared bytes are stored, and the confirmed document,
// GET, the list and document.uploaded carry the checksum.
func TestASignedChecksumStoresOnlyItsBytes(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	_, tok := s.NewUser(t)
	good := apitest.BytesOf(4096)
	evil := bytes.Repeat([]byte("X"), len(good))
	tk := requestChecksummed(t, s, tok, good)
	if got := tk.Headers["x-amz-checksum-sha256"]; got != sha256Of(good) {
		t.Fatalf("headers = %v, want x-amz-checksum-sha256 %s", tk.Headers, sha256Of(good))
	}
	if !strings.Contains(tk.UploadURL, "x-amz-checksum-sha256") {
		t.Errorf("the checksum is not among the URL's signed headers: %s", tk.UploadURL)
	}

	crc := func(b []byte) string {
		v := crc32.ChecksumIEEE(b)
		return base64.StdEncoding.EncodeToString([]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
	attacks := []struct {
		name   string
		edit   func(http.Header)
		status int
		code   string
	}{
		{"other bytes", func(http.Header) {}, 400, "XAmzContentChecksumMismatch"},
		{"the checksum header left out", func(h http.Header) { h.Del("x-amz-checksum-sha256") }, 400, "AccessDenied"},
		{"the checksum header changed to the other bytes'", func(h http.Header) { h.Set("x-amz-checksum-sha256", sha256Of(evil)) }, 403, "SignatureDoesNotMatch"},
		{"a CRC32 of the other bytes beside it", func(h http.Header) { h.Set("x-amz-checksum-crc32", crc(evil)) }, 400, "InvalidArgument"},
		{"the algorithm switched to CRC32", func(h http.Header) {
			h.Set("x-amz-sdk-checksum-algorithm", "CRC32")
			h.Set("x-amz-checksum-crc32", crc(evil))
		}, 400, "InvalidArgument"},
		{"a trailer announced", func(h http.Header) { h.Set("x-amz-trailer", "x-amz-checksum-crc32") }, 400, "XAmzContentChecksumMismatch"},
	}
	for _, a := range attacks {
		status, code := putAs(t, tk, evil, a.edit)
		t.Logf("%s: MinIO answered %d %s", a.name, status, code)
		if status != a.status || code != a.code {
			t.Errorf("PUT of other bytes, %s: %d %s, want %d %s", a.name, status, code, a.status, a.code)
		}
		if s.ObjectExists(t, tk.DocumentID) {
			t.Fatalf("PUT of other bytes, %s: an object is stored", a.name)
		}
	}
	if r := s.Confirm(t, tok, tk.DocumentID); r.Status != http.StatusUnprocessableEntity {
		t.Errorf("confirm with nothing stored: %d %s, want 422", r.Status, r.Body)
	}
	if used, _ := s.Quota(t, tok); used != 0 {
		t.Errorf("used %d bytes after the refused PUTs, want 0", used)
	}

	if status, code := putAs(t, tk, good, func(http.Header) {}); status != http.StatusOK {
		t.Fatalf("PUT of the declared bytes: %d %s", status, code)
	}
	want := checksumJSON{Algorithm: "sha256", Value: sha256Of(good)}
	r := s.Confirm(t, tok, tk.DocumentID)
	var c struct {
		apitest.Confirmation
		Checksum *checksumJSON `json:"checksum"`
	}
	r.Decode(t, &c)
	if r.Status != http.StatusOK || c.Checksum == nil || *c.Checksum != want || c.UsedBytes != int64(len(good)) {
		t.Fatalf("confirm: %d %s, want 200 with checksum %+v and %d bytes used", r.Status, r.Body, want, len(good))
	}
	var doc struct {
		Checksum *checksumJSON `json:"checksum"`
	}
	s.Do(t, http.MethodGet, "/api/documents/"+tk.DocumentID.String(), tok, nil).Decode(t, &doc)
	if doc.Checksum == nil || *doc.Checksum != want {
		t.Errorf("GET: checksum %+v, want %+v", doc.Checksum, want)
	}
	var list struct {
		Items []struct {
			ID       uuid.UUID     `json:"id"`
			Checksum *checksumJSON `json:"checksum"`
		} `json:"items"`
	}
	s.Do(t, http.MethodGet, "/api/documents", tok, nil).Decode(t, &list)
	if len(list.Items) != 1 || list.Items[0].Checksum == nil || *list.Items[0].Checksum != want {
		t.Errorf("list: %+v, want the document with checksum %+v", list.Items, want)
	}
	var uploaded int
	for _, e := range s.DocumentEvents(t, tk.DocumentID) {
		var data struct {
			Checksum *checksumJSON `json:"checksum"`
		}
		if err := json.Unmarshal(e.Data, &data); err != nil {
			t.Fatal(err)
		}
		if e.Type == "document.uploaded" {
			uploaded++
			if data.Checksum == nil || *data.Checksum != want {
				t.Errorf("document.uploaded: checksum %+v, want %+v", data.Checksum, want)
			}
		}
	}
	if uploaded != 1 {
		t.Errorf("%d document.uploaded events, want 1", uploaded)
	}
}

// TestAnObjectOfAnotherChecksumIsNeverCharged: bytes that did not come
// through the upload URL (written under the document's key by a tool with
// other credentials) and are not the declared ones are found by the
// confirm's stat and rejected, uncharged, their object removed.
func TestAnObjectOfAnotherChecksumIsNeverCharged(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	_, tok := s.NewUser(t)
	good := apitest.BytesOf(2048)
	tk := requestChecksummed(t, s, tok, good)
	var key string
	if err := s.DB.QueryRow(context.Background(), "SELECT object_key FROM documents WHERE id = $1", tk.DocumentID).Scan(&key); err != nil {
		t.Fatal(err)
	}
	other := bytes.Repeat([]byte("Y"), len(good))
	if _, err := s.MinIO.Client(t).PutObject(context.Background(), s.Bucket, key, bytes.NewReader(other), int64(len(other)),
		minio.PutObjectOptions{ContentType: "application/pdf", AutoChecksum: minio.ChecksumSHA256}); err != nil {
		t.Fatal(err)
	}
	r := s.Confirm(t, tok, tk.DocumentID)
	if r.Status != http.StatusUnprocessableEntity || !strings.Contains(string(r.Body), "checksum_mismatch") {
		t.Errorf("confirm of an object with another checksum: %d %s, want 422 naming checksum_mismatch", r.Status, r.Body)
	}
	if used, _ := s.Quota(t, tok); used != 0 {
		t.Errorf("used %d bytes, want 0", used)
	}
	if s.ObjectExists(t, tk.DocumentID) {
		t.Error("the rejected object is still stored")
	}
}

// TestChecksumRequests: a sha256 that is not the base64 of 32 bytes, or
// one with a multipart upload, is refused 422 and nothing is made; with
// REQUIRE_CHECKSUM a request for a single PUT without one is refused 422
// naming it, and one for an upload in parts without part_checksum too.
func TestChecksumRequests(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{Edit: func(c *config.Config) { c.RequireChecksum = true }})
	user, tok := s.NewUser(t)
	good := sha256Of([]byte("x"))
	for _, body := range []map[string]any{
		{"filename": "a.pdf", "content_type": "application/pdf", "size_bytes": 10},
		{"filename": "a.pdf", "content_type": "application/pdf", "size_bytes": 10, "sha256": ""},
		{"filename": "a.pdf", "content_type": "application/pdf", "size_bytes": 10, "sha256": strings.Repeat("ab", 32)}, // hex
		{"filename": "a.pdf", "content_type": "application/pdf", "size_bytes": 10, "sha256": base64.StdEncoding.EncodeToString(make([]byte, 31))},
		{"filename": "a.pdf", "content_type": "application/pdf", "size_bytes": 10, "sha256": base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 32))},
		{"filename": "a.pdf", "content_type": "application/pdf", "size_bytes": 10 << 20, "multipart": true, "sha256": good},
	} {
		r := s.Do(t, http.MethodPost, "/api/documents/upload-url", tok, body)
		d, _ := r.Detail(t).(string)
		if r.Status != http.StatusUnprocessableEntity || !strings.Contains(d, "sha256") {
			t.Errorf("upload-url %v: %d %s, want 422 naming sha256", body, r.Status, r.Body)
		}
	}
	var n int
	if err := s.DB.QueryRow(context.Background(), "SELECT count(*) FROM documents WHERE user_id = $1", user).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d documents made by refused requests", n)
	}
	data := []byte("0123456789")
	tk := requestChecksummed(t, s, tok, data)
	if status, code := putAs(t, tk, data, func(http.Header) {}); status != http.StatusOK {
		t.Fatalf("PUT: %d %s", status, code)
	}
	if r := s.Confirm(t, tok, tk.DocumentID); r.Status != http.StatusOK {
		t.Fatalf("confirm: %d %s", r.Status, r.Body)
	}
	inParts := map[string]any{"filename": "scan.tiff", "content_type": "image/tiff", "size_bytes": 10 << 20, "multipart": true}
	if r := s.Do(t, http.MethodPost, "/api/documents/upload-url", tok, inParts); r.Status != http.StatusUnprocessableEntity ||
		!strings.Contains(string(r.Body), "part_checksum") {
		t.Errorf("upload-url in parts without part_checksum under REQUIRE_CHECKSUM: %d %s, want 422 naming part_checksum", r.Status, r.Body)
	}
	inParts["part_checksum"] = "sha256"
	if r := s.Do(t, http.MethodPost, "/api/documents/upload-url", tok, inParts); r.Status != http.StatusCreated {
		t.Errorf("upload-url in parts with part_checksum under REQUIRE_CHECKSUM: %d %s, want 201", r.Status, r.Body)
	}
	inParts["part_checksum"] = "md5"
	if r := s.Do(t, http.MethodPost, "/api/documents/upload-url", tok, inParts); r.Status != http.StatusUnprocessableEntity {
		t.Errorf("upload-url with part_checksum md5: %d %s, want 422", r.Status, r.Body)
	}
}

// TestADuplicateMovesNoBytes: an upload-url whose sha256 one of the
// caller's stored documents has is answered 200 with that document, and
// nothing is made or reserved; a pending or deleted document with it, or
// another user's stored one, is not a duplicate, and the other user's
// answer is an upload URL like any other.
func TestADuplicateMovesNoBytes(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	owner, tok := s.NewUser(t)
	_, otherTok := s.NewUser(t)
	data := apitest.BytesOf(3000)
	tk := requestChecksummed(t, s, tok, data)
	if status, code := putAs(t, tk, data, func(http.Header) {}); status != http.StatusOK {
		t.Fatalf("PUT: %d %s", status, code)
	}
	if r := s.Confirm(t, tok, tk.DocumentID); r.Status != http.StatusOK {
		t.Fatalf("confirm: %d %s", r.Status, r.Body)
	}
	documents := func(user uuid.UUID) int {
		var n int
		if err := s.DB.QueryRow(context.Background(), "SELECT count(*) FROM documents WHERE user_id = $1", user).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	ask := func(tok string, data []byte) apitest.Response {
		return s.Do(t, http.MethodPost, "/api/documents/upload-url", tok, map[string]any{
			"filename": "again.pdf", "content_type": "application/pdf", "size_bytes": len(data), "sha256": sha256Of(data)})
	}
	r := ask(tok, data)
	var dup struct {
		Duplicate  bool      `json:"duplicate"`
		DocumentID uuid.UUID `json:"document_id"`
		UploadURL  string    `json:"upload_url"`
		Document   struct {
			ID       uuid.UUID     `json:"id"`
			Status   string        `json:"status"`
			Checksum *checksumJSON `json:"checksum"`
		} `json:"document"`
	}
	r.Decode(t, &dup)
	if r.Status != http.StatusOK || !dup.Duplicate || dup.DocumentID != tk.DocumentID || dup.Document.ID != tk.DocumentID ||
		dup.UploadURL != "" || dup.Document.Checksum == nil || dup.Document.Checksum.Value != sha256Of(data) {
		t.Fatalf("upload-url of a stored checksum: %d %s, want 200 naming %s", r.Status, r.Body, tk.DocumentID)
	}
	if n := documents(owner); n != 1 {
		t.Errorf("%d documents after the duplicate, want 1", n)
	}
	var reserved int64
	if err := s.DB.QueryRow(context.Background(), "SELECT reserved_bytes FROM quotas WHERE user_id = $1", owner).Scan(&reserved); err != nil || reserved != 0 {
		t.Errorf("reserved %d bytes (%v) after the duplicate, want 0", reserved, err)
	}

	// Another user's identical file is uploaded as usual.
	other := requestChecksummed(t, s, otherTok, data)
	if other.UploadURL == "" || other.DocumentID == tk.DocumentID {
		t.Fatalf("another user's upload-url: %+v, want a URL for a document of its own", other)
	}
	if status, code := putAs(t, other, data, func(http.Header) {}); status != http.StatusOK {
		t.Fatalf("the other user's PUT: %d %s", status, code)
	}
	if r := s.Confirm(t, otherTok, other.DocumentID); r.Status != http.StatusOK {
		t.Fatalf("the other user's confirm: %d %s", r.Status, r.Body)
	}

	// A pending document is not stored: the same checksum again gets a URL.
	pendingData := apitest.BytesOf(100)
	requestChecksummed(t, s, tok, pendingData)
	requestChecksummed(t, s, tok, pendingData)

	// Deleted, it is no duplicate any more.
	if r := s.Do(t, http.MethodDelete, "/api/documents/"+tk.DocumentID.String(), tok, nil); r.Status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	if r := ask(tok, data); r.Status != http.StatusCreated {
		t.Errorf("upload-url after the delete: %d %s, want 201", r.Status, r.Body)
	}
}

// TestMultipartPartsUnderSignedChecksums: an upload in parts asked for
// with part_checksum "sha256" has its parts' URLs asked for with each
// part's SHA-256, which MinIO then holds the part to: a part of other
// bytes is refused (400 XAmzContentChecksumMismatch) and may be sent again;
// a part URL asked for without its digest is refused (422). Completed, the
// document (confirm answer, GET, document.uploaded) holds the composite
// checksum of its parts, as S3 computes it.
func TestMultipartPartsUnderSignedChecksums(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{Edit: func(c *config.Config) { c.MultipartPartSize = 5 << 20 }})
	_, tok := s.NewUser(t)
	const mib = 1 << 20
	data := apitest.BytesOf(11 * mib) // parts of 5, 5 and 1 MiB
	r := s.Do(t, http.MethodPost, "/api/documents/upload-url", tok, map[string]any{
		"filename": "scan.pdf", "content_type": "application/pdf", "size_bytes": len(data), "multipart": true, "part_checksum": "sha256"})
	var plan struct {
		apitest.Plan
		PartChecksum string `json:"part_checksum"`
	}
	r.Decode(t, &plan)
	if r.Status != http.StatusCreated || plan.PartChecksum != "sha256" || len(plan.Parts) != 0 || plan.PartCount < 2 {
		t.Fatalf("upload-url with part_checksum: %d %s, want 201 with part_checksum sha256 and no part URLs", r.Status, r.Body)
	}
	part := func(n int) []byte {
		start := int64(n-1) * plan.PartSize
		return data[start:min(start+plan.PartSize, int64(len(data)))]
	}
	if r := s.Do(t, http.MethodPost, "/api/documents/"+plan.DocumentID.String()+"/parts", tok, map[string]any{"part_numbers": []int{1}}); r.Status != http.StatusUnprocessableEntity {
		t.Errorf("part URL without its sha256: %d %s, want 422", r.Status, r.Body)
	}
	sign := func(n int) string {
		t.Helper()
		r := s.Do(t, http.MethodPost, "/api/documents/"+plan.DocumentID.String()+"/parts", tok,
			map[string]any{"parts": []map[string]any{{"part_number": n, "sha256": sha256Of(part(n))}}})
		var out struct {
			Parts []apitest.PartURL `json:"parts"`
		}
		r.Decode(t, &out)
		if r.Status != http.StatusOK || len(out.Parts) != 1 || !strings.Contains(out.Parts[0].URL, "x-amz-checksum-sha256") {
			t.Fatalf("part %d's URL: %d %s, want one URL signing its checksum", n, r.Status, r.Body)
		}
		return out.Parts[0].URL
	}
	withSum := func(n int) http.Header { return http.Header{"X-Amz-Checksum-Sha256": {sha256Of(part(n))}} }

	var parts []apitest.CompletedPart
	for n := 1; n <= plan.PartCount; n++ {
		url := sign(n)
		if n == 1 {
			// Other bytes of the same length under part 1's checksum, and
			// the right bytes without the header.
			other := bytes.Repeat([]byte("Z"), len(part(1)))
			tk := apitest.Ticket{UploadURL: url, Headers: map[string]string{"X-Amz-Checksum-Sha256": sha256Of(part(1))}}
			status, code := putAs(t, tk, other, func(http.Header) {})
			t.Logf("part 1 of other bytes: MinIO answered %d %s", status, code)
			if status != http.StatusBadRequest || code != "XAmzContentChecksumMismatch" {
				t.Errorf("part 1 of other bytes: MinIO answered %d %s, want 400 XAmzContentChecksumMismatch", status, code)
			}
			status, code = putAs(t, tk, part(1), func(h http.Header) { h.Del("X-Amz-Checksum-Sha256") })
			t.Logf("part 1 without its checksum header: MinIO answered %d %s", status, code)
			if status == http.StatusOK {
				t.Error("part 1 without its checksum header: MinIO took it")
			}
		}
		st, etag := s.PutPart(t, url, part(n), withSum(n))
		if st != http.StatusOK {
			t.Fatalf("part %d: MinIO answered %d", n, st)
		}
		parts = append(parts, apitest.CompletedPart{PartNumber: n, ETag: etag})
	}
	var listed struct {
		Parts []struct {
			PartNumber int    `json:"part_number"`
			SHA256     string `json:"sha256"`
		} `json:"parts"`
	}
	s.Do(t, http.MethodGet, "/api/documents/"+plan.DocumentID.String()+"/parts", tok, nil).Decode(t, &listed)
	if len(listed.Parts) != plan.PartCount || listed.Parts[0].SHA256 != sha256Of(part(1)) {
		t.Errorf("listed parts %+v, want %d with their SHA-256s", listed.Parts, plan.PartCount)
	}

	// S3's composite checksum: the SHA-256 of the parts' digests, -N.
	h := sha256.New()
	for n := 1; n <= plan.PartCount; n++ {
		sum := sha256.Sum256(part(n))
		h.Write(sum[:])
	}
	want := checksumJSON{Algorithm: "sha256_composite", Value: fmt.Sprintf("%s-%d", base64.StdEncoding.EncodeToString(h.Sum(nil)), plan.PartCount)}
	r = s.Complete(t, tok, plan.DocumentID, parts)
	var c struct {
		apitest.Confirmation
		Checksum *checksumJSON `json:"checksum"`
	}
	r.Decode(t, &c)
	if r.Status != http.StatusOK || c.Checksum == nil || *c.Checksum != want || c.SizeBytes != int64(len(data)) {
		t.Fatalf("complete: %d %s, want 200 with checksum %+v", r.Status, r.Body, want)
	}
	var doc struct {
		Checksum *checksumJSON `json:"checksum"`
	}
	s.Do(t, http.MethodGet, "/api/documents/"+plan.DocumentID.String(), tok, nil).Decode(t, &doc)
	if doc.Checksum == nil || *doc.Checksum != want {
		t.Errorf("GET: checksum %+v, want %+v", doc.Checksum, want)
	}
	var key string
	if err := s.DB.QueryRow(context.Background(), "SELECT object_key FROM documents WHERE id = $1", plan.DocumentID).Scan(&key); err != nil {
		t.Fatal(err)
	}
	stat, err := s.MinIO.Client(t).StatObject(context.Background(), s.Bucket, key, minio.StatObjectOptions{Checksum: true})
	if err != nil || stat.ChecksumSHA256 != want.Value {
		t.Errorf("MinIO's checksum of the object: %q (%v), want %q", stat.ChecksumSHA256, err, want.Value)
	}
	for _, e := range s.DocumentEvents(t, plan.DocumentID) {
		var data struct {
			Checksum *checksumJSON `json:"checksum"`
		}
		if err := json.Unmarshal(e.Data, &data); err != nil {
			t.Fatal(err)
		}
		if e.Type == "document.uploaded" && (data.Checksum == nil || *data.Checksum != want) {
			t.Errorf("document.uploaded: checksum %+v, want %+v", data.Checksum, want)
		}
	}
}
