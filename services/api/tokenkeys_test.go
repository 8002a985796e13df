package api_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/docuvault/docuvault/internal/apitest"
	"github.com/docuvault/docuvault/shared/config"
)

// An identity provider signs the tokens with its own key; the api only
// holds the public half (JWT_PUBLIC_KEYS_FILE) and no JWT_SECRET.
func TestTokensOfAnIdentityProvidersKey(t *testing.T) {
	t.Parallel()
	public, private, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(public)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "idp.pem")
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	s := apitest.Start(t, apitest.Options{Edit: func(c *config.Config) {
		c.JWTSecret, c.JWTPublicKeysFile, c.JWTIssuer, c.JWTAudience = "", file, "https://idp.example", "docuvault"
	}})
	tokenFor := func(key ed25519.PrivateKey, user uuid.UUID, iss, aud string, iat time.Time) string {
		tok, err := jwt.NewWithClaims(jwt.SigningMethodEdDSA, jwt.MapClaims{
			"sub": user.String(), "role": "user", "iss": iss, "aud": aud, "iat": iat.Unix(), "exp": time.Now().Add(2 * time.Hour).Unix(),
		}).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	token := func(key ed25519.PrivateKey, user uuid.UUID, iss string) string {
		return tokenFor(key, user, iss, "docuvault", time.Now())
	}
	user := uuid.New()
	data := apitest.BytesOf(321)
	tok := token(private, user, "https://idp.example")
	id := s.Upload(t, tok, "a.pdf", data)
	if r := s.Confirm(t, tok, id); r.Status != http.StatusOK {
		t.Fatalf("confirm with the provider's token: %d %s", r.Status, r.Body)
	}
	if used, _ := s.Quota(t, tok); used != int64(len(data)) {
		t.Fatalf("used_bytes = %d, want %d", used, len(data))
	}

	_, stranger, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]string{
		"another key":    token(stranger, user, "https://idp.example"),
		"another issuer": token(private, user, "https://evil.example"),
		// The provider's own token, issued for another of its applications.
		"another audience":     tokenFor(private, user, "https://idp.example", "payroll", time.Now()),
		"issued in the future": tokenFor(private, user, "https://idp.example", "docuvault", time.Now().Add(10*time.Minute)),
	} {
		r := s.Do(t, http.MethodGet, "/api/auth/me/quota", tok, nil)
		var body struct {
			Detail string `json:"detail"`
		}
		if r.Status != http.StatusUnauthorized || json.Unmarshal(r.Body, &body) != nil || body.Detail == "" {
			t.Errorf("%s: %d %s, want 401 with a detail", name, r.Status, r.Body)
		}
	}
}
