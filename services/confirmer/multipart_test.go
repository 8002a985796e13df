package confirmer_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/docuvault/docuvault/internal/apitest"
	"github.com/docuvault/docuvault/shared/config"
)

// MinIO's CompleteMultipartUpload notification is the multipart upload's
// second door: an upload completed whose complete request never got to
// confirm (the api replica died after MinIO answered) is confirmed and
// charged once by the confirmer; the client's complete, sent again, and
// GET parts answer where it stands.
func TestCompletedMultipartUploadIsConfirmedByTheEvent(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{Events: true, Edit: func(c *config.Config) {
		c.MaxUploadBytes = 1 << 30
		c.MultipartPartSize = 5 << 20
	}})
	uploaded := subscribe(t, s, "document.uploaded.>")
	_, tok := s.NewUser(t)
	const size = 11 << 20 // 5 + 5 + 1 MiB
	data := apitest.BytesOf(size)
	p := s.RequestMultipart(t, tok, "big.pdf", size)
	parts := s.UploadParts(t, tok, p, data)

	// What the api does at complete, without the confirm that follows it.
	s.CompleteInMinIO(t, p, parts)
	waitFor(t, 5*time.Second, "the document.uploaded event", func() bool { return uploaded.count(p.DocumentID) == 1 })
	if st := status(t, s, p.DocumentID); st != "uploaded" {
		t.Fatalf("status %s, want uploaded", st)
	}
	if used, _ := s.Quota(t, tok); used != size {
		t.Fatalf("used_bytes = %d, want %d", used, size)
	}
	if got := s.Reserved(t, tok); got != 0 {
		t.Fatalf("reserved_bytes = %d, want 0", got)
	}
	// The client's complete, sent again, answers the same and charges nothing.
	r := s.Complete(t, tok, p.DocumentID, parts)
	var c apitest.Confirmation
	r.Decode(t, &c)
	if r.Status != http.StatusOK || c.Status != "uploaded" || c.UsedBytes != size {
		t.Fatalf("complete after the event: %d %s", r.Status, r.Body)
	}
	if r := s.Do(t, http.MethodGet, "/api/documents/"+p.DocumentID.String()+"/parts", tok, nil); r.Status != http.StatusConflict {
		t.Fatalf("GET parts of a completed upload: %d %s, want 409", r.Status, r.Body)
	}
	time.Sleep(300 * time.Millisecond)
	if n := uploaded.count(p.DocumentID); n != 1 {
		t.Fatalf("%d document.uploaded events, want exactly 1", n)
	}
}
