package auth

import (
	"crypto/sha256"
	"sync"
	"time"
)

// A client sends the same token with every request for the token's whole
// life, and checking its signature (and decoding its JSON) is most of what
// authenticating a request costs. The Verifier remembers the tokens it has
// accepted, by the SHA-256 of the token (never the token itself), and
// accepts one again without checking it while every time check the parser
// made would still pass.

// cacheEntries bounds how many accepted tokens a Verifier remembers. An
// entry is about 150 bytes: 10,000 of them are under 2 MiB.
const cacheEntries = 10_000

// cacheMaxAge bounds how long a token is accepted without being checked
// again, however long it is valid.
const cacheMaxAge = 5 * time.Minute

// cacheShards divides the cache so that concurrent requests seldom wait for
// the same lock.
const cacheShards = 16

// tokenKey is the SHA-256 of a raw token.
type tokenKey [sha256.Size]byte

// cachedToken is a token that verified: its principal and the times between
// which it may be accepted without verifying it again.
type cachedToken struct {
	p Principal
	// from is the earliest time the parser accepts the token: its iat and
	// nbf less the leeway. A clock set back before it gets the parser's
	// answer, not the cache's.
	from time.Time
	// until is the first time the token is not accepted from the cache:
	// its exp plus the leeway (when the parser calls it expired), or
	// cacheMaxAge after it was cached, whichever comes first.
	until time.Time
}

// tokenCache holds the tokens a Verifier accepted, at most cacheEntries,
// in cacheShards shards each under its own lock. Only tokens that verified
// are ever added, so garbage cannot fill it; when a shard is full an
// arbitrary entry of it makes room, so a flood of distinct valid tokens
// costs the others their entry, never memory.
type tokenCache struct {
	shards [cacheShards]cacheShard
}

type cacheShard struct {
	mu      sync.RWMutex
	entries map[tokenKey]cachedToken
}

func (c *tokenCache) shard(k tokenKey) *cacheShard {
	return &c.shards[k[0]%cacheShards]
}

// get returns the principal of the token k when it is cached and may be
// accepted at now.
func (c *tokenCache) get(k tokenKey, now time.Time) (Principal, bool) {
	s := c.shard(k)
	s.mu.RLock()
	e, ok := s.entries[k]
	s.mu.RUnlock()
	if !ok || now.Before(e.from) || !now.Before(e.until) {
		return Principal{}, false
	}
	return e.p, true
}

// put remembers that the token k verified at now as e, unless e may not be
// accepted at now (the max age cuts e.until to at most now+cacheMaxAge).
func (c *tokenCache) put(k tokenKey, e cachedToken, now time.Time) {
	if limit := now.Add(cacheMaxAge); e.until.After(limit) {
		e.until = limit
	}
	if now.Before(e.from) || !now.Before(e.until) {
		return
	}
	s := c.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.entries == nil {
		s.entries = make(map[tokenKey]cachedToken)
	}
	if _, ok := s.entries[k]; !ok && len(s.entries) >= cacheEntries/cacheShards {
		// Map iteration starts at a random entry: an arbitrary victim.
		for victim := range s.entries {
			delete(s.entries, victim)
			break
		}
	}
	s.entries[k] = e
}

// len returns how many tokens are cached.
func (c *tokenCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.entries)
		s.mu.RUnlock()
	}
	return n
}
