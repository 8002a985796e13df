package document_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"testing"

	"github.com/google/uuid"

	"github.com/docuvault/docuvault/shared/document"
)

// sha256Checksum is data's SHA-256 as a document declares it.
func sha256Checksum(t *testing.T, data []byte) document.Checksum {
	t.Helper()
	sum := sha256.Sum256(data)
	c, err := document.SHA256("sha256", base64.StdEncoding.EncodeToString(sum[:]))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestAStatOfAnotherChecksumIsNeverCharged: where a stat reads the stored
// checksum, an object that is not the declared bytes is rejected
// (checksum_mismatch) and uncharged, at its confirm and when a charged
// document's object is replaced; the declared bytes are charged, and the
// URL signs the checksum.
func TestAStatOfAnotherChecksumIsNeverCharged(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newService(t)
	user := uuid.New()
	good := []byte("the signed contract")
	other := bytes.Repeat([]byte("x"), len(good))
	request := func() *document.Document {
		req := pdfRequest(declared(int64(len(good))))
		req.Checksum = sha256Checksum(t, good)
		tk, err := f.svc.RequestUpload(ctx, user, req)
		if err != nil {
			t.Fatal(err)
		}
		return f.doc(t, tk.DocumentID)
	}

	d := request()
	if d.Checksum != sha256Checksum(t, good) {
		t.Fatalf("pending document's checksum %+v", d.Checksum)
	}
	if calls := f.objects.presignCalls(); len(calls) != 1 || calls[0].checksum != d.Checksum {
		t.Fatalf("presigned %+v, want one PUT signing the checksum", calls)
	}
	f.objects.put(d.ObjectKey, other, f.clock.Now())
	_, err := f.svc.Confirm(ctx, user, d.ID)
	if !document.IsRejection(err) {
		t.Fatalf("confirm of other bytes: %v, want a rejection", err)
	}
	wantStatus(t, f.doc(t, d.ID), document.StatusRejected, document.ReasonChecksumMismatch)
	if f.objects.has(d.ObjectKey) {
		t.Error("the rejected object is still stored")
	}

	d = request()
	f.objects.put(d.ObjectKey, good, f.clock.Now())
	c, err := f.svc.Confirm(ctx, user, d.ID)
	if err != nil || c.Document.Checksum != sha256Checksum(t, good) {
		t.Fatalf("confirm of the declared bytes: %+v, %v", c, err)
	}
	if used := f.used(t, user); used != int64(len(good)) {
		t.Fatalf("used %d bytes, want %d", used, len(good))
	}
	obj := f.objects.put(d.ObjectKey, other, f.clock.Now()) // replaced by a tool with other credentials
	c, err = f.svc.ConfirmObject(ctx, d.ObjectKey, obj.info())
	wantOutcome(t, c, err, document.StrayOverQuota)
	wantStatus(t, f.doc(t, d.ID), document.StatusRejected, document.ReasonChecksumMismatch)
	if used := f.used(t, user); used != 0 {
		t.Errorf("used %d bytes after the replaced object's rejection, want 0", used)
	}
}
