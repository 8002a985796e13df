package auth

import (
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
)

func keyOf(s string) tokenKey { return tokenKey(sha256.Sum256([]byte(s))) }

// TestTokenCacheBounds: an entry is served from its from (inclusive) to its
// until (exclusive), and never past cacheMaxAge after it was cached however
// long its token lives.
func TestTokenCacheBounds(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	p := Principal{UserID: uuid.New(), Role: RoleUser, Expires: now.Add(24 * time.Hour)}
	var c tokenCache
	c.put(keyOf("day"), cachedToken{p: p, from: now.Add(-time.Minute), until: now.Add(24 * time.Hour)}, now)
	c.put(keyOf("minute"), cachedToken{p: p, from: now.Add(-time.Minute), until: now.Add(time.Minute)}, now)
	for _, tt := range []struct {
		key  string
		at   time.Time
		want bool
	}{
		{"day", now, true},
		{"day", now.Add(-time.Minute), true},
		{"day", now.Add(-time.Minute - time.Nanosecond), false},
		{"day", now.Add(cacheMaxAge - time.Nanosecond), true},
		{"day", now.Add(cacheMaxAge), false},
		{"minute", now.Add(time.Minute - time.Nanosecond), true},
		{"minute", now.Add(time.Minute), false},
		{"never put", now, false},
	} {
		got, ok := c.get(keyOf(tt.key), tt.at)
		if ok != tt.want || (ok && got != p) {
			t.Errorf("get(%s) at now%+v = %v, %v; want %v", tt.key, tt.at.Sub(now), got, ok, tt.want)
		}
	}
}

// TestTokenCacheRefusesWhatItCouldNotServe: an entry already out of its
// bounds when it is put is not kept at all.
func TestTokenCacheRefusesWhatItCouldNotServe(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	var c tokenCache
	c.put(keyOf("not yet"), cachedToken{from: now.Add(time.Second), until: now.Add(time.Hour)}, now)
	c.put(keyOf("over"), cachedToken{from: now.Add(-time.Hour), until: now}, now)
	if n := c.len(); n != 0 {
		t.Fatalf("%d entries, want 0", n)
	}
}

// TestTokenCacheStaysBounded: past cacheEntries distinct tokens the cache
// makes room instead of growing, and the newest token is always kept.
func TestTokenCacheStaysBounded(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	var c tokenCache
	for i := range 3 * cacheEntries {
		k := keyOf(fmt.Sprint(i))
		c.put(k, cachedToken{from: now, until: now.Add(time.Hour)}, now)
		if _, ok := c.get(k, now); !ok {
			t.Fatalf("token %d was not kept", i)
		}
	}
	if n := c.len(); n > cacheEntries || n < cacheEntries*9/10 {
		t.Fatalf("%d entries after %d distinct tokens, want at most %d and most of them used", n, 3*cacheEntries, cacheEntries)
	}
}
