package sweeper_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/docuvault/docuvault/internal/apitest"
	"github.com/docuvault/docuvault/shared/config"
)

// The sweeper aborts the multipart upload of a document pending past
// PENDING_TTL by its exact key, releases its reservation and removes the
// row; a document whose parts were signed since is left alone, as is a
// young one.
func TestSweepAbortsAbandonedMultipartUploads(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{Sweepers: 1, Edit: func(c *config.Config) {
		c.SweepInterval = time.Second
		c.MaxUploadBytes = 1 << 30
		c.MultipartPartSize = 5 << 20
	}})
	_, tok := s.NewUser(t)
	const size = 12 << 20 // parts of 5, 5 and 2 MiB
	data := apitest.BytesOf(size)
	abandoned := s.RequestMultipart(t, tok, "abandoned.pdf", size)
	renewed := s.RequestMultipart(t, tok, "renewed.pdf", size)
	young := s.RequestMultipart(t, tok, "young.pdf", size)
	for _, p := range []apitest.Plan{abandoned, renewed, young} {
		if st, _ := s.PutPart(t, p.Parts[0].URL, data[:5<<20], nil); st != http.StatusOK {
			t.Fatalf("PUT part 1: %d", st)
		}
	}
	abandonedKey := s.ObjectKey(t, abandoned.DocumentID)
	age(t, s, 2*time.Hour, abandoned.DocumentID, renewed.DocumentID)
	// Signing a part restarts the pending clock.
	s.SignParts(t, tok, renewed.DocumentID, 2)

	deadline := time.Now().Add(20 * time.Second)
	for exists(t, s, abandoned.DocumentID) {
		if time.Now().After(deadline) {
			t.Fatal("after 20 s of @every 1s sweeps the abandoned upload's row is still there")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if open := s.OpenUploads(t, abandonedKey); len(open) != 0 {
		t.Fatalf("the abandoned document is gone but MinIO still holds its uploads %v", open)
	}
	if got := s.Reserved(t, tok); got != 2*size {
		t.Fatalf("reserved_bytes = %d, want %d (the two live uploads)", got, 2*size)
	}
	for _, p := range []apitest.Plan{renewed, young} {
		if !exists(t, s, p.DocumentID) {
			t.Fatalf("live upload %s was purged", p.DocumentID)
		}
		if open := s.OpenUploads(t, s.ObjectKey(t, p.DocumentID)); len(open) != 1 {
			t.Fatalf("live upload %s: open uploads %v, want its one", p.DocumentID, open)
		}
	}
	// The renewed one finishes.
	parts := s.UploadParts(t, tok, renewed, data)
	if r := s.Complete(t, tok, renewed.DocumentID, parts); r.Status != http.StatusOK {
		t.Fatalf("complete: %d %s", r.Status, r.Body)
	}
	if used, _ := s.Quota(t, tok); used != size {
		t.Fatalf("used_bytes = %d, want %d", used, size)
	}
}
