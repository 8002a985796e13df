package api_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/minio/minio-go/v7"

	"github.com/docuvault/docuvault/internal/apitest"
)

// TestDownloadIgnoresTheUploadersEncodingAndCaching PUTs a document with
// Content-Encoding: gzip and a year of public caching, which MinIO stores
// with the object (its policies cannot deny those headers on the PUT). The
// download URL answers the stored bytes as they are: Content-Encoding
// identity (a browser would otherwise inflate them), no-store caching.
func TestDownloadIgnoresTheUploadersEncodingAndCaching(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	_, tok := s.NewUser(t)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(bytes.Repeat([]byte("inflated on download "), 2000))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	stored := gz.Bytes()

	tk := s.RequestUpload(t, tok, "notes.pdf", "application/pdf", int64(len(stored)))
	put, err := http.NewRequest(http.MethodPut, tk.UploadURL, bytes.NewReader(stored))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range tk.Headers {
		put.Header.Set(k, v)
	}
	put.Header.Set("Content-Encoding", "gzip")
	put.Header.Set("Cache-Control", "public, max-age=31536000")
	resp, err := http.DefaultClient.Do(put)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT with Content-Encoding and Cache-Control: %s", resp.Status)
	}
	// MinIO kept both: what a download would serve without overrides.
	info, err := s.MinIO.Client(t).StatObject(context.Background(), s.Bucket, s.ObjectKey(t, tk.DocumentID), minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if info.Metadata.Get("Content-Encoding") != "gzip" || info.Metadata.Get("Cache-Control") != "public, max-age=31536000" {
		t.Fatalf("MinIO stored Content-Encoding %q, Cache-Control %q: the test no longer shows what it means to",
			info.Metadata.Get("Content-Encoding"), info.Metadata.Get("Cache-Control"))
	}
	if r := s.Confirm(t, tok, tk.DocumentID); r.Status != http.StatusOK {
		t.Fatalf("confirm: %d %s", r.Status, r.Body)
	}
	var doc struct {
		DownloadURL string `json:"download_url"`
	}
	s.Do(t, http.MethodGet, "/api/documents/"+tk.DocumentID.String(), tok, nil).Decode(t, &doc)
	if doc.DownloadURL == "" {
		t.Fatal("no download_url")
	}

	// Go's client, like a browser, asks for gzip and inflates a
	// gzip-encoded answer itself.
	resp, err = http.Get(doc.DownloadURL)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("download: %s %s", resp.Status, body)
	}
	for header, want := range map[string]string{
		"Content-Encoding": "identity",
		"Cache-Control":    "private, no-store",
		"Content-Type":     "application/pdf",
	} {
		if got := resp.Header.Values(header); len(got) != 1 || got[0] != want {
			t.Errorf("download %s: %q, want %q", header, got, want)
		}
	}
	if cd := resp.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, "attachment;") || !strings.Contains(cd, "notes.pdf") {
		t.Errorf("download Content-Disposition %q", cd)
	}
	if !bytes.Equal(body, stored) {
		t.Errorf("downloaded %d bytes, want the %d stored (gzip-encoded, not inflated)", len(body), len(stored))
	}
}
