// Package objectstore implements document.Objects on MinIO (or any S3 API)
// with minio-go. Each job has a MinIO identity of its own, holding that
// job's rights and no more: one per role (Roles: api, confirmer, sweeper,
// classifier; RolePolicy grants the calls each role's code makes) on the
// internal endpoint, and two signers on the browser-resolvable endpoint —
// one that may only put objects (upload URLs) and one that may only get
// them (download URLs). Provision creates the bucket, the identities and
// their policies with MinIO's admin API (madmin-go); CheckSigners, the
// api's start-up check, proves with probes that store nothing that the
// signers, the api's identity and the bucket grant no more than their job.
package objectstore
