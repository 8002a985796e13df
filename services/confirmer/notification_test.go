package confirmer

import (
	"strings"
	"testing"
)

func TestParseNotification(t *testing.T) {
	t.Parallel()
	const put = `{"EventName":"s3:ObjectCreated:Put","Key":"docs/u%2Fd%2Fa+b.pdf","Records":[{"eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"docs"},"object":{"key":"u%2Fd%2Fa+b.pdf","size":12,"eTag":"abc"}}}]}`
	got, err := ParseNotification([]byte(put))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != (ObjectCreated{EventName: "s3:ObjectCreated:Put", Bucket: "docs", Key: "u/d/a b.pdf", Size: 12, ETag: "abc"}) {
		t.Fatalf("parsed %+v", got)
	}
	for _, name := range []string{"s3:ObjectCreated:Post", "s3:ObjectCreated:Copy", "s3:ObjectCreated:CompleteMultipartUpload", "ObjectCreated:Put"} {
		msg := strings.ReplaceAll(put, `"eventName":"s3:ObjectCreated:Put"`, `"eventName":"`+name+`"`)
		if got, err := ParseNotification([]byte(msg)); err != nil || len(got) != 1 {
			t.Errorf("%s: %v %v", name, got, err)
		}
	}
	deleted := strings.ReplaceAll(put, `"eventName":"s3:ObjectCreated:Put"`, `"eventName":"s3:ObjectRemoved:Delete"`)
	if got, err := ParseNotification([]byte(deleted)); err != nil || len(got) != 0 {
		t.Errorf("a delete record should be skipped: %v %v", got, err)
	}
	for _, bad := range []string{"", "null", "{}", `{"Records":[]}`, `{"Records":[{}]}`, "[1,2]",
		strings.ReplaceAll(put, `u%2Fd%2Fa+b.pdf","size"`, `%zz","size"`),
		strings.ReplaceAll(put, `"size":12`, `"size":-1`),
		strings.ReplaceAll(put, `"name":"docs"`, `"name":""`),
	} {
		if _, err := ParseNotification([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func FuzzParseNotification(f *testing.F) {
	f.Add([]byte(`{"Records":[{"eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"a%2Fb","size":1}}}]}`))
	f.Add([]byte(`{"Records":[{"eventName":"s3:ObjectRemoved:Delete"}]}`))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		recs, err := ParseNotification(data)
		if err != nil {
			return
		}
		for _, r := range recs {
			if r.Key == "" || r.Bucket == "" || r.Size < 0 || !createdEvents[r.EventName] {
				t.Fatalf("accepted an invalid record %+v from %q", r, data)
			}
		}
	})
}
