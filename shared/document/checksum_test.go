package document_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"strconv"
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

// TestAnUploadInPartsIsChargedOnlyUnderItsComposite: an upload in parts
// with part checksums is completed with the composite of the digests its
// parts were stored under, recorded before the object is made; a
// notification of an object whose composite is another (the owner
// completing other parts meanwhile) is stat'ed by the notification door
// and rejected checksum_mismatch, uncharged.
func TestAnUploadInPartsIsChargedOnlyUnderItsComposite(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	const size = document.MinPartSize + 1000
	data := bytes.Repeat([]byte("p"), size)
	parts := [][]byte{data[:document.MinPartSize], data[document.MinPartSize:]}
	start := func(f *fixture, user uuid.UUID) *document.Document {
		t.Helper()
		req := pdfRequest(declared(size))
		req.Multipart, req.PartChecksums = true, document.ChecksumSHA256
		tk, err := f.svc.RequestUpload(ctx, user, req)
		if err != nil {
			t.Fatal(err)
		}
		if tk.Multipart.PartChecksums != document.ChecksumSHA256 || len(tk.Multipart.Parts) != 0 {
			t.Fatalf("plan %+v, want part checksums and no part URLs", tk.Multipart)
		}
		return f.doc(t, tk.DocumentID)
	}
	upload := func(f *fixture, user uuid.UUID, d *document.Document, bodies [][]byte) []document.Part {
		t.Helper()
		if _, _, err := f.svc.SignParts(ctx, user, d.ID, []document.Part{{Number: 1}}); document.ErrorCode(err) != document.Invalid {
			t.Fatalf("a part URL asked for without its sha256: %v, want Invalid", err)
		}
		var done []document.Part
		for i, b := range bodies {
			p := document.Part{Number: i + 1, ChecksumSHA256: sha256Checksum(t, b).Value}
			if _, _, err := f.svc.SignParts(ctx, user, d.ID, []document.Part{p}); err != nil {
				t.Fatal(err)
			}
			done = append(done, document.Part{Number: p.Number, ETag: f.objects.putPart(d.UploadID, p.Number, b)})
		}
		return done
	}

	f := newService(t, func(c *document.Config) { c.MaxUploadBytes = 2 * size })
	user, other := uuid.New(), uuid.New()
	f.setLimit(t, user, 4*size)
	f.setLimit(t, other, 4*size)
	d := start(f, user)
	c, err := f.svc.Complete(ctx, user, d.ID, upload(f, user, d, parts))
	if err != nil {
		t.Fatal(err)
	}
	want := compositeOf(parts)
	if c.Document.Checksum != want || f.used(t, user) != size {
		t.Fatalf("completed: checksum %+v, used %d; want %+v and %d", c.Document.Checksum, f.used(t, user), want, size)
	}

	// The recorded composite is not the object's: the notification door
	// stats it and rejects it.
	d = start(f, other)
	done := upload(f, other, d, parts)
	if ok, err := f.store.SetChecksum(ctx, d.ID, compositeOf([][]byte{parts[1], parts[0]})); err != nil || !ok {
		t.Fatalf("SetChecksum: %v, %v", ok, err)
	}
	if err := f.objects.CompleteMultipart(ctx, d.ObjectKey, d.UploadID, done); err != nil {
		t.Fatal(err)
	}
	stats := f.objects.statCount()
	obj, _ := f.objects.Stat(ctx, d.ObjectKey)
	c, err = f.svc.ConfirmObject(ctx, d.ObjectKey, document.ObjectInfo{Size: obj.Size, ETag: obj.ETag})
	if !document.IsRejection(err) || f.objects.statCount() != stats+2 {
		t.Fatalf("notification of an object of another composite: %+v, %v (stats %d → %d), want a rejection after a stat", c, err, stats, f.objects.statCount())
	}
	wantStatus(t, f.doc(t, d.ID), document.StatusRejected, document.ReasonChecksumMismatch)
	if used := f.used(t, other); used != 0 {
		t.Errorf("used %d bytes, want 0", used)
	}
}

// compositeOf is S3's composite SHA-256 of parts.
func compositeOf(parts [][]byte) document.Checksum {
	h := sha256.New()
	for _, p := range parts {
		sum := sha256.Sum256(p)
		h.Write(sum[:])
	}
	return document.Checksum{Algorithm: document.ChecksumSHA256Composite, Value: base64.StdEncoding.EncodeToString(h.Sum(nil)) + "-" + strconv.Itoa(len(parts))}
}
