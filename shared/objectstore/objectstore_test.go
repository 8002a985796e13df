package objectstore_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/docuvault/docuvault/internal/testenv"
	"github.com/docuvault/docuvault/shared/objectstore"
)

// TestListAfterShowsWhatStatShows checks that a listing gives each object's
// size and ETag as Stat gives them (the sweeper confirms lost uploads with
// the listed ones), in key order after the start, one page at most.
func TestListAfterShowsWhatStatShows(t *testing.T) {
	t.Parallel()
	mi := testenv.MinIO(t)
	bucket := mi.NewBucket(t)
	root := objectstore.Credentials{AccessKey: mi.AccessKey, SecretKey: mi.SecretKey}
	store, err := objectstore.New(objectstore.Config{Endpoint: mi.Endpoint, Service: root, Upload: root, Download: root, Bucket: bucket, Region: mi.Region})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	mc := mi.Client(t)
	var keys []string
	for i := range 4 {
		key := fmt.Sprintf("user/doc-%d/file.pdf", i)
		data := bytes.Repeat([]byte{'x'}, 10+i)
		if _, err := mc.PutObject(ctx, bucket, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, key)
	}

	got, err := store.ListAfter(ctx, "user/doc-1", 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Key != keys[1] || got[1].Key != keys[2] {
		t.Fatalf("ListAfter(user/doc-1, 2) = %+v, want %s and %s", got, keys[1], keys[2])
	}
	for _, o := range got {
		info, err := store.Stat(ctx, o.Key)
		if err != nil {
			t.Fatal(err)
		}
		if o.Size != info.Size || o.ETag != info.ETag || o.ETag == "" || o.LastModified.IsZero() {
			t.Errorf("%s listed as size %d etag %q, stat'ed as size %d etag %q", o.Key, o.Size, o.ETag, info.Size, info.ETag)
		}
	}
}
