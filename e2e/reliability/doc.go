// Package reliability holds DocuVault's end-to-end reliability tests. It
// owns no production code: its tests drive the real services on real
// PostgreSQL, NATS JetStream and MinIO with many concurrent clients —
// single PUTs and multipart uploads, completed, deleted part-way or
// abandoned — while the confirmer restarts and NATS and MinIO go away for
// a while, and then check that the ledger still agrees with itself: every
// quota equals the sizes it was charged and the reservations of its
// pending uploads, and never exceeds its limit (sampled throughout the
// run), every charged document has its object and exactly one
// document.uploaded event, and no object or incomplete multipart upload is
// left without its document.
package reliability
