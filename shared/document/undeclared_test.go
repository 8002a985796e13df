package document_test

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/docuvault/docuvault/shared/document"
)

// TestConfirmObjectChargesAnUndeclaredSizeFromTheStat is the forgery of
// issue 23: a notification for a document without a declared size, with
// size 1 and the etag of the bytes its sender PUTs. The stored size is
// charged, and MinIO's real notification of the same etag changes nothing.
func TestConfirmObjectChargesAnUndeclaredSizeFromTheStat(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		storedFirst bool // the bytes are stored before the forged notification comes
	}{
		{"forged after the PUT", true},
		{"forged before the PUT", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newService(t)
			user := uuid.New()
			d := f.pending(t, user, nil)
			data := make([]byte, 300)
			var obj memObject
			if tc.storedFirst {
				obj = f.objects.put(d.ObjectKey, data, f.clock.Now())
			}
			forged := document.ObjectInfo{Size: 1, ETag: etagOf(data)}
			c, err := f.svc.ConfirmObject(context.Background(), d.ObjectKey, forged)
			if tc.storedFirst {
				wantOutcome(t, c, err, "uploaded")
				if c.UsedBytes != 300 || c.Document.SizeBytes != 300 {
					t.Fatalf("charged %d (document %d bytes) for a forged size 1 over 300 stored bytes, want 300", c.UsedBytes, c.Document.SizeBytes)
				}
			} else {
				// Nothing stored yet: nothing to charge, the document waits.
				wantCode(t, err, document.UploadMissing)
				wantStatus(t, f.doc(t, d.ID), document.StatusPending, "")
				obj = f.objects.put(d.ObjectKey, data, f.clock.Now())
			}
			if f.objects.statCount() != 1 {
				t.Errorf("%d stats, want 1: a notification's size is not charged without one", f.objects.statCount())
			}
			// MinIO's own notification of the write.
			c, err = f.svc.ConfirmObject(context.Background(), d.ObjectKey, obj.info())
			if err != nil {
				t.Fatal(err)
			}
			if used := f.used(t, user); used != 300 {
				t.Fatalf("used %d bytes after MinIO's notification, want 300", used)
			}
			if got := f.doc(t, d.ID); got.Status != document.StatusUploaded || got.SizeBytes != 300 || got.ETag != obj.etag {
				t.Errorf("document %s, %d bytes, etag %q; want uploaded, 300, %q", got.Status, got.SizeBytes, got.ETag, obj.etag)
			}
			f.wantEvents(t, document.EventUploaded, 1)
		})
	}
}

// TestConfirmObjectTrustsADeclaredSizesNotification: a declared size is
// signed into the URL, so the notification of its one write is confirmed
// without a stat, and one that says another size rejects the document
// rather than charging it.
func TestConfirmObjectTrustsADeclaredSizesNotification(t *testing.T) {
	t.Parallel()
	f := newService(t)
	user := uuid.New()
	d := f.pending(t, user, declared(300))
	c, err := f.svc.ConfirmObject(context.Background(), d.ObjectKey, document.ObjectInfo{Size: 1, ETag: etagOf(make([]byte, 300))})
	wantOutcome(t, c, err, "rejected")
	wantStatus(t, f.doc(t, d.ID), document.StatusRejected, document.ReasonSizeMismatch)
	if f.used(t, user) != 0 || f.objects.statCount() != 0 {
		t.Errorf("used %d bytes after %d stats, want 0 and 0", f.used(t, user), f.objects.statCount())
	}
}

func TestRequireDeclaredSize(t *testing.T) {
	t.Parallel()
	f := newService(t, func(c *document.Config) { c.RequireDeclaredSize = true })
	user := uuid.New()
	_, err := f.svc.RequestUpload(context.Background(), user, pdfRequest(nil))
	wantCode(t, err, document.Invalid)
	if n := f.store.count(); n != 0 {
		t.Fatalf("%d documents created without a size, want none", n)
	}
	if calls := f.objects.presignCalls(); len(calls) != 0 {
		t.Fatalf("presigned %+v for a refused request", calls)
	}
	d := f.pending(t, user, declared(10))
	if d.DeclaredSize == nil || *d.DeclaredSize != 10 {
		t.Fatalf("declared size %v, want 10", d.DeclaredSize)
	}
	// Off (the default), a request without a size is taken.
	f = newService(t)
	f.pending(t, user, nil)
}

// etagOf is the etag the object store gives data stored in one PUT.
func etagOf(data []byte) string {
	return newMemObjects().put("k", data, t0).etag
}
