package api

import (
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/shared/auth"
	"github.com/docuvault/docuvault/shared/metrics"
)

// TestMetricLabelsAreBounded sends 10,000 requests with random methods and
// paths, none authenticated, and checks that the request metrics have no
// more series afterwards than after one request of each kind: methods are
// HTTP's or "other", routes are patterns or "unmatched".
func TestMetricLabelsAreBounded(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, reg)
	if err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(auth.Config{Secret: []byte(strings.Repeat("k", 32))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(Handler(Deps{Verifier: v, Log: zerolog.Nop(), Metrics: m, Closing: make(chan struct{})}))
	defer srv.Close()

	rng := rand.New(rand.NewPCG(1, 2))
	random := func(alphabet string, n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return string(b)
	}
	// Any token is a method to Go's server; paths take unreserved characters.
	token := func(n int) string {
		return random("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$%&'*+-.^_`|~", n)
	}
	segment := func(n int) string {
		return random("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~", n)
	}
	paths := []func() string{
		func() string { return "/" + segment(1+rng.IntN(40)) },
		func() string { return "/api/documents/" + segment(36) },
		func() string { return "/api/" + segment(8) + "/" + segment(8) },
		func() string { return "/healthz" },
		func() string { return "/api/documents/" + segment(36) + "/confirm" },
	}
	methods := []func() string{
		func() string { return token(1 + rng.IntN(2048)) },
		func() string {
			return []string{"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"}[rng.IntN(7)]
		},
	}
	client := srv.Client()
	send := func(method, path string) {
		req, err := http.NewRequest(method, srv.URL+path, nil)
		if err != nil {
			t.Fatalf("%.20s %s: %v", method, path, err)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%.20s %s: %v", method, path, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	// One request of every kind the random ones can be, so that every
	// series they can make exists before.
	for _, method := range []string{"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "BREW"} {
		for _, p := range []string{"/x", "/api/documents/" + segment(36), "/api/x/y", "/healthz", "/api/documents/" + segment(36) + "/confirm"} {
			send(method, p)
		}
	}
	series := func() int {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, mf := range mfs {
			if strings.HasPrefix(mf.GetName(), "docuvault_http_") {
				n += len(mf.GetMetric())
			}
		}
		return n
	}
	before := series()
	for range 10_000 {
		send(methods[rng.IntN(len(methods))](), paths[rng.IntN(len(paths))]())
	}
	after := series()
	t.Logf("request metric series: %d before, %d after 10,000 random requests", before, after)
	if after != before {
		var labels []string
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			for _, mt := range mf.GetMetric() {
				labels = append(labels, fmt.Sprint(mt.GetLabel()))
			}
		}
		t.Fatalf("series grew from %d to %d: %.2000s", before, after, strings.Join(labels, "\n"))
	}
}

// TestRequestMetricsByRoute: each request is counted under its route's
// pattern (ids left out), its method and its status, the second request of
// a kind in the same series as the first.
func TestRequestMetricsByRoute(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, reg)
	if err != nil {
		t.Fatal(err)
	}
	cfg := auth.Config{Secret: []byte(strings.Repeat("k", 32))}
	v, err := auth.NewVerifier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := auth.Mint(cfg, auth.Principal{UserID: uuid.New(), Role: auth.RoleUser}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	h := Handler(Deps{Verifier: v, Log: zerolog.Nop(), Metrics: m, Closing: make(chan struct{})})
	send := func(method, path, token string) {
		req := httptest.NewRequest(method, path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	for range 2 {
		send("GET", "/healthz", "")
		send("GET", "/nope", "")
		send("POST", "/api/documents/"+uuid.NewString()+"/confirm", "")
		send("PUT", "/api/admin/users/"+uuid.NewString()+"/quota", tok)
		send("GET", "/api/auth/me", tok)
		send("GET", "/api/nope", tok)
		send("BREW", "/healthz", "")
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "docuvault_http_requests_total" {
			continue
		}
		for _, mt := range mf.GetMetric() {
			l := map[string]string{}
			for _, p := range mt.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			got[l["method"]+" "+l["route"]+" "+l["status"]] = mt.GetCounter().GetValue()
		}
	}
	want := map[string]float64{
		"GET /healthz 200":     2,
		"GET /{file} 404":      2, // the page's files
		"POST /api/* 401":      2,
		"PUT /api/admin/* 403": 2,
		"GET /api/auth/me 200": 2,
		"GET /api/* 404":       2,
		"other unmatched 405":  2,
	}
	if !maps.Equal(got, want) {
		t.Fatalf("requests counted %v, want %v", got, want)
	}
}
