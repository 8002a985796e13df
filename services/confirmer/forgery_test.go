package confirmer_test

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/internal/apitest"
	"github.com/docuvault/docuvault/shared/events"
)

// forgedNotification is a MinIO notification of a write of key in bucket,
// as MinIO shapes it, reporting size bytes and etag.
func forgedNotification(t *testing.T, bucket, key string, size int64, etag string) []byte {
	t.Helper()
	type object struct {
		Key       string `json:"key"`
		Size      int64  `json:"size"`
		ETag      string `json:"eTag"`
		Sequencer string `json:"sequencer"`
	}
	type record struct {
		EventName string `json:"eventName"`
		S3        struct {
			Bucket struct {
				Name string `json:"name"`
			} `json:"bucket"`
			Object object `json:"object"`
		} `json:"s3"`
	}
	var r record
	r.EventName = "s3:ObjectCreated:Put"
	r.S3.Bucket.Name = bucket
	r.S3.Object = object{Key: url.QueryEscape(key), Size: size, ETag: etag, Sequencer: "18000000000000000"}
	b, err := json.Marshal(map[string]any{"EventName": r.EventName, "Key": bucket + "/" + key, "Records": []record{r}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// documentState reads a document's status and size from the database.
func documentState(t *testing.T, s *apitest.Stack, id uuid.UUID) (status string, size int64) {
	t.Helper()
	if err := s.DB.QueryRow(context.Background(), "SELECT status, size_bytes FROM documents WHERE id = $1", id).Scan(&status, &size); err != nil {
		t.Fatalf("document %s: %v", id, err)
	}
	return status, size
}

// TestForgedNotificationOfAnUndeclaredSizeChargesWhatIsStored is the
// forgery of issue 23 against the real stack: whoever may publish on
// MINIO_EVENTS announces, for a document without a declared size and
// before any byte is stored, a write of size 1 with the etag of the bytes
// it then PUTs. The notification door stats before charging: the forged
// notification charges nothing (nothing is stored yet), and MinIO's own
// notification of the same etag charges the stored size, not 1.
func TestForgedNotificationOfAnUndeclaredSizeChargesWhatIsStored(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{Events: true})
	nc, js, err := events.Connect(events.ConnectConfig{URL: s.NATS.URL}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_, tok := s.NewUser(t)
	data := apitest.BytesOf(4096)
	sum := md5.Sum(data)
	etag := hex.EncodeToString(sum[:]) // what MinIO gives a single PUT of data

	// Forged before the PUT.
	tk := s.RequestUpload(t, tok, "forged.pdf", "application/pdf", -1)
	key := s.ObjectKey(t, tk.DocumentID)
	handled := func() int64 { // records the door settled, whatever the outcome
		var n int64
		for outcome, c := range apitest.ConfirmerCounts(s.Confirmer) {
			if outcome != "retried" && outcome != "terminated" {
				n += c
			}
		}
		return n
	}
	before := handled()
	if _, err := js.Publish(context.Background(), events.SubjectMinIO, forgedNotification(t, s.Bucket, key, 1, etag)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the forged notification to be handled", func() bool { return handled() > before })
	if st, size := documentState(t, s, tk.DocumentID); st != "pending" {
		t.Fatalf("after a forged notification of an object not stored, the document is %s with %d bytes, want pending", st, size)
	}
	if n := apitest.ConfirmerCounts(s.Confirmer)["unknown"]; n != 1 {
		t.Errorf("%d notifications counted as matching no upload, want the forged one", n)
	}
	if used, _ := s.Quota(t, tok); used != 0 {
		t.Fatalf("a forged notification charged %d bytes", used)
	}
	if st := s.Put(t, tk, "", data); st != http.StatusOK {
		t.Fatalf("PUT: %d", st)
	}
	waitFor(t, 10*time.Second, "MinIO's notification to confirm the document", func() bool {
		st, _ := documentState(t, s, tk.DocumentID)
		return st == "uploaded" || st == "classified"
	})
	if _, size := documentState(t, s, tk.DocumentID); size != 4096 {
		t.Fatalf("document confirmed with %d bytes, want the stored 4096", size)
	}
	if used, _ := s.Quota(t, tok); used != 4096 {
		t.Fatalf("used_bytes = %d, want the stored 4096 (the forged notification said 1)", used)
	}

	// Forged right after the PUT, racing MinIO's own notification: either
	// way the stored size is charged, once.
	tk2 := s.RequestUpload(t, tok, "forged-after.pdf", "application/pdf", -1)
	if st := s.Put(t, tk2, "", data); st != http.StatusOK {
		t.Fatalf("PUT: %d", st)
	}
	if _, err := js.Publish(context.Background(), events.SubjectMinIO, forgedNotification(t, s.Bucket, s.ObjectKey(t, tk2.DocumentID), 1, etag)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the second document to be confirmed", func() bool {
		st, _ := documentState(t, s, tk2.DocumentID)
		return st == "uploaded" || st == "classified"
	})
	s.WaitConfirmerIdle(t, 300*time.Millisecond, 10*time.Second)
	if _, size := documentState(t, s, tk2.DocumentID); size != 4096 {
		t.Fatalf("second document confirmed with %d bytes, want 4096", size)
	}
	if used, _ := s.Quota(t, tok); used != 2*4096 {
		t.Fatalf("used_bytes = %d, want %d", used, 2*4096)
	}
}
