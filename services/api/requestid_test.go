package api

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/shared/auth"
	"github.com/docuvault/docuvault/shared/metrics"
)

// requestIDPattern is what requestID makes: crypto/rand.Text's 26
// characters of base32.
var requestIDPattern = regexp.MustCompile(`^[A-Z2-7]{26}$`)

// TestRequestIDIsTheAPIsOwn: every answer carries an X-Request-Id the API
// made, the one its log line has as req_id, whatever the client sent; a
// client's id is logged apart, only when it is one short token.
func TestRequestIDIsTheAPIsOwn(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, reg)
	if err != nil {
		t.Fatal(err)
	}
	h := Handler(Deps{Log: zerolog.New(&logs), Metrics: m, Verifier: new(auth.Verifier)})
	long := strings.Repeat("A", 60<<10)
	seen := map[string]bool{}
	for _, tc := range []struct {
		name, path string
		sent       []string // the client's X-Request-Id values
		logged     string   // the client_req_id logged; "" for none
	}{
		{"none sent", "/healthz", nil, ""},
		{"a short token", "/healthz", []string{"trace-42.a_b:c"}, "trace-42.a_b:c"},
		{"64 characters", "/healthz", []string{strings.Repeat("x", 64)}, strings.Repeat("x", 64)},
		{"65 characters", "/healthz", []string{strings.Repeat("x", 65)}, ""},
		{"60 KiB", "/healthz", []string{long}, ""},
		{"a JSON lookalike", "/healthz", []string{`x","level":"fatal`}, ""},
		{"spaces", "/healthz", []string{"a b"}, ""},
		{"non-ASCII", "/healthz", []string{"é"}, ""},
		{"two values", "/healthz", []string{"a", "b"}, ""},
		{"a 404", "/nope", []string{"mine"}, "mine"},
		{"a 401", "/api/auth/me", []string{"mine"}, "mine"},
	} {
		logs.Reset()
		req := httptest.NewRequest(http.MethodGet, tc.path, nil)
		for _, v := range tc.sent {
			req.Header.Add("X-Request-Id", v)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		id := rec.Header().Get("X-Request-Id")
		if !requestIDPattern.MatchString(id) || seen[id] {
			t.Errorf("%s: X-Request-Id %q, want a new id of the API's making", tc.name, id)
		}
		seen[id] = true
		if logs.Len() > 4<<10 {
			t.Errorf("%s: a %d-byte log for one request", tc.name, logs.Len())
		}
		var line map[string]any
		sc := bufio.NewScanner(&logs)
		for sc.Scan() {
			var l map[string]any
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				t.Fatalf("%s: log line %q: %v", tc.name, sc.Text(), err)
			}
			if l["message"] == "request" {
				line = l
			}
		}
		if line == nil {
			t.Fatalf("%s: no request log line", tc.name)
		}
		if line["req_id"] != id {
			t.Errorf("%s: logged req_id %v, answered X-Request-Id %q", tc.name, line["req_id"], id)
		}
		if got, _ := line["client_req_id"].(string); got != tc.logged {
			t.Errorf("%s: logged client_req_id %q, want %q", tc.name, got, tc.logged)
		}
	}
}
