package api_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/minio/minio-go/v7"
	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/services/api"
	"github.com/docuvault/docuvault/shared/auth"
	"github.com/docuvault/docuvault/shared/config"
	"github.com/docuvault/docuvault/shared/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// stack is a running API on real PostgreSQL and MinIO, for one test.
type stack struct {
	url    string
	cfg    config.Config
	db     *pgxpool.Pool
	minio  *minio.Client
	bucket string
	client *http.Client
}

// mustStack starts the API with a fresh database and bucket; edit may
// change the configuration first.
func mustStack(tb testing.TB, edit func(*config.Config)) *stack {
	tb.Helper()
	dsn := testenv.Postgres(tb)
	mi := testenv.MinIO(tb)
	bucket := mi.NewBucket(tb)
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)

	cfg := config.Defaults()
	cfg.DatabaseURL = dsn
	cfg.MinIOEndpoint = mi.Endpoint
	cfg.MinIOAccessKey = mi.AccessKey
	cfg.MinIOSecretKey = mi.SecretKey
	cfg.MinIOBucket = bucket
	cfg.MinIORegion = mi.Region
	cfg.JWTSecret = hex.EncodeToString(secret)
	if edit != nil {
		edit(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	log := zerolog.New(zerolog.NewTestWriter(tb)).Level(zerolog.WarnLevel)
	srv, err := api.New(ctx, cfg, log)
	if err != nil {
		cancel()
		tb.Fatalf("start api: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	db, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("serve: %v", err)
		}
		srv.Close()
		db.Close()
	})
	return &stack{
		url:    "http://" + ln.Addr().String(),
		cfg:    cfg,
		db:     db,
		minio:  mi.Client(tb),
		bucket: bucket,
		client: &http.Client{Timeout: 30 * time.Second},
	}
}

// token mints a token for user with role.
func (s *stack) token(tb testing.TB, user uuid.UUID, role auth.Role) string {
	tb.Helper()
	tok, err := auth.Mint(auth.Config{Secret: []byte(s.cfg.JWTSecret)}, auth.Principal{UserID: user, Role: role}, time.Hour, time.Now())
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// newUser returns a fresh user id and a token for it.
func (s *stack) newUser(tb testing.TB) (uuid.UUID, string) {
	tb.Helper()
	id := uuid.New()
	return id, s.token(tb, id, auth.RoleUser)
}

// response is an API answer.
type response struct {
	status int
	body   []byte
	header http.Header
}

// decode unmarshals the body into v.
func (r response) decode(tb testing.TB, v any) {
	tb.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		tb.Fatalf("decode %s: %v", r.body, err)
	}
}

// detail returns the {"detail": ...} of an error answer.
func (r response) detail(tb testing.TB) any {
	tb.Helper()
	var e struct {
		Detail any `json:"detail"`
	}
	r.decode(tb, &e)
	if e.Detail == nil {
		tb.Fatalf("error body has no detail: %s", r.body)
	}
	return e.Detail
}

// do sends a request with token as bearer (none when empty); a body that is
// not a string or []byte is sent as JSON.
func (s *stack) do(tb testing.TB, method, path, token string, body any) response {
	tb.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			tb.Fatal(err)
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequest(method, s.url+path, rd)
	if err != nil {
		tb.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatal(err)
	}
	return response{status: resp.StatusCode, body: data, header: resp.Header}
}

// ticket is the upload-url answer.
type ticket struct {
	UploadURL  string            `json:"upload_url"`
	DocumentID uuid.UUID         `json:"document_id"`
	ExpiresAt  time.Time         `json:"expires_at"`
	Headers    map[string]string `json:"headers"`
}

// requestUpload asks for an upload URL and expects 201. size < 0 sends no size.
func (s *stack) requestUpload(tb testing.TB, token, filename, contentType string, size int64) ticket {
	tb.Helper()
	body := map[string]any{"filename": filename, "content_type": contentType}
	if size >= 0 {
		body["size_bytes"] = size
	}
	r := s.do(tb, http.MethodPost, "/api/documents/upload-url", token, body)
	if r.status != http.StatusCreated {
		tb.Fatalf("upload-url: %d %s", r.status, r.body)
	}
	var t ticket
	r.decode(tb, &t)
	return t
}

// put sends data to the presigned URL with the ticket's headers (Content-Length
// comes from the body, as a browser sends it) and returns MinIO's status.
func (s *stack) put(tb testing.TB, t ticket, contentType string, data []byte) int {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPut, t.UploadURL, bytes.NewReader(data))
	if err != nil {
		tb.Fatal(err)
	}
	for k, v := range t.Headers {
		if k != "Content-Length" {
			req.Header.Set(k, v)
		}
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		tb.Fatalf("PUT presigned URL: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// upload requests a URL for data (size declared) and PUTs it; it returns the document id.
func (s *stack) upload(tb testing.TB, token, filename string, data []byte) uuid.UUID {
	tb.Helper()
	t := s.requestUpload(tb, token, filename, "application/pdf", int64(len(data)))
	if st := s.put(tb, t, "", data); st != http.StatusOK {
		tb.Fatalf("PUT: MinIO answered %d", st)
	}
	return t.DocumentID
}

// confirmation is the confirm answer.
type confirmation struct {
	ID        uuid.UUID `json:"id"`
	SizeBytes int64     `json:"size_bytes"`
	UsedBytes int64     `json:"used_bytes"`
	Status    string    `json:"status"`
}

func (s *stack) confirm(tb testing.TB, token string, id uuid.UUID) response {
	tb.Helper()
	return s.do(tb, http.MethodPost, "/api/documents/"+id.String()+"/confirm", token, nil)
}

// quota is GET /api/auth/me/quota.
func (s *stack) quota(tb testing.TB, token string) (used, limit int64) {
	tb.Helper()
	r := s.do(tb, http.MethodGet, "/api/auth/me/quota", token, nil)
	if r.status != http.StatusOK {
		tb.Fatalf("quota: %d %s", r.status, r.body)
	}
	var q struct {
		UsedBytes  int64 `json:"used_bytes"`
		LimitBytes int64 `json:"limit_bytes"`
	}
	r.decode(tb, &q)
	return q.UsedBytes, q.LimitBytes
}

// setLimit sets user's quota limit through the admin endpoint.
func (s *stack) setLimit(tb testing.TB, user uuid.UUID, limit int64) {
	tb.Helper()
	admin := s.token(tb, uuid.New(), auth.RoleAdmin)
	r := s.do(tb, http.MethodPut, "/api/admin/users/"+user.String()+"/quota", admin, map[string]int64{"limit_bytes": limit})
	if r.status != http.StatusOK {
		tb.Fatalf("set quota: %d %s", r.status, r.body)
	}
}

// objectExists reports whether the document's object is in the bucket.
func (s *stack) objectExists(tb testing.TB, id uuid.UUID) bool {
	tb.Helper()
	var key string
	if err := s.db.QueryRow(context.Background(), "SELECT object_key FROM documents WHERE id = $1", id).Scan(&key); err != nil {
		tb.Fatalf("object key of %s: %v", id, err)
	}
	return s.keyExists(tb, key)
}

func (s *stack) keyExists(tb testing.TB, key string) bool {
	tb.Helper()
	_, err := s.minio.StatObject(context.Background(), s.bucket, key, minio.StatObjectOptions{})
	if err == nil {
		return true
	}
	if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
		return false
	}
	tb.Fatalf("stat %s: %v", key, err)
	return false
}

// bytesOf returns n bytes of test content.
func bytesOf(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + i%26)
	}
	return b
}
