// Package security holds DocuVault's tests of what the holder of a
// presigned URL can do with it, against the real services on real
// PostgreSQL, NATS JetStream and MinIO. It owns no production code. An
// upload URL may do one thing: one PUT of one key, of the signed type (and
// size when declared), until it expires; whatever else a client tries
// through it — extra headers, another method, the URL used again after a
// rejection or a delete — either MinIO refuses or the confirmer undoes
// within seconds, and stored bytes keep equalling charged bytes.
package security
