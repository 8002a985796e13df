// Package e2e holds nothing but this note: its folders are DocuVault's
// end-to-end suites, which own no production code and drive the real
// roles on real PostgreSQL, NATS JetStream and MinIO — cluster (a NATS
// node lost), reliability (outages and the ledger), security (what a
// presigned URL's holder can do) and soak (the event plane under a
// month's traffic in minutes).
package e2e
