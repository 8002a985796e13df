// Package objectstore implements document.Objects on MinIO (or any S3 API)
// with minio-go, as three MinIO identities that each hold one job's rights:
// the services' own (stat, read, delete, list, bucket notifications) on the
// internal endpoint, and two signers on the browser-resolvable endpoint —
// one that may only put objects (upload URLs) and one that may only get
// them (download URLs). Provision creates the identities and their policies
// with MinIO's admin API (madmin-go); CheckSigners refuses signers with more
// rights than their job.
package objectstore
