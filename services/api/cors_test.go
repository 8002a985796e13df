package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/docuvault/docuvault/internal/apitest"
	"github.com/docuvault/docuvault/shared/config"
)

// TestCORSForTheConfiguredOriginsOnly sends preflights and requests from an
// origin in CORS_ORIGINS and from one that is not: the first are answered
// before authentication with the CORS headers a browser needs, the others
// get none.
func TestCORSForTheConfiguredOriginsOnly(t *testing.T) {
	t.Parallel()
	const allowed, refused = "http://localhost:25173", "http://evil.example"
	s := apitest.Start(t, apitest.Options{Edit: func(c *config.Config) { c.CORSOrigins = []string{allowed, "https://app.example.com"} }})
	_, tok := s.NewUser(t)
	send := func(method, path, origin string, hdr map[string]string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, s.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Origin", origin)
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	preflight := func(origin, method, path, headers string) *http.Response {
		return send(http.MethodOptions, path, origin, map[string]string{
			"Access-Control-Request-Method": method, "Access-Control-Request-Headers": headers,
		})
	}

	for _, p := range []struct{ method, path, headers string }{
		{http.MethodPost, "/api/documents/upload-url", "authorization,content-type"},
		{http.MethodPost, "/api/documents/00000000-0000-4000-8000-000000000000/confirm", "authorization"},
		{http.MethodDelete, "/api/documents/00000000-0000-4000-8000-000000000000", "authorization"},
		{http.MethodGet, "/api/events", "authorization,last-event-id"},
	} {
		r := preflight(allowed, p.method, p.path, p.headers)
		allowHeaders := strings.ToLower(r.Header.Get("Access-Control-Allow-Headers"))
		if r.StatusCode/100 != 2 || r.Header.Get("Access-Control-Allow-Origin") != allowed ||
			!strings.Contains(r.Header.Get("Access-Control-Allow-Methods"), p.method) ||
			r.Header.Get("Access-Control-Max-Age") != "600" || r.Header.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("preflight %s %s from %s: %d %v", p.method, p.path, allowed, r.StatusCode, r.Header)
		}
		for _, h := range strings.Split(p.headers, ",") {
			if !strings.Contains(allowHeaders, h) {
				t.Errorf("preflight %s %s: header %s not allowed (%q)", p.method, p.path, h, allowHeaders)
			}
		}
		if r := preflight(refused, p.method, p.path, p.headers); r.Header.Get("Access-Control-Allow-Origin") != "" || r.Header.Get("Access-Control-Allow-Methods") != "" {
			t.Errorf("preflight %s %s from %s: CORS headers %v", p.method, p.path, refused, r.Header)
		}
	}

	auth := map[string]string{"Authorization": "Bearer " + tok}
	r := send(http.MethodGet, "/api/auth/me/quota", allowed, auth)
	if r.StatusCode != http.StatusOK || r.Header.Get("Access-Control-Allow-Origin") != allowed ||
		!strings.Contains(r.Header.Get("Access-Control-Expose-Headers"), "Retry-After") {
		t.Errorf("GET from %s: %d %v", allowed, r.StatusCode, r.Header)
	}
	// The request id is sent, and exposed: a page may read it to quote it.
	if id := r.Header.Get("X-Request-Id"); id == "" || !strings.Contains(r.Header.Get("Access-Control-Expose-Headers"), "X-Request-Id") {
		t.Errorf("GET from %s: X-Request-Id %q, exposed headers %q", allowed, id, r.Header.Get("Access-Control-Expose-Headers"))
	}
	if r := send(http.MethodGet, "/api/auth/me/quota", refused, auth); r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("GET from %s: CORS headers %v", refused, r.Header)
	}
	// An error answer carries them too, or the page could not read it.
	if r := send(http.MethodGet, "/api/auth/me/quota", allowed, nil); r.StatusCode != http.StatusUnauthorized || r.Header.Get("Access-Control-Allow-Origin") != allowed {
		t.Errorf("401 from %s: %d %v", allowed, r.StatusCode, r.Header)
	}
}

// TestNoCORSWithoutOrigins: with CORS_ORIGINS empty no origin is allowed,
// not every origin.
func TestNoCORSWithoutOrigins(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	req, _ := http.NewRequest(http.MethodOptions, s.URL+"/api/documents/upload-url", nil)
	req.Header.Set("Origin", "http://localhost:5173")
	req.Header.Set("Access-Control-Request-Method", "POST")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("CORS without CORS_ORIGINS: %v", resp.Header)
	}
}
