package api_test

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/docuvault/docuvault/internal/apitest"
)

// TestConfirmAnswersUploadedAfterClassification: the notification door and
// the classifier finish before the client confirms; the confirm still
// answers the contract's "status": "uploaded", with classification's state
// in a field of its own.
func TestConfirmAnswersUploadedAfterClassification(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{Events: true, Classifiers: 1})
	_, tok := s.NewUser(t)
	data := []byte("%PDF-1.4\nInvoice number 42, total due 100 EUR\n")
	tk := s.RequestUpload(t, tok, "invoice.pdf", "application/pdf", int64(len(data)))
	if st := s.Put(t, tk, "application/pdf", data); st != http.StatusOK {
		t.Fatalf("PUT: %d", st)
	}
	var doc struct {
		Status string `json:"status"`
	}
	for deadline := time.Now().Add(30 * time.Second); !slices.Contains([]string{"classified", "classification_failed"}, doc.Status); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the document is %q 30 s after its PUT, never classified", doc.Status)
		}
		s.Do(t, http.MethodGet, "/api/documents/"+tk.DocumentID.String(), tok, nil).Decode(t, &doc)
	}
	r := s.Confirm(t, tok, tk.DocumentID)
	var c apitest.Confirmation
	r.Decode(t, &c)
	want := apitest.Confirmation{ID: tk.DocumentID, SizeBytes: int64(len(data)), UsedBytes: int64(len(data)), Status: "uploaded", ClassificationStatus: doc.Status}
	if r.Status != http.StatusOK || c != want {
		t.Fatalf("confirm after classification: %d %+v, want 200 %+v", r.Status, c, want)
	}
}
