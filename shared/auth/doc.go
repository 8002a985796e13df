// Package auth verifies the JSON Web Tokens used to authenticate callers of
// the HTTP API, and mints HS256 ones.
//
// A [Verifier] is built from a [Config] whose HMAC secret, public keys
// (read with [ParsePublicKeys]), issuer and audience are supplied by the
// caller (this package never reads the environment). [Verifier.Verify] pins
// the signing algorithm to those configured — HS256 with the secret, RS256,
// ES256 and EdDSA each with public keys of its own type — requires an expiry, checks the issuer and audience when configured and
// maps the token's claims onto a [Principal]. [Verifier.Middleware] wraps an
// [http.Handler], extracts the bearer token from the Authorization header and
// stores the resulting principal in the request context, where
// [FromContext] retrieves it; [RequireRole] restricts a route to one role.
// [Mint] issues tokens that a Verifier with the same Config accepts.
//
// A client sends the same token with each of its requests, so a Verifier
// remembers the tokens it accepted — by their SHA-256, at most 10,000, for
// at most five minutes and never outside the times the token is valid —
// and accepts them again without checking the signature and the claims.
// Refusals are never remembered.
//
// Every verification failure wraps [ErrUnauthorized] and carries a short
// message that is safe to show to a client; token contents are never echoed
// in errors and never logged.
package auth
