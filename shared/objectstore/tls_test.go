package objectstore_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docuvault/docuvault/shared/document"
	"github.com/docuvault/docuvault/shared/objectstore"
)

// TestPublicTLSIsApartFromInternalTLS checks that the presigned URLs
// browsers get take their scheme from PublicUseTLS while the services'
// own calls keep UseTLS, either way round.
func TestPublicTLSIsApartFromInternalTLS(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	// A plain-HTTP stand-in of the internal endpoint: HEAD of the bucket
	// answers that it exists.
	internal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusOK)
	}))
	defer internal.Close()
	endpoint := strings.TrimPrefix(internal.URL, "http://")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, tc := range []struct {
		useTLS, publicUseTLS bool
		scheme               string
	}{
		{false, true, "https://"},
		{true, false, "http://"},
		{false, false, "http://"},
		{true, true, "https://"},
	} {
		creds := objectstore.Credentials{AccessKey: "k", SecretKey: "secret-key"}
		s, err := objectstore.New(objectstore.Config{
			Endpoint: endpoint, PublicEndpoint: "files.example.com", Service: creds, Upload: creds, Download: creds,
			Bucket: "docs", UseTLS: tc.useTLS, PublicUseTLS: tc.publicUseTLS,
		})
		if err != nil {
			t.Fatal(err)
		}
		put, _, err := s.PresignPut(ctx, "u/d/f.pdf", "application/pdf", 3, document.Checksum{}, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		get, err := s.PresignGet(ctx, "u/d/f.pdf", "f.pdf", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range []string{put, get} {
			if !strings.HasPrefix(u, tc.scheme+"files.example.com/") {
				t.Errorf("UseTLS %v, PublicUseTLS %v: URL %s, want %sfiles.example.com/…", tc.useTLS, tc.publicUseTLS, u, tc.scheme)
			}
		}
		// The internal endpoint speaks plain HTTP: the store reaches it
		// exactly when UseTLS is off.
		before := calls.Load()
		err = s.Ping(ctx)
		reached := calls.Load() > before
		if reached == tc.useTLS || (err == nil) == tc.useTLS {
			t.Errorf("UseTLS %v, PublicUseTLS %v: Ping over plain HTTP reached the server %v, error %v", tc.useTLS, tc.publicUseTLS, reached, err)
		}
	}
}
