package api_test

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/docuvault/docuvault/internal/apitest"
	"github.com/docuvault/docuvault/shared/config"
	"github.com/docuvault/docuvault/shared/document"
)

const mib = 1 << 20

// multipartStack runs the API with parts of 8 MiB from 16 MiB up.
func multipartStack(t *testing.T, opts apitest.Options) *apitest.Stack {
	t.Helper()
	edit := opts.Edit
	opts.Edit = func(c *config.Config) {
		c.MaxUploadBytes = 1 << 30
		c.QuotaDefaultBytes = 1 << 30
		c.MultipartThreshold = 16 * mib
		c.MultipartPartSize = 8 * mib
		if edit != nil {
			edit(c)
		}
	}
	return apitest.Start(t, opts)
}

// A 64 MiB file goes in 8 parts of 8 MiB, and exactly its size is charged:
// reserved while the parts are in flight, used once complete.
func TestMultipartUploadOf64MiBIn8PartsChargesItsExactSize(t *testing.T) {
	t.Parallel()
	s := multipartStack(t, apitest.Options{})
	_, tok := s.NewUser(t)
	data := apitest.BytesOf(64 * mib)

	// Above the threshold, a declared size alone makes it multipart.
	r := s.Do(t, http.MethodPost, "/api/documents/upload-url", tok,
		map[string]any{"filename": "scan.pdf", "content_type": "application/pdf", "size_bytes": len(data)})
	if r.Status != http.StatusCreated {
		t.Fatalf("upload-url: %d %s", r.Status, r.Body)
	}
	var p apitest.Plan
	r.Decode(t, &p)
	if p.UploadID == "" || p.PartSize != 8*mib || p.PartCount != 8 || len(p.Parts) != 8 {
		t.Fatalf("plan: upload %q, part size %d, %d parts, %d URLs; want 8 parts of 8 MiB with 8 URLs", p.UploadID, p.PartSize, p.PartCount, len(p.Parts))
	}
	if got := s.Reserved(t, tok); got != int64(len(data)) {
		t.Fatalf("reserved_bytes = %d while the parts are in flight, want %d", got, len(data))
	}
	parts := s.UploadParts(t, tok, p, data)

	// Resuming from another replica: GET parts lists what MinIO holds.
	r = s.Do(t, http.MethodGet, "/api/documents/"+p.DocumentID.String()+"/parts", tok, nil)
	var listed struct {
		PartCount int `json:"part_count"`
		Parts     []struct {
			PartNumber int    `json:"part_number"`
			Size       int64  `json:"size"`
			ETag       string `json:"etag"`
		} `json:"parts"`
	}
	r.Decode(t, &listed)
	if r.Status != http.StatusOK || len(listed.Parts) != 8 || listed.Parts[7].Size != 8*mib || listed.Parts[0].ETag != parts[0].ETag {
		t.Fatalf("GET parts: %d %s", r.Status, r.Body)
	}

	// Quotes around an ETag (as the PUT answered it) are accepted.
	parts[0].ETag = `"` + parts[0].ETag + `"`
	r = s.Complete(t, tok, p.DocumentID, parts)
	var c apitest.Confirmation
	r.Decode(t, &c)
	if r.Status != http.StatusOK || c.Status != "uploaded" || c.SizeBytes != int64(len(data)) || c.UsedBytes != int64(len(data)) {
		t.Fatalf("complete: %d %s", r.Status, r.Body)
	}
	if used, _ := s.Quota(t, tok); used != int64(len(data)) {
		t.Fatalf("used_bytes = %d, want %d", used, len(data))
	}
	if got := s.Reserved(t, tok); got != 0 {
		t.Fatalf("reserved_bytes = %d after complete, want 0", got)
	}
	if got := s.ObjectSize(t, p.DocumentID); got != int64(len(data)) {
		t.Fatalf("stored %d bytes, want %d", got, len(data))
	}
	// Completing again answers the same, and charges nothing more.
	if r := s.Complete(t, tok, p.DocumentID, parts); r.Status != http.StatusOK {
		t.Fatalf("complete again: %d %s", r.Status, r.Body)
	}
	if used, _ := s.Quota(t, tok); used != int64(len(data)) {
		t.Fatalf("used_bytes = %d after a second complete, want %d", used, len(data))
	}
	if open := s.OpenUploads(t, s.ObjectKey(t, p.DocumentID)); len(open) != 0 {
		t.Fatalf("uploads still open after complete: %v", open)
	}
}

// A part URL carries the put-only identity's rights: an UploadPartCopy
// through it (x-amz-copy-source) cannot read another object, and a part of
// another size than the one signed is refused by MinIO.
func TestPartURLRefusesACopyAndAnotherSize(t *testing.T) {
	t.Parallel()
	s := multipartStack(t, apitest.Options{})
	_, victimTok := s.NewUser(t)
	secret := s.Upload(t, victimTok, "secret.pdf", apitest.BytesOf(6*mib))
	if r := s.Confirm(t, victimTok, secret); r.Status != http.StatusOK {
		t.Fatalf("confirm: %d %s", r.Status, r.Body)
	}
	_, tok := s.NewUser(t)
	p := s.RequestMultipart(t, tok, "mine.pdf", 6*mib)
	u := p.Parts[0]
	if u.Size != 6*mib {
		t.Fatalf("part 1 size %d, want %d", u.Size, 6*mib)
	}

	copyFrom := http.Header{"X-Amz-Copy-Source": {"/" + s.Bucket + "/" + s.ObjectKey(t, secret)}}
	if st, _ := s.PutPart(t, u.URL, nil, copyFrom); st != http.StatusForbidden {
		t.Fatalf("UploadPartCopy through a part URL: MinIO answered %d, want 403", st)
	}
	short := apitest.BytesOf(6*mib - 1)
	if st, _ := s.PutPart(t, u.URL, short, nil); st != http.StatusForbidden {
		t.Fatalf("a part one byte short: MinIO answered %d, want 403", st)
	}
	long := apitest.BytesOf(6*mib + 1)
	if st, _ := s.PutPart(t, u.URL, long, nil); st != http.StatusForbidden {
		t.Fatalf("a part one byte long: MinIO answered %d, want 403", st)
	}
	r := s.Do(t, http.MethodGet, "/api/documents/"+p.DocumentID.String()+"/parts", tok, nil)
	if r.Status != http.StatusOK || strings.Contains(string(r.Body), `"part_number"`) {
		t.Fatalf("parts after refused PUTs: %d %s, want none", r.Status, r.Body)
	}
	// The part URL is for this upload only: another user's document is 404.
	if r := s.Do(t, http.MethodPost, "/api/documents/"+secret.String()+"/parts", tok, map[string]any{"part_numbers": []int{1}}); r.Status != http.StatusNotFound {
		t.Fatalf("sign another user's parts: %d %s, want 404", r.Status, r.Body)
	}
}

// Complete with a part missing, an extra part, a wrong ETag or a part
// listed twice is refused, and nothing is completed or charged.
func TestCompleteWithWrongPartsIsRefusedWithoutCharging(t *testing.T) {
	t.Parallel()
	s := multipartStack(t, apitest.Options{})
	_, tok := s.NewUser(t)
	data := apitest.BytesOf(20 * mib) // 8 + 8 + 4
	p := s.RequestMultipart(t, tok, "three.pdf", int64(len(data)))
	parts := s.UploadParts(t, tok, p, data)
	wrongETag := slices.Clone(parts)
	wrongETag[1].ETag = strings.Repeat("0", 32)
	for name, body := range map[string][]apitest.CompletedPart{
		"missing":   parts[:2],
		"extra":     append(slices.Clone(parts), apitest.CompletedPart{PartNumber: 4, ETag: parts[0].ETag}),
		"wrongETag": wrongETag,
		"twice":     {parts[0], parts[1], parts[1]},
		"none":      {},
	} {
		r := s.Complete(t, tok, p.DocumentID, body)
		if r.Status != http.StatusUnprocessableEntity {
			t.Fatalf("%s: complete answered %d %s, want 422", name, r.Status, r.Body)
		}
		r.Detail(t)
	}
	if used, _ := s.Quota(t, tok); used != 0 {
		t.Fatalf("used_bytes = %d after refused completes, want 0", used)
	}
	if s.ObjectExists(t, p.DocumentID) {
		t.Fatal("a refused complete stored the object")
	}
	// The upload is still whole: the right list completes it.
	if r := s.Complete(t, tok, p.DocumentID, parts); r.Status != http.StatusOK {
		t.Fatalf("complete: %d %s", r.Status, r.Body)
	}
	if used, _ := s.Quota(t, tok); used != int64(len(data)) {
		t.Fatalf("used_bytes = %d, want %d", used, len(data))
	}
}

// Two multipart uploads asked for at once that together exceed the quota
// cannot both reserve: one is refused with 413 before any byte flows.
func TestTwoMultipartUploadsOverTheQuotaCannotBothReserve(t *testing.T) {
	t.Parallel()
	s := multipartStack(t, apitest.Options{})
	user, tok := s.NewUser(t)
	s.SetLimit(t, user, 100*mib)
	for round := range 5 {
		var (
			wg       sync.WaitGroup
			statuses = make([]int, 2)
		)
		for i := range 2 {
			wg.Go(func() {
				r := s.Do(t, http.MethodPost, "/api/documents/upload-url", tok,
					map[string]any{"filename": "big.pdf", "content_type": "application/pdf", "size_bytes": 60 * mib, "multipart": true})
				statuses[i] = r.Status
				if r.Status == http.StatusRequestEntityTooLarge {
					detail, _ := r.Detail(t).(map[string]any)
					if detail["rejected_bytes"] != float64(60*mib) {
						t.Errorf("413 detail %v, want rejected_bytes %d", detail, 60*mib)
					}
				}
			})
		}
		wg.Wait()
		slices.Sort(statuses)
		if statuses[0] != http.StatusCreated || statuses[1] != http.StatusRequestEntityTooLarge {
			t.Fatalf("round %d: statuses %v, want one 201 and one 413", round, statuses)
		}
		if got := s.Reserved(t, tok); got != 60*mib {
			t.Fatalf("round %d: reserved_bytes = %d, want %d", round, got, 60*mib)
		}
		// Deleting the pending upload releases its reservation.
		var id string
		if err := s.DB.QueryRow(context.Background(), `SELECT id FROM documents WHERE user_id = $1 AND status = 'pending'`, user).Scan(&id); err != nil {
			t.Fatal(err)
		}
		if r := s.Do(t, http.MethodDelete, "/api/documents/"+id, tok, nil); r.Status != http.StatusNoContent {
			t.Fatalf("delete: %d %s", r.Status, r.Body)
		}
		if got := s.Reserved(t, tok); got != 0 {
			t.Fatalf("round %d: reserved_bytes = %d after delete, want 0", round, got)
		}
	}
	// A single PUT with a declared size reserves too.
	s.RequestUpload(t, tok, "a.pdf", "application/pdf", 60*mib-1) // below the threshold
	r := s.Do(t, http.MethodPost, "/api/documents/upload-url", tok,
		map[string]any{"filename": "b.pdf", "content_type": "application/pdf", "size_bytes": 60 * mib, "multipart": true})
	if r.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("multipart over a single PUT's reservation: %d %s, want 413", r.Status, r.Body)
	}
}

// DELETE of a pending multipart document aborts its upload: MinIO lists
// no incomplete upload under its exact key, and the part URLs stop working.
func TestDeleteAbortsTheMultipartUpload(t *testing.T) {
	t.Parallel()
	s := multipartStack(t, apitest.Options{})
	_, tok := s.NewUser(t)
	data := apitest.BytesOf(20 * mib)
	p := s.RequestMultipart(t, tok, "gone.pdf", int64(len(data)))
	key := s.ObjectKey(t, p.DocumentID)
	if st, _ := s.PutPart(t, p.Parts[0].URL, data[:8*mib], nil); st != http.StatusOK {
		t.Fatalf("PUT part 1: %d", st)
	}
	if open := s.OpenUploads(t, key); len(open) != 1 || open[0] != p.UploadID {
		t.Fatalf("open uploads before the delete: %v, want [%s]", open, p.UploadID)
	}
	if r := s.Do(t, http.MethodDelete, "/api/documents/"+p.DocumentID.String(), tok, nil); r.Status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	if open := s.OpenUploads(t, key); len(open) != 0 {
		t.Fatalf("open uploads after the delete: %v", open)
	}
	if st, _ := s.PutPart(t, p.Parts[1].URL, data[8*mib:16*mib], nil); st == http.StatusOK {
		t.Fatal("a part URL still worked after the delete")
	}
	if got := s.Reserved(t, tok); got != 0 {
		t.Fatalf("reserved_bytes = %d after delete, want 0", got)
	}
}

// Bad requests for parts are 422 (as every invalid field is), and a single PUT document has no parts.
func TestPartRequestsAreChecked(t *testing.T) {
	t.Parallel()
	s := multipartStack(t, apitest.Options{})
	_, tok := s.NewUser(t)
	p := s.RequestMultipart(t, tok, "x.pdf", 20*mib)
	path := "/api/documents/" + p.DocumentID.String() + "/parts"
	many := make([]int, document.MaxPartsAsked+1)
	for i := range many {
		many[i] = 1
	}
	for name, body := range map[string]any{
		"zero":     map[string]any{"part_numbers": []int{0}},
		"past":     map[string]any{"part_numbers": []int{4}},
		"empty":    map[string]any{"part_numbers": []int{}},
		"too many": map[string]any{"part_numbers": many},
	} {
		if r := s.Do(t, http.MethodPost, path, tok, body); r.Status != http.StatusUnprocessableEntity {
			t.Fatalf("%s: %d %s, want 422", name, r.Status, r.Body)
		}
	}
	if got := s.SignParts(t, tok, p.DocumentID, 3, 3, 2); len(got) != 2 || got[0].PartNumber != 3 || got[0].Size != 4*mib || got[1].Size != 8*mib {
		t.Fatalf("signed %+v, want parts 3 (4 MiB) and 2 (8 MiB)", got)
	}
	if r := s.Do(t, http.MethodPost, "/api/documents/upload-url", tok,
		map[string]any{"filename": "x.pdf", "content_type": "application/pdf", "multipart": true}); r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("multipart without a size: %d %s, want 422", r.Status, r.Body)
	}
	single := s.RequestUpload(t, tok, "small.pdf", "application/pdf", 1000)
	if r := s.Do(t, http.MethodGet, "/api/documents/"+single.DocumentID.String()+"/parts", tok, nil); r.Status != http.StatusConflict {
		t.Fatalf("parts of a single PUT: %d %s, want 409", r.Status, r.Body)
	}
}

// An upload MinIO completed whose confirm never ran (the api replica died
// after MinIO answered; no notifications here) is confirmed by the next
// GET parts, which answers 409 with where it stands, or by complete.
func TestCompletedButUnconfirmedUploadIsConfirmedOnResume(t *testing.T) {
	t.Parallel()
	s := multipartStack(t, apitest.Options{})
	_, tok := s.NewUser(t)
	data := apitest.BytesOf(20 * mib)
	p := s.RequestMultipart(t, tok, "crash.pdf", int64(len(data)))
	parts := s.UploadParts(t, tok, p, data)
	s.CompleteInMinIO(t, p, parts)

	r := s.Do(t, http.MethodGet, "/api/documents/"+p.DocumentID.String()+"/parts", tok, nil)
	if r.Status != http.StatusConflict || !strings.Contains(string(r.Body), "uploaded") {
		t.Fatalf("GET parts: %d %s, want 409 saying it is uploaded", r.Status, r.Body)
	}
	if used, _ := s.Quota(t, tok); used != int64(len(data)) {
		t.Fatalf("used_bytes = %d, want %d", used, len(data))
	}
	if r := s.Complete(t, tok, p.DocumentID, parts); r.Status != http.StatusOK {
		t.Fatalf("complete: %d %s", r.Status, r.Body)
	}
	if used, _ := s.Quota(t, tok); used != int64(len(data)) {
		t.Fatalf("used_bytes = %d after complete, want %d", used, len(data))
	}
}
