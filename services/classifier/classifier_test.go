package classifier_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/internal/apitest"
	"github.com/docuvault/docuvault/internal/testenv"
	"github.com/docuvault/docuvault/services/docuvault/stack"
	"github.com/docuvault/docuvault/shared/classify"
	"github.com/docuvault/docuvault/shared/classify/samples"
	"github.com/docuvault/docuvault/shared/document"
	"github.com/docuvault/docuvault/shared/events"
)

func TestMain(m *testing.M) { testenv.Main(m) }

const (
	pdfType  = "application/pdf"
	docxType = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
	odtType  = "application/vnd.oasis.opendocument.text"
)

// classified is a document as the classifier left it.
type classified struct {
	Status, Classification, Reason, DetectedType string
	Confidence                                   float64
}

// waitClassified waits until document id leaves status uploaded.
func waitClassified(t *testing.T, s *apitest.Stack, id uuid.UUID) classified {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		var c classified
		err := s.DB.QueryRow(context.Background(), `SELECT status, classification, classification_reason, detected_type, confidence
			FROM documents WHERE id = $1`, id).Scan(&c.Status, &c.Classification, &c.Reason, &c.DetectedType, &c.Confidence)
		if err != nil {
			t.Fatal(err)
		}
		if c.Status != "uploaded" {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("document %s still uploaded after 15 s", id)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// outboxCount counts the events of type for document id.
func outboxCount(t *testing.T, s *apitest.Stack, id uuid.UUID, typ string) int {
	t.Helper()
	return s.CountEvents(t, id, typ)
}

// deepDOCX is a DOCX whose body nests depth elements, far more than the
// classifier's work budget admits.
func deepDOCX(t *testing.T, depth int) []byte {
	t.Helper()
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	for _, f := range []struct{ name, body string }{
		{"[Content_Types].xml", `<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>`},
		{"word/document.xml", `<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>` +
			strings.Repeat("<w:sdt>", depth) + strings.Repeat("</w:sdt>", depth) + `</w:body></w:document>`},
	} {
		fw, err := w.Create(f.name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := fw.Write([]byte(f.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func samplePNG() []byte {
	var b bytes.Buffer
	_ = png.Encode(&b, image.NewRGBA(image.Rect(0, 0, 8, 8)))
	return b.Bytes()
}

func TestCorpusEndsInTheExpectedStatusAndCategory(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{Classifiers: 2})
	_, tok := s.NewUser(t)
	texts := samples.Texts()
	invoicePDF := samples.PDF(texts["invoice"])

	type want struct{ status, category, reason string }
	cases := map[string]struct {
		name, contentType string
		data              []byte
		want              want
	}{}
	for category, text := range texts {
		if category == "other" {
			continue
		}
		cases[category+".txt"] = struct {
			name, contentType string
			data              []byte
			want              want
		}{category + ".txt", "text/plain", []byte(text), want{"classified", category, ""}}
	}
	add := func(name, contentType string, data []byte, w want) {
		cases[name] = struct {
			name, contentType string
			data              []byte
			want              want
		}{name, contentType, data, w}
	}
	add("invoice.pdf", pdfType, invoicePDF, want{"classified", "invoice", ""})
	add("contract.pdf", pdfType, samples.PDF(texts["contract"]), want{"classified", "contract", ""})
	add("payslip.docx", docxType, samples.DOCX(texts["payslip"]), want{"classified", "payslip", ""})
	add("letter.odt", odtType, samples.ODT(texts["letter"]), want{"classified", "letter", ""})
	add("photo.png", "image/png", samplePNG(), want{"classified", "other", ""})
	add("setup.pdf", pdfType, append([]byte("\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x3e\x00"), bytes.Repeat([]byte{0x90}, 4000)...), want{"classification_failed", "", classify.FailureTypeMismatch})
	add("truncated.pdf", pdfType, invoicePDF[:len(invoicePDF)/2], want{"classification_failed", "", classify.FailureUnreadable})
	add("deep.docx", docxType, deepDOCX(t, 1000), want{"classification_failed", "", classify.FailureTooComplex})

	ids := map[string]uuid.UUID{}
	for name, c := range cases {
		ids[name] = s.UploadAndConfirm(t, tok, c.name, c.contentType, c.data)
	}
	for name, c := range cases {
		got := waitClassified(t, s, ids[name])
		if got.Status != c.want.status || got.Classification != c.want.category || got.Reason != c.want.reason {
			t.Errorf("%s: %+v, want %+v", name, got, c.want)
		}
		wantEvent := "document.classified"
		if c.want.status == "classification_failed" {
			wantEvent = "document.classification_failed"
		}
		if n := outboxCount(t, s, ids[name], wantEvent); n != 1 {
			t.Errorf("%s: %d %s events, want 1", name, n, wantEvent)
		}
	}
	var flagged bool
	for _, e := range s.DocumentEvents(t, ids["setup.pdf"]) {
		var data struct {
			TypeMismatch bool `json:"type_mismatch"`
		}
		if e.Type == "document.classification_failed" && json.Unmarshal(e.Data, &data) == nil && data.TypeMismatch {
			flagged = true
		}
	}
	if !flagged {
		t.Errorf("the executable's document.classification_failed event is not flagged type_mismatch")
	}

	// The category filter lists only invoices.
	r := s.Do(t, http.MethodGet, "/api/documents?classification=invoice", tok, nil)
	var page struct {
		Items []struct {
			ID             uuid.UUID `json:"id"`
			Classification string    `json:"classification"`
		} `json:"items"`
	}
	r.Decode(t, &page)
	if r.Status != http.StatusOK || len(page.Items) != 2 {
		t.Fatalf("?classification=invoice: %d %s", r.Status, r.Body)
	}
	for _, it := range page.Items {
		if it.Classification != "invoice" {
			t.Fatalf("filter let %s through", it.Classification)
		}
	}
}

func TestReclassifyAndRedelivery(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{Classifiers: 1})
	_, tok := s.NewUser(t)
	texts := samples.Texts()
	id := s.UploadAndConfirm(t, tok, "invoice.pdf", pdfType, samples.PDF(texts["invoice"]))
	first := waitClassified(t, s, id)
	if first.Classification != "invoice" {
		t.Fatalf("first classification: %+v", first)
	}

	// Redelivery: the same document.uploaded event again changes nothing.
	nc, js, err := events.Connect(events.ConnectConfig{URL: s.NATS.URL}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	stream, err := js.Stream(context.Background(), events.StreamDocuments)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := stream.GetLastMsgForSubject(context.Background(), "document.uploaded.>")
	if err != nil {
		t.Fatal(err)
	}
	skippedCount := func() int64 { return skipped(s.Classifiers[0]) }
	before := skippedCount()
	if _, err := js.Publish(context.Background(), msg.Subject, msg.Data); err != nil { // no Nats-Msg-Id: not deduplicated
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for skippedCount() == before {
		if time.Now().After(deadline) {
			t.Fatal("the copy was not handled")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n := outboxCount(t, s, id, "document.classified"); n != 1 {
		t.Fatalf("%d document.classified events after a redelivery, want 1", n)
	}

	// Reclassify: 202, back to uploaded, classified again, one more event.
	r := s.Do(t, http.MethodPost, "/api/documents/"+id.String()+"/classify", tok, nil)
	if r.Status != http.StatusAccepted || !bytes.Contains(r.Body, []byte(`"status":"uploaded"`)) {
		t.Fatalf("reclassify: %d %s", r.Status, r.Body)
	}
	again := waitClassified(t, s, id)
	if again.Status != "classified" || again.Classification != "invoice" {
		t.Fatalf("after reclassify: %+v", again)
	}
	if n := outboxCount(t, s, id, "document.classified"); n != 2 {
		t.Fatalf("%d document.classified events after reclassify, want 2", n)
	}
	// Another user cannot, a pending document cannot.
	_, other := s.NewUser(t)
	if r := s.Do(t, http.MethodPost, "/api/documents/"+id.String()+"/classify", other, nil); r.Status != http.StatusNotFound {
		t.Fatalf("reclassify by another user: %d", r.Status)
	}
	pending := s.RequestUpload(t, tok, "later.pdf", pdfType, 10)
	if r := s.Do(t, http.MethodPost, "/api/documents/"+pending.DocumentID.String()+"/classify", tok, nil); r.Status != http.StatusConflict {
		t.Fatalf("reclassify of a pending document: %d %s", r.Status, r.Body)
	}
}

func TestDocumentDeletedBeforeItsTurnIsSkipped(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{}) // no classifier yet
	_, tok := s.NewUser(t)
	id := s.UploadAndConfirm(t, tok, "gone.txt", "text/plain", []byte(samples.Texts()["receipt"]))
	if r := s.Do(t, http.MethodDelete, "/api/documents/"+id.String(), tok, nil); r.Status != http.StatusNoContent {
		t.Fatal(r.Status)
	}
	live := s.UploadAndConfirm(t, tok, "live.txt", "text/plain", []byte(samples.Texts()["receipt"]))

	// Now a classifier starts and finds the backlog.
	c, _ := s.StartRole(t, stack.Classifier)
	if got := waitClassified(t, s, live); got.Classification != "receipt" {
		t.Fatalf("live document: %+v", got)
	}
	// Workers handle the two events at once: the skip may finish after the
	// live document's classification.
	deadline := time.Now().Add(5 * time.Second)
	for skipped(c) < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the deleted document's event was not skipped")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// skipped counts the events a classifier found nothing to do for.
func skipped(c *stack.Stack) int64 {
	return apitest.Count(c.Metrics.Classifications.WithLabelValues(document.ClassifySkipped))
}

// failed counts the documents whose classification a classifier failed.
func failed(c *stack.Stack) int64 {
	return apitest.Count(c.Metrics.Classifications.WithLabelValues(document.ClassifyFailed))
}

// TestStopsPromptlyWithCraftedFilesInFlight stops a classifier (as SIGTERM
// does: its context ends) while it works through crafted documents — DOCX
// files nesting an element 5,000,000 deep, which once grew the heap by half
// a gigabyte each: Run returns within a second and a half, and every
// document it finished ended too_complex.
func TestStopsPromptlyWithCraftedFilesInFlight(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{}) // no classifier yet
	_, tok := s.NewUser(t)
	crafted := deepDOCX(t, 5_000_000)
	var ids []uuid.UUID
	for i := range 24 {
		ids = append(ids, s.UploadAndConfirm(t, tok, fmt.Sprintf("deep-%d.docx", i), docxType, crafted))
	}

	c, stopClassifier := s.StartRole(t, stack.Classifier)
	done := make(chan error, 1)
	deadline := time.Now().Add(30 * time.Second)
	for failed(c) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no crafted document handled in 30 s")
		}
		time.Sleep(time.Millisecond)
	}
	stop := time.Now()
	go func() { done <- stopClassifier() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("classifier: %v", err)
		}
		t.Logf("stopped %s after its context ended, %d of %d crafted documents handled", time.Since(stop).Round(time.Millisecond), failed(c), len(ids))
	case <-time.After(1500 * time.Millisecond):
		t.Fatalf("still running %s after its context ended", time.Since(stop))
	}
	for _, id := range ids {
		var status, reason string
		if err := s.DB.QueryRow(context.Background(), `SELECT status, classification_reason FROM documents WHERE id = $1`, id).Scan(&status, &reason); err != nil {
			t.Fatal(err)
		}
		if status != "uploaded" && (status != "classification_failed" || reason != classify.FailureTooComplex) {
			t.Errorf("document %s ended %s (%s), want uploaded (not reached) or classification_failed too_complex", id, status, reason)
		}
	}
}
