package document_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/docuvault/docuvault/shared/document"
)

// t0 is the fixed time every fixture starts at, microsecond-exact as the
// database keeps it.
var t0 = time.Date(2026, 3, 14, 15, 9, 26, 535897000, time.UTC)

const (
	maxUpload    = 1000 // Config.MaxUploadBytes
	defaultQuota = 500  // every user's quota limit unless a test sets one
)

// clock is a fixed Now that a test may move.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

type fixture struct {
	svc        *document.Service
	cfg        document.Config
	store      *memStore
	objects    *memObjects
	classifier *fakeClassifier
	clock      *clock
}

// newService returns a Service over fresh fakes, its clock at t0; opts
// adjust the Config.
func newService(t *testing.T, opts ...func(*document.Config)) *fixture {
	t.Helper()
	f := &fixture{
		store:      newMemStore(defaultQuota),
		objects:    newMemObjects(),
		classifier: &fakeClassifier{result: document.Classification{Category: "invoice", DetectedType: "application/pdf", Confidence: 0.9}},
		clock:      &clock{t: t0},
	}
	f.cfg = document.Config{
		MaxUploadBytes:   maxUpload,
		UploadURLTTL:     15 * time.Minute,
		DownloadURLTTL:   5 * time.Minute,
		Classifier:       f.classifier,
		ClassifyMaxBytes: 8,
		ClassifyTimeout:  5 * time.Second,
		Now:              f.clock.Now,
	}
	for _, o := range opts {
		o(&f.cfg)
	}
	f.svc = document.NewService(f.store, f.objects, f.cfg)
	return f
}

func declared(n int64) *int64 { return &n }

func pdfRequest(size *int64) document.UploadRequest {
	return document.UploadRequest{Filename: "scan.PDF", ContentType: "application/pdf", SizeBytes: size}
}

// pending asks for an upload URL for user and returns the document it made.
func (f *fixture) pending(t *testing.T, user uuid.UUID, size *int64) *document.Document {
	t.Helper()
	ticket, err := f.svc.RequestUpload(context.Background(), user, pdfRequest(size))
	if err != nil {
		t.Fatalf("RequestUpload: %v", err)
	}
	return f.doc(t, ticket.DocumentID)
}

// put stores size bytes under key, modified now.
func (f *fixture) put(key string, size int) memObject {
	return f.objects.put(key, bytes.Repeat([]byte("x"), size), f.clock.Now())
}

// uploaded makes a document of user of size bytes, stored and confirmed.
func (f *fixture) uploaded(t *testing.T, user uuid.UUID, size int) *document.Document {
	t.Helper()
	d := f.pending(t, user, declared(int64(size)))
	f.put(d.ObjectKey, size)
	c, err := f.svc.Confirm(context.Background(), user, d.ID)
	if err != nil || !c.Changed {
		t.Fatalf("Confirm = %+v, %v; want a change", c, err)
	}
	return f.doc(t, d.ID)
}

// rejected makes a document of user rejected for size_mismatch.
func (f *fixture) rejected(t *testing.T, user uuid.UUID) *document.Document {
	t.Helper()
	d := f.pending(t, user, declared(10))
	f.put(d.ObjectKey, 11)
	if _, err := f.svc.Confirm(context.Background(), user, d.ID); !document.IsRejection(err) {
		t.Fatalf("Confirm: %v, want a rejection", err)
	}
	return f.doc(t, d.ID)
}

// doc returns document id as stored.
func (f *fixture) doc(t *testing.T, id uuid.UUID) *document.Document {
	t.Helper()
	d, err := f.store.Document(context.Background(), id)
	if err != nil {
		t.Fatalf("store.Document(%s): %v", id, err)
	}
	return d
}

func (f *fixture) gone(t *testing.T, id uuid.UUID) {
	t.Helper()
	if _, err := f.store.Document(context.Background(), id); document.ErrorCode(err) != document.NotFound {
		t.Errorf("store.Document(%s): %v, want NotFound", id, err)
	}
}

func (f *fixture) used(t *testing.T, user uuid.UUID) int64 {
	t.Helper()
	q, err := f.store.Quota(context.Background(), user)
	if err != nil {
		t.Fatalf("Quota: %v", err)
	}
	return q.UsedBytes
}

func (f *fixture) setLimit(t *testing.T, user uuid.UUID, limit int64) {
	t.Helper()
	if _, err := f.svc.SetQuotaLimit(context.Background(), user, limit); err != nil {
		t.Fatalf("SetQuotaLimit: %v", err)
	}
}

// wantEvents checks how many events of type typ ("" for any) the outbox holds.
func (f *fixture) wantEvents(t *testing.T, typ document.EventType, n int) []document.Event {
	t.Helper()
	var got []document.Event
	if typ == "" {
		got = f.store.events()
	} else {
		got = f.store.events(typ)
	}
	if len(got) != n {
		t.Errorf("%d %s events, want %d: %+v", len(got), typ, n, got)
	}
	return got
}

func wantCode(t *testing.T, err error, code document.Code) {
	t.Helper()
	if got := document.ErrorCode(err); got != code {
		t.Fatalf("error %v has code %q, want %q", err, got, code)
	}
}

func wantQuotaExceeded(t *testing.T, err error, want document.QuotaExceededError) {
	t.Helper()
	var q *document.QuotaExceededError
	if !errors.As(err, &q) {
		t.Fatalf("error %v (%T), want *QuotaExceededError", err, err)
	}
	if *q != want {
		t.Errorf("QuotaExceededError = %+v, want %+v", *q, want)
	}
}

func wantRateLimited(t *testing.T, err error) *document.RateLimitedError {
	t.Helper()
	var r *document.RateLimitedError
	if !errors.As(err, &r) {
		t.Fatalf("error %v (%T), want *RateLimitedError", err, err)
	}
	if r.RetryAfter < time.Second {
		t.Errorf("RetryAfter = %v, want at least 1s", r.RetryAfter)
	}
	return r
}

func wantOutcome(t *testing.T, c document.Confirmation, err error, want document.ConfirmOutcome) {
	t.Helper()
	if got := document.Outcome(c, err); got != want {
		t.Errorf("Outcome = %q, want %q (err %v)", got, want, err)
	}
}

func wantStatus(t *testing.T, d *document.Document, status document.Status, reason string) {
	t.Helper()
	if d.Status != status || d.RejectReason != reason {
		t.Errorf("document %s is %s (reason %q), want %s (reason %q)", d.ID, d.Status, d.RejectReason, status, reason)
	}
}

// --- RequestUpload ---

func TestRequestUploadCreatesPendingDocument(t *testing.T) {
	t.Parallel()
	f := newService(t)
	user := uuid.New()

	ticket, err := f.svc.RequestUpload(context.Background(), user, pdfRequest(declared(100)))
	if err != nil {
		t.Fatal(err)
	}
	d := f.doc(t, ticket.DocumentID)
	wantStatus(t, d, document.StatusPending, "")
	if d.UserID != user || d.Filename != "scan.PDF" || d.ContentType != "application/pdf" ||
		d.DeclaredSize == nil || *d.DeclaredSize != 100 || !d.CreatedAt.Equal(t0) || d.ConfirmedAt != nil {
		t.Errorf("document = %+v", d)
	}
	if u, id, ok := document.ParseObjectKey(d.ObjectKey); !ok || u != user || id != d.ID {
		t.Errorf("ParseObjectKey(%q) = %s, %s, %v; want %s, %s", d.ObjectKey, u, id, ok, user, d.ID)
	}
	if !strings.HasSuffix(d.ObjectKey, ".pdf") {
		t.Errorf("object key %q does not keep the extension", d.ObjectKey)
	}
	want := presignCall{method: "PUT", key: d.ObjectKey, contentType: "application/pdf", size: 100, ttl: 15 * time.Minute}
	if calls := f.objects.presignCalls(); len(calls) != 1 || calls[0] != want {
		t.Errorf("presigned %+v, want [%+v]", calls, want)
	}
	if ticket.URL != "https://objects.test/put/"+d.ObjectKey || !ticket.ExpiresAt.Equal(t0.Add(15*time.Minute)) ||
		ticket.Headers["Content-Type"] != "application/pdf" {
		t.Errorf("ticket = %+v", ticket)
	}
	if f.used(t, user) != 0 {
		t.Error("a pending document is charged")
	}
	f.wantEvents(t, "", 0)
}

func TestRequestUploadWithoutSizeSignsNone(t *testing.T) {
	t.Parallel()
	f := newService(t)
	d := f.pending(t, uuid.New(), nil)
	if d.DeclaredSize != nil {
		t.Errorf("DeclaredSize = %d, want none", *d.DeclaredSize)
	}
	if calls := f.objects.presignCalls(); len(calls) != 1 || calls[0].size != 0 {
		t.Errorf("presigned %+v, want one call with size 0", calls)
	}
}

func TestRequestUploadRefusesInvalidInput(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		req  document.UploadRequest
		code document.Code
	}{
		"empty filename":     {document.UploadRequest{Filename: "", ContentType: "application/pdf"}, document.Invalid},
		"blank filename":     {document.UploadRequest{Filename: "  ", ContentType: "application/pdf"}, document.Invalid},
		"control character":  {document.UploadRequest{Filename: "a\nb.pdf", ContentType: "application/pdf"}, document.Invalid},
		"bad content type":   {document.UploadRequest{Filename: "a.pdf", ContentType: "not a type"}, document.Invalid},
		"empty content type": {document.UploadRequest{Filename: "a.pdf", ContentType: ""}, document.Invalid},
		"size 0":             {pdfRequest(declared(0)), document.Invalid},
		"negative size":      {pdfRequest(declared(-1)), document.Invalid},
		"size over the max":  {pdfRequest(declared(maxUpload + 1)), document.TooLarge},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newService(t)
			_, err := f.svc.RequestUpload(context.Background(), uuid.New(), tc.req)
			wantCode(t, err, tc.code)
			if n := f.store.count(); n != 0 {
				t.Errorf("%d documents created, want none", n)
			}
			if calls := f.objects.presignCalls(); len(calls) != 0 {
				t.Errorf("presigned %+v for an invalid request", calls)
			}
		})
	}
}

func TestRequestUploadRefusesADeclaredSizeBeyondTheQuota(t *testing.T) {
	t.Parallel()
	f := newService(t)
	user := uuid.New()
	f.uploaded(t, user, 400)

	_, err := f.svc.RequestUpload(context.Background(), user, pdfRequest(declared(101)))
	wantQuotaExceeded(t, err, document.QuotaExceededError{UsedBytes: 400, LimitBytes: defaultQuota, RejectedBytes: 101})
	if n := f.store.count(); n != 1 {
		t.Errorf("%d documents, want only the uploaded one", n)
	}
	// Exactly what is left still fits.
	f.pending(t, user, declared(100))
}

func TestRequestUploadBoundsPendingUploads(t *testing.T) {
	t.Parallel()
	f := newService(t, func(c *document.Config) { c.MaxPendingUploads = 2 })
	user := uuid.New()
	first := f.pending(t, user, nil)
	f.pending(t, user, nil)

	_, err := f.svc.RequestUpload(context.Background(), user, pdfRequest(nil))
	wantRateLimited(t, err)
	if n := f.store.count(); n != 2 {
		t.Errorf("%d documents, want 2", n)
	}
	// Another user is not held back.
	f.pending(t, uuid.New(), nil)

	// Once one is finished there is room again.
	f.put(first.ObjectKey, 10)
	if _, err := f.svc.Confirm(context.Background(), user, first.ID); err != nil {
		t.Fatal(err)
	}
	f.pending(t, user, nil)
}

func TestRequestUploadBoundsUploadsPerMinute(t *testing.T) {
	t.Parallel()
	f := newService(t, func(c *document.Config) { c.UploadsPerMinute = 2 })
	user := uuid.New()
	f.pending(t, user, nil)
	f.clock.set(t0.Add(10 * time.Second))
	f.pending(t, user, nil)

	f.clock.set(t0.Add(20 * time.Second))
	_, err := f.svc.RequestUpload(context.Background(), user, pdfRequest(nil))
	r := wantRateLimited(t, err)
	if r.RetryAfter != 40*time.Second {
		t.Errorf("RetryAfter = %v, want 40s: when the oldest request leaves the minute", r.RetryAfter)
	}
	if n := f.store.count(); n != 2 {
		t.Errorf("%d documents, want 2", n)
	}

	// A minute after the first, one slot is free again.
	f.clock.set(t0.Add(61 * time.Second))
	f.pending(t, user, nil)
}

func TestRequestUploadPresignFailureLeavesNothing(t *testing.T) {
	t.Parallel()
	f := newService(t)
	f.objects.failPresign = document.Errorf(document.Unavailable, "object store unavailable")
	_, err := f.svc.RequestUpload(context.Background(), uuid.New(), pdfRequest(declared(10)))
	wantCode(t, err, document.Unavailable)
	if n := f.store.count(); n != 0 {
		t.Errorf("%d documents, want none", n)
	}
}

// --- Confirm ---

func TestConfirmChargesTheStoredObject(t *testing.T) {
	t.Parallel()
	f := newService(t)
	user := uuid.New()
	d := f.pending(t, user, declared(100))
	obj := f.put(d.ObjectKey, 100)
	f.clock.set(t0.Add(time.Minute))

	c, err := f.svc.Confirm(context.Background(), user, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantOutcome(t, c, err, "uploaded")
	if !c.Changed || c.UsedBytes != 100 || c.Leftover || c.Stray != "" {
		t.Errorf("Confirmation = %+v", c)
	}
	for _, got := range []*document.Document{c.Document, f.doc(t, d.ID)} {
		wantStatus(t, got, document.StatusUploaded, "")
		if got.SizeBytes != 100 || got.ETag != obj.etag || got.ConfirmedAt == nil || !got.ConfirmedAt.Equal(t0.Add(time.Minute)) ||
			got.ReservedBytes != 0 { // its reservation became the charge
			t.Errorf("document = %+v", got)
		}
	}
	if used := f.used(t, user); used != 100 {
		t.Errorf("used %d bytes, want 100", used)
	}
	ev := f.wantEvents(t, document.EventUploaded, 1)
	if len(ev) == 1 && (ev[0].Data.DocumentID != d.ID || ev[0].Data.UserID != user || ev[0].Data.SizeBytes != 100 ||
		ev[0].Data.Status != document.StatusUploaded || ev[0].Data.ObjectKey != d.ObjectKey) {
		t.Errorf("event data = %+v", ev[0].Data)
	}
	f.wantEvents(t, "", 1)
}

func TestConfirmAgainChargesNothing(t *testing.T) {
	t.Parallel()
	f := newService(t)
	user := uuid.New()
	d := f.uploaded(t, user, 100)

	c, err := f.svc.Confirm(context.Background(), user, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	wantOutcome(t, c, err, "already")
	if c.Changed || c.UsedBytes != 100 || c.Document == nil || c.Document.Status != document.StatusUploaded {
		t.Errorf("Confirmation = %+v", c)
	}
	if used := f.used(t, user); used != 100 {
		t.Errorf("used %d bytes, want 100", used)
	}
	f.wantEvents(t, document.EventUploaded, 1)
}

func TestConfirmOverQuotaRejects(t *testing.T) {
	t.Parallel()
	f := newService(t)
	user := uuid.New()
	f.setLimit(t, user, 150)
	f.uploaded(t, user, 100)
	d := f.pending(t, user, nil)
	f.put(d.ObjectKey, 80)

	c, err := f.svc.Confirm(context.Background(), user, d.ID)
	want := document.QuotaExceededError{UsedBytes: 100, LimitBytes: 150, RejectedBytes: 80}
	wantQuotaExceeded(t, err, want)
	wantOutcome(t, c, err, "rejected")
	if !document.IsRejection(err) {
		t.Error("IsRejection = false")
	}
	if c.Document == nil || c.Leftover {
		t.Fatalf("Confirmation = %+v", c)
	}
	wantStatus(t, c.Document, document.StatusRejected, document.ReasonOverQuota)
	wantStatus(t, f.doc(t, d.ID), document.StatusRejected, document.ReasonOverQuota)
	if f.objects.has(d.ObjectKey) {
		t.Error("the rejected object is still stored")
	}
	if used := f.used(t, user); used != 100 {
		t.Errorf("used %d bytes, want 100", used)
	}
	ev := f.wantEvents(t, document.EventRejected, 1)
	if len(ev) == 1 && (ev[0].Data.DocumentID != d.ID || ev[0].Data.Reason != document.ReasonOverQuota) {
		t.Errorf("event data = %+v", ev[0].Data)
	}

	// Confirming again answers the same, and records nothing more.
	c, err = f.svc.Confirm(context.Background(), user, d.ID)
	wantQuotaExceeded(t, err, want)
	wantOutcome(t, c, err, "rejected")
	f.wantEvents(t, document.EventRejected, 1)
}

func TestConfirmRejectsBrokenRulesWithoutCharging(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		declared *int64
		stored   int
		code     document.Code
		reason   string
	}{
		"larger than the max":         {nil, maxUpload + 1, document.TooLarge, document.ReasonTooLarge},
		"not the declared size":       {declared(100), 99, document.Invalid, document.ReasonSizeMismatch},
		"larger than the declaration": {declared(100), 101, document.Invalid, document.ReasonSizeMismatch},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newService(t)
			user := uuid.New()
			f.setLimit(t, user, 10*maxUpload) // the quota is no reason
			d := f.pending(t, user, tc.declared)
			f.put(d.ObjectKey, tc.stored)

			c, err := f.svc.Confirm(context.Background(), user, d.ID)
			wantCode(t, err, tc.code)
			wantOutcome(t, c, err, "rejected")
			if !document.IsRejection(err) {
				t.Error("IsRejection = false")
			}
			wantStatus(t, f.doc(t, d.ID), document.StatusRejected, tc.reason)
			if used := f.used(t, user); used != 0 {
				t.Errorf("used %d bytes, want 0", used)
			}
			if f.objects.has(d.ObjectKey) {
				t.Error("the rejected object is still stored")
			}
			f.wantEvents(t, document.EventRejected, 1)
			f.wantEvents(t, document.EventUploaded, 0)
		})
	}
}

func TestConfirmWithoutObjectKeepsPending(t *testing.T) {
	t.Parallel()
	f := newService(t)
	user := uuid.New()
	d := f.pending(t, user, declared(100))

	c, err := f.svc.Confirm(context.Background(), user, d.ID)
	wantCode(t, err, document.UploadMissing)
	wantOutcome(t, c, err, "error")
	if document.IsRejection(err) {
		t.Error("IsRejection = true for a missing upload")
	}
	wantStatus(t, f.doc(t, d.ID), document.StatusPending, "")
	f.wantEvents(t, "", 0)
}

func TestConfirmOtherUsersDocumentIsNotFound(t *testing.T) {
	t.Parallel()
	f := newService(t)
	owner := uuid.New()
	d := f.pending(t, owner, nil)
	f.put(d.ObjectKey, 10)

	_, err := f.svc.Confirm(context.Background(), uuid.New(), d.ID)
	wantCode(t, err, document.NotFound)
	wantStatus(t, f.doc(t, d.ID), document.StatusPending, "")
	if f.used(t, owner) != 0 || !f.objects.has(d.ObjectKey) {
		t.Error("another user's confirm changed something")
	}
	f.wantEvents(t, "", 0)

	_, err = f.svc.Confirm(context.Background(), owner, uuid.New())
	wantCode(t, err, document.NotFound)
}

func TestRejectionWhoseRemovalFailsIsStillAnswered(t *testing.T) {
	t.Parallel()
	f := newService(t)
	user := uuid.New()
	f.setLimit(t, user, 50)
	viaConfirm := f.pending(t, user, nil)
	viaObject := f.pending(t, user, nil)
	f.put(viaConfirm.ObjectKey, 60)
	obj := f.put(viaObject.ObjectKey, 60)
	f.objects.failRemove = document.Errorf(document.Unavailable, "object store unavailable")
	want := document.QuotaExceededError{UsedBytes: 0, LimitBytes: 50, RejectedBytes: 60}

	c, err := f.svc.Confirm(context.Background(), user, viaConfirm.ID)
	wantQuotaExceeded(t, err, want)
	if !c.Leftover || c.Document == nil {
		t.Errorf("Confirm: Confirmation = %+v, want Leftover", c)
	}
	wantStatus(t, f.doc(t, viaConfirm.ID), document.StatusRejected, document.ReasonOverQuota)

	c, err = f.svc.ConfirmObject(context.Background(), viaObject.ObjectKey, obj.info())
	wantQuotaExceeded(t, err, want)
	wantOutcome(t, c, err, "rejected")
	if !c.Leftover {
		t.Errorf("ConfirmObject: Confirmation = %+v, want Leftover", c)
	}
	wantStatus(t, f.doc(t, viaObject.ID), document.StatusRejected, document.ReasonOverQuota)
	if !f.objects.has(viaObject.ObjectKey) {
		t.Error("the object is gone though removal failed")
	}
	f.wantEvents(t, document.EventRejected, 2)
}

// --- ConfirmObject ---

func TestConfirmObjectRemovesWhatTheOtherDoorRejectedButLeft(t *testing.T) {
	t.Parallel()
	f := newService(t)
	user := uuid.New()
	f.setLimit(t, user, 50)
	d := f.pending(t, user, nil)
	obj := f.put(d.ObjectKey, 60)
	// The client's confirm rejects the document between the notification's
	// read and its lock, and fails to remove the object.
	raced := false // one goroutine: the hook runs inside ConfirmObject
	f.store.beforeConfirm = func() {
		if raced {
			return
		}
		raced = true
		f.objects.failRemove = document.Errorf(document.Unavailable, "object store unavailable")
		c, err := f.svc.Confirm(context.Background(), user, d.ID)
		if !c.Leftover || !document.IsRejection(err) {
			t.Errorf("the other door: %+v, %v; want a rejection with a leftover", c, err)
		}
		f.objects.failRemove = nil
	}

	c, err := f.svc.ConfirmObject(context.Background(), d.ObjectKey, obj.info())
	wantQuotaExceeded(t, err, document.QuotaExceededError{UsedBytes: 0, LimitBytes: 50, RejectedBytes: 60})
	wantOutcome(t, c, err, "rejected")
	if c.Leftover {
		t.Error("Leftover set though the object was removed")
	}
	if f.objects.has(d.ObjectKey) {
		t.Error("the rejected object is still stored")
	}
	wantStatus(t, f.doc(t, d.ID), document.StatusRejected, document.ReasonOverQuota)
	f.wantEvents(t, document.EventRejected, 1)
}

// The event door answers nobody: when the client's confirm charges the
// document between its read and its lock, it reads no quota again.
func TestConfirmObjectThatLostTheRaceReadsNoQuota(t *testing.T) {
	t.Parallel()
	f := newService(t)
	user := uuid.New()
	d := f.pending(t, user, nil)
	obj := f.put(d.ObjectKey, 30)
	raced := false
	quotaReads := 0
	f.store.beforeConfirm = func() {
		if raced {
			return
		}
		raced = true
		if c, err := f.svc.Confirm(context.Background(), user, d.ID); err != nil || !c.Changed {
			t.Errorf("the other door: %+v, %v; want it to confirm", c, err)
		}
		quotaReads = f.store.callCount("Quota")
	}
	c, err := f.svc.ConfirmObject(context.Background(), d.ObjectKey, obj.info())
	wantOutcome(t, c, err, "already")
	if n := f.store.callCount("Quota") - quotaReads; n != 0 {
		t.Errorf("the event door read the quota %d times after losing the race", n)
	}
	wantStatus(t, f.doc(t, d.ID), document.StatusUploaded, "")
	f.wantEvents(t, document.EventUploaded, 1)
}

func TestConfirmObjectLeavesForeignKeysAlone(t *testing.T) {
	t.Parallel()
	for name, key := range map[string]string{
		"other prefix":  "backup/db.dump",
		"two parts":     uuid.NewString() + "/x.pdf",
		"not ids":       "a/b/c",
		"four parts":    uuid.NewString() + "/" + uuid.NewString() + "/x/y",
		"short user id": strings.ReplaceAll(uuid.NewString(), "-", "") + "/" + uuid.NewString() + "/x",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newService(t)
			f.put(key, 10)
			_, err := f.svc.ConfirmObject(context.Background(), key, document.ObjectInfo{})
			wantCode(t, err, document.NotFound)
			if !f.objects.has(key) || len(f.objects.removeCalls()) != 0 {
				t.Error("a key DocuVault did not make was removed")
			}
		})
	}
}

func TestConfirmObjectRemovesObjectsOfUnknownDocuments(t *testing.T) {
	t.Parallel()
	f := newService(t)
	user := uuid.New()
	deleted := f.uploaded(t, user, 10)
	if err := f.svc.Delete(context.Background(), user, deleted.ID); err != nil {
		t.Fatal(err)
	}
	live := f.uploaded(t, user, 20)
	_, suffix, _ := strings.Cut(strings.TrimPrefix(live.ObjectKey, user.String()+"/"), "/")
	for name, key := range map[string]string{
		"deleted document":          deleted.ObjectKey,
		"never made":                document.ObjectKey(user, uuid.New(), "a.pdf"),
		"another key of a document": document.ObjectKey(user, live.ID, "a.pdf"),
		"another user's prefix":     uuid.NewString() + "/" + live.ID.String() + "/" + suffix,
	} {
		obj := f.put(key, 5)
		c, err := f.svc.ConfirmObject(context.Background(), key, obj.info())
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		wantOutcome(t, c, err, "stray_unknown")
		if f.objects.has(key) {
			t.Errorf("%s: the stray object is still stored", name)
		}
	}
	if got := f.doc(t, live.ID); got.Status != document.StatusUploaded || !f.objects.has(live.ObjectKey) {
		t.Errorf("the live document was touched: %+v", got)
	}
	if used := f.used(t, user); used != 20 {
		t.Errorf("used %d bytes, want 20", used)
	}
}

func TestConfirmObjectRemovesAnUploadToARejectedDocument(t *testing.T) {
	t.Parallel()
	f := newService(t)
	user := uuid.New()
	d := f.rejected(t, user)
	obj := f.put(d.ObjectKey, 10) // the upload URL used again

	c, err := f.svc.ConfirmObject(context.Background(), d.ObjectKey, obj.info())
	if err != nil {
		t.Fatal(err)
	}
	wantOutcome(t, c, err, "stray_rejected")
	if f.objects.has(d.ObjectKey) {
		t.Error("the object is still stored")
	}
	wantStatus(t, f.doc(t, d.ID), document.StatusRejected, document.ReasonSizeMismatch)
	if f.used(t, user) != 0 {
		t.Error("a rejected document was charged")
	}
	f.wantEvents(t, document.EventRejected, 1)
}

func TestConfirmObjectConfirmsAPendingDocument(t *testing.T) {
	t.Parallel()
	f := newService(t)
	user := uuid.New()
	d := f.pending(t, user, declared(100))
	obj := f.put(d.ObjectKey, 100)

	// The notification's size and etag are the store's word for the
	// write: no stat, whichever door comes next.
	c, err := f.svc.ConfirmObject(context.Background(), d.ObjectKey, obj.info())
	if err != nil {
		t.Fatal(err)
	}
	wantOutcome(t, c, err, "uploaded")
	if c.UsedBytes != 100 || c.Document.ETag != obj.etag {
		t.Errorf("UsedBytes = %d, etag %q; want 100, %q", c.UsedBytes, c.Document.ETag, obj.etag)
	}
	// The client's confirm comes second and finds it done.
	c, err = f.svc.Confirm(context.Background(), user, d.ID)
	wantOutcome(t, c, err, "already")
	// So does the notification's second copy.
	c, err = f.svc.ConfirmObject(context.Background(), d.ObjectKey, obj.info())
	wantOutcome(t, c, err, "already")
	if used := f.used(t, user); used != 100 {
		t.Errorf("used %d bytes, want 100", used)
	}
	f.wantEvents(t, document.EventUploaded, 1)
	if n := f.objects.statCount(); n != 0 {
		t.Errorf("%d stats for one upload confirmed by its notification, want 0", n)
	}
}

func TestConfirmOfADocumentConfirmedBeforeIsOneRead(t *testing.T) {
	t.Parallel()
	f := newService(t)
	user := uuid.New()
	d := f.pending(t, user, nil)
	obj := f.put(d.ObjectKey, 30)
	if _, err := f.svc.ConfirmObject(context.Background(), d.ObjectKey, obj.info()); err != nil {
		t.Fatal(err)
	}
	before := map[string]int{}
	for _, m := range []string{"Document", "DocumentAndQuota", "Quota", "Settle"} {
		before[m] = f.store.callCount(m)
	}
	c, err := f.svc.Confirm(context.Background(), user, d.ID)
	wantOutcome(t, c, err, "already")
	if c.UsedBytes != 30 {
		t.Errorf("UsedBytes = %d, want 30", c.UsedBytes)
	}
	for m, n := range before {
		want := 0
		if m == "DocumentAndQuota" {
			want = 1
		}
		if got := f.store.callCount(m) - n; got != want {
			t.Errorf("%s called %d times, want %d", m, got, want)
		}
	}
}

func TestConfirmObjectRejectsWhatTheNotificationReports(t *testing.T) {
	t.Parallel()
	f := newService(t)
	user := uuid.New()
	f.setLimit(t, user, 50)
	d := f.pending(t, user, nil)
	obj := f.put(d.ObjectKey, 60)
	c, err := f.svc.ConfirmObject(context.Background(), d.ObjectKey, obj.info())
	wantOutcome(t, c, err, "rejected")
	var q *document.QuotaExceededError
	if !errors.As(err, &q) || q.RejectedBytes != 60 {
		t.Fatalf("err = %v, want a 60-byte QuotaExceededError", err)
	}
	if f.objects.has(d.ObjectKey) || f.used(t, user) != 0 {
		t.Error("the rejected object is stored or charged")
	}
}

func TestConfirmObjectWithoutAnETagStatsTheObject(t *testing.T) {
	t.Parallel()
	f := newService(t)
	user := uuid.New()
	d := f.pending(t, user, nil)
	f.put(d.ObjectKey, 42)
	c, err := f.svc.ConfirmObject(context.Background(), d.ObjectKey, document.ObjectInfo{})
	wantOutcome(t, c, err, "uploaded")
	if f.objects.statCount() != 1 || f.used(t, user) != 42 {
		t.Errorf("%d stats, %d bytes charged; want 1 stat and 42 bytes", f.objects.statCount(), f.used(t, user))
	}
}

func TestConfirmObjectWithTheChargedETagChangesNothing(t *testing.T) {
	t.Parallel()
	f := newService(t)
	user := uuid.New()
	d := f.uploaded(t, user, 100)
	stats := f.objects.statCount()

	c, err := f.svc.ConfirmObject(context.Background(), d.ObjectKey, document.ObjectInfo{Size: d.SizeBytes, ETag: d.ETag})
	if err != nil {
		t.Fatal(err)
	}
	wantOutcome(t, c, err, "already")
	if c.Document == nil || c.Document.ID != d.ID || c.Stray != "" {
		t.Errorf("Confirmation = %+v", c)
	}
	if f.objects.statCount() != stats {
		t.Error("an unchanged object was stat'ed")
	}
	if got := f.doc(t, d.ID); got.SizeBytes != 100 || got.ETag != d.ETag || !got.UpdatedAt.Equal(d.UpdatedAt) {
		t.Errorf("document changed: %+v", got)
	}
	if used := f.used(t, user); used != 100 {
		t.Errorf("used %d bytes, want 100", used)
	}
	f.wantEvents(t, "", 1)
}

func TestConfirmObjectReconcilesAReplacedObject(t *testing.T) {
	t.Parallel()
	for name, size := range map[string]int{"grown": 300, "shrunk": 40} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newService(t)
			user := uuid.New()
			f.uploaded(t, user, 50)
			d := f.uploaded(t, user, 100)
			f.clock.set(t0.Add(time.Hour))
			obj := f.put(d.ObjectKey, size) // replaced by a tool with other credentials

			c, err := f.svc.ConfirmObject(context.Background(), d.ObjectKey, obj.info())
			if err != nil {
				t.Fatal(err)
			}
			wantOutcome(t, c, err, "stray_reconciled")
			want := int64(50 + size)
			if c.UsedBytes != want || c.Leftover {
				t.Errorf("Confirmation = %+v, want UsedBytes %d", c, want)
			}
			if used := f.used(t, user); used != want {
				t.Errorf("used %d bytes, want %d", used, want)
			}
			got := f.doc(t, d.ID)
			wantStatus(t, got, document.StatusUploaded, "")
			if got.SizeBytes != int64(size) || got.ETag != obj.etag || !got.UpdatedAt.Equal(t0.Add(time.Hour)) {
				t.Errorf("document = %+v", got)
			}
			if !f.objects.has(d.ObjectKey) {
				t.Error("a reconciled object was removed")
			}
			f.wantEvents(t, "", 2) // the two uploads only

			// The same notification again finds it reconciled.
			c, err = f.svc.ConfirmObject(context.Background(), d.ObjectKey, obj.info())
			wantOutcome(t, c, err, "already")
			if used := f.used(t, user); used != want {
				t.Errorf("used %d bytes after a repeat, want %d", used, want)
			}
		})
	}
}

func TestConfirmObjectRejectsAReplacedObjectThatNoLongerFits(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct {
		size   int
		reason string
		check  func(t *testing.T, err error)
	}{
		"over quota": {250, document.ReasonOverQuota, func(t *testing.T, err error) {
			wantQuotaExceeded(t, err, document.QuotaExceededError{UsedBytes: 300, LimitBytes: defaultQuota, RejectedBytes: 250})
		}},
		"too large": {maxUpload + 1, document.ReasonTooLarge, func(t *testing.T, err error) {
			wantCode(t, err, document.TooLarge)
		}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newService(t)
			user := uuid.New()
			f.uploaded(t, user, 300)
			d := f.uploaded(t, user, 100)
			obj := f.put(d.ObjectKey, tc.size)

			c, err := f.svc.ConfirmObject(context.Background(), d.ObjectKey, obj.info())
			tc.check(t, err)
			if !document.IsRejection(err) {
				t.Error("IsRejection = false")
			}
			wantOutcome(t, c, err, "stray_reconcile_rejected")
			if c.Leftover {
				t.Error("Leftover set though the object was removed")
			}
			wantStatus(t, f.doc(t, d.ID), document.StatusRejected, tc.reason)
			if used := f.used(t, user); used != 300 {
				t.Errorf("used %d bytes, want 300: the charge is released", used)
			}
			if f.objects.has(d.ObjectKey) {
				t.Error("the object is still stored")
			}
			ev := f.wantEvents(t, document.EventRejected, 1)
			if len(ev) == 1 && (ev[0].Data.DocumentID != d.ID || ev[0].Data.Reason != tc.reason) {
				t.Errorf("event data = %+v", ev[0].Data)
			}
		})
	}
}

// --- Get and Delete ---

func TestGetSignsADownloadOnlyOnceStored(t *testing.T) {
	t.Parallel()
	f := newService(t)
	user := uuid.New()
	p := f.pending(t, user, nil)
	if _, url, err := f.svc.Get(context.Background(), user, p.ID); err != nil || url != "" {
		t.Errorf("Get(pending) = %q, %v; want no URL", url, err)
	}
	d := f.uploaded(t, user, 10)
	got, url, err := f.svc.Get(context.Background(), user, d.ID)
	if err != nil || got.ID != d.ID || url != "https://objects.test/get/"+d.ObjectKey {
		t.Errorf("Get = %+v, %q, %v", got, url, err)
	}
	calls := f.objects.presignCalls()
	if last := calls[len(calls)-1]; last.method != "GET" || last.filename != "scan.PDF" || last.ttl != 5*time.Minute {
		t.Errorf("presigned %+v", last)
	}
	_, _, err = f.svc.Get(context.Background(), uuid.New(), d.ID)
	wantCode(t, err, document.NotFound)
}

func TestDeleteReleasesAChargedDocument(t *testing.T) {
	t.Parallel()
	f := newService(t)
	user := uuid.New()
	keep := f.uploaded(t, user, 30)
	d := f.uploaded(t, user, 100)

	if err := f.svc.Delete(context.Background(), user, d.ID); err != nil {
		t.Fatal(err)
	}
	f.gone(t, d.ID)
	if used := f.used(t, user); used != 30 {
		t.Errorf("used %d bytes, want 30", used)
	}
	if f.objects.has(d.ObjectKey) || !f.objects.has(keep.ObjectKey) {
		t.Error("the wrong objects were removed")
	}
	ev := f.wantEvents(t, document.EventDeleted, 1)
	if len(ev) == 1 && (ev[0].Data.DocumentID != d.ID || ev[0].Data.SizeBytes != 100) {
		t.Errorf("event data = %+v", ev[0].Data)
	}
}

func TestDeletePendingReleasesNothing(t *testing.T) {
	t.Parallel()
	f := newService(t)
	user := uuid.New()
	f.uploaded(t, user, 30)
	d := f.pending(t, user, nil)
	f.put(d.ObjectKey, 20) // arrived, not confirmed yet

	if err := f.svc.Delete(context.Background(), user, d.ID); err != nil {
		t.Fatal(err)
	}
	f.gone(t, d.ID)
	if used := f.used(t, user); used != 30 {
		t.Errorf("used %d bytes, want 30", used)
	}
	if f.objects.has(d.ObjectKey) {
		t.Error("the object is still stored")
	}
	f.wantEvents(t, document.EventDeleted, 1)
}

func TestDeleteRejectedReleasesNothing(t *testing.T) {
	t.Parallel()
	f := newService(t)
	user := uuid.New()
	f.setLimit(t, user, 150)
	f.uploaded(t, user, 100)
	d := f.pending(t, user, nil)
	f.put(d.ObjectKey, 80)
	if _, err := f.svc.Confirm(context.Background(), user, d.ID); !document.IsRejection(err) {
		t.Fatalf("Confirm: %v, want a rejection", err)
	}

	if err := f.svc.Delete(context.Background(), user, d.ID); err != nil {
		t.Fatal(err)
	}
	f.gone(t, d.ID)
	if used := f.used(t, user); used != 100 {
		t.Errorf("used %d bytes, want 100: a rejected document was never charged", used)
	}
	f.wantEvents(t, document.EventDeleted, 1)
}

func TestDeleteOtherUsersDocumentIsNotFound(t *testing.T) {
	t.Parallel()
	f := newService(t)
	owner := uuid.New()
	d := f.uploaded(t, owner, 100)

	err := f.svc.Delete(context.Background(), uuid.New(), d.ID)
	wantCode(t, err, document.NotFound)
	f.doc(t, d.ID)
	if f.used(t, owner) != 100 || !f.objects.has(d.ObjectKey) {
		t.Error("another user's delete changed something")
	}
	f.wantEvents(t, document.EventDeleted, 0)

	err = f.svc.Delete(context.Background(), owner, uuid.New())
	wantCode(t, err, document.NotFound)
}

func TestDeleteSucceedsWhenTheObjectStaysBehind(t *testing.T) {
	t.Parallel()
	f := newService(t)
	user := uuid.New()
	d := f.uploaded(t, user, 100)
	f.objects.failRemove = document.Errorf(document.Unavailable, "object store unavailable")

	if err := f.svc.Delete(context.Background(), user, d.ID); err != nil {
		t.Fatal(err)
	}
	f.gone(t, d.ID)
	if f.used(t, user) != 0 {
		t.Error("the quota was not released")
	}
	f.wantEvents(t, document.EventDeleted, 1)
}

func TestDeleteRollsBackOnAStoreFailure(t *testing.T) {
	t.Parallel()
	f := newService(t)
	user := uuid.New()
	d := f.uploaded(t, user, 100)
	f.store.failOn("Tx.AppendEvent", document.Errorf(document.Unavailable, "database unavailable"))

	err := f.svc.Delete(context.Background(), user, d.ID)
	wantCode(t, err, document.Unavailable)
	f.doc(t, d.ID)
	if f.used(t, user) != 100 || !f.objects.has(d.ObjectKey) {
		t.Error("a failed delete changed something")
	}
	f.wantEvents(t, document.EventDeleted, 0)
}

// --- Classify and Reclassify ---

func TestClassifyUploadedDocument(t *testing.T) {
	t.Parallel()
	f := newService(t)
	user := uuid.New()
	d := f.pending(t, user, nil)
	f.objects.put(d.ObjectKey, []byte("%PDF-1.7 and the rest of it"), t0)
	if _, err := f.svc.Confirm(context.Background(), user, d.ID); err != nil {
		t.Fatal(err)
	}
	f.clock.set(t0.Add(time.Minute))

	outcome, result, err := f.svc.Classify(context.Background(), d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if outcome != document.ClassifyDone || result != f.classifier.result {
		t.Errorf("Classify = %q, %+v", outcome, result)
	}
	calls := f.classifier.seen()
	if len(calls) != 1 || string(calls[0].data) != "%PDF-1.7" || calls[0].contentType != "application/pdf" || !calls[0].deadline {
		t.Errorf("classifier saw %+v, want the first 8 bytes and the declared type, with a deadline", calls)
	}
	got := f.doc(t, d.ID)
	if got.Status != document.StatusClassified || got.Classification != "invoice" || got.DetectedType != "application/pdf" ||
		got.Confidence != 0.9 || got.ClassificationReason != "" || !got.UpdatedAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("document = %+v", got)
	}
	ev := f.wantEvents(t, document.EventClassified, 1)
	if len(ev) == 1 && (ev[0].Data.DocumentID != d.ID || ev[0].Data.Classification != "invoice") {
		t.Errorf("event data = %+v", ev[0].Data)
	}
	if f.used(t, user) != got.SizeBytes {
		t.Error("classification changed the charge")
	}

	// A redelivery of the same event does nothing.
	outcome, _, err = f.svc.Classify(context.Background(), d.ID)
	if err != nil || outcome != document.ClassifySkipped {
		t.Errorf("Classify again = %q, %v; want skipped", outcome, err)
	}
	f.wantEvents(t, document.EventClassified, 1)
}

func TestClassifyFailure(t *testing.T) {
	t.Parallel()
	f := newService(t)
	f.classifier.result = document.Classification{DetectedType: "application/x-executable", Confidence: 1, Failure: document.ReasonTypeMismatch}
	d := f.uploaded(t, uuid.New(), 20)

	outcome, result, err := f.svc.Classify(context.Background(), d.ID)
	if err != nil || outcome != document.ClassifyFailed || result.Failure != document.ReasonTypeMismatch {
		t.Errorf("Classify = %q, %+v, %v", outcome, result, err)
	}
	got := f.doc(t, d.ID)
	if got.Status != document.StatusClassificationFailed || got.ClassificationReason != document.ReasonTypeMismatch ||
		got.Classification != "" || got.DetectedType != "application/x-executable" {
		t.Errorf("document = %+v", got)
	}
	ev := f.wantEvents(t, document.EventClassificationFailed, 1)
	if len(ev) == 1 && (!ev[0].Data.TypeMismatch || ev[0].Data.Reason != document.ReasonTypeMismatch) {
		t.Errorf("event data = %+v", ev[0].Data)
	}
	f.wantEvents(t, document.EventClassified, 0)
}

func TestClassifySkipsWhatIsNotWaiting(t *testing.T) {
	t.Parallel()
	f := newService(t)
	user := uuid.New()
	pending := f.pending(t, user, nil)
	rejected := f.rejected(t, user)
	classified := f.uploaded(t, user, 10)
	if outcome, _, err := f.svc.Classify(context.Background(), classified.ID); err != nil || outcome != document.ClassifyDone {
		t.Fatalf("Classify = %q, %v", outcome, err)
	}
	missingObject := f.uploaded(t, user, 10)
	if err := f.objects.Remove(context.Background(), missingObject.ObjectKey); err != nil {
		t.Fatal(err)
	}
	events := len(f.store.events())
	calls := len(f.classifier.seen())

	for name, id := range map[string]uuid.UUID{
		"unknown":        uuid.New(),
		"pending":        pending.ID,
		"rejected":       rejected.ID,
		"classified":     classified.ID,
		"missing object": missingObject.ID,
	} {
		outcome, _, err := f.svc.Classify(context.Background(), id)
		if err != nil || outcome != document.ClassifySkipped {
			t.Errorf("%s: Classify = %q, %v; want skipped", name, outcome, err)
		}
	}
	if n := len(f.store.events()); n != events {
		t.Errorf("%d events recorded by skipped classifications", n-events)
	}
	if n := len(f.classifier.seen()); n != calls {
		t.Errorf("the classifier ran %d times for skipped documents", n-calls)
	}
	wantStatus(t, f.doc(t, missingObject.ID), document.StatusUploaded, "")
}

func TestClassifyStoreFailureIsRetried(t *testing.T) {
	t.Parallel()
	unavailable := document.Errorf(document.Unavailable, "database unavailable")
	for _, method := range []string{"Document", "InTx", "Tx.Save"} {
		t.Run(method, func(t *testing.T) {
			t.Parallel()
			f := newService(t)
			d := f.uploaded(t, uuid.New(), 10)
			f.store.failOn(method, unavailable)

			outcome, _, err := f.svc.Classify(context.Background(), d.ID)
			wantCode(t, err, document.Unavailable)
			if outcome != "" {
				t.Errorf("outcome = %q with an error", outcome)
			}
			f.store.failOn(method, nil)
			wantStatus(t, f.doc(t, d.ID), document.StatusUploaded, "")
			f.wantEvents(t, document.EventClassified, 0)

			// The retry does it.
			if outcome, _, err := f.svc.Classify(context.Background(), d.ID); err != nil || outcome != document.ClassifyDone {
				t.Errorf("retry: Classify = %q, %v", outcome, err)
			}
		})
	}
}

func TestClassifyObjectStoreFailureIsRetried(t *testing.T) {
	t.Parallel()
	f := newService(t)
	d := f.uploaded(t, uuid.New(), 10)
	f.objects.failRead = document.Errorf(document.Unavailable, "object store unavailable")
	outcome, _, err := f.svc.Classify(context.Background(), d.ID)
	wantCode(t, err, document.Unavailable)
	if outcome != "" || len(f.classifier.seen()) != 0 {
		t.Errorf("outcome %q, classifier ran %d times", outcome, len(f.classifier.seen()))
	}
}

func TestClassifyWithoutClassifier(t *testing.T) {
	t.Parallel()
	f := newService(t, func(c *document.Config) { c.Classifier = nil })
	d := f.uploaded(t, uuid.New(), 10)
	_, _, err := f.svc.Classify(context.Background(), d.ID)
	wantCode(t, err, document.Internal)
}

func TestReclassifyClassifiedDocument(t *testing.T) {
	t.Parallel()
	for name, failure := range map[string]string{"classified": "", "classification failed": document.ReasonTypeMismatch} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newService(t)
			f.classifier.result.Failure = failure
			user := uuid.New()
			d := f.uploaded(t, user, 10)
			if _, _, err := f.svc.Classify(context.Background(), d.ID); err != nil {
				t.Fatal(err)
			}
			f.clock.set(t0.Add(time.Hour))

			got, err := f.svc.Reclassify(context.Background(), user, d.ID)
			if err != nil {
				t.Fatal(err)
			}
			for _, doc := range []*document.Document{got, f.doc(t, d.ID)} {
				if doc.Status != document.StatusUploaded || doc.Classification != "" || doc.ClassificationReason != "" ||
					doc.DetectedType != "" || doc.Confidence != 0 || !doc.UpdatedAt.Equal(t0.Add(time.Hour)) {
					t.Errorf("document = %+v", doc)
				}
			}
			ev := f.wantEvents(t, document.EventUploaded, 2)
			if len(ev) == 2 && (ev[1].Data.DocumentID != d.ID || ev[1].Data.Classification != "") {
				t.Errorf("event data = %+v", ev[1].Data)
			}
			if f.used(t, user) != 10 {
				t.Error("reclassification changed the charge")
			}
			// And the classifier takes it again.
			f.classifier.result.Failure = ""
			if outcome, _, err := f.svc.Classify(context.Background(), d.ID); err != nil || outcome != document.ClassifyDone {
				t.Errorf("Classify = %q, %v", outcome, err)
			}
		})
	}
}

func TestReclassifyQueuedDocumentQueuesNothing(t *testing.T) {
	t.Parallel()
	f := newService(t)
	user := uuid.New()
	d := f.uploaded(t, user, 10)
	got, err := f.svc.Reclassify(context.Background(), user, d.ID)
	if err != nil || got.Status != document.StatusUploaded {
		t.Fatalf("Reclassify = %+v, %v", got, err)
	}
	f.wantEvents(t, document.EventUploaded, 1)
}

func TestReclassifyRefusesWhatHasNoBytes(t *testing.T) {
	t.Parallel()
	f := newService(t)
	user := uuid.New()
	for name, d := range map[string]*document.Document{"pending": f.pending(t, user, nil), "rejected": f.rejected(t, user)} {
		_, err := f.svc.Reclassify(context.Background(), user, d.ID)
		if document.ErrorCode(err) != document.Conflict {
			t.Errorf("%s: Reclassify: %v, want Conflict", name, err)
		}
	}
	d := f.uploaded(t, user, 10)
	_, err := f.svc.Reclassify(context.Background(), uuid.New(), d.ID)
	wantCode(t, err, document.NotFound)
	f.wantEvents(t, document.EventUploaded, 1)
}

func TestReclassifyBoundsRequestsPerMinute(t *testing.T) {
	t.Parallel()
	f := newService(t, func(c *document.Config) { c.ReclassifyPerMinute = 2 })
	user := uuid.New()
	d := f.uploaded(t, user, 10)
	for range 2 {
		if _, err := f.svc.Reclassify(context.Background(), user, d.ID); err != nil {
			t.Fatal(err)
		}
	}
	f.clock.set(t0.Add(15 * time.Second))
	_, err := f.svc.Reclassify(context.Background(), user, d.ID)
	r := wantRateLimited(t, err)
	if r.RetryAfter != 45*time.Second {
		t.Errorf("RetryAfter = %v, want 45s: the rest of the window", r.RetryAfter)
	}
	// Another user has a window of its own.
	other := uuid.New()
	od := f.uploaded(t, other, 10)
	if _, err := f.svc.Reclassify(context.Background(), other, od.ID); err != nil {
		t.Errorf("another user: %v", err)
	}
	// A new window starts a minute later.
	f.clock.set(t0.Add(time.Minute))
	if _, err := f.svc.Reclassify(context.Background(), user, d.ID); err != nil {
		t.Errorf("next window: %v", err)
	}
}

// --- Sweep ---

func TestSweep(t *testing.T) {
	t.Parallel()
	f := newService(t)
	user := uuid.New()
	f.setLimit(t, user, 10*maxUpload)
	cfg := document.SweepConfig{PendingTTL: time.Hour, RejectedRetention: 24 * time.Hour, BatchSize: 2, Workers: 2}
	old := t0.Add(-48 * time.Hour)

	// Made two days ago.
	f.clock.set(old)
	var arrived []*document.Document // pending, object stored, event lost
	for i := range 3 {
		d := f.pending(t, user, declared(int64(100+i)))
		f.put(d.ObjectKey, 100+i)
		arrived = append(arrived, d)
	}
	var abandoned []*document.Document // pending, never uploaded
	for range 3 {
		abandoned = append(abandoned, f.pending(t, user, nil))
	}
	mismatch := f.pending(t, user, declared(50)) // pending, the wrong bytes stored
	f.put(mismatch.ObjectKey, 51)
	oldRejected := f.rejected(t, user)
	f.put(oldRejected.ObjectKey, 10) // a leftover
	charged := f.uploaded(t, user, 7)
	oldOrphan := document.ObjectKey(user, uuid.New(), "old.pdf")
	f.put(oldOrphan, 5)
	olderOrphan := document.ObjectKey(user, uuid.New(), "orphan.pdf")
	f.objects.put(olderOrphan, []byte("orphan"), t0.Add(-2*time.Hour))
	// Rejected three hours ago, within retention, and its URL used again
	// two hours ago while the notification was lost: bytes no one is
	// charged for.
	f.clock.set(t0.Add(-3 * time.Hour))
	reusedRejected := f.rejected(t, user)
	f.objects.put(reusedRejected.ObjectKey, []byte("uncharged"), t0.Add(-2*time.Hour))

	// Made ten minutes ago.
	f.clock.set(t0.Add(-10 * time.Minute))
	fresh := f.pending(t, user, nil)
	freshArrived := f.pending(t, user, nil)
	f.put(freshArrived.ObjectKey, 20)
	freshOrphan := document.ObjectKey(user, uuid.New(), "new.pdf")
	f.put(freshOrphan, 5)
	recentRejected := f.rejected(t, user)

	f.clock.set(t0)
	res, err := f.svc.Sweep(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	res.MaxBatchLock = 0
	res.PendingListed = 0 // the keys' order, and so each listing's length, is random
	// The reconciliation checks what is left: 3 arrived, the charged one, 2
	// old orphans, the rejected document's object, the fresh arrival and the
	// fresh orphan.
	// The ledger check finds the one user's quota row right.
	want := document.SweepResult{Confirmed: 3, Rejected: 1, Purged: 3, RejectedRemoved: 1, OrphansRemoved: 3, KeysChecked: 9,
		LedgerChecked: 1}
	if res != want {
		t.Errorf("Sweep = %+v, want %+v", res, want)
	}

	var wantUsed int64 = 7
	for _, d := range arrived {
		got := f.doc(t, d.ID)
		wantStatus(t, got, document.StatusUploaded, "")
		wantUsed += got.SizeBytes
	}
	if used := f.used(t, user); used != wantUsed {
		t.Errorf("used %d bytes, want %d", used, wantUsed)
	}
	f.wantEvents(t, document.EventUploaded, 4)
	for _, d := range abandoned {
		f.gone(t, d.ID)
	}
	wantStatus(t, f.doc(t, mismatch.ID), document.StatusRejected, document.ReasonSizeMismatch)
	if f.objects.has(mismatch.ObjectKey) {
		t.Error("the mismatched object is still stored")
	}
	f.gone(t, oldRejected.ID)
	if f.objects.has(oldRejected.ObjectKey) || f.objects.has(oldOrphan) || f.objects.has(olderOrphan) {
		t.Error("an old rejected object or orphan is still stored")
	}
	wantStatus(t, f.doc(t, reusedRejected.ID), document.StatusRejected, document.ReasonSizeMismatch)
	if f.objects.has(reusedRejected.ObjectKey) {
		t.Error("the object stored for a rejected document within retention is still there")
	}
	for _, d := range []*document.Document{fresh, freshArrived} {
		wantStatus(t, f.doc(t, d.ID), document.StatusPending, "")
	}
	wantStatus(t, f.doc(t, recentRejected.ID), document.StatusRejected, document.ReasonSizeMismatch)
	wantStatus(t, f.doc(t, charged.ID), document.StatusUploaded, "")
	for _, key := range []string{freshOrphan, freshArrived.ObjectKey, charged.ObjectKey, arrived[0].ObjectKey} {
		if !f.objects.has(key) {
			t.Errorf("%s was removed", key)
		}
	}

	// A second sweep finds nothing left, and charges nothing twice; the
	// reconciliation's pass is done until ReconcilePeriod is over.
	res, err = f.svc.Sweep(context.Background(), cfg)
	res.MaxBatchLock = 0
	if err != nil || res != (document.SweepResult{LedgerChecked: 1}) {
		t.Errorf("second Sweep = %+v, %v; want nothing done but the ledger checked", res, err)
	}
	if used := f.used(t, user); used != wantUsed {
		t.Errorf("used %d bytes after a second sweep, want %d", used, wantUsed)
	}
	f.wantEvents(t, document.EventUploaded, 4)
}

// stalePending makes n pending documents of user two days before t0, the
// first lost of them with their object stored (an upload whose event was
// lost), and sets the clock back to t0.
func (f *fixture) stalePending(t *testing.T, user uuid.UUID, n, lost int) (stale, arrived []*document.Document) {
	t.Helper()
	f.setLimit(t, user, int64(n)*maxUpload)
	f.clock.set(t0.Add(-48 * time.Hour))
	for i := range n {
		d := f.pending(t, user, nil)
		if i < lost {
			f.put(d.ObjectKey, 100+i)
			arrived = append(arrived, d)
		}
		stale = append(stale, d)
	}
	f.clock.set(t0)
	return stale, arrived
}

func TestSweepListsASparseBucketInsteadOfStatting(t *testing.T) {
	t.Parallel()
	f := newService(t)
	user := uuid.New()
	stale, arrived := f.stalePending(t, user, 40, 5)
	for range 20 { // other users' documents, between the stale ones
		f.put(document.ObjectKey(uuid.New(), uuid.New(), "other.pdf"), 5)
	}

	res, err := f.svc.Sweep(context.Background(), document.SweepConfig{PendingTTL: time.Hour, RejectedRetention: time.Hour, BatchSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	// One listing settles the four batches (the other listing is the
	// reconciliation's).
	if res.Confirmed != 5 || res.Purged != 35 || res.PendingStats != 0 || res.Errors != 0 || f.objects.listed != 2 || f.objects.statCount() != 0 {
		t.Errorf("Sweep = %+v after %d listings and %d stats; want 5 confirmed, 35 purged by one listing and no stat", res, f.objects.listed, f.objects.statCount())
	}
	f.wantSwept(t, stale, arrived)
}

// wantSwept checks that of stale (as stalePending made them), those whose
// upload never came are gone and those whose upload arrived are uploaded.
func (f *fixture) wantSwept(t *testing.T, stale, arrived []*document.Document) {
	t.Helper()
	for _, d := range stale[len(arrived):] {
		f.gone(t, d.ID)
	}
	for _, d := range arrived {
		wantStatus(t, f.doc(t, d.ID), document.StatusUploaded, "")
	}
}

func TestSweepStatsWhereTheBucketIsDense(t *testing.T) {
	t.Parallel()
	f := newService(t)
	stale, arrived := f.stalePending(t, uuid.New(), 20, 2)
	// 100 keys right after each stale document's key: a listing page
	// settles at most one of them per 100 keys.
	for _, d := range stale {
		for i := range 100 {
			f.put(fmt.Sprintf("%s.%03d", d.ObjectKey, i), 1)
		}
	}

	res, err := f.svc.Sweep(context.Background(), document.SweepConfig{PendingTTL: time.Hour, RejectedRetention: time.Hour, ReconcileKeys: 1})
	if err != nil {
		t.Fatal(err)
	}
	// One probing page of 100 keys wasted, then a stat for each document
	// the page left.
	if res.Confirmed != 2 || res.Purged != 18 || res.Errors != 0 || res.PendingListed != 100 ||
		res.PendingStats < 18 || res.PendingStats != f.objects.statCount() {
		t.Errorf("Sweep = %+v after %d stats; want 2 confirmed, 18 purged, one page of 100 keys listed and the rest stat'ed", res, f.objects.statCount())
	}
	f.wantSwept(t, stale, arrived)
}

func TestSweepConfirmsAListedLostUploadOnce(t *testing.T) {
	t.Parallel()
	f := newService(t)
	user := uuid.New()
	_, arrived := f.stalePending(t, user, 3, 3)
	cfg := document.SweepConfig{PendingTTL: time.Hour, RejectedRetention: time.Hour}

	// Two sweeps at once, and the notification door besides.
	first := f.objects.objs[arrived[0].ObjectKey]
	var wg sync.WaitGroup
	results := make([]document.SweepResult, 2)
	for i := range results {
		wg.Go(func() {
			res, err := f.svc.Sweep(context.Background(), cfg)
			if err != nil {
				t.Error(err)
			}
			results[i] = res
		})
	}
	wg.Go(func() {
		if _, err := f.svc.ConfirmObject(context.Background(), arrived[0].ObjectKey, document.ObjectInfo{Size: int64(len(first.data)), ETag: first.etag}); err != nil {
			t.Error(err)
		}
	})
	wg.Wait()
	if confirmed := results[0].Confirmed + results[1].Confirmed; confirmed > 3 {
		t.Errorf("sweeps confirmed %d documents, want at most 3", confirmed)
	}
	// The sweeps use the listing's sizes; the notification door stats a
	// document without a declared size once, unless a sweep settled it.
	if f.objects.statCount() > 1 {
		t.Errorf("%d stats; want the listing's sizes used", f.objects.statCount())
	}
	var want int64
	for i, d := range arrived {
		got := f.doc(t, d.ID)
		wantStatus(t, got, document.StatusUploaded, "")
		if got.SizeBytes != int64(100+i) || got.ETag != f.objects.objs[d.ObjectKey].etag {
			t.Errorf("document %d charged %d bytes with etag %q, want %d bytes, the stored etag", i, got.SizeBytes, got.ETag, 100+i)
		}
		want += got.SizeBytes
	}
	if used := f.used(t, user); used != want {
		t.Errorf("used %d bytes, want %d: each upload charged once", used, want)
	}
	f.wantEvents(t, document.EventUploaded, 3)

	// A later sweep charges nothing again.
	if res, err := f.svc.Sweep(context.Background(), cfg); err != nil || res.Confirmed != 0 {
		t.Errorf("a later Sweep = %+v, %v; want nothing confirmed", res, err)
	}
	if used := f.used(t, user); used != want {
		t.Errorf("used %d bytes after a later sweep, want %d", used, want)
	}
}

func TestSweepStatsStaleUploadsWhenTheListingFails(t *testing.T) {
	t.Parallel()
	f := newService(t)
	stale, _ := f.stalePending(t, uuid.New(), 4, 1)
	f.objects.failList = document.Errorf(document.Unavailable, "object store unavailable")

	res, err := f.svc.Sweep(context.Background(), document.SweepConfig{PendingTTL: time.Hour, RejectedRetention: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	// The reconciliation's listing fails too: its one error.
	if res.Confirmed != 1 || res.Purged != 3 || res.PendingStats != 4 || res.Errors != 1 {
		t.Errorf("Sweep = %+v; want 1 confirmed and 3 purged from 4 stats, and the reconciliation's error", res)
	}
	wantStatus(t, f.doc(t, stale[0].ID), document.StatusUploaded, "")
}

func TestSweepKeepsRowsWhoseObjectsCannotBeRemoved(t *testing.T) {
	t.Parallel()
	f := newService(t)
	user := uuid.New()
	f.clock.set(t0.Add(-48 * time.Hour))
	rejected := f.rejected(t, user)
	orphan := document.ObjectKey(user, uuid.New(), "orphan.pdf")
	f.put(orphan, 5)
	f.clock.set(t0)
	f.objects.failRemove = document.Errorf(document.Unavailable, "object store unavailable")

	res, err := f.svc.Sweep(context.Background(), document.SweepConfig{PendingTTL: time.Hour, RejectedRetention: 24 * time.Hour, BatchSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	if res.RejectedRemoved != 0 || res.OrphansRemoved != 0 || res.Errors != 2 {
		t.Errorf("Sweep = %+v, want 2 errors and nothing removed", res)
	}
	wantStatus(t, f.doc(t, rejected.ID), document.StatusRejected, document.ReasonSizeMismatch)
	if !f.objects.has(orphan) {
		t.Error("the orphan is gone")
	}
}

func TestSweepReconcilesTheBucketASliceAtATime(t *testing.T) {
	t.Parallel()
	f := newService(t)
	user := uuid.New()
	f.clock.set(t0.Add(-48 * time.Hour))
	var orphans []string
	for i := range 5 {
		key := document.ObjectKey(user, uuid.New(), fmt.Sprintf("orphan-%d.pdf", i))
		f.put(key, 5)
		orphans = append(orphans, key)
	}
	kept := []*document.Document{f.uploaded(t, user, 7), f.uploaded(t, user, 9)}
	cfg := document.SweepConfig{PendingTTL: time.Hour, RejectedRetention: 24 * time.Hour, ReconcileKeys: 2, ReconcilePeriod: 6 * time.Hour}

	// 7 keys, 2 a sweep: the pass takes 4 sweeps, each one listing call.
	f.clock.set(t0)
	removed := 0
	for i, want := range []int{2, 2, 2, 1} {
		listed := f.objects.listed
		res, err := f.svc.Sweep(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if res.KeysChecked != want || f.objects.listed != listed+1 {
			t.Errorf("sweep %d checked %d keys in %d listings, want %d in one", i+1, res.KeysChecked, f.objects.listed-listed, want)
		}
		removed += res.OrphansRemoved
		f.clock.set(f.clock.Now().Add(time.Minute))
	}
	if removed != len(orphans) {
		t.Errorf("%d orphans removed, want %d", removed, len(orphans))
	}
	for _, key := range orphans {
		if f.objects.has(key) {
			t.Errorf("orphan %s is still stored", key)
		}
	}
	for _, d := range kept {
		if !f.objects.has(d.ObjectKey) {
			t.Errorf("%s, a document's object, was removed", d.ObjectKey)
		}
	}

	// The pass is complete: the next starts ReconcilePeriod after it began.
	late := document.ObjectKey(user, uuid.New(), "late.pdf")
	f.objects.put(late, []byte("late"), t0.Add(-2*time.Hour))
	if res, err := f.svc.Sweep(context.Background(), cfg); err != nil || res.KeysChecked != 0 {
		t.Errorf("a sweep within the period = %+v, %v; want no key checked", res, err)
	}
	f.clock.set(t0.Add(6 * time.Hour))
	first, err := f.svc.Sweep(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	second, err := f.svc.Sweep(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if first.KeysChecked != 2 || second.KeysChecked != 1 || first.OrphansRemoved+second.OrphansRemoved != 1 || f.objects.has(late) {
		t.Errorf("the next pass = %+v then %+v; want 2 then 1 keys checked and the late orphan removed", first, second)
	}
}

func TestDeleteRecordsTheRemovalUntilItSucceeds(t *testing.T) {
	t.Parallel()
	f := newService(t)
	user := uuid.New()
	ok := f.uploaded(t, user, 10)
	if err := f.svc.Delete(context.Background(), user, ok.ID); err != nil {
		t.Fatal(err)
	}
	if got := f.store.removals(); len(got) != 0 {
		t.Errorf("removal records after a delete whose removal succeeded: %v", got)
	}

	d := f.uploaded(t, user, 20)
	f.objects.failRemove = document.Errorf(document.Unavailable, "object store unavailable")
	if err := f.svc.Delete(context.Background(), user, d.ID); err != nil {
		t.Fatal(err)
	}
	if got := f.store.removals(); !slices.Equal(got, []string{d.ObjectKey}) {
		t.Fatalf("removal records = %v, want the deleted document's key", got)
	}
	cfg := document.SweepConfig{PendingTTL: time.Hour, RejectedRetention: time.Hour}
	f.objects.failRemove = nil
	f.clock.set(t0.Add(time.Second))
	res, err := f.svc.Sweep(context.Background(), cfg)
	if err != nil || res.RemovalsRetried != 1 {
		t.Errorf("sweep = %+v, %v; want one removal retried", res, err)
	}
	if f.objects.has(d.ObjectKey) || len(f.store.removals()) != 0 {
		t.Errorf("after the retry: object stored %v, records %v", f.objects.has(d.ObjectKey), f.store.removals())
	}
}

func TestSweepLeavesOrphansWhenTheObjectStoreIsAway(t *testing.T) {
	t.Parallel()
	f := newService(t)
	f.objects.failList = document.Errorf(document.Unavailable, "object store unavailable")
	res, err := f.svc.Sweep(context.Background(), document.SweepConfig{PendingTTL: time.Hour, RejectedRetention: time.Hour})
	if err != nil || res.Errors != 1 {
		t.Errorf("Sweep = %+v, %v; want one error counted and no failure", res, err)
	}
}

// --- List ---

func TestListPagesNewestFirst(t *testing.T) {
	t.Parallel()
	f := newService(t)
	user := uuid.New()
	var ids []uuid.UUID
	for i := range 3 {
		f.clock.set(t0.Add(time.Duration(i) * time.Second))
		ids = append(ids, f.pending(t, user, nil).ID)
	}
	f.pending(t, uuid.New(), nil) // another user's

	page, err := f.svc.List(context.Background(), user, document.ListRequest{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Documents) != 2 || page.Documents[0].ID != ids[2] || page.Documents[1].ID != ids[1] || page.NextCursor == "" {
		t.Fatalf("first page = %+v", page)
	}
	page, err = f.svc.List(context.Background(), user, document.ListRequest{Limit: 2, Cursor: page.NextCursor})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Documents) != 1 || page.Documents[0].ID != ids[0] || page.NextCursor != "" {
		t.Errorf("second page = %+v", page)
	}
}
