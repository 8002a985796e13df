package auth_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"

	"github.com/docuvault/docuvault/shared/auth"
)

// clock is a settable time for a Verifier's Config.Now.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock {
	c := &clock{}
	c.set(t)
	return c
}

func (c *clock) now() time.Time  { return time.Unix(0, c.ns.Load()) }
func (c *clock) set(t time.Time) { c.ns.Store(t.UnixNano()) }

// t0 is a whole second: the claims' times are.
var t0 = time.Unix(1_800_000_000, 0)

// A token verified again gives the same principal, from the one entry the
// first verification left.
func TestVerifyRemembersAnAcceptedToken(t *testing.T) {
	t.Parallel()
	v := newVerifier(t, auth.Config{Secret: testSecret, Now: newClock(t0).now})
	tok := mint(t, baseConfig(), auth.Principal{UserID: testUserID, Role: auth.RoleAdmin}, time.Hour, t0)
	first, err := v.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	if n := auth.CachedTokens(v); n != 1 {
		t.Fatalf("%d tokens cached after one was accepted, want 1", n)
	}
	again, err := v.Verify(tok)
	if err != nil || again != first {
		t.Fatalf("again: %+v, %v; want %+v, nil", again, err, first)
	}
	want := auth.Principal{UserID: testUserID, Role: auth.RoleAdmin, Expires: t0.Add(time.Hour)}
	if !again.Expires.Equal(want.Expires) || again.UserID != want.UserID || again.Role != want.Role {
		t.Fatalf("principal %+v, want %+v", again, want)
	}
	if n := auth.CachedTokens(v); n != 1 {
		t.Fatalf("%d tokens cached, want 1", n)
	}
}

// A cached token is refused from the moment the parser would call it
// expired (exp plus the leeway) and, with the clock set back, before its
// iat and nbf (less the leeway): the cache never says yes where the parser
// says no.
func TestVerifyRefusesACachedTokenOutsideItsTimes(t *testing.T) {
	t.Parallel()
	const leeway = 30 * time.Second
	clk := newClock(t0)
	v := newVerifier(t, auth.Config{Secret: testSecret, Leeway: leeway, Now: clk.now})
	nbf := t0.Add(10 * time.Second)
	tok := sign(t, jwt.SigningMethodHS256, testSecret, jwt.MapClaims{
		"sub": testUserID.String(), "role": "user", "iat": t0.Unix(), "nbf": nbf.Unix(), "exp": t0.Add(time.Minute).Unix(),
	})
	for _, tt := range []struct {
		name string
		at   time.Time
		want error // nil: accepted
	}{
		{"at iat", t0, nil},
		{"just before exp plus the leeway", t0.Add(time.Minute + leeway - time.Nanosecond), nil},
		{"at exp plus the leeway", t0.Add(time.Minute + leeway), auth.ErrUnauthorized},
		{"later", t0.Add(time.Hour), auth.ErrUnauthorized},
		{"back at nbf less the leeway", nbf.Add(-leeway), nil},
		{"back before nbf less the leeway", nbf.Add(-leeway - time.Nanosecond), auth.ErrUnauthorized},
	} {
		clk.set(tt.at)
		_, err := v.Verify(tok)
		if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
	clk.set(t0.Add(time.Hour))
	if _, err := v.Verify(tok); err == nil || err.Error() != "token expired" {
		t.Fatalf("expired and cached: %v, want token expired", err)
	}
}

// A token that is not valid yet is refused and not remembered, so that it
// is checked again rather than accepted early once it is.
func TestVerifyDoesNotCacheATokenNotValidYet(t *testing.T) {
	t.Parallel()
	clk := newClock(t0)
	v := newVerifier(t, auth.Config{Secret: testSecret, Now: clk.now})
	tok := sign(t, jwt.SigningMethodHS256, testSecret, jwt.MapClaims{
		"sub": testUserID.String(), "role": "user", "nbf": t0.Add(time.Minute).Unix(), "exp": t0.Add(time.Hour).Unix(),
	})
	if _, err := v.Verify(tok); !errors.Is(err, auth.ErrUnauthorized) {
		t.Fatalf("before nbf: %v, want unauthorized", err)
	}
	if n := auth.CachedTokens(v); n != 0 {
		t.Fatalf("%d tokens cached, want 0", n)
	}
	clk.set(t0.Add(time.Minute))
	if _, err := v.Verify(tok); err != nil {
		t.Fatalf("at nbf: %v", err)
	}
}

// Only tokens that verify are remembered: garbage, forgeries and tokens
// refused for their claims leave the cache empty however many arrive.
func TestVerifyNeverCachesARefusal(t *testing.T) {
	t.Parallel()
	v := newVerifier(t, auth.Config{Secret: testSecret, Now: newClock(t0).now})
	valid := func(mut func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"sub": testUserID.String(), "role": "user", "iat": t0.Unix(), "exp": t0.Add(time.Hour).Unix()}
		mut(c)
		return c
	}
	refused := []string{
		"", "garbage", "a.b.c", "a.b.c.d",
		sign(t, jwt.SigningMethodHS256, otherSecret, valid(func(jwt.MapClaims) {})),
		sign(t, jwt.SigningMethodHS256, testSecret, valid(func(c jwt.MapClaims) { c["exp"] = t0.Add(-time.Second).Unix() })),
		sign(t, jwt.SigningMethodHS256, testSecret, valid(func(c jwt.MapClaims) { c["role"] = "root" })),
		sign(t, jwt.SigningMethodHS256, testSecret, valid(func(c jwt.MapClaims) { c["sub"] = "nobody" })),
		sign(t, jwt.SigningMethodHS256, testSecret, valid(func(c jwt.MapClaims) { delete(c, "exp") })),
		unsignedToken(t, valid(func(jwt.MapClaims) {})),
	}
	for i := range 1000 {
		refused = append(refused, sign(t, jwt.SigningMethodHS256, otherSecret, valid(func(c jwt.MapClaims) { c["jti"] = fmt.Sprint(i) })))
	}
	for _, tok := range refused {
		for range 2 {
			if _, err := v.Verify(tok); !errors.Is(err, auth.ErrUnauthorized) {
				t.Fatalf("Verify(%.40q…) = %v, want unauthorized", tok, err)
			}
		}
	}
	if n := auth.CachedTokens(v); n != 0 {
		t.Fatalf("%d tokens cached after %d refusals, want 0", n, len(refused))
	}
}

// A flood of distinct valid tokens costs entries, not memory: the cache
// stays at its bound and every token is still accepted.
func TestVerifyCacheStaysBoundedUnderDistinctTokens(t *testing.T) {
	t.Parallel()
	v := newVerifier(t, auth.Config{Secret: testSecret, Now: newClock(t0).now})
	const tokens = 12_000
	for range tokens {
		tok := mint(t, baseConfig(), auth.Principal{UserID: uuid.New(), Role: auth.RoleUser}, time.Hour, t0)
		if _, err := v.Verify(tok); err != nil {
			t.Fatal(err)
		}
	}
	if n := auth.CachedTokens(v); n > 10_000 {
		t.Fatalf("%d tokens cached after %d distinct ones, want at most 10000", n, tokens)
	}
}

// A key goes out of service when the Verifier is rebuilt without it (a
// public key file with the old key removed, a new JWT_SECRET): the new
// Verifier refuses what the old one accepted and remembered.
func TestVerifierWithoutAKeyRefusesTokensCachedWithIt(t *testing.T) {
	t.Parallel()
	old, next := newSigners(t)[2], newSigners(t)[2]
	both := verifierOf(t, nil, pemOf(t, old.key.Public(), next.key.Public()))
	oldTok, nextTok := sign(t, old.method, old.key, validClaims()), sign(t, next.method, next.key, validClaims())
	for _, tok := range []string{oldTok, nextTok} {
		if _, err := both.Verify(tok); err != nil {
			t.Fatalf("with both keys: %v", err)
		}
	}
	if n := auth.CachedTokens(both); n != 2 {
		t.Fatalf("%d tokens cached, want 2", n)
	}
	nextOnly := verifierOf(t, nil, pemOf(t, next.key.Public()))
	if _, err := nextOnly.Verify(oldTok); !errors.Is(err, auth.ErrUnauthorized) {
		t.Fatalf("the removed key's token: %v, want unauthorized", err)
	}
	if _, err := nextOnly.Verify(nextTok); err != nil {
		t.Fatalf("the kept key's token: %v", err)
	}
	// The old Verifier, still serving until it is replaced, is unchanged.
	if _, err := both.Verify(oldTok); err != nil {
		t.Fatalf("the old verifier: %v", err)
	}
}

// Concurrent verifications of the same and of different tokens each get
// their own token's principal (run with -race).
func TestVerifyConcurrently(t *testing.T) {
	t.Parallel()
	clk := newClock(t0)
	v := newVerifier(t, auth.Config{Secret: testSecret, Now: clk.now})
	type pair struct {
		tok  string
		user uuid.UUID
	}
	var pairs []pair
	for range 64 {
		u := uuid.New()
		pairs = append(pairs, pair{mint(t, baseConfig(), auth.Principal{UserID: u, Role: auth.RoleUser}, time.Hour, t0), u})
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				if g == 0 && i%500 == 0 {
					// Past cacheMaxAge: entries are checked again meanwhile.
					clk.set(clk.now().Add(6 * time.Minute / 4))
				}
				pr := pairs[(g*7+i)%len(pairs)]
				p, err := v.Verify(pr.tok)
				if err != nil || p.UserID != pr.user {
					errs <- fmt.Errorf("token of %s: %v, %v", pr.user, p.UserID, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// BenchmarkVerify compares a token's first verification (the signature
// and the claims) with the next ones (the cache).
func BenchmarkVerify(b *testing.B) {
	v, err := auth.NewVerifier(baseConfig())
	if err != nil {
		b.Fatal(err)
	}
	p := auth.Principal{UserID: testUserID, Role: auth.RoleUser}
	b.Run("first", func(b *testing.B) {
		toks := make([]string, b.N)
		for i := range toks {
			if toks[i], err = auth.Mint(baseConfig(), p, time.Hour, time.Now()); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			if _, err := v.Verify(toks[i]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("again", func(b *testing.B) {
		tok, err := auth.Mint(baseConfig(), p, time.Hour, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Verify(tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}
