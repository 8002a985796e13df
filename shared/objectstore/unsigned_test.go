package objectstore_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/docuvault/docuvault/shared/document"
)

// TestAnUploadURLIsNeverTakenUnsigned is the attack of an upload URL's
// holder who drops its signature: MinIO takes a PUT with the URL's query
// (the upload identity's access key), "x-amz-content-sha256:
// STREAMING-UNSIGNED-PAYLOAD-TRAILER", an aws-chunked body and no
// Authorization header as that identity's without checking any signature,
// so without the upload policy's statement against it the holder could
// put any bytes under any key: the URL's own with another body, or
// another user's stored document. Each is refused, and nothing is written.
func TestAnUploadURLIsNeverTakenUnsigned(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f.provision(t, ctx)
	root := client(t, f.mi, f.root)
	victim := "victim/doc/contract.pdf"
	original := []byte("the signed contract")
	if _, err := root.PutObject(ctx, f.cfg.Bucket, victim, bytes.NewReader(original), int64(len(original)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	store := f.roleStore(t, "api")
	own := "attacker/doc/invoice.pdf"
	signed, _, err := store.PresignPut(ctx, own, "application/pdf", 64, document.Checksum{}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	evil := strings.Repeat("evil", 40) // not the signed 64 bytes

	for _, key := range []string{own, victim} {
		u, err := url.Parse(signed)
		if err != nil {
			t.Fatal(err)
		}
		u.Path = "/" + f.cfg.Bucket + "/" + key
		status, body := putUnsigned(t, ctx, u, evil)
		if status != http.StatusForbidden || !strings.Contains(body, "<Code>AccessDenied</Code>") {
			t.Errorf("an unsigned-trailer PUT of %s with the upload URL's query: %d %s, want 403 AccessDenied", key, status, body)
		}
	}
	if _, err := root.StatObject(ctx, f.cfg.Bucket, own, minio.StatObjectOptions{}); minio.ToErrorResponse(err).Code != "NoSuchKey" {
		t.Errorf("the URL's key after the attack: %v, want NoSuchKey", err)
	}
	obj, err := root.GetObject(ctx, f.cfg.Bucket, victim, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Close()
	if got, err := io.ReadAll(obj); err != nil || !bytes.Equal(got, original) {
		t.Errorf("the victim's object after the attack: %q (%v), want %q", got, err, original)
	}

	// The URL itself works, as signed.
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, signed, strings.NewReader(strings.Repeat("good", 16)))
	req.Header.Set("Content-Type", "application/pdf")
	req.Header.Set("If-None-Match", "*")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("the upload URL used as signed: %d, want 200", resp.StatusCode)
	}
}

// putUnsigned sends body to u as an unsigned-trailer PUT: aws-chunked,
// its CRC32 in a trailer, and no Authorization header.
func putUnsigned(t *testing.T, ctx context.Context, u *url.URL, body string) (int, string) {
	t.Helper()
	sum := crc32.ChecksumIEEE([]byte(body))
	trailer := base64.StdEncoding.EncodeToString([]byte{byte(sum >> 24), byte(sum >> 16), byte(sum >> 8), byte(sum)})
	chunked := fmt.Sprintf("%x\r\n%s\r\n0\r\nx-amz-checksum-crc32:%s\r\n\r\n", len(body), body, trailer)
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u.String(), strings.NewReader(chunked))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Amz-Content-Sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
	req.Header.Set("Content-Encoding", "aws-chunked")
	req.Header.Set("X-Amz-Decoded-Content-Length", strconv.Itoa(len(body)))
	req.Header.Set("X-Amz-Trailer", "x-amz-checksum-crc32")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, string(b)
}
