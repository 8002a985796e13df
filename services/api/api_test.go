package api_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha512"
	"encoding/base64"
	"io"
	"maps"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/docuvault/docuvault/internal/apitest"
	"github.com/docuvault/docuvault/shared/auth"
)

func TestFullCycle(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	user, tok := s.NewUser(t)
	data := apitest.BytesOf(1234)

	tk := s.RequestUpload(t, tok, "Report 2026.PDF", "application/pdf", int64(len(data)))
	if tk.UploadURL == "" || tk.DocumentID == uuid.Nil || tk.ExpiresAt.IsZero() {
		t.Fatalf("upload-url answer incomplete: %+v", tk)
	}
	// Only what a client sets itself: a browser may not set Content-Length
	// (it sends the body's, which must be the signed one).
	if want := map[string]string{"Content-Type": "application/pdf", "If-None-Match": "*"}; !maps.Equal(tk.Headers, want) {
		t.Fatalf("headers = %v, want %v", tk.Headers, want)
	}
	if !strings.Contains(tk.UploadURL, "X-Amz-SignedHeaders=content-length%3Bcontent-type") {
		t.Fatalf("the declared size is not signed into %s", tk.UploadURL)
	}
	var key string
	if err := s.DB.QueryRow(context.Background(), "SELECT object_key FROM documents WHERE id = $1", tk.DocumentID).Scan(&key); err != nil {
		t.Fatal(err)
	}
	if want := user.String() + "/" + tk.DocumentID.String() + "/"; !strings.HasPrefix(key, want) || !strings.HasSuffix(key, ".pdf") || strings.Contains(key, "Report") {
		t.Fatalf("object key %q: want %s<uuid>.pdf without the filename", key, want)
	}

	if st := s.Put(t, tk, "", data); st != http.StatusOK {
		t.Fatalf("PUT: %d", st)
	}
	r := s.Confirm(t, tok, tk.DocumentID)
	if r.Status != http.StatusOK {
		t.Fatalf("confirm: %d %s", r.Status, r.Body)
	}
	var c apitest.Confirmation
	r.Decode(t, &c)
	if c != (apitest.Confirmation{ID: tk.DocumentID, SizeBytes: 1234, UsedBytes: 1234, Status: "uploaded"}) {
		t.Fatalf("confirm = %+v", c)
	}

	r = s.Do(t, http.MethodGet, "/api/documents/"+tk.DocumentID.String(), tok, nil)
	var got struct {
		ID          uuid.UUID `json:"id"`
		Filename    string    `json:"filename"`
		Status      string    `json:"status"`
		SizeBytes   int64     `json:"size_bytes"`
		DownloadURL string    `json:"download_url"`
	}
	r.Decode(t, &got)
	if r.Status != http.StatusOK || got.Filename != "Report 2026.PDF" || got.Status != "uploaded" || got.SizeBytes != 1234 {
		t.Fatalf("get: %d %s", r.Status, r.Body)
	}
	resp, err := http.Get(got.DownloadURL)
	if err != nil {
		t.Fatal(err)
	}
	downloaded, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Equal(downloaded, data) {
		t.Fatalf("download: %d, %d bytes", resp.StatusCode, len(downloaded))
	}

	r = s.Do(t, http.MethodGet, "/api/documents", tok, nil)
	var list struct {
		Items []struct {
			ID uuid.UUID `json:"id"`
		} `json:"items"`
	}
	r.Decode(t, &list)
	if len(list.Items) != 1 || list.Items[0].ID != tk.DocumentID {
		t.Fatalf("list: %s", r.Body)
	}
	if used, limit := s.Quota(t, tok); used != 1234 || limit != 104857600 {
		t.Fatalf("quota after confirm = %d/%d", used, limit)
	}

	if r := s.Do(t, http.MethodDelete, "/api/documents/"+tk.DocumentID.String(), tok, nil); r.Status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	if used, _ := s.Quota(t, tok); used != 0 {
		t.Fatalf("quota after delete = %d, want 0", used)
	}
	if s.KeyExists(t, key) {
		t.Fatal("object still in the bucket after delete")
	}
	if r := s.Do(t, http.MethodGet, "/api/documents/"+tk.DocumentID.String(), tok, nil); r.Status != http.StatusNotFound {
		t.Fatalf("get after delete: %d", r.Status)
	}
	var events []string
	for _, e := range s.DocumentEvents(t, tk.DocumentID) {
		events = append(events, e.Type)
	}
	if strings.Join(events, ",") != "document.uploaded,document.deleted" {
		t.Fatalf("events = %v", events)
	}
}

func TestUploadWithoutDeclaredSizeIsChargedTheStoredSize(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	_, tok := s.NewUser(t)
	tk := s.RequestUpload(t, tok, "notes.txt", "text/plain", -1)
	if strings.Contains(tk.UploadURL, "content-length") {
		t.Fatalf("no size declared, yet Content-Length is signed: %s", tk.UploadURL)
	}
	if st := s.Put(t, tk, "", apitest.BytesOf(777)); st != http.StatusOK {
		t.Fatalf("PUT: %d", st)
	}
	var c apitest.Confirmation
	r := s.Confirm(t, tok, tk.DocumentID)
	r.Decode(t, &c)
	if r.Status != http.StatusOK || c.SizeBytes != 777 || c.UsedBytes != 777 {
		t.Fatalf("confirm: %d %s", r.Status, r.Body)
	}

	// The URL is still valid, but it is good for one object: a larger file
	// cannot replace the one that was charged.
	if st := s.Put(t, tk, "", apitest.BytesOf(5000)); st != http.StatusPreconditionFailed {
		t.Fatalf("second PUT with the same URL: MinIO answered %d, want 412", st)
	}
	if size := s.ObjectSize(t, tk.DocumentID); size != 777 {
		t.Fatalf("after a second PUT the object is %d bytes, want the 777 charged", size)
	}
}

func TestConcurrentConfirmsOverQuota(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	for round := 0; round < 50; round++ {
		user, tok := s.NewUser(t)
		s.SetLimit(t, user, 1000)
		// Sizes not declared: declared ones would be reserved, and the
		// second upload-url refused before any byte flowed.
		a := s.UploadUndeclared(t, tok, "a.pdf", apitest.BytesOf(600))
		b := s.UploadUndeclared(t, tok, "b.pdf", apitest.BytesOf(700))

		results := make([]apitest.Response, 2)
		var wg sync.WaitGroup
		for i, id := range []uuid.UUID{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = s.Confirm(t, tok, id)
			}()
		}
		wg.Wait()

		var okSize int64
		var rejected uuid.UUID
		oks, overs := 0, 0
		for i, r := range results {
			switch r.Status {
			case http.StatusOK:
				oks++
				var c apitest.Confirmation
				r.Decode(t, &c)
				okSize = c.SizeBytes
				if c.UsedBytes != c.SizeBytes {
					t.Fatalf("round %d: used_bytes %d, want %d", round, c.UsedBytes, c.SizeBytes)
				}
			case http.StatusRequestEntityTooLarge:
				overs++
				rejected = []uuid.UUID{a, b}[i]
				d, ok := r.Detail(t).(map[string]any)
				if !ok || d["limit_bytes"] != 1000.0 || d["used_bytes"] == nil || d["rejected_bytes"] == nil {
					t.Fatalf("round %d: 413 detail = %s", round, r.Body)
				}
			default:
				t.Fatalf("round %d: confirm answered %d %s", round, r.Status, r.Body)
			}
		}
		if oks != 1 || overs != 1 {
			t.Fatalf("round %d: %d accepted and %d rejected, want 1 and 1", round, oks, overs)
		}
		if used, _ := s.Quota(t, tok); used != okSize {
			t.Fatalf("round %d: used_bytes = %d, want the accepted size %d", round, used, okSize)
		}
		if s.ObjectExists(t, rejected) {
			t.Fatalf("round %d: the rejected document's object was not deleted", round)
		}
		// Confirming the rejected document again answers the same 413 and charges nothing.
		if r := s.Confirm(t, tok, rejected); r.Status != http.StatusRequestEntityTooLarge {
			t.Fatalf("round %d: re-confirm of rejected: %d %s", round, r.Status, r.Body)
		}
		var status, reason string
		if err := s.DB.QueryRow(context.Background(), "SELECT status, reject_reason FROM documents WHERE id = $1", rejected).Scan(&status, &reason); err != nil {
			t.Fatal(err)
		}
		if status != "rejected" || reason != "over_quota" {
			t.Fatalf("round %d: rejected document is %s/%s", round, status, reason)
		}
	}
}

func TestConcurrentConfirmsOfOneDocumentChargeOnce(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	_, tok := s.NewUser(t)
	id := s.Upload(t, tok, "once.pdf", apitest.BytesOf(4096))

	const n = 20
	results := make([]apitest.Response, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = s.Confirm(t, tok, id)
		}()
	}
	wg.Wait()
	for i, r := range results {
		var c apitest.Confirmation
		r.Decode(t, &c)
		if r.Status != http.StatusOK || c.UsedBytes != 4096 || c.Status != "uploaded" {
			t.Fatalf("confirm %d: %d %s", i, r.Status, r.Body)
		}
	}
	if used, _ := s.Quota(t, tok); used != 4096 {
		t.Fatalf("used_bytes = %d, want 4096 (charged once)", used)
	}
	if events := s.DocumentEvents(t, id); len(events) != 1 || events[0].Type != "document.uploaded" {
		t.Fatalf("events %+v, want exactly one document.uploaded", events)
	}
}

func TestPresignedPutRefusesAnotherSizeOrType(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	_, tok := s.NewUser(t)
	tk := s.RequestUpload(t, tok, "x.pdf", "application/pdf", 100)
	if st := s.Put(t, tk, "", apitest.BytesOf(101)); st != http.StatusForbidden {
		t.Fatalf("PUT of 101 bytes for a declared 100: MinIO answered %d, want 403", st)
	}
	if st := s.Put(t, tk, "text/plain", apitest.BytesOf(100)); st != http.StatusForbidden {
		t.Fatalf("PUT with another Content-Type: MinIO answered %d, want 403", st)
	}
	if st := s.Put(t, tk, "", apitest.BytesOf(100)); st != http.StatusOK {
		t.Fatalf("PUT as signed: MinIO answered %d, want 200", st)
	}
}

func TestDeclaredSizeOverRemainingQuotaIsRefusedAtOnce(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	user, tok := s.NewUser(t)
	s.SetLimit(t, user, 1000)
	id := s.Upload(t, tok, "first.pdf", apitest.BytesOf(800))
	if r := s.Confirm(t, tok, id); r.Status != http.StatusOK {
		t.Fatalf("confirm: %d %s", r.Status, r.Body)
	}
	r := s.Do(t, http.MethodPost, "/api/documents/upload-url", tok, map[string]any{"filename": "big.pdf", "content_type": "application/pdf", "size_bytes": 201})
	if r.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("upload-url over quota: %d %s", r.Status, r.Body)
	}
	d, _ := r.Detail(t).(map[string]any)
	if d["used_bytes"] != 800.0 || d["limit_bytes"] != 1000.0 || d["rejected_bytes"] != 201.0 {
		t.Fatalf("413 detail = %s", r.Body)
	}
	var n int
	_ = s.DB.QueryRow(context.Background(), "SELECT count(*) FROM documents WHERE user_id = $1", user).Scan(&n)
	if n != 1 {
		t.Fatalf("%d documents, want 1: a refused request must write nothing", n)
	}
}

func TestConfirmBeforePut(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	_, tok := s.NewUser(t)
	tk := s.RequestUpload(t, tok, "later.pdf", "application/pdf", 10)
	r := s.Confirm(t, tok, tk.DocumentID)
	if r.Status != http.StatusUnprocessableEntity || r.Detail(t) != "Upload not found — presigned URL may have expired" {
		t.Fatalf("confirm before PUT: %d %s", r.Status, r.Body)
	}
	if used, _ := s.Quota(t, tok); used != 0 {
		t.Fatalf("used_bytes = %d after a failed confirm", used)
	}
}

func TestOtherUsersAndUnknownDocumentsAreNotFound(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	_, owner := s.NewUser(t)
	_, intruder := s.NewUser(t)
	id := s.Upload(t, owner, "mine.pdf", apitest.BytesOf(10))

	for _, path := range []string{"/api/documents/" + id.String(), "/api/documents/" + uuid.NewString(), "/api/documents/not-a-uuid", "/api/documents/%00"} {
		for _, method := range []string{http.MethodGet, http.MethodDelete} {
			if r := s.Do(t, method, path, intruder, nil); r.Status != http.StatusNotFound || r.Detail(t) == nil {
				t.Errorf("%s %s as another user: %d %s", method, path, r.Status, r.Body)
			}
		}
		if r := s.Do(t, http.MethodPost, path+"/confirm", intruder, nil); r.Status != http.StatusNotFound {
			t.Errorf("confirm %s as another user: %d %s", path, r.Status, r.Body)
		}
	}
	r := s.Do(t, http.MethodGet, "/api/documents", intruder, nil)
	if r.Status != http.StatusOK || strings.Contains(string(r.Body), id.String()) {
		t.Fatalf("another user's list shows the document: %s", r.Body)
	}
	// The owner's document is untouched.
	if r := s.Confirm(t, owner, id); r.Status != http.StatusOK {
		t.Fatalf("owner confirm: %d %s", r.Status, r.Body)
	}
}

func TestDeleteNeverOverReleasesQuota(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	user, tok := s.NewUser(t)
	s.SetLimit(t, user, 1000)

	charged := s.Upload(t, tok, "kept.pdf", apitest.BytesOf(500))
	if r := s.Confirm(t, tok, charged); r.Status != http.StatusOK {
		t.Fatal(r.Status)
	}
	pending := s.Upload(t, tok, "pending.pdf", apitest.BytesOf(300)) // never confirmed
	// Undeclared size, so upload-url cannot refuse it early.
	tk := s.RequestUpload(t, tok, "rejected.pdf", "application/pdf", -1)
	if st := s.Put(t, tk, "", apitest.BytesOf(600)); st != http.StatusOK {
		t.Fatalf("PUT: %d", st)
	}
	rejected := tk.DocumentID
	if r := s.Confirm(t, tok, rejected); r.Status != http.StatusRequestEntityTooLarge {
		t.Fatalf("over-quota confirm: %d", r.Status)
	}
	for _, id := range []uuid.UUID{pending, rejected} {
		if r := s.Do(t, http.MethodDelete, "/api/documents/"+id.String(), tok, nil); r.Status != http.StatusNoContent {
			t.Fatalf("delete: %d %s", r.Status, r.Body)
		}
		if used, _ := s.Quota(t, tok); used != 500 {
			t.Fatalf("used_bytes = %d after deleting an uncharged document, want 500", used)
		}
	}
	// A ledger already lower than the document (e.g. an admin correction)
	// must not go negative.
	if _, err := s.DB.Exec(context.Background(), "UPDATE quotas SET used_bytes = 100 WHERE user_id = $1", user); err != nil {
		t.Fatal(err)
	}
	if r := s.Do(t, http.MethodDelete, "/api/documents/"+charged.String(), tok, nil); r.Status != http.StatusNoContent {
		t.Fatalf("delete: %d", r.Status)
	}
	if used, _ := s.Quota(t, tok); used != 0 {
		t.Fatalf("used_bytes = %d, want 0 (never below zero)", used)
	}
	if r := s.Do(t, http.MethodDelete, "/api/documents/"+charged.String(), tok, nil); r.Status != http.StatusNotFound {
		t.Fatalf("second delete: %d", r.Status)
	}
}

func TestAuth(t *testing.T) {
	t.Parallel()
	s := apitest.Start(t, apitest.Options{})
	user := uuid.New()
	good := s.Token(t, user, auth.RoleUser)
	expired, err := auth.Mint(auth.Config{Secret: []byte(s.Cfg.JWTSecret)}, auth.Principal{UserID: user, Role: auth.RoleUser}, time.Minute, time.Now().Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	forged, err := auth.Mint(auth.Config{Secret: []byte(strings.Repeat("x", 32))}, auth.Principal{UserID: user, Role: auth.RoleUser}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, ".")
	algNone := "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + parts[1] + "."
	hs512 := signHS512(t, s.Cfg.JWTSecret, parts[1])

	for _, tc := range []struct {
		name, header string
	}{
		{"missing", ""},
		{"not bearer", "Basic dXNlcjpwYXNz"},
		{"garbage", "Bearer not.a.token"},
		{"expired", "Bearer " + expired},
		{"forged", "Bearer " + forged},
		{"alg none", "Bearer " + algNone},
		{"wrong algorithm", "Bearer " + hs512},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, s.URL+"/api/auth/me", nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), `"detail"`) {
				t.Fatalf("%d %s", resp.StatusCode, body)
			}
		})
	}

	r := s.Do(t, http.MethodGet, "/api/auth/me", good, nil)
	if r.Status != http.StatusOK || string(bytes.TrimSpace(r.Body)) != `{"id":"`+user.String()+`","role":"user"}` {
		t.Fatalf("me: %d %s", r.Status, r.Body)
	}
	if r := s.Do(t, http.MethodPut, "/api/admin/users/"+user.String()+"/quota", good, map[string]int64{"limit_bytes": 5}); r.Status != http.StatusForbidden {
		t.Fatalf("admin endpoint as user: %d %s", r.Status, r.Body)
	}
	admin := s.Token(t, uuid.New(), auth.RoleAdmin)
	r = s.Do(t, http.MethodPut, "/api/admin/users/"+user.String()+"/quota", admin, map[string]int64{"limit_bytes": 5000})
	if r.Status != http.StatusOK {
		t.Fatalf("admin endpoint as admin: %d %s", r.Status, r.Body)
	}
	if _, limit := s.Quota(t, good); limit != 5000 {
		t.Fatalf("limit = %d after the admin set 5000", limit)
	}
	if r := s.Do(t, http.MethodPut, "/api/admin/users/"+user.String()+"/quota", admin, map[string]int64{"limit_bytes": -1}); r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("negative limit: %d %s", r.Status, r.Body)
	}
}

// signHS512 signs payload with HS512: right secret, wrong algorithm.
func signHS512(t *testing.T, secret, payload string) string {
	t.Helper()
	head := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS512","typ":"JWT"}`))
	mac := hmac.New(sha512.New, []byte(secret))
	mac.Write([]byte(head + "." + payload))
	return head + "." + payload + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}
