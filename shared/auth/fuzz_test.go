package auth_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/docuvault/docuvault/shared/auth"
)

// FuzzVerify feeds arbitrary Authorization header values through the
// middleware and checks that it never panics, never admits a request whose
// token Verify rejects, and only reports fixed, token-free error messages.
func FuzzVerify(f *testing.F) {
	cfg := scopedConfig()
	v, err := auth.NewVerifier(cfg)
	if err != nil {
		f.Fatalf("NewVerifier: %v", err)
	}
	now := time.Now()
	p := auth.Principal{UserID: uuid.MustParse("5d1c8a3e-0b2f-4c6d-8e9a-7f1b2c3d4e5f"), Role: auth.RoleAdmin}
	valid, err := auth.Mint(cfg, p, 24*time.Hour, now)
	if err != nil {
		f.Fatalf("Mint: %v", err)
	}
	expired, err := auth.Mint(cfg, p, time.Minute, now.Add(-time.Hour))
	if err != nil {
		f.Fatalf("Mint: %v", err)
	}
	forged, err := auth.Mint(auth.Config{Secret: otherSecret, Issuer: cfg.Issuer, Audience: cfg.Audience}, p, time.Hour, now)
	if err != nil {
		f.Fatalf("Mint: %v", err)
	}

	for _, seed := range []string{
		"Bearer " + valid,
		"bearer " + valid,
		valid,
		"Bearer " + expired,
		"Bearer " + forged,
		"Bearer " + valid + "=",
		"Bearer " + valid + " x",
		"Bearer  " + valid,
		"Bearer " + strings.Replace(valid, ".", "..", 1),
		"Bearer eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.e30.",
		"Bearer a.b.c",
		"Bearer ...",
		"Bearer ",
		"Bearer",
		"Basic dXNlcjpwYXNz",
		"",
		"\x00\xff",
	} {
		f.Add(seed)
	}

	allowed := map[string]bool{
		"missing bearer token":           true,
		"malformed authorization header": true,
		"token expired":                  true,
		"invalid token":                  true,
	}

	f.Fuzz(func(t *testing.T, header string) {
		var (
			admitted  bool
			gotP      auth.Principal
			gotErr    error
			errorCall int
		)
		h := v.Middleware(func(w http.ResponseWriter, _ *http.Request, err error) {
			errorCall++
			gotErr = err
			w.WriteHeader(http.StatusUnauthorized)
		})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			admitted = true
			var ok bool
			if gotP, ok = auth.FromContext(r.Context()); !ok {
				t.Error("admitted request has no principal in context")
			}
			w.WriteHeader(http.StatusNoContent)
		}))

		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.Header["Authorization"] = []string{header} // bypass canonicalisation; any bytes allowed
		h.ServeHTTP(httptest.NewRecorder(), req)

		if admitted == (errorCall == 1) || errorCall > 1 {
			t.Fatalf("admitted=%v onError calls=%d; want exactly one outcome", admitted, errorCall)
		}
		if !admitted {
			if !errors.Is(gotErr, auth.ErrUnauthorized) {
				t.Fatalf("error %v does not wrap ErrUnauthorized", gotErr)
			}
			if !allowed[gotErr.Error()] {
				t.Fatalf("unexpected error message %q", gotErr.Error())
			}
			return
		}

		scheme, token, ok := strings.Cut(header, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			t.Fatalf("admitted header without a Bearer scheme: %q", header)
		}
		want, err := v.Verify(token)
		if err != nil {
			t.Fatalf("middleware admitted a token Verify rejects (%v): %q", err, header)
		}
		if gotP != want {
			t.Fatalf("middleware principal %+v != Verify principal %+v", gotP, want)
		}
		if gotP.UserID == uuid.Nil || (gotP.Role != auth.RoleUser && gotP.Role != auth.RoleAdmin) {
			t.Fatalf("admitted invalid principal %+v", gotP)
		}
	})
}
