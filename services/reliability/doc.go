// Package reliability holds DocuVault's end-to-end reliability tests. It
// owns no production code: its tests drive the real services on real
// PostgreSQL, NATS JetStream and MinIO with many concurrent clients while
// the confirmer restarts and NATS and MinIO go away for a while, and then
// check that the ledger still agrees with itself — every quota equals the
// sizes it was charged, every charged document has its object and exactly
// one document.uploaded event, and no object is left without a row.
package reliability
