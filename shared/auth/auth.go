package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// Role is the authorization level carried in a token's "role" claim.
type Role string

const (
	// RoleUser is an ordinary authenticated user.
	RoleUser Role = "user"
	// RoleAdmin is an administrator.
	RoleAdmin Role = "admin"
)

// valid reports whether r is one of the known roles.
func (r Role) valid() bool {
	return r == RoleUser || r == RoleAdmin
}

// Principal is the authenticated caller.
type Principal struct {
	// UserID is the caller's user ID, taken from the token's "sub" claim.
	UserID uuid.UUID
	// Role is the caller's role, taken from the token's "role" claim.
	Role Role
	// Expires is when the token stops being valid, its "exp" claim (the
	// verifier tolerates Leeway beyond it). What outlives one request, such
	// as an event stream, ends at Expires. Mint ignores it (its ttl says).
	Expires time.Time
}

// Config configures verification (and minting) of tokens.
type Config struct {
	// Secret is the HS256 key, at least 32 bytes long. Mint needs it;
	// NewVerifier needs it or PublicKeys.
	Secret []byte
	// PublicKeys verify tokens an identity provider signs (see
	// ParsePublicKeys): RSA keys RS256 tokens, P-256 keys ES256 tokens and
	// Ed25519 keys EdDSA tokens. A token verifies when one key of its
	// algorithm's type does, so a file with the old and the new key rolls a
	// key over.
	PublicKeys []crypto.PublicKey
	// Issuer is checked against the "iss" claim when non-empty, and is set
	// by Mint.
	Issuer string
	// Audience is checked against the "aud" claim when non-empty, and is set
	// by Mint.
	Audience string
	// Leeway is the clock skew tolerated when checking exp, nbf and iat.
	Leeway time.Duration
	// Now is the clock exp, nbf and iat are checked against; nil means
	// time.Now. Mint takes its time as an argument instead.
	Now func() time.Time
}

// minSecretLen is the minimum length in bytes of Config.Secret.
const minSecretLen = 32

// minRSABits is the smallest RSA key accepted.
const minRSABits = 2048

// maxHeaderLen bounds the Authorization header (and the raw token) size.
const maxHeaderLen = 8 << 10

// ErrUnauthorized is wrapped by every error returned from Verifier.Verify
// and passed to the Middleware error callback.
var ErrUnauthorized = errors.New("unauthorized")

// authError is a verification failure. Its message is fixed, short and safe
// to show to a client; it unwraps to ErrUnauthorized.
type authError struct{ msg string }

func (e *authError) Error() string { return e.msg }
func (e *authError) Unwrap() error { return ErrUnauthorized }

var (
	errMissingToken  = &authError{msg: "missing bearer token"}
	errMalformedAuth = &authError{msg: "malformed authorization header"}
	errTokenExpired  = &authError{msg: "token expired"}
	errInvalidToken  = &authError{msg: "invalid token"}
)

// claims is the JWT payload issued by Mint and accepted by Verify.
type claims struct {
	jwt.RegisteredClaims
	Role Role `json:"role,omitempty"`
}

// Verifier checks bearer tokens. It is safe for concurrent use.
//
// A Verifier remembers the tokens it accepted (see tokenCache) for at most
// five minutes and never past their exp. Its keys are fixed when it is
// built: a key taken out of service stops being accepted when a Verifier
// without it replaces this one, whose remembered tokens go with it.
type Verifier struct {
	secret []byte                           // HS256; nil when not configured
	keys   map[string][]jwt.VerificationKey // by algorithm: RS256, ES256, EdDSA
	parser *jwt.Parser
	now    func() time.Time
	leeway time.Duration
	cache  tokenCache
}

// validate checks the parts of cfg that both NewVerifier and Mint rely on.
func (cfg Config) validate() error {
	if len(cfg.Secret) < minSecretLen {
		return fmt.Errorf("auth: secret must be at least %d bytes, got %d", minSecretLen, len(cfg.Secret))
	}
	if cfg.Leeway < 0 {
		return errors.New("auth: leeway must not be negative")
	}
	return nil
}

// NewVerifier returns a Verifier for cfg. It returns an error if there is
// neither a secret nor a public key, if a secret is shorter than 32 bytes,
// if a public key is of a type or size ParsePublicKeys refuses, or if the
// leeway is negative. The secret and the list of keys are copied, so later
// changes to cfg.Secret or cfg.PublicKeys have no effect.
func NewVerifier(cfg Config) (*Verifier, error) {
	v := &Verifier{keys: map[string][]jwt.VerificationKey{}, now: cfg.Now, leeway: cfg.Leeway}
	if v.now == nil {
		v.now = time.Now
	}
	switch {
	case len(cfg.Secret) > 0:
		if err := cfg.validate(); err != nil {
			return nil, err
		}
		v.secret = append([]byte(nil), cfg.Secret...)
	case len(cfg.PublicKeys) == 0:
		return nil, errors.New("auth: a secret or a public key is required")
	case cfg.Leeway < 0:
		return nil, errors.New("auth: leeway must not be negative")
	}
	for i, k := range cfg.PublicKeys {
		alg, err := algorithmOf(k)
		if err != nil {
			return nil, fmt.Errorf("auth: public key %d: %w", i+1, err)
		}
		v.keys[alg] = append(v.keys[alg], k)
	}
	var methods []string
	if v.secret != nil {
		methods = append(methods, jwt.SigningMethodHS256.Alg())
	}
	for _, m := range []jwt.SigningMethod{jwt.SigningMethodRS256, jwt.SigningMethodES256, jwt.SigningMethodEdDSA} {
		if len(v.keys[m.Alg()]) > 0 {
			methods = append(methods, m.Alg())
		}
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(methods),
		jwt.WithExpirationRequired(),
		// A token issued "in the future" (beyond the leeway) is refused:
		// a clock far ahead, or a token minted to outlive its exp window.
		jwt.WithIssuedAt(),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithStrictDecoding(),
		// The cache checks its entries against the same clock.
		jwt.WithTimeFunc(v.now),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

// algorithmOf names the one algorithm key verifies.
func algorithmOf(key crypto.PublicKey) (string, error) {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return "", fmt.Errorf("RSA key of %d bits, want at least %d", k.N.BitLen(), minRSABits)
		}
		return jwt.SigningMethodRS256.Alg(), nil
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return "", fmt.Errorf("ECDSA key on %s, want P-256 (ES256)", k.Curve.Params().Name)
		}
		return jwt.SigningMethodES256.Alg(), nil
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return "", errors.New("malformed Ed25519 key")
		}
		return jwt.SigningMethodEdDSA.Alg(), nil
	default:
		return "", fmt.Errorf("unsupported key type %T (want RSA, ECDSA P-256 or Ed25519)", key)
	}
}

// ParsePublicKeys reads every PEM block of data: "PUBLIC KEY" (PKIX: RSA
// of at least 2048 bits, ECDSA P-256 or Ed25519) or "RSA PUBLIC KEY"
// (PKCS #1). Anything else — a private key, a certificate, text that is not
// PEM — is an error, as is finding no key.
func ParsePublicKeys(data []byte) ([]crypto.PublicKey, error) {
	var keys []crypto.PublicKey
	for n := 1; ; n++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		var key crypto.PublicKey
		var err error
		switch block.Type {
		case "PUBLIC KEY":
			key, err = x509.ParsePKIXPublicKey(block.Bytes)
		case "RSA PUBLIC KEY":
			key, err = x509.ParsePKCS1PublicKey(block.Bytes)
		default:
			err = fmt.Errorf("a %q block, want PUBLIC KEY", block.Type)
		}
		if err == nil {
			_, err = algorithmOf(key)
		}
		if err != nil {
			return nil, fmt.Errorf("auth: PEM block %d: %w", n, err)
		}
		keys = append(keys, key)
	}
	if strings.TrimSpace(string(data)) != "" {
		return nil, errors.New("auth: text after the last PEM block is not PEM")
	}
	if len(keys) == 0 {
		return nil, errors.New("auth: no PEM public key found")
	}
	return keys, nil
}

// Verify parses a raw token string and returns the principal. The algorithm
// is pinned to those configured (HS256 with the secret; RS256, ES256 and
// EdDSA with public keys of the matching type), the exp claim is required, iss and aud are checked when
// configured, sub must be a non-nil UUID in canonical hyphenated form and
// role must be "user" or "admin". Any failure returns an error wrapping
// ErrUnauthorized whose message is safe to show to a client. A token this
// Verifier accepted before is accepted again without these checks while
// the clock says the parser would still accept it, for at most five
// minutes; any other token, and every refusal, goes through them.
func (v *Verifier) Verify(raw string) (Principal, error) {
	if raw == "" {
		return Principal{}, errMissingToken
	}
	if len(raw) > maxHeaderLen {
		return Principal{}, errInvalidToken
	}
	// A token found in the cache passed every check below, its shape too.
	// On the stack, a token of usual size is hashed without an allocation.
	var buf [1024]byte
	key := tokenKey(sha256.Sum256(append(buf[:0], raw...)))
	if p, ok := v.cache.get(key, v.now()); ok {
		return p, nil
	}
	if !isCompactJWS(raw) {
		return Principal{}, errInvalidToken
	}
	e, err := v.verify(raw)
	if err != nil {
		return Principal{}, err
	}
	v.cache.put(key, e, v.now())
	return e.p, nil
}

// verify checks raw with the parser and maps its claims onto a principal.
// It returns it with the times between which the parser's time checks
// pass: from iat and nbf less the leeway until exp plus the leeway.
func (v *Verifier) verify(raw string) (cachedToken, error) {
	var c claims
	_, err := v.parser.ParseWithClaims(raw, &c, v.keyFunc)
	if err != nil {
		if errors.Is(err, jwt.ErrTokenExpired) {
			return cachedToken{}, errTokenExpired
		}
		return cachedToken{}, errInvalidToken
	}
	// uuid.Parse also accepts urn:uuid:, braced and unhyphenated forms;
	// insist on the canonical 36-character form.
	if len(c.Subject) != 36 {
		return cachedToken{}, errInvalidToken
	}
	id, err := uuid.Parse(c.Subject)
	if err != nil || id == uuid.Nil {
		return cachedToken{}, errInvalidToken
	}
	if !c.Role.valid() {
		return cachedToken{}, errInvalidToken
	}
	// ExpiresAt is set: the parser requires exp. iat and nbf are optional.
	e := cachedToken{p: Principal{UserID: id, Role: c.Role, Expires: c.ExpiresAt.Time}, until: c.ExpiresAt.Add(v.leeway)}
	for _, t := range []*jwt.NumericDate{c.IssuedAt, c.NotBefore} {
		if t != nil && t.After(e.from) {
			e.from = t.Time
		}
	}
	e.from = e.from.Add(-v.leeway)
	return e, nil
}

// keyFunc returns the key (or the keys) for the token's algorithm after
// rejecting tokens with critical header parameters this package does not
// understand. An algorithm is only ever checked with keys of its own type:
// an HS256 token is never checked against a public key.
func (v *Verifier) keyFunc(t *jwt.Token) (any, error) {
	if _, ok := t.Header["crit"]; ok {
		return nil, errInvalidToken
	}
	switch t.Method {
	case jwt.SigningMethodHS256:
		if v.secret == nil {
			return nil, errInvalidToken
		}
		return v.secret, nil
	case jwt.SigningMethodRS256, jwt.SigningMethodES256, jwt.SigningMethodEdDSA:
		keys := v.keys[t.Method.Alg()]
		if len(keys) == 0 {
			return nil, errInvalidToken
		}
		return jwt.VerificationKeySet{Keys: keys}, nil
	default:
		return nil, errInvalidToken
	}
}

// isCompactJWS reports whether s consists of exactly three non-empty
// base64url segments separated by dots. This rejects whitespace, padding and
// other characters the base64 decoder would otherwise skip or tolerate.
func isCompactJWS(s string) bool {
	dots := 0
	segLen := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '.':
			if segLen == 0 {
				return false
			}
			dots++
			segLen = 0
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
			segLen++
		default:
			return false
		}
	}
	return dots == 2 && segLen > 0
}

// bearerToken extracts the token from the request's Authorization header.
// It requires exactly one header of the form "Bearer <token>" (scheme
// case-insensitive, a single space, one token) no longer than 8 KiB.
func bearerToken(r *http.Request) (string, error) {
	values := r.Header.Values("Authorization")
	switch len(values) {
	case 0:
		return "", errMissingToken
	case 1:
	default:
		return "", errMalformedAuth
	}
	h := values[0]
	if h == "" {
		return "", errMissingToken
	}
	if len(h) > maxHeaderLen {
		return "", errMalformedAuth
	}
	scheme, token, found := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", errMissingToken
	}
	if !found || token == "" || strings.ContainsAny(token, " \t\r\n") {
		return "", errMalformedAuth
	}
	return token, nil
}

// Middleware returns net/http middleware that reads the
// "Authorization: Bearer <token>" header (scheme case-insensitive, exactly
// one space-separated token, header at most 8 KiB), verifies the token and
// stores the Principal in the request context for the next handler. On
// failure it sets a "WWW-Authenticate: Bearer" response header and calls
// onError with an error wrapping ErrUnauthorized; onError is responsible for
// writing the response. If onError is nil a plain 401 response is written.
// The token is never logged.
func (v *Verifier) Middleware(onError func(http.ResponseWriter, *http.Request, error)) func(http.Handler) http.Handler {
	if onError == nil {
		onError = defaultUnauthorized
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			token, err := bearerToken(r)
			if err == nil {
				var p Principal
				if p, err = v.Verify(token); err == nil {
					next.ServeHTTP(w, r.WithContext(WithPrincipal(r.Context(), p)))
					return
				}
			}
			if errors.Is(err, errMissingToken) {
				w.Header().Set("WWW-Authenticate", "Bearer")
			} else {
				w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			}
			onError(w, r, err)
		})
	}
}

func defaultUnauthorized(w http.ResponseWriter, _ *http.Request, _ error) {
	http.Error(w, http.StatusText(http.StatusUnauthorized), http.StatusUnauthorized)
}

func defaultForbidden(w http.ResponseWriter, _ *http.Request) {
	http.Error(w, http.StatusText(http.StatusForbidden), http.StatusForbidden)
}

// ctxKey is the unexported context key type for the principal.
type ctxKey struct{}

// WithPrincipal returns a copy of ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// FromContext returns the principal stored in ctx by WithPrincipal (or by
// Verifier.Middleware) and whether one was present.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(ctxKey{}).(Principal)
	return p, ok
}

// RequireRole returns middleware that passes the request on only when the
// principal in its context has exactly the given role. Otherwise, including
// when no principal is present, it calls onForbidden, which writes the
// response; if onForbidden is nil a plain 403 response is written.
func RequireRole(role Role, onForbidden func(http.ResponseWriter, *http.Request)) func(http.Handler) http.Handler {
	if onForbidden == nil {
		onForbidden = defaultForbidden
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, ok := FromContext(r.Context())
			if !ok || p.Role != role {
				onForbidden(w, r)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// Mint signs an HS256 token for p that is valid for ttl from now. It sets
// the sub, role, iat, exp and jti (random UUID) claims, and iss and aud from
// cfg when they are non-empty. It returns an error if cfg's secret is too
// short, ttl is not positive, now is zero, p has a nil UserID or p.Role is
// not a known role.
func Mint(cfg Config, p Principal, ttl time.Duration, now time.Time) (string, error) {
	if err := cfg.validate(); err != nil {
		return "", err
	}
	if ttl <= 0 {
		return "", errors.New("auth: ttl must be positive")
	}
	if now.IsZero() {
		return "", errors.New("auth: now must be set")
	}
	if p.UserID == uuid.Nil {
		return "", errors.New("auth: principal has nil user ID")
	}
	if !p.Role.valid() {
		return "", fmt.Errorf("auth: unknown role %q", p.Role)
	}
	jti, err := uuid.NewRandom()
	if err != nil {
		return "", fmt.Errorf("auth: generate jti: %w", err)
	}
	c := claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    cfg.Issuer,
			Subject:   p.UserID.String(),
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
			ID:        jti.String(),
		},
		Role: p.Role,
	}
	if cfg.Audience != "" {
		c.Audience = jwt.ClaimStrings{cfg.Audience}
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(cfg.Secret)
	if err != nil {
		return "", fmt.Errorf("auth: sign token: %w", err)
	}
	return s, nil
}
