package document_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/google/uuid"

	"github.com/docuvault/docuvault/shared/document"
)

// fakeScanner finds "EICAR" in a stream (pure logic: the real clamd is
// in services/scanner's tests), or fails with err.
type fakeScanner struct {
	err  error
	read int
}

func (s *fakeScanner) Scan(_ context.Context, r io.Reader) (document.ScanVerdict, error) {
	data, err := io.ReadAll(r)
	s.read += len(data)
	if s.err != nil {
		return document.ScanVerdict{}, s.err
	}
	if err != nil {
		return document.ScanVerdict{}, err
	}
	if bytes.Contains(data, []byte("EICAR")) {
		return document.ScanVerdict{Infected: true, Signature: "Eicar-Test-Signature"}, nil
	}
	return document.ScanVerdict{}, nil
}

func scanning(s *fakeScanner) func(*document.Config) {
	return func(c *document.Config) { c.ScanRequired, c.Scanner, c.ScanMaxBytes = true, s, 64 }
}

// stored makes a confirmed document of user holding data.
func (f *fixture) stored(t *testing.T, user uuid.UUID, data []byte) *document.Document {
	t.Helper()
	d := f.pending(t, user, declared(int64(len(data))))
	f.objects.put(d.ObjectKey, data, f.clock.Now())
	if _, err := f.svc.Confirm(context.Background(), user, d.ID); err != nil {
		t.Fatal(err)
	}
	return f.doc(t, d.ID)
}

func TestScanDecidesWhatMayBeDownloaded(t *testing.T) {
	ctx := context.Background()
	sc := &fakeScanner{}
	f := newService(t, scanning(sc))
	user := uuid.New()

	clean := f.stored(t, user, []byte("%PDF-1.7 an invoice"))
	if clean.ScanStatus != document.ScanPending || clean.Waiting() != document.StageScan {
		t.Fatalf("confirmed while scanning: %q, waiting %q", clean.ScanStatus, clean.Waiting())
	}
	if _, url, err := f.svc.Get(ctx, user, clean.ID); err != nil || url != "" {
		t.Fatalf("Get while pending: url %q, %v; want none", url, err)
	}
	if out, _, err := f.svc.Classify(ctx, clean.ID); err != nil || out != document.ClassifySkipped {
		t.Fatalf("Classify while pending: %q, %v; want skipped", out, err)
	}
	if out, _, err := f.svc.Scan(ctx, clean.ID); err != nil || out != document.ScanDone {
		t.Fatalf("Scan: %q, %v", out, err)
	}
	if d := f.doc(t, clean.ID); d.ScanStatus != document.ScanClean || d.Waiting() != document.StageClassify {
		t.Fatalf("after a clean scan: %+v", d)
	}
	if _, url, _ := f.svc.Get(ctx, user, clean.ID); url == "" {
		t.Error("no download URL once clean")
	}
	if out, _, err := f.svc.Scan(ctx, clean.ID); err != nil || out != document.ScanSkipped {
		t.Errorf("a second scan: %q, %v; want skipped", out, err)
	}
	f.wantEvents(t, document.EventScanned, 1)

	bad := f.stored(t, user, []byte("X5O!P%@AP EICAR"))
	before := f.used(t, user)
	if out, v, err := f.svc.Scan(ctx, bad.ID); err != nil || out != document.ScanRejected || v.Signature == "" {
		t.Fatalf("Scan of EICAR: %q, %+v, %v", out, v, err)
	}
	d := f.doc(t, bad.ID)
	if d.Status != document.StatusRejected || d.RejectReason != document.ReasonInfected || d.ScanStatus != document.ScanInfected || d.ScanDetail != "Eicar-Test-Signature" {
		t.Errorf("infected: %+v", d)
	}
	if got := f.used(t, user); got != before-bad.SizeBytes {
		t.Errorf("used %d after the infected one was rejected, want %d", got, before-bad.SizeBytes)
	}
	if f.objects.has(bad.ObjectKey) {
		t.Error("the infected object is still stored")
	}
	if _, err := f.svc.Confirm(ctx, user, bad.ID); !document.IsRejection(err) {
		t.Errorf("a confirm of the infected one: %v, want its rejection", err)
	}
	if e := f.wantEvents(t, document.EventRejected, 1); len(e) == 1 && (e[0].Data.ScanStatus != document.ScanInfected || e[0].Data.Reason != document.ReasonInfected) {
		t.Errorf("rejection event: %+v", e[0].Data)
	}

	big := f.stored(t, user, bytes.Repeat([]byte("x"), 65))
	read := sc.read
	if out, _, err := f.svc.Scan(ctx, big.ID); err != nil || out != document.ScanNotDone {
		t.Fatalf("Scan over ScanMaxBytes: %q, %v", out, err)
	}
	if sc.read != read {
		t.Error("a document over ScanMaxBytes was sent to the scanner")
	}
	if d := f.doc(t, big.ID); d.ScanStatus != document.ScanFailed || d.ScanDetail != document.ScanTooLarge || d.Waiting() != document.StageNone {
		t.Errorf("too large: %+v", d)
	}
	if _, url, _ := f.svc.Get(ctx, user, big.ID); url != "" {
		t.Error("a download URL for a document that could not be scanned")
	}
}

// TestScanFailsClosed: a scanner's error is no verdict: the document stays
// pending, not downloadable, and is scanned once the scanner answers.
func TestScanFailsClosed(t *testing.T) {
	ctx := context.Background()
	sc := &fakeScanner{err: errors.New("clamd: connection refused")}
	f := newService(t, scanning(sc))
	user := uuid.New()
	d := f.stored(t, user, []byte("%PDF-1.7"))
	if _, _, err := f.svc.Scan(ctx, d.ID); err == nil {
		t.Fatal("Scan with the scanner away: no error")
	}
	if got := f.doc(t, d.ID); got.ScanStatus != document.ScanPending {
		t.Fatalf("after a failed scan: %q, want pending", got.ScanStatus)
	}
	if _, url, _ := f.svc.Get(ctx, user, d.ID); url != "" {
		t.Fatal("a download URL after a failed scan")
	}
	if ids, err := f.svc.ClaimUnscanned(ctx, 10, 10); err != nil || len(ids) != 0 {
		t.Fatalf("claimed before the recovery delay: %v, %v", ids, err)
	}
	f.clock.set(f.clock.Now().Add(2 * document.DefaultClassifyRecoveryAfter))
	if ids, err := f.svc.ClaimUnscanned(ctx, 10, 10); err != nil || len(ids) != 1 || ids[0].ID != d.ID {
		t.Fatalf("recovery claim: %v, %v; want the pending document", ids, err)
	}
	sc.err = nil
	if out, _, err := f.svc.Scan(ctx, d.ID); err != nil || out != document.ScanDone {
		t.Fatalf("Scan once the scanner is back: %q, %v", out, err)
	}
}

// TestUnscannedDocumentsAreScannedWhenReclassified: a document stored
// while scanning was off is downloadable only once scanning is off; with
// scanning on, a reclassification sends it through the scanner first.
func TestUnscannedDocumentsAreScannedWhenReclassified(t *testing.T) {
	ctx := context.Background()
	off := newService(t)
	user := uuid.New()
	d := off.stored(t, user, []byte("%PDF-1.7"))
	if d.ScanStatus != "" || d.Waiting() != document.StageClassify || !d.Downloadable(false) || d.Downloadable(true) {
		t.Fatalf("stored while scanning was off: %+v", d)
	}
	if out, _, err := off.svc.Classify(ctx, d.ID); err != nil || out != document.ClassifyDone {
		t.Fatalf("Classify: %q, %v", out, err)
	}
	on := document.NewService(off.store, off.objects, func() document.Config { c := off.cfg; scanning(&fakeScanner{})(&c); return c }())
	if _, err := on.Reclassify(ctx, user, d.ID); err != nil {
		t.Fatal(err)
	}
	if got := off.doc(t, d.ID); got.ScanStatus != document.ScanPending || got.Waiting() != document.StageScan {
		t.Errorf("reclassified with scanning on: %+v, want its scan pending first", got)
	}
}
