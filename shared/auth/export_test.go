package auth

// CachedTokens returns how many tokens v remembers having accepted.
func CachedTokens(v *Verifier) int { return v.cache.len() }
