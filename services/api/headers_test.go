package api_test

import (
	"bytes"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/docuvault/docuvault/internal/apitest"
	"github.com/docuvault/docuvault/shared/auth"
)

// send sends a request as given (no header added but those of hdr),
// checks the exchange against the OpenAPI document and returns the answer.
func send(t *testing.T, s *apitest.Stack, method, path string, body []byte, hdr map[string]string) apitest.Response {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	apitest.ValidateExchange(t, req, body, resp, data)
	return apitest.Response{Status: resp.StatusCode, Body: data, Header: resp.Header}
}

var requestIDPattern = regexp.MustCompile(`^[A-Z2-7]{26}$`)

// TestEveryAnswerCarriesARequestIDOfTheAPIsMaking: successes, errors and
// unknown paths all answer an X-Request-Id the API made, never the one the
// client sent, and a new one each time.
func TestEveryAnswerCarriesARequestIDOfTheAPIsMaking(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	_, tok := s.NewUser(t)
	seen := map[string]bool{}
	for _, sent := range []string{"", "client-chosen-id", strings.Repeat("x", 60<<10)} {
		for _, tc := range []struct {
			method, path string
			token        bool
			status       int
		}{
			{http.MethodGet, "/healthz", false, http.StatusOK},
			{http.MethodGet, "/api/auth/me", true, http.StatusOK},
			{http.MethodGet, "/api/auth/me", false, http.StatusUnauthorized},
			{http.MethodGet, "/api/documents/" + uuid.NewString(), true, http.StatusNotFound},
			{http.MethodGet, "/nope", false, http.StatusNotFound},
		} {
			hdr := map[string]string{}
			if sent != "" {
				hdr["X-Request-Id"] = sent
			}
			if tc.token {
				hdr["Authorization"] = "Bearer " + tok
			}
			r := send(t, s, tc.method, tc.path, nil, hdr)
			id := r.Header.Get("X-Request-Id")
			if r.Status != tc.status || !requestIDPattern.MatchString(id) || seen[id] {
				t.Errorf("%s %s (X-Request-Id %.20q sent): %d, X-Request-Id %.40q; want %d and a new id of the API's making",
					tc.method, tc.path, sent, r.Status, id, tc.status)
			}
			seen[id] = true
		}
	}
}

// TestAnswersWithPresignedURLsAreNoStore: upload-url (one PUT and in
// parts), part URLs and a document with its download URL are marked
// Cache-Control: no-store; an answer without a URL is not (it needs no
// such mark, and must not get it by accident either way).
func TestAnswersWithPresignedURLsAreNoStore(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	_, tok := s.NewUser(t)
	noStore := func(what string, r apitest.Response, status int) {
		t.Helper()
		if r.Status != status || r.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: %d, Cache-Control %q; want %d, no-store", what, r.Status, r.Header.Get("Cache-Control"), status)
		}
	}
	single := s.Do(t, http.MethodPost, "/api/documents/upload-url", tok, map[string]any{"filename": "a.pdf", "content_type": "application/pdf", "size_bytes": 5})
	noStore("upload-url", single, http.StatusCreated)
	parted := s.Do(t, http.MethodPost, "/api/documents/upload-url", tok, map[string]any{"filename": "b.pdf", "content_type": "application/pdf", "size_bytes": 6 << 20, "multipart": true})
	noStore("upload-url in parts", parted, http.StatusCreated)
	var plan apitest.Plan
	parted.Decode(t, &plan)
	noStore("parts", s.Do(t, http.MethodPost, "/api/documents/"+plan.DocumentID.String()+"/parts", tok, map[string]any{"part_numbers": []int{1}}), http.StatusOK)

	id := s.Upload(t, tok, "c.pdf", apitest.BytesOf(7))
	if r := s.Confirm(t, tok, id); r.Status != http.StatusOK {
		t.Fatalf("confirm: %d %s", r.Status, r.Body)
	}
	got := s.Do(t, http.MethodGet, "/api/documents/"+id.String(), tok, nil)
	noStore("a document with its download URL", got, http.StatusOK)
	if !strings.Contains(string(got.Body), `"download_url":"http`) {
		t.Fatalf("no download_url in %s", got.Body)
	}
	if r := s.Do(t, http.MethodGet, "/api/auth/me/quota", tok, nil); r.Header.Get("Cache-Control") != "" {
		t.Errorf("the quota answer has Cache-Control %q", r.Header.Get("Cache-Control"))
	}
}

// TestBodyWithoutContentTypeIs415: every route that reads a JSON body
// refuses one sent without Content-Type, as one of another type, with
// {"detail": ...}; a request without a body is not asked for one.
func TestBodyWithoutContentTypeIs415(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	user, tok := s.NewUser(t)
	admin := s.Token(t, uuid.New(), auth.RoleAdmin)
	plan := s.RequestMultipart(t, tok, "big.pdf", 6<<20)
	doc := "/api/documents/" + plan.DocumentID.String()
	for _, tc := range []struct {
		name, method, path, token, body string
	}{
		{"upload-url", http.MethodPost, "/api/documents/upload-url", tok, `{"filename":"a.pdf","content_type":"application/pdf"}`},
		{"parts", http.MethodPost, doc + "/parts", tok, `{"part_numbers":[1]}`},
		{"complete", http.MethodPost, doc + "/complete", tok, `{"parts":[{"part_number":1,"etag":"x"}]}`},
		{"set quota", http.MethodPut, "/api/admin/users/" + user.String() + "/quota", admin, `{"limit_bytes":5}`},
	} {
		for _, ct := range []string{"", "text/plain"} {
			hdr := map[string]string{"Authorization": "Bearer " + tc.token}
			if ct != "" {
				hdr["Content-Type"] = ct
			}
			r := send(t, s, tc.method, tc.path, []byte(tc.body), hdr)
			if r.Status != http.StatusUnsupportedMediaType {
				t.Errorf("%s with Content-Type %q: %d %s, want 415", tc.name, ct, r.Status, r.Body)
				continue
			}
			if d, ok := r.Detail(t).(string); !ok || d == "" {
				t.Errorf("%s: detail %s", tc.name, r.Body)
			}
		}
	}
	var n int
	if err := s.DB.QueryRow(t.Context(), "SELECT count(*) FROM documents WHERE user_id = $1", user).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("%d documents, want the multipart one only", n)
	}
	if _, limit := s.Quota(t, tok); limit == 5 {
		t.Error("the quota was set by a request without Content-Type")
	}
	// No body, no Content-Type: confirm takes none.
	if r := send(t, s, http.MethodPost, doc+"/confirm", nil, map[string]string{"Authorization": "Bearer " + tok}); r.Status == http.StatusUnsupportedMediaType {
		t.Errorf("confirm without a body: %d %s", r.Status, r.Body)
	}
}
