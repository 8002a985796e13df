package security_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/docuvault/docuvault/internal/apitest"
	"github.com/docuvault/docuvault/internal/testenv"
	"github.com/docuvault/docuvault/shared/config"
	"github.com/docuvault/docuvault/shared/document"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// userBytes returns n bytes that only user's uploads hold, so that bytes
// moved from one user's object to another's are seen.
func userBytes(user uuid.UUID, n int) []byte {
	b := make([]byte, n)
	tag := user.String()
	for i := range b {
		b[i] = tag[i%len(tag)]
	}
	return b
}

// key returns the object key of document id.
func key(t *testing.T, s *apitest.Stack, id uuid.UUID) string {
	t.Helper()
	var k string
	if err := s.DB.QueryRow(context.Background(), `SELECT object_key FROM documents WHERE id = $1`, id).Scan(&k); err != nil {
		t.Fatalf("object key of %s: %v", id, err)
	}
	return k
}

// uploadConfirmed uploads data for token's user and confirms it.
func uploadConfirmed(t *testing.T, s *apitest.Stack, token string, data []byte) apitest.Ticket {
	t.Helper()
	tk := s.RequestUpload(t, token, "doc.pdf", "application/pdf", int64(len(data)))
	if st := s.Put(t, tk, "", data); st != http.StatusOK {
		t.Fatalf("PUT: %d", st)
	}
	if r := s.Confirm(t, token, tk.DocumentID); r.Status != http.StatusOK {
		t.Fatalf("confirm: %d %s", r.Status, r.Body)
	}
	return tk
}

// send sends method to u with the ticket's headers, extra and body, and
// returns MinIO's status and error code.
func send(t *testing.T, method, u string, tk apitest.Ticket, extra http.Header, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range tk.Headers {
		if k != "Content-Length" { // net/http sends the body's
			req.Header.Set(k, v)
		}
	}
	for k, v := range extra {
		req.Header[http.CanonicalHeaderKey(k)] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s presigned URL: %v", method, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	code := ""
	if i := bytes.Index(answer, []byte("<Code>")); i >= 0 {
		code, _, _ = strings.Cut(string(answer[i+len("<Code>"):]), "<")
	}
	if resp.StatusCode/100 == 2 && bytes.Contains(answer, []byte("CopyObjectResult")) {
		code = "CopyObjectResult"
	}
	return resp.StatusCode, code
}

// attack is one thing a URL's holder adds to the request.
type attack struct {
	name   string
	method string // "" is PUT
	query  string // appended to the URL's query
	header http.Header
	// refused says MinIO must refuse it: it would copy bytes, or store
	// the object differently from a plain PUT.
	refused bool
}

// TestUploadURLGrantsOnePutAndNothingElse sends, through upload URLs of
// three states — fresh with a declared size, fresh without, and already
// used (PUT and confirmed) — every header and method change a client could
// add, and checks after each: MinIO refused it, or the stored object is
// exactly what was charged, readable by the services, and no other user's
// bytes moved.
func TestUploadURLGrantsOnePutAndNothingElse(t *testing.T) {
	s := apitest.Start(t, apitest.Options{Events: true, Edit: func(c *config.Config) {
		c.UploadsPerMinute, c.MaxPendingUploads = 0, 0
		c.DeletesPerMinute, c.StoragePerMinute = 0, 0
	}})
	ctx := context.Background()
	alice, aliceTok := s.NewUser(t)
	bob, bobTok := s.NewUser(t)
	aliceData := userBytes(alice, 100_000)
	aliceDoc := uploadConfirmed(t, s, aliceTok, aliceData).DocumentID
	aliceKey := key(t, s, aliceDoc)
	bobOwn := uploadConfirmed(t, s, bobTok, userBytes(bob, 500)).DocumentID
	bobOwnKey := key(t, s, bobOwn)
	root := s.MinIO.Client(t)
	otherBucket := s.MinIO.NewBucket(t)
	secret := []byte("another bucket's secret")
	if _, err := root.PutObject(ctx, otherBucket, "secret.txt", bytes.NewReader(secret), int64(len(secret)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	aliceBefore, err := root.StatObject(ctx, s.Bucket, aliceKey, minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}

	sseKey := bytes.Repeat([]byte{7}, 32)
	sseMD5 := md5.Sum(sseKey)
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	until := time.Now().Add(24 * time.Hour).UTC().Format(time.RFC3339)
	attacks := []attack{
		{name: "x-amz-copy-source: own object", header: h("x-amz-copy-source", "/"+s.Bucket+"/"+bobOwnKey), refused: true},
		{name: "x-amz-copy-source: another user's object", header: h("x-amz-copy-source", "/"+s.Bucket+"/"+aliceKey), refused: true},
		{name: "x-amz-copy-source: another bucket", header: h("x-amz-copy-source", "/"+otherBucket+"/secret.txt"), refused: true},
		{name: "x-amz-copy-source + x-amz-metadata-directive: REPLACE", header: h("x-amz-copy-source", "/"+s.Bucket+"/"+aliceKey, "x-amz-metadata-directive", "REPLACE"), refused: true},
		{name: "x-amz-copy-source + x-amz-copy-source-range", header: h("x-amz-copy-source", "/"+s.Bucket+"/"+aliceKey, "x-amz-copy-source-range", "bytes=0-99"), refused: true},
		{name: "x-amz-copy-source-range alone", header: h("x-amz-copy-source-range", "bytes=0-99")},
		{name: "x-amz-tagging", header: h("x-amz-tagging", "owner=attacker"), refused: true},
		{name: "x-amz-object-lock-mode + retain-until-date", header: h("x-amz-object-lock-mode", "GOVERNANCE", "x-amz-object-lock-retain-until-date", until), refused: true},
		{name: "x-amz-object-lock-legal-hold", header: h("x-amz-object-lock-legal-hold", "ON"), refused: true},
		{name: "x-amz-storage-class", header: h("x-amz-storage-class", "REDUCED_REDUNDANCY"), refused: true},
		{name: "x-amz-server-side-encryption", header: h("x-amz-server-side-encryption", "AES256"), refused: true},
		{name: "x-amz-server-side-encryption: aws:kms + key id", header: h("x-amz-server-side-encryption", "aws:kms", "x-amz-server-side-encryption-aws-kms-key-id", "attacker-key"), refused: true},
		{name: "x-amz-server-side-encryption-customer-*", header: h(
			"x-amz-server-side-encryption-customer-algorithm", "AES256",
			"x-amz-server-side-encryption-customer-key", base64.StdEncoding.EncodeToString(sseKey),
			"x-amz-server-side-encryption-customer-key-MD5", base64.StdEncoding.EncodeToString(sseMD5[:])), refused: true},
		{name: "x-amz-acl: public-read-write", header: h("x-amz-acl", "public-read-write")},
		{name: "x-amz-website-redirect-location", header: h("x-amz-website-redirect-location", "https://attacker.example/")},
		{name: "x-amz-meta-*", header: h("x-amz-meta-owner", "attacker"), refused: true},
		{name: "POST ?uploads (multipart) to the signed path", method: http.MethodPost, query: "&uploads=", refused: true},
		{name: "PUT ?partNumber&uploadId (multipart part)", query: "&partNumber=1&uploadId=x", refused: true},
		{name: "DELETE with the signed URL", method: http.MethodDelete, refused: true},
		{name: "GET with the signed URL", method: http.MethodGet, refused: true},
	}
	states := []string{"fresh, size declared", "fresh, no size", "used"}
	type tried struct {
		attack
		state  string
		doc    uuid.UUID
		body   []byte
		status int
		code   string
	}
	var all []tried
	for i, a := range attacks {
		for j, state := range states {
			body := userBytes(bob, 1000+10*i+j)
			size := int64(len(body))
			if state == "fresh, no size" {
				size = -1
			}
			tk := s.RequestUpload(t, bobTok, "doc.pdf", "application/pdf", size)
			if state == "used" {
				if st := s.Put(t, tk, "", body); st != http.StatusOK {
					t.Fatalf("PUT: %d", st)
				}
				if r := s.Confirm(t, bobTok, tk.DocumentID); r.Status != http.StatusOK {
					t.Fatalf("confirm: %d %s", r.Status, r.Body)
				}
			}
			method := a.method
			if method == "" {
				method = http.MethodPut
			}
			sent := body
			if state == "used" {
				sent = userBytes(bob, len(body)) // the same length, to pass a signed Content-Length
			}
			st, code := send(t, method, tk.UploadURL+a.query, tk, a.header, sent)
			all = append(all, tried{attack: a, state: state, doc: tk.DocumentID, body: body, status: st, code: code})
		}
	}

	// Every notification and its second copy handled.
	s.WaitConfirmerIdle(t, 4*time.Second, 90*time.Second)

	svc, err := minio.New(s.MinIO.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(s.Cfg.Classifier.MinIOAccessKey, s.Cfg.Classifier.MinIOSecretKey, ""), Region: s.MinIO.Region})
	if err != nil {
		t.Fatal(err)
	}
	l := s.ReadLedger(t)
	var table []string
	for _, x := range all {
		table = append(table, fmt.Sprintf("%-55s %-22s %d %s", x.name, x.state, x.status, x.code))
		k := key(t, s, x.doc)
		row := l.Rows[k]
		obj, stored := l.Objects[k]
		accepted := x.status/100 == 2
		switch {
		case x.refused && accepted:
			t.Errorf("%s on a %s URL: MinIO accepted it (%d %s)", x.name, x.state, x.status, x.code)
		case x.state == "used" && !(stored && row.Status.Charged() && row.Size == int64(len(x.body))):
			t.Errorf("%s on a used URL (%d %s): the charged document is now %s, %d bytes, object stored %v", x.name, x.status, x.code, row.Status, row.Size, stored)
		case !accepted && x.state != "used" && (stored || row.Status != document.StatusPending):
			t.Errorf("%s on a %s URL was refused (%d %s), yet the object is stored %v and the document %s", x.name, x.state, x.status, x.code, stored, row.Status)
		case accepted && !(stored && row.Status.Charged() && obj.Size == row.Size):
			t.Errorf("%s on a %s URL was accepted (%d %s): object stored %v (%d bytes), document %s charged %d", x.name, x.state, x.status, x.code, stored, obj.Size, row.Status, row.Size)
		}
		if !stored {
			continue
		}
		// The object is a plain one the services can read, holding Bob's
		// bytes: what was PUT first, byte for byte.
		got, err := readAll(ctx, svc, s.Bucket, k)
		if err != nil {
			t.Errorf("%s on a %s URL: the services cannot read the object: %v", x.name, x.state, err)
			continue
		}
		if !bytes.Equal(got, x.body) {
			t.Errorf("%s on a %s URL: the object holds %d bytes that are not what Bob PUT", x.name, x.state, len(got))
		}
		info, err := svc.StatObject(ctx, s.Bucket, k, minio.StatObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if info.UserTagCount != 0 || info.StorageClass != "" && info.StorageClass != "STANDARD" || info.Metadata.Get("X-Amz-Server-Side-Encryption") != "" {
			t.Errorf("%s on a %s URL: stored with tags %d, storage class %q, encryption %q", x.name, x.state, info.UserTagCount, info.StorageClass, info.Metadata.Get("X-Amz-Server-Side-Encryption"))
		}
	}
	t.Logf("MinIO's answers:\n%s", strings.Join(table, "\n"))

	// Nothing moved: Alice's object and the other bucket's, byte for byte.
	after, err := root.StatObject(ctx, s.Bucket, aliceKey, minio.StatObjectOptions{})
	if err != nil || after.ETag != aliceBefore.ETag || after.Size != aliceBefore.Size {
		t.Errorf("Alice's object changed: %+v, %v", after, err)
	}
	if got, err := readAll(ctx, root, otherBucket, "secret.txt"); err != nil || !bytes.Equal(got, secret) {
		t.Errorf("the other bucket's object changed: %q, %v", got, err)
	}
	// Every object holds its owner's bytes; stored equals charged.
	for k, obj := range l.Objects {
		got, err := readAll(ctx, root, s.Bucket, k)
		if err != nil {
			t.Fatal(err)
		}
		if want := userBytes(l.Rows[k].User, int(obj.Size)); !bytes.Equal(got, want) {
			t.Errorf("object %s of user %s holds bytes that are not that user's", k, l.Rows[k].User)
		}
	}
	for _, p := range l.Problems() {
		t.Error(p)
	}
}

func readAll(ctx context.Context, c *minio.Client, bucket, key string) ([]byte, error) {
	obj, err := c.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, err
	}
	defer obj.Close()
	return io.ReadAll(obj)
}

// waitGone waits until key is no longer in the bucket and returns how long
// that took.
func waitGone(t *testing.T, s *apitest.Stack, key string, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for s.KeyExists(t, key) {
		if time.Since(start) > within {
			t.Fatalf("object %s still stored after %s", key, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

// TestUploadURLUsedAgainStoresNothing uses upload URLs again after their
// document was rejected (over quota, too large) or deleted, and writes an
// object under a document-shaped key no document has: MinIO takes each
// PUT, and the confirmer removes the bytes within seconds, charging
// nothing.
func TestUploadURLUsedAgainStoresNothing(t *testing.T) {
	s := apitest.Start(t, apitest.Options{Events: true, Edit: func(c *config.Config) {
		c.MaxUploadBytes = 20_000
	}})
	bob, bobTok := s.NewUser(t)
	s.SetLimit(t, bob, 10_000)

	kept := uploadConfirmed(t, s, bobTok, userBytes(bob, 6_000))

	// Over quota (no size declared, or the upload URL is refused at once):
	// PUT, confirmed → 413; then PUT again.
	over := s.RequestUpload(t, bobTok, "over.pdf", "application/pdf", -1)
	overData := userBytes(bob, 5_000)
	if st := s.Put(t, over, "", overData); st != http.StatusOK {
		t.Fatalf("PUT: %d", st)
	}
	if r := s.Confirm(t, bobTok, over.DocumentID); r.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("confirm over quota: %d %s", r.Status, r.Body)
	}
	overKey := key(t, s, over.DocumentID)
	// Too large, no size declared: the confirmer rejects it by itself.
	large := s.RequestUpload(t, bobTok, "large.pdf", "application/pdf", -1)
	largeData := userBytes(bob, 30_000)
	if st := s.Put(t, large, "", largeData); st != http.StatusOK {
		t.Fatalf("PUT: %d", st)
	}
	largeKey := key(t, s, large.DocumentID)
	waitGone(t, s, largeKey, 15*time.Second)
	waitGone(t, s, overKey, 15*time.Second)

	for _, c := range []struct {
		name string
		tk   apitest.Ticket
		data []byte
		key  string
	}{
		{"rejected over quota", over, overData, overKey},
		{"rejected too large", large, largeData, largeKey},
	} {
		if st := s.Put(t, c.tk, "", c.data); st != http.StatusOK {
			t.Fatalf("%s: PUT again: MinIO answered %d, want 200 (nothing stops the PUT itself)", c.name, st)
		}
		took := waitGone(t, s, c.key, 15*time.Second)
		t.Logf("%s: the bytes PUT again were removed after %s", c.name, took.Round(time.Millisecond))
	}

	// Deleted: the URL of a confirmed document, used again after the delete.
	keptKey := key(t, s, kept.DocumentID)
	if r := s.Do(t, http.MethodDelete, "/api/documents/"+kept.DocumentID.String(), bobTok, nil); r.Status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	if st := s.Put(t, kept, "", userBytes(bob, 6_000)); st != http.StatusOK {
		t.Fatalf("PUT after delete: %d", st)
	}
	took := waitGone(t, s, keptKey, 15*time.Second)
	t.Logf("deleted: the bytes PUT again were removed after %s", took.Round(time.Millisecond))

	// A key shaped like a document's that no document has, written with
	// other credentials.
	stray := bob.String() + "/" + uuid.NewString() + "/" + uuid.NewString() + ".pdf"
	if _, err := s.MinIO.Client(t).PutObject(context.Background(), s.Bucket, stray, bytes.NewReader(overData), int64(len(overData)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	took = waitGone(t, s, stray, 15*time.Second)
	t.Logf("unknown key: removed after %s", took.Round(time.Millisecond))

	if used, _ := s.Quota(t, bobTok); used != 0 {
		t.Errorf("used_bytes %d after deleting the only charged document", used)
	}
	s.WaitConfirmerIdle(t, 4*time.Second, 60*time.Second)
	if st := apitest.ConfirmerCounts(s.Confirmer)["removed"]; st < 4 {
		t.Errorf("the confirmer counts %d removed objects, want at least 4", st)
	}
	for _, p := range s.ReadLedger(t).Problems() {
		t.Error(p)
	}
}

// TestReplacedObjectIsReconciled replaces a charged document's object with
// other credentials (an operator's tool; DocuVault's URLs cannot): within
// seconds the charge follows the stored size, and an object that no longer
// fits is rejected, its charge released and its bytes removed, with a
// document.rejected event.
func TestReplacedObjectIsReconciled(t *testing.T) {
	s := apitest.Start(t, apitest.Options{Events: true})
	bob, bobTok := s.NewUser(t)
	s.SetLimit(t, bob, 10_000)
	tk := uploadConfirmed(t, s, bobTok, userBytes(bob, 1_000))
	k := key(t, s, tk.DocumentID)
	root := s.MinIO.Client(t)
	replace := func(n int) string {
		t.Helper()
		data := userBytes(bob, n)
		info, err := root.PutObject(context.Background(), s.Bucket, k, bytes.NewReader(data), int64(n), minio.PutObjectOptions{ContentType: "application/pdf"})
		if err != nil {
			t.Fatal(err)
		}
		return info.ETag
	}
	row := func() (document.Status, int64, string) {
		var st document.Status
		var size int64
		var etag string
		if err := s.DB.QueryRow(context.Background(), `SELECT status, size_bytes, etag FROM documents WHERE id = $1`, tk.DocumentID).Scan(&st, &size, &etag); err != nil {
			t.Fatal(err)
		}
		return st, size, etag
	}
	waitRow := func(what string, ok func(document.Status, int64, string) bool) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for st, size, etag := row(); !ok(st, size, etag); st, size, etag = row() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the document is still %s, %d bytes, ETag %s", what, st, size, etag)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	etag := replace(3_000)
	waitRow("replaced by 3,000 bytes", func(st document.Status, size int64, e string) bool {
		return st.Charged() && size == 3_000 && e == etag
	})
	if used, _ := s.Quota(t, bobTok); used != 3_000 {
		t.Errorf("used_bytes %d after the object grew to 3,000 bytes", used)
	}

	replace(20_000)
	waitRow("replaced by 20,000 bytes, over the 10,000 limit", func(st document.Status, _ int64, _ string) bool {
		return st == document.StatusRejected
	})
	waitGone(t, s, k, 15*time.Second)
	if used, _ := s.Quota(t, bobTok); used != 0 {
		t.Errorf("used_bytes %d after the document was rejected", used)
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.CountEvents(t, tk.DocumentID, string(document.EventRejected)) != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("no single document.rejected event: %v", s.DocumentEvents(t, tk.DocumentID))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := apitest.ConfirmerCounts(s.Confirmer)["reconciled"]; n != 2 {
		t.Errorf("the confirmer counts %d reconciled documents, want 2", n)
	}
	for _, p := range s.ReadLedger(t).Problems() {
		t.Error(p)
	}
}
