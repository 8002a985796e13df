package document_test

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/docuvault/docuvault/shared/document"
)

// TestDeletesGiveNoUploadRequestBack runs the create → delete loop: every
// upload request counts in the minute's window, deleted or not, so the
// loop is refused after UploadsPerMinute though nothing is left pending.
func TestDeletesGiveNoUploadRequestBack(t *testing.T) {
	t.Parallel()
	f := newService(t, func(c *document.Config) { c.UploadsPerMinute, c.MaxPendingUploads = 3, 1 })
	ctx := context.Background()
	user := uuid.New()
	for i := range 3 {
		f.clock.set(t0.Add(time.Duration(i) * time.Second))
		d := f.pending(t, user, nil)
		if err := f.svc.Delete(ctx, user, d.ID); err != nil {
			t.Fatal(err)
		}
	}
	f.clock.set(t0.Add(5 * time.Second))
	_, err := f.svc.RequestUpload(ctx, user, pdfRequest(nil))
	if r := wantRateLimited(t, err); r.RetryAfter != 55*time.Second {
		t.Errorf("RetryAfter = %v, want 55s: when the window that began with the first request ends", r.RetryAfter)
	}
	// A multipart start is an upload request too.
	req := pdfRequest(declared(100))
	req.Multipart = true
	_, err = f.svc.RequestUpload(ctx, user, req)
	wantRateLimited(t, err)
	if n := f.objects.uploadCount(); n != 0 {
		t.Errorf("%d multipart uploads started past the limit", n)
	}
	f.clock.set(t0.Add(time.Minute))
	f.pending(t, user, nil)
}

func TestDeletesAreRateLimited(t *testing.T) {
	t.Parallel()
	f := newService(t, func(c *document.Config) { c.DeletesPerMinute = 2 })
	ctx := context.Background()
	user := uuid.New()
	a, b, c := f.pending(t, user, nil), f.pending(t, user, nil), f.pending(t, user, nil)
	for _, d := range []*document.Document{a, b} {
		if err := f.svc.Delete(ctx, user, d.ID); err != nil {
			t.Fatal(err)
		}
	}
	f.clock.set(t0.Add(20 * time.Second))
	err := f.svc.Delete(ctx, user, c.ID)
	if r := wantRateLimited(t, err); r.RetryAfter != 40*time.Second {
		t.Errorf("RetryAfter = %v, want 40s", r.RetryAfter)
	}
	f.doc(t, c.ID) // still there
	// Another user is not held back.
	other := uuid.New()
	if err := f.svc.Delete(ctx, other, f.pending(t, other, nil).ID); err != nil {
		t.Fatal(err)
	}
	f.clock.set(t0.Add(time.Minute))
	if err := f.svc.Delete(ctx, user, c.ID); err != nil {
		t.Fatal(err)
	}
}

// allowN is a Throttle that lets n requests through, then none.
type allowN struct {
	mu    sync.Mutex
	left  int
	taken int
}

func (a *allowN) Take(uuid.UUID, time.Time) (time.Duration, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.taken++
	if a.left == 0 {
		return 3 * time.Second, false
	}
	a.left--
	return 0, true
}

func (a *allowN) set(n int) (taken int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	taken, a.left, a.taken = a.taken, n, 0
	return taken
}

// TestStorageRequestsArePaced: a confirm of a pending document, signing
// and listing parts, and a completion each take one request of the
// StorageThrottle before the object store is asked; a confirm answered
// from the row takes none. Refused, they are RateLimited and ask nothing.
func TestStorageRequestsArePaced(t *testing.T) {
	t.Parallel()
	throttle := &allowN{}
	f := newService(t, func(c *document.Config) { c.StorageThrottle = throttle })
	ctx := context.Background()
	user := uuid.New()

	d := f.pending(t, user, declared(10))
	f.put(d.ObjectKey, 10)
	if _, err := f.svc.Confirm(ctx, user, d.ID); document.ErrorCode(err) != document.RateLimited || f.objects.statCount() != 0 {
		t.Fatalf("confirm with no request left: %v, %d stats", err, f.objects.statCount())
	}
	throttle.set(1)
	if _, err := f.svc.Confirm(ctx, user, d.ID); err != nil {
		t.Fatal(err)
	}
	if taken := throttle.set(0); taken != 1 {
		t.Errorf("a confirm took %d requests, want 1", taken)
	}
	if _, err := f.svc.Confirm(ctx, user, d.ID); err != nil {
		t.Fatalf("confirm of an uploaded document, no request left: %v", err)
	}

	m := f.multipart(t, user, 100)
	if _, _, err := f.svc.SignParts(ctx, user, m.ID, []document.Part{{Number: 1}}); document.ErrorCode(err) != document.RateLimited {
		t.Fatalf("sign parts with no request left: %v", err)
	}
	if _, _, err := f.svc.Parts(ctx, user, m.ID); document.ErrorCode(err) != document.RateLimited {
		t.Fatalf("list parts with no request left: %v", err)
	}
	etag := f.objects.putPart(m.UploadID, 1, bytes.Repeat([]byte("x"), 100))
	parts := []document.Part{{Number: 1, ETag: etag}}
	if _, err := f.svc.Complete(ctx, user, m.ID, parts); document.ErrorCode(err) != document.RateLimited {
		t.Fatalf("complete with no request left: %v", err)
	}
	if f.doc(t, m.ID).Status != document.StatusPending || f.objects.has(m.ObjectKey) {
		t.Fatal("a refused complete completed the upload")
	}
	throttle.set(3)
	if _, _, err := f.svc.SignParts(ctx, user, m.ID, []document.Part{{Number: 1}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.Parts(ctx, user, m.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Complete(ctx, user, m.ID, parts); err != nil {
		t.Fatal(err)
	}
	if taken := throttle.set(0); taken != 3 {
		t.Errorf("sign, list and complete took %d requests, want 3 (one each)", taken)
	}
}
