// Package objectstore implements document.Objects on MinIO (or any S3 API)
// with minio-go: an internal client for stat, delete and bucket set-up, and a
// public client, built on the browser-resolvable endpoint, that only signs.
package objectstore
