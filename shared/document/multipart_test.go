package document_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/docuvault/docuvault/shared/document"
)

// multipart starts a multipart upload of size bytes for user.
func (f *fixture) multipart(t *testing.T, user uuid.UUID, size int64) *document.Document {
	t.Helper()
	req := pdfRequest(declared(size))
	req.Multipart = true
	ticket, err := f.svc.RequestUpload(context.Background(), user, req)
	if err != nil {
		t.Fatalf("RequestUpload (multipart): %v", err)
	}
	if ticket.Multipart == nil {
		t.Fatal("no multipart plan")
	}
	return f.doc(t, ticket.DocumentID)
}

// A stale multipart document is purged first, its upload aborted after: a
// part signed meanwhile finds no row to renew. An abort that fails is kept
// as a removal record, and the next sweep aborts the upload by its key.
func TestSweepAbortsAPurgedUploadByItsKeyWhenTheAbortFailed(t *testing.T) {
	t.Parallel()
	f := newService(t)
	user := uuid.New()
	cfg := document.SweepConfig{PendingTTL: time.Hour, RejectedRetention: 24 * time.Hour}
	f.clock.set(t0.Add(-2 * time.Hour))
	d := f.multipart(t, user, 100)
	f.clock.set(t0)
	if q, _ := f.store.Quota(context.Background(), user); q.ReservedBytes != 100 {
		t.Fatalf("reserved %d, want 100", q.ReservedBytes)
	}

	f.objects.failAbort = errors.New("minio away")
	res, err := f.svc.Sweep(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.gone(t, d.ID)
	if res.Purged != 1 || res.UploadsAborted != 0 || res.Errors < 1 {
		t.Fatalf("sweep with the abort failing: %+v, want 1 purged, 0 aborted, an error", res)
	}
	if q, _ := f.store.Quota(context.Background(), user); q.ReservedBytes != 0 {
		t.Fatalf("reserved %d after the purge, want 0", q.ReservedBytes)
	}
	if len(f.objects.openUploads(d.ObjectKey)) != 1 || len(f.store.removals()) != 1 {
		t.Fatalf("after a failed abort: uploads %v, removal records %v; want the upload and its record", f.objects.openUploads(d.ObjectKey), f.store.removals())
	}
	// The client's next part request finds no document.
	if _, _, err := f.svc.SignParts(context.Background(), user, d.ID, []document.Part{{Number: 1}}); document.ErrorCode(err) != document.NotFound {
		t.Fatalf("SignParts after the purge: %v, want not found", err)
	}

	f.objects.failAbort = nil
	f.clock.set(t0.Add(time.Minute)) // the next sweep: the record is from the last one
	if _, err := f.svc.Sweep(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if len(f.objects.openUploads(d.ObjectKey)) != 0 || len(f.store.removals()) != 0 {
		t.Fatalf("after the next sweep: uploads %v, removal records %v; want none", f.objects.openUploads(d.ObjectKey), f.store.removals())
	}
}

// An upload MinIO made whose answer was lost (so its id is unknown) is
// aborted by its key when the request fails; nothing stays reserved, and
// no document is left.
func TestLostAnswerToAMultipartStartLeavesNothing(t *testing.T) {
	t.Parallel()
	f := newService(t)
	user := uuid.New()
	f.objects.loseCreate = document.Errorf(document.Unavailable, "object store unavailable")
	req := pdfRequest(declared(100))
	req.Multipart = true
	if _, err := f.svc.RequestUpload(context.Background(), user, req); document.ErrorCode(err) != document.Unavailable {
		t.Fatalf("RequestUpload: %v, want unavailable", err)
	}
	if n := f.objects.uploadCount(); n != 0 {
		t.Fatalf("%d uploads left in the object store, want 0", n)
	}
	if n := f.store.count(); n != 0 {
		t.Fatalf("%d documents left, want 0", n)
	}
	if q, _ := f.store.Quota(context.Background(), user); q.ReservedBytes != 0 {
		t.Fatalf("reserved %d, want 0", q.ReservedBytes)
	}
	if r := f.store.removals(); len(r) != 0 {
		t.Fatalf("removal records %v left after the abort succeeded", r)
	}
}
