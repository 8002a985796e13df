package auth_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/docuvault/docuvault/shared/auth"
)

var (
	testSecret  = []byte("0123456789abcdef0123456789abcdef-test-secret")
	otherSecret = []byte("fedcba9876543210fedcba9876543210-other-secret")
	testUserID  = uuid.MustParse("3f2b8c1e-7d4a-4f6b-9a0e-1c2d3e4f5a6b")
)

func baseConfig() auth.Config {
	return auth.Config{Secret: testSecret}
}

func scopedConfig() auth.Config {
	return auth.Config{Secret: testSecret, Issuer: "docuvault", Audience: "docuvault-api"}
}

func newVerifier(t *testing.T, cfg auth.Config) *auth.Verifier {
	t.Helper()
	v, err := auth.NewVerifier(cfg)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v
}

func mint(t *testing.T, cfg auth.Config, p auth.Principal, ttl time.Duration, now time.Time) string {
	t.Helper()
	tok, err := auth.Mint(cfg, p, ttl, now)
	if err != nil {
		t.Fatalf("Mint: %v", err)
	}
	return tok
}

// validClaims returns claims that the base verifier accepts when signed with
// testSecret using HS256.
func validClaims() jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"sub":  testUserID.String(),
		"role": "user",
		"iat":  now.Unix(),
		"exp":  now.Add(time.Hour).Unix(),
	}
}

func withClaims(mut func(jwt.MapClaims)) jwt.MapClaims {
	c := validClaims()
	mut(c)
	return c
}

func sign(t *testing.T, method jwt.SigningMethod, key any, c jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(method, c).SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", method.Alg(), err)
	}
	return tok
}

// unsignedToken builds an `alg: none` token by hand.
func unsignedToken(t *testing.T, c jwt.MapClaims) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(map[string]string{"alg": "none", "typ": "JWT"}) + "." + enc(c) + "."
}

func TestNewVerifier(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     auth.Config
		wantErr bool
	}{
		{name: "32 byte secret", cfg: auth.Config{Secret: make([]byte, 32)}},
		{name: "nil secret", cfg: auth.Config{}, wantErr: true},
		{name: "31 byte secret", cfg: auth.Config{Secret: make([]byte, 31)}, wantErr: true},
		{name: "negative leeway", cfg: auth.Config{Secret: testSecret, Leeway: -time.Second}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, err := auth.NewVerifier(tt.cfg)
			if tt.wantErr {
				if err == nil || v != nil {
					t.Fatalf("NewVerifier = %v, %v; want nil, error", v, err)
				}
				return
			}
			if err != nil || v == nil {
				t.Fatalf("NewVerifier = %v, %v; want verifier, nil", v, err)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("generate RSA key: %v", err)
	}
	now := time.Now()
	user := auth.Principal{UserID: testUserID, Role: auth.RoleUser}
	admin := auth.Principal{UserID: uuid.MustParse("00000000-0000-4000-8000-000000000001"), Role: auth.RoleAdmin}

	tests := []struct {
		name    string
		cfg     auth.Config // verifier config; zero value means baseConfig()
		token   func(t *testing.T) string
		want    auth.Principal
		wantErr string // expected error message; empty means success
	}{
		{
			name:  "valid user token",
			token: func(t *testing.T) string { return mint(t, baseConfig(), user, time.Hour, now) },
			want:  user,
		},
		{
			name:  "valid admin token",
			token: func(t *testing.T) string { return mint(t, baseConfig(), admin, time.Hour, now) },
			want:  admin,
		},
		{
			name:  "valid token with issuer and audience",
			cfg:   scopedConfig(),
			token: func(t *testing.T) string { return mint(t, scopedConfig(), admin, time.Hour, now) },
			want:  admin,
		},
		{
			name:  "hand-signed HS256 token",
			token: func(t *testing.T) string { return sign(t, jwt.SigningMethodHS256, testSecret, validClaims()) },
			want:  user,
		},
		{
			name:    "empty token",
			token:   func(*testing.T) string { return "" },
			wantErr: "missing bearer token",
		},
		{
			name:    "garbage",
			token:   func(*testing.T) string { return "not-a-jwt" },
			wantErr: "invalid token",
		},
		{
			name:    "expired",
			token:   func(t *testing.T) string { return mint(t, baseConfig(), user, time.Minute, now.Add(-time.Hour)) },
			wantErr: "token expired",
		},
		{
			name: "expired within leeway",
			cfg:  auth.Config{Secret: testSecret, Leeway: 5 * time.Minute},
			token: func(t *testing.T) string {
				return mint(t, baseConfig(), user, time.Minute, now.Add(-2*time.Minute))
			},
			want: user,
		},
		{
			name: "no exp claim",
			token: func(t *testing.T) string {
				return sign(t, jwt.SigningMethodHS256, testSecret, withClaims(func(c jwt.MapClaims) { delete(c, "exp") }))
			},
			wantErr: "invalid token",
		},
		{
			name: "issued in the future",
			token: func(t *testing.T) string {
				return sign(t, jwt.SigningMethodHS256, testSecret, withClaims(func(c jwt.MapClaims) {
					c["iat"] = now.Add(10 * time.Minute).Unix()
					c["exp"] = now.Add(2 * time.Hour).Unix()
				}))
			},
			wantErr: "invalid token",
		},
		{
			name: "issued in the future within leeway",
			cfg:  auth.Config{Secret: testSecret, Leeway: 30 * time.Second},
			token: func(t *testing.T) string {
				return sign(t, jwt.SigningMethodHS256, testSecret, withClaims(func(c jwt.MapClaims) { c["iat"] = now.Add(10 * time.Second).Unix() }))
			},
			want: user,
		},
		{
			name: "not yet valid",
			token: func(t *testing.T) string {
				return sign(t, jwt.SigningMethodHS256, testSecret, withClaims(func(c jwt.MapClaims) {
					c["nbf"] = now.Add(time.Hour).Unix()
				}))
			},
			wantErr: "invalid token",
		},
		{
			name:    "forged signature (other secret)",
			token:   func(t *testing.T) string { return mint(t, auth.Config{Secret: otherSecret}, admin, time.Hour, now) },
			wantErr: "invalid token",
		},
		{
			name: "forged and expired reports invalid, not expired",
			token: func(t *testing.T) string {
				return mint(t, auth.Config{Secret: otherSecret}, admin, time.Minute, now.Add(-time.Hour))
			},
			wantErr: "invalid token",
		},
		{
			name:    "alg none",
			token:   func(t *testing.T) string { return unsignedToken(t, validClaims()) },
			wantErr: "invalid token",
		},
		{
			name: "alg none with the real signature appended",
			token: func(t *testing.T) string {
				valid := sign(t, jwt.SigningMethodHS256, testSecret, validClaims())
				sig := valid[strings.LastIndexByte(valid, '.')+1:]
				return unsignedToken(t, validClaims()) + sig
			},
			wantErr: "invalid token",
		},
		{
			name:    "HS512 with the same secret",
			token:   func(t *testing.T) string { return sign(t, jwt.SigningMethodHS512, testSecret, validClaims()) },
			wantErr: "invalid token",
		},
		{
			name:    "HS384 with the same secret",
			token:   func(t *testing.T) string { return sign(t, jwt.SigningMethodHS384, testSecret, validClaims()) },
			wantErr: "invalid token",
		},
		{
			name:    "RS256 with a fresh RSA key",
			token:   func(t *testing.T) string { return sign(t, jwt.SigningMethodRS256, rsaKey, validClaims()) },
			wantErr: "invalid token",
		},
		{
			name: "sub not a UUID",
			token: func(t *testing.T) string {
				return sign(t, jwt.SigningMethodHS256, testSecret, withClaims(func(c jwt.MapClaims) { c["sub"] = "alice" }))
			},
			wantErr: "invalid token",
		},
		{
			name: "sub UUID in urn form",
			token: func(t *testing.T) string {
				return sign(t, jwt.SigningMethodHS256, testSecret, withClaims(func(c jwt.MapClaims) {
					c["sub"] = "urn:uuid:" + testUserID.String()
				}))
			},
			wantErr: "invalid token",
		},
		{
			name: "sub nil UUID",
			token: func(t *testing.T) string {
				return sign(t, jwt.SigningMethodHS256, testSecret, withClaims(func(c jwt.MapClaims) { c["sub"] = uuid.Nil.String() }))
			},
			wantErr: "invalid token",
		},
		{
			name: "sub missing",
			token: func(t *testing.T) string {
				return sign(t, jwt.SigningMethodHS256, testSecret, withClaims(func(c jwt.MapClaims) { delete(c, "sub") }))
			},
			wantErr: "invalid token",
		},
		{
			name: "role missing",
			token: func(t *testing.T) string {
				return sign(t, jwt.SigningMethodHS256, testSecret, withClaims(func(c jwt.MapClaims) { delete(c, "role") }))
			},
			wantErr: "invalid token",
		},
		{
			name: "role root",
			token: func(t *testing.T) string {
				return sign(t, jwt.SigningMethodHS256, testSecret, withClaims(func(c jwt.MapClaims) { c["role"] = "root" }))
			},
			wantErr: "invalid token",
		},
		{
			name: "role wrong case",
			token: func(t *testing.T) string {
				return sign(t, jwt.SigningMethodHS256, testSecret, withClaims(func(c jwt.MapClaims) { c["role"] = "Admin" }))
			},
			wantErr: "invalid token",
		},
		{
			name: "role not a string",
			token: func(t *testing.T) string {
				return sign(t, jwt.SigningMethodHS256, testSecret, withClaims(func(c jwt.MapClaims) { c["role"] = 1 }))
			},
			wantErr: "invalid token",
		},
		{
			name: "wrong issuer",
			cfg:  scopedConfig(),
			token: func(t *testing.T) string {
				cfg := scopedConfig()
				cfg.Issuer = "someone-else"
				return mint(t, cfg, user, time.Hour, now)
			},
			wantErr: "invalid token",
		},
		{
			name:    "missing issuer when configured",
			cfg:     auth.Config{Secret: testSecret, Issuer: "docuvault"},
			token:   func(t *testing.T) string { return mint(t, baseConfig(), user, time.Hour, now) },
			wantErr: "invalid token",
		},
		{
			name: "wrong audience",
			cfg:  scopedConfig(),
			token: func(t *testing.T) string {
				cfg := scopedConfig()
				cfg.Audience = "other-api"
				return mint(t, cfg, user, time.Hour, now)
			},
			wantErr: "invalid token",
		},
		{
			name:    "missing audience when configured",
			cfg:     auth.Config{Secret: testSecret, Audience: "docuvault-api"},
			token:   func(t *testing.T) string { return mint(t, baseConfig(), user, time.Hour, now) },
			wantErr: "invalid token",
		},
		{
			name:  "issuer and audience ignored when not configured",
			token: func(t *testing.T) string { return mint(t, scopedConfig(), user, time.Hour, now) },
			want:  user,
		},
		{
			name: "padded base64 segments",
			token: func(t *testing.T) string {
				return mint(t, baseConfig(), user, time.Hour, now) + "="
			},
			wantErr: "invalid token",
		},
		{
			name: "whitespace inside the token",
			token: func(t *testing.T) string {
				tok := mint(t, baseConfig(), user, time.Hour, now)
				return tok[:len(tok)-4] + "\n" + tok[len(tok)-4:]
			},
			wantErr: "invalid token",
		},
		{
			name: "crit header",
			token: func(t *testing.T) string {
				tok := jwt.NewWithClaims(jwt.SigningMethodHS256, validClaims())
				tok.Header["crit"] = []string{"exp"}
				s, err := tok.SignedString(testSecret)
				if err != nil {
					t.Fatal(err)
				}
				return s
			},
			wantErr: "invalid token",
		},
		{
			name: "oversized token",
			token: func(t *testing.T) string {
				return sign(t, jwt.SigningMethodHS256, testSecret, withClaims(func(c jwt.MapClaims) {
					c["pad"] = strings.Repeat("x", 9000)
				}))
			},
			wantErr: "invalid token",
		},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := tt.cfg
			if cfg.Secret == nil {
				cfg = baseConfig()
			}
			v := newVerifier(t, cfg)
			raw := tt.token(t)
			got, err := v.Verify(raw)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Verify: unexpected error %v", err)
				}
				// Expires is the token's own exp, checked by TestVerifyExpires.
				if got.UserID != tt.want.UserID || got.Role != tt.want.Role || got.Expires.IsZero() {
					t.Fatalf("Verify = %+v, want %+v", got, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("Verify = %+v, nil; want error %q", got, tt.wantErr)
			}
			if !errors.Is(err, auth.ErrUnauthorized) {
				t.Errorf("error %v does not wrap ErrUnauthorized", err)
			}
			if err.Error() != tt.wantErr {
				t.Errorf("error = %q, want %q", err.Error(), tt.wantErr)
			}
			if got != (auth.Principal{}) {
				t.Errorf("principal on error = %+v, want zero", got)
			}
			if len(raw) > 8 && strings.Contains(err.Error(), raw[len(raw)-8:]) {
				t.Errorf("error %q echoes the token", err)
			}
		})
	}
}

func TestMint(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	user := auth.Principal{UserID: testUserID, Role: auth.RoleUser}

	t.Run("claims", func(t *testing.T) {
		t.Parallel()
		tok := mint(t, scopedConfig(), user, 15*time.Minute, now)
		var c jwt.MapClaims
		parsed, err := jwt.NewParser(jwt.WithTimeFunc(func() time.Time { return now })).
			ParseWithClaims(tok, &c, func(*jwt.Token) (any, error) { return testSecret, nil })
		if err != nil {
			t.Fatalf("parse minted token: %v", err)
		}
		if alg := parsed.Header["alg"]; alg != "HS256" {
			t.Errorf("alg = %v, want HS256", alg)
		}
		want := map[string]any{
			"sub":  testUserID.String(),
			"role": "user",
			"iss":  "docuvault",
			"iat":  float64(now.Unix()),
			"exp":  float64(now.Add(15 * time.Minute).Unix()),
		}
		for k, w := range want {
			if c[k] != w {
				t.Errorf("claim %s = %v, want %v", k, c[k], w)
			}
		}
		if aud, _ := c.GetAudience(); len(aud) != 1 || aud[0] != "docuvault-api" {
			t.Errorf("aud = %v, want [docuvault-api]", aud)
		}
		jti, _ := c["jti"].(string)
		if _, err := uuid.Parse(jti); err != nil {
			t.Errorf("jti %q is not a UUID: %v", jti, err)
		}
		if other := mint(t, scopedConfig(), user, 15*time.Minute, now); other == tok {
			t.Error("two minted tokens are identical; jti is not random")
		}
	})

	t.Run("no iss or aud when unset", func(t *testing.T) {
		t.Parallel()
		tok := mint(t, baseConfig(), user, time.Minute, now)
		var c jwt.MapClaims
		if _, _, err := jwt.NewParser().ParseUnverified(tok, &c); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"iss", "aud"} {
			if _, ok := c[k]; ok {
				t.Errorf("claim %s present, want absent", k)
			}
		}
	})

	errTests := []struct {
		name string
		cfg  auth.Config
		p    auth.Principal
		ttl  time.Duration
		now  time.Time
	}{
		{name: "short secret", cfg: auth.Config{Secret: []byte("short")}, p: user, ttl: time.Minute, now: now},
		{name: "zero ttl", cfg: baseConfig(), p: user, ttl: 0, now: now},
		{name: "negative ttl", cfg: baseConfig(), p: user, ttl: -time.Minute, now: now},
		{name: "zero now", cfg: baseConfig(), p: user, ttl: time.Minute},
		{name: "nil user", cfg: baseConfig(), p: auth.Principal{Role: auth.RoleUser}, ttl: time.Minute, now: now},
		{name: "unknown role", cfg: baseConfig(), p: auth.Principal{UserID: testUserID, Role: "root"}, ttl: time.Minute, now: now},
		{name: "empty role", cfg: baseConfig(), p: auth.Principal{UserID: testUserID}, ttl: time.Minute, now: now},
	}
	for _, tt := range errTests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tok, err := auth.Mint(tt.cfg, tt.p, tt.ttl, tt.now); err == nil {
				t.Fatalf("Mint = %q, nil; want error", tok)
			}
		})
	}
}

// TestVerifyExpires: the principal carries the token's exp, which is when
// what a request holds open (an event stream) must end.
func TestVerifyExpires(t *testing.T) {
	t.Parallel()
	now := time.Now()
	v := newVerifier(t, baseConfig())
	p, err := v.Verify(mint(t, baseConfig(), auth.Principal{UserID: testUserID, Role: auth.RoleUser}, time.Hour, now))
	if err != nil {
		t.Fatal(err)
	}
	if want := now.Add(time.Hour).Truncate(time.Second); !p.Expires.Equal(want) {
		t.Fatalf("Expires = %s, want %s (the exp claim)", p.Expires, want)
	}
}

func TestContext(t *testing.T) {
	t.Parallel()
	if p, ok := auth.FromContext(context.Background()); ok || p != (auth.Principal{}) {
		t.Fatalf("FromContext(empty) = %+v, %v; want zero, false", p, ok)
	}
	want := auth.Principal{UserID: testUserID, Role: auth.RoleAdmin}
	got, ok := auth.FromContext(auth.WithPrincipal(context.Background(), want))
	if !ok || got != want {
		t.Fatalf("FromContext = %+v, %v; want %+v, true", got, ok, want)
	}
}

// recorder captures what the middleware chain did for one request.
type recorder struct {
	principal    auth.Principal
	reached      bool
	err          error
	errorCalls   int
	forbidCalled int
}

func (rec *recorder) onError(w http.ResponseWriter, _ *http.Request, err error) {
	rec.errorCalls++
	rec.err = err
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusUnauthorized)
	_ = json.NewEncoder(w).Encode(map[string]string{"detail": err.Error()})
}

func (rec *recorder) onForbidden(w http.ResponseWriter, _ *http.Request) {
	rec.forbidCalled++
	w.WriteHeader(http.StatusForbidden)
}

func (rec *recorder) handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec.reached = true
		rec.principal, _ = auth.FromContext(r.Context())
		w.WriteHeader(http.StatusNoContent)
	})
}

func TestMiddleware(t *testing.T) {
	t.Parallel()
	cfg := scopedConfig()
	v := newVerifier(t, cfg)
	now := time.Now()
	user := auth.Principal{UserID: testUserID, Role: auth.RoleUser}
	admin := auth.Principal{UserID: uuid.MustParse("9b0a3c3e-5f11-4b8e-8f0d-2b7c9f2f4e10"), Role: auth.RoleAdmin}
	userTok := mint(t, cfg, user, time.Hour, now)
	adminTok := mint(t, cfg, admin, time.Hour, now)
	expiredTok := mint(t, cfg, user, time.Minute, now.Add(-time.Hour))
	forgedTok := mint(t, auth.Config{Secret: otherSecret, Issuer: cfg.Issuer, Audience: cfg.Audience}, admin, time.Hour, now)

	tests := []struct {
		name       string
		headers    []string // Authorization header values; nil means absent
		requireAdm bool     // wrap the handler in RequireRole(RoleAdmin)
		wantStatus int
		wantDetail string // expected error message passed to onError
		want       auth.Principal
	}{
		{name: "valid user", headers: []string{"Bearer " + userTok}, wantStatus: http.StatusNoContent, want: user},
		{name: "valid admin", headers: []string{"Bearer " + adminTok}, wantStatus: http.StatusNoContent, want: admin},
		{name: "lower-case scheme", headers: []string{"bearer " + userTok}, wantStatus: http.StatusNoContent, want: user},
		{name: "upper-case scheme", headers: []string{"BEARER " + userTok}, wantStatus: http.StatusNoContent, want: user},
		{name: "missing header", wantStatus: http.StatusUnauthorized, wantDetail: "missing bearer token"},
		{name: "empty header", headers: []string{""}, wantStatus: http.StatusUnauthorized, wantDetail: "missing bearer token"},
		{name: "wrong scheme", headers: []string{"Basic " + userTok}, wantStatus: http.StatusUnauthorized, wantDetail: "missing bearer token"},
		{name: "token without scheme", headers: []string{userTok}, wantStatus: http.StatusUnauthorized, wantDetail: "missing bearer token"},
		{name: "scheme only", headers: []string{"Bearer"}, wantStatus: http.StatusUnauthorized, wantDetail: "malformed authorization header"},
		{name: "scheme and space only", headers: []string{"Bearer "}, wantStatus: http.StatusUnauthorized, wantDetail: "malformed authorization header"},
		{name: "two spaces", headers: []string{"Bearer  " + userTok}, wantStatus: http.StatusUnauthorized, wantDetail: "malformed authorization header"},
		{name: "tab separator", headers: []string{"Bearer\t" + userTok}, wantStatus: http.StatusUnauthorized, wantDetail: "missing bearer token"},
		{name: "two tokens", headers: []string{"Bearer " + userTok + " " + adminTok}, wantStatus: http.StatusUnauthorized, wantDetail: "malformed authorization header"},
		{name: "trailing space", headers: []string{"Bearer " + userTok + " "}, wantStatus: http.StatusUnauthorized, wantDetail: "malformed authorization header"},
		{name: "two headers", headers: []string{"Bearer " + userTok, "Bearer " + adminTok}, wantStatus: http.StatusUnauthorized, wantDetail: "malformed authorization header"},
		{name: "oversized header", headers: []string{"Bearer " + userTok + strings.Repeat("A", 8<<10)}, wantStatus: http.StatusUnauthorized, wantDetail: "malformed authorization header"},
		{name: "expired", headers: []string{"Bearer " + expiredTok}, wantStatus: http.StatusUnauthorized, wantDetail: "token expired"},
		{name: "forged", headers: []string{"Bearer " + forgedTok}, wantStatus: http.StatusUnauthorized, wantDetail: "invalid token"},
		{name: "alg none", headers: []string{"Bearer " + unsignedToken(t, validClaims())}, wantStatus: http.StatusUnauthorized, wantDetail: "invalid token"},
		{name: "admin route as admin", headers: []string{"Bearer " + adminTok}, requireAdm: true, wantStatus: http.StatusNoContent, want: admin},
		{name: "admin route as user", headers: []string{"Bearer " + userTok}, requireAdm: true, wantStatus: http.StatusForbidden},
		{name: "admin route unauthenticated", requireAdm: true, wantStatus: http.StatusUnauthorized, wantDetail: "missing bearer token"},
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := &recorder{}
			var h = rec.handler()
			if tt.requireAdm {
				h = auth.RequireRole(auth.RoleAdmin, rec.onForbidden)(h)
			}
			h = v.Middleware(rec.onError)(h)

			req := httptest.NewRequest(http.MethodGet, "/v1/documents", nil)
			for _, hv := range tt.headers {
				req.Header.Add("Authorization", hv)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)

			if w.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d (body %q)", w.Code, tt.wantStatus, w.Body.String())
			}
			switch tt.wantStatus {
			case http.StatusNoContent:
				if p := rec.principal; !rec.reached || p.UserID != tt.want.UserID || p.Role != tt.want.Role || p.Expires.IsZero() {
					t.Errorf("handler reached=%v principal=%+v; want true, %+v", rec.reached, rec.principal, tt.want)
				}
			case http.StatusUnauthorized:
				if rec.reached || rec.errorCalls != 1 {
					t.Fatalf("handler reached=%v onError calls=%d; want false, 1", rec.reached, rec.errorCalls)
				}
				if !errors.Is(rec.err, auth.ErrUnauthorized) {
					t.Errorf("onError err %v does not wrap ErrUnauthorized", rec.err)
				}
				if rec.err.Error() != tt.wantDetail {
					t.Errorf("onError err = %q, want %q", rec.err.Error(), tt.wantDetail)
				}
				var body map[string]string
				if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body["detail"] != tt.wantDetail {
					t.Errorf("body = %q, want detail %q", w.Body.String(), tt.wantDetail)
				}
				if !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("WWW-Authenticate = %q, want Bearer challenge", w.Header().Get("WWW-Authenticate"))
				}
				if strings.Contains(w.Body.String(), "eyJ") {
					t.Errorf("body %q echoes the token", w.Body.String())
				}
			case http.StatusForbidden:
				if rec.reached || rec.forbidCalled != 1 || rec.errorCalls != 0 {
					t.Errorf("handler reached=%v forbidden calls=%d error calls=%d; want false, 1, 0",
						rec.reached, rec.forbidCalled, rec.errorCalls)
				}
			}
		})
	}
}

func TestRequireRole(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		require    auth.Role
		principal  *auth.Principal
		wantStatus int
	}{
		{name: "user on user route", require: auth.RoleUser, principal: &auth.Principal{UserID: testUserID, Role: auth.RoleUser}, wantStatus: http.StatusNoContent},
		{name: "admin on admin route", require: auth.RoleAdmin, principal: &auth.Principal{UserID: testUserID, Role: auth.RoleAdmin}, wantStatus: http.StatusNoContent},
		{name: "user on admin route", require: auth.RoleAdmin, principal: &auth.Principal{UserID: testUserID, Role: auth.RoleUser}, wantStatus: http.StatusForbidden},
		{name: "admin on user route", require: auth.RoleUser, principal: &auth.Principal{UserID: testUserID, Role: auth.RoleAdmin}, wantStatus: http.StatusForbidden},
		{name: "no principal", require: auth.RoleUser, wantStatus: http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rec := &recorder{}
			h := auth.RequireRole(tt.require, rec.onForbidden)(rec.handler())
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			if tt.principal != nil {
				req = req.WithContext(auth.WithPrincipal(req.Context(), *tt.principal))
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d", w.Code, tt.wantStatus)
			}
			if tt.wantStatus == http.StatusForbidden && (rec.reached || rec.forbidCalled != 1) {
				t.Errorf("handler reached=%v forbidden calls=%d; want false, 1", rec.reached, rec.forbidCalled)
			}
		})
	}
}

func TestNilCallbacks(t *testing.T) {
	t.Parallel()
	v := newVerifier(t, baseConfig())
	h := v.Middleware(nil)(auth.RequireRole(auth.RoleAdmin, nil)(http.NotFoundHandler()))

	tests := []struct {
		name       string
		header     string
		wantStatus int
	}{
		{name: "unauthenticated", wantStatus: http.StatusUnauthorized},
		{name: "wrong role", header: "Bearer " + mint(t, baseConfig(), auth.Principal{UserID: testUserID, Role: auth.RoleUser}, time.Hour, time.Now()), wantStatus: http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d", w.Code, tt.wantStatus)
			}
		})
	}
}
