package objectstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/docuvault/docuvault/shared/document"
)

var _ document.Objects = (*Store)(nil)

// Credentials are one MinIO identity's keys.
type Credentials struct {
	AccessKey string
	SecretKey string
}

// Config locates the bucket and the two endpoints, and names the
// identities the store works as.
type Config struct {
	Endpoint       string // host:port the services reach
	PublicEndpoint string // host:port browsers reach; "" means Endpoint
	// Service is the identity the store does its own work as: the role's
	// of the process (each role's process builds its Store with its own
	// role's credentials; RolePolicy says what each may do).
	Service Credentials
	// Role names the role whose identity Service is (one of Roles), for
	// messages: MINIO_<ROLE>_ACCESS_KEY. "" names it "the store's identity".
	Role string
	// Upload signs upload URLs; it may only put objects (UploadPolicy).
	Upload Credentials
	// Download signs download URLs; it may only get objects (DownloadPolicy).
	Download Credentials
	Bucket   string
	Region   string
	UseTLS   bool // TLS to Endpoint
	// PublicUseTLS is TLS to PublicEndpoint: the scheme of the presigned
	// URLs browsers use, apart from UseTLS (a proxy in front of MinIO may
	// serve HTTPS to browsers while the services reach MinIO directly).
	PublicUseTLS bool
}

// serviceKey names the variable of the store's own access key, for
// messages.
func (cfg Config) serviceKey() string {
	if cfg.Role == "" {
		return "the store's identity"
	}
	return "MINIO_" + strings.ToUpper(cfg.Role) + "_ACCESS_KEY"
}

// Store is the MinIO document.Objects.
type Store struct {
	internal *minio.Client // as Service, on Endpoint
	core     minio.Core    // internal's multipart calls
	// writer is the Upload identity on Endpoint: it starts and completes
	// multipart uploads, the only writes the services make.
	writer minio.Core
	// The signers are on PublicEndpoint: a URL is signed for the host the
	// browser sends it to, with its scheme (PublicUseTLS).
	uploads   *minio.Client
	downloads *minio.Client
	cfg       Config
}

// New returns a Store. It does not touch the network.
func New(cfg Config) (*Store, error) {
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.PublicEndpoint == "" {
		cfg.PublicEndpoint = cfg.Endpoint
	}
	// Few retries: a caller waiting on an unreachable store should hear
	// "unavailable" in about a second, and consumers retry on their own.
	internal, err := newClient(cfg.Endpoint, cfg.Service, cfg.UseTLS, cfg.Region, 3)
	if err != nil {
		return nil, err
	}
	// The region is set so that signing never asks the public endpoint,
	// which may not resolve from where the service runs.
	uploads, err := newClient(cfg.PublicEndpoint, cfg.Upload, cfg.PublicUseTLS, cfg.Region, 0)
	if err != nil {
		return nil, err
	}
	downloads, err := newClient(cfg.PublicEndpoint, cfg.Download, cfg.PublicUseTLS, cfg.Region, 0)
	if err != nil {
		return nil, err
	}
	writer, err := newClient(cfg.Endpoint, cfg.Upload, cfg.UseTLS, cfg.Region, 3)
	if err != nil {
		return nil, err
	}
	return &Store{internal: internal, core: minio.Core{Client: internal}, writer: minio.Core{Client: writer},
		uploads: uploads, downloads: downloads, cfg: cfg}, nil
}

// newClient returns a minio-go client of endpoint acting as id, over TLS
// if secure; retries 0 means minio-go's default.
func newClient(endpoint string, id Credentials, secure bool, region string, retries int) (*minio.Client, error) {
	opts := &minio.Options{Creds: credentials.NewStaticV4(id.AccessKey, id.SecretKey, ""), Secure: secure, Region: region}
	if retries > 0 {
		opts.MaxRetries = retries
	}
	c, err := minio.New(endpoint, opts)
	if err != nil {
		return nil, fmt.Errorf("minio client for %s: %w", endpoint, err)
	}
	return c, nil
}

// Bucket returns the bucket's name.
func (s *Store) Bucket() string { return s.cfg.Bucket }

// CheckBucket reports whether the bucket exists and the store's identity
// may see it (HeadBucket). The bucket is made by `docuvault setup`
// (Provision): no role's identity may create buckets.
func (s *Store) CheckBucket(ctx context.Context) error {
	exists, err := s.internal.BucketExists(ctx, s.cfg.Bucket)
	if err != nil {
		if minio.ToErrorResponse(err).StatusCode == http.StatusForbidden {
			return fmt.Errorf("%s %q may not see bucket %q: give it its role's policy (`docuvault setup` does): %w", s.cfg.serviceKey(), s.cfg.Service.AccessKey, s.cfg.Bucket, err)
		}
		return translate(err, "check bucket")
	}
	if !exists {
		return fmt.Errorf("bucket %q does not exist: run `docuvault setup` (with MINIO_ADMIN_ACCESS_KEY and MINIO_ADMIN_SECRET_KEY) to create it", s.cfg.Bucket)
	}
	return nil
}

// Ping reports whether the bucket can be reached.
func (s *Store) Ping(ctx context.Context) error {
	_, err := s.internal.BucketExists(ctx, s.cfg.Bucket)
	return translate(err, "reach object store")
}

// PresignPut signs a PUT of key. The content type, and the size when > 0,
// are signed headers: MinIO answers 403 to a body of another size or type.
// A checksum (unless zero) is signed as x-amz-checksum-sha256: MinIO
// answers a body that does not match it 400 XAmzContentChecksumMismatch,
// the PUT without the header 400 AccessDenied (a signed header missing),
// with another value 403 SignatureDoesNotMatch, and with a second checksum
// of another algorithm (header or trailer) 400 InvalidArgument or
// XAmzContentChecksumMismatch: only the declared bytes are stored
// (TestASignedChecksumStoresOnlyItsBytes).
// The headers returned are those the client must set itself: not
// Content-Length, which no browser script may set (the browser sends the
// body's length, and it must be the signed one).
func (s *Store) PresignPut(ctx context.Context, key, contentType string, size int64, checksum document.Checksum, ttl time.Duration) (string, map[string]string, error) {
	h := http.Header{}
	h.Set("Content-Type", contentType)
	// If-None-Match: * makes the URL good for one object: once it is
	// stored, another PUT gets 412 and cannot replace the bytes that were
	// stat'ed and charged (without a declared size, even by a larger file).
	h.Set("If-None-Match", "*")
	headers := map[string]string{"Content-Type": contentType, "If-None-Match": "*"}
	if size > 0 {
		h.Set("Content-Length", strconv.FormatInt(size, 10))
	}
	switch checksum.Algorithm {
	case "":
	case document.ChecksumSHA256:
		h.Set(checksumSHA256Header, checksum.Value)
		headers[checksumSHA256Header] = checksum.Value
	default:
		return "", nil, fmt.Errorf("sign upload: no checksum header for algorithm %q", checksum.Algorithm)
	}
	u, err := s.uploads.PresignHeader(ctx, http.MethodPut, s.cfg.Bucket, key, ttl, nil, h)
	if err != nil {
		return "", nil, translate(err, "sign upload")
	}
	return u.String(), headers, nil
}

// checksumSHA256Header carries a PUT's SHA-256 checksum, as S3 names it.
const checksumSHA256Header = "x-amz-checksum-sha256"

// Download overrides: what a download answers whatever the uploader sent.
const (
	// DownloadContentEncoding replaces a stored Content-Encoding: a PUT
	// with "Content-Encoding: gzip" would make a browser inflate what it
	// downloads (a small upload turning into a large file, or bytes other
	// than those stored and classified). "identity" is no encoding.
	DownloadContentEncoding = "identity"
	// DownloadCacheControl replaces a stored Cache-Control ("public,
	// max-age=31536000" would let shared caches keep a user's document):
	// a download is kept by no cache.
	DownloadCacheControl = "private, no-store"
)

// PresignGet signs a GET of key that downloads as filename. Besides the
// signed Content-Type, MinIO stores the Content-Encoding, Cache-Control,
// Content-Language and Expires a PUT carries, and serves them on every GET;
// no condition key of MinIO's policies names those headers (its keys are
// the x-amz-* ones, see github.com/minio/pkg/v3/policy/condition
// keyname.go), so the upload identity's policy cannot deny them on the PUT.
// The URL therefore overrides, in its signed query (MinIO's
// supportedHeadGetReqParams: response-content-type, -cache-control,
// -content-encoding, -content-language, -content-disposition, -expires),
// the disposition (an attachment named filename), the encoding and the
// caching. (The language and an Expires are left: no-store makes Expires
// moot, and a language changes nothing a browser does with an attachment.)
func (s *Store) PresignGet(ctx context.Context, key, filename string, ttl time.Duration) (string, error) {
	params := url.Values{}
	params.Set("response-content-disposition", mime.FormatMediaType("attachment", map[string]string{"filename": filename}))
	params.Set("response-content-encoding", DownloadContentEncoding)
	params.Set("response-cache-control", DownloadCacheControl)
	u, err := s.downloads.PresignedGetObject(ctx, s.cfg.Bucket, key, ttl, params)
	if err != nil {
		return "", translate(err, "sign download")
	}
	return u.String(), nil
}

// Stat returns the stored object's size, etag and checksums (checksum
// mode: the same HEAD answers them).
func (s *Store) Stat(ctx context.Context, key string) (document.ObjectInfo, error) {
	info, err := s.internal.StatObject(ctx, s.cfg.Bucket, key, minio.StatObjectOptions{Checksum: true})
	if err != nil {
		return document.ObjectInfo{}, translate(err, "stat object")
	}
	sums := map[document.ChecksumAlgorithm]string{}
	switch v := info.ChecksumSHA256; {
	case strings.Contains(v, "-"): // S3's composite of a multipart object's parts: digest-N
		sums[document.ChecksumSHA256Composite] = v
	case v != "":
		sums[document.ChecksumSHA256] = v
	}
	return document.ObjectInfo{Size: info.Size, ETag: info.ETag, ContentType: info.ContentType, LastModified: info.LastModified, Checksums: sums}, nil
}

// Remove deletes key; a missing object is not an error.
func (s *Store) Remove(ctx context.Context, key string) error {
	return translate(s.internal.RemoveObject(ctx, s.cfg.Bucket, key, minio.RemoveObjectOptions{}), "remove object")
}

// uploadMissing is the client text for an object that is not there.
const uploadMissing = "Upload not found — presigned URL may have expired"

// translate maps minio-go errors to document errors: a missing object is
// UploadMissing, an unreachable server Unavailable.
func translate(err error, action string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	resp := minio.ToErrorResponse(err)
	switch {
	case resp.Code == minio.NoSuchKey || resp.StatusCode == http.StatusNotFound && resp.Code != minio.NoSuchBucket:
		return &document.Error{Code: document.UploadMissing, Message: uploadMissing, Err: err}
	case resp.StatusCode >= 500 || resp.Code == "XMinioServerNotInitialized":
		return &document.Error{Code: document.Unavailable, Message: "object store unavailable", Err: err}
	}
	var netErr net.Error
	var urlErr *url.Error
	if errors.As(err, &netErr) || errors.As(err, &urlErr) {
		return &document.Error{Code: document.Unavailable, Message: "object store unavailable", Err: err}
	}
	return &document.Error{Code: document.Internal, Message: action + " failed", Err: err}
}

// ListAfter returns up to limit objects whose keys sort after after, in
// key order. Each page is a request of its own that starts after the last
// key of the one before: a continuation token would have MinIO walk the
// rest of the bucket into its listing cache, a cost that grows with the
// bucket, while a page without one stops at its limit.
func (s *Store) ListAfter(ctx context.Context, after string, limit int) ([]document.ListedObject, error) {
	out := make([]document.ListedObject, 0, min(limit, 1000))
	noOwner := false
	for len(out) < limit {
		n := min(limit-len(out), 1000)
		opts := minio.ListObjectsOptions{Recursive: true, StartAfter: after, MaxKeys: n, FetchOwner: &noOwner}
		got := 0
		// The iterator asks for the next page only if the loop goes on
		// past this page's last object.
		for obj := range s.internal.ListObjectsIter(ctx, s.cfg.Bucket, opts) {
			if obj.Err != nil {
				return nil, translate(obj.Err, "list objects")
			}
			// minio-go strips the ETag's quotes in listings as in stats.
			out = append(out, document.ListedObject{Key: obj.Key, Size: obj.Size, ETag: obj.ETag, LastModified: obj.LastModified})
			after = obj.Key
			if got++; got == n {
				break
			}
		}
		if got < n {
			break // the end of the bucket
		}
	}
	return out, nil
}

// ReadPrefix returns at most n bytes from the start of the object, with a
// range GET, so a large document is never read whole.
func (s *Store) ReadPrefix(ctx context.Context, key string, n int64) ([]byte, error) {
	opts := minio.GetObjectOptions{}
	if err := opts.SetRange(0, n-1); err != nil {
		return nil, err
	}
	obj, err := s.internal.GetObject(ctx, s.cfg.Bucket, key, opts)
	if err != nil {
		return nil, translate(err, "read object")
	}
	defer obj.Close()
	data, err := io.ReadAll(io.LimitReader(obj, n))
	if err != nil {
		if minio.ToErrorResponse(err).Code == "InvalidRange" {
			return nil, nil // an empty object has no byte 0
		}
		return nil, translate(err, "read object")
	}
	return data, nil
}

// Open streams key's object from the start, with If-Match etag: an object
// replaced since (by a tool with other credentials) is Conflict, not
// read. The request is made here, so a missing object or an unreachable
// server is an error of Open, not of the first read.
func (s *Store) Open(ctx context.Context, key, etag string) (io.ReadCloser, error) {
	opts := minio.GetObjectOptions{}
	if err := opts.SetMatchETag(etag); err != nil {
		return nil, err
	}
	r, _, _, err := s.core.GetObject(ctx, s.cfg.Bucket, key, opts)
	if minio.ToErrorResponse(err).StatusCode == http.StatusPreconditionFailed {
		return nil, &document.Error{Code: document.Conflict, Message: "the object was replaced", Err: err}
	}
	if err != nil {
		return nil, translate(err, "open object")
	}
	return r, nil
}

// CreateMultipart starts a multipart upload of key as the upload identity,
// the one identity that may write objects. With checksummed, the upload
// declares SHA-256 (x-amz-checksum-algorithm): MinIO then takes a part only
// with its x-amz-checksum-sha256, which each part URL signs, and keeps each
// part's digest for the completion.
func (s *Store) CreateMultipart(ctx context.Context, key, contentType string, checksummed bool) (string, error) {
	opts := minio.PutObjectOptions{ContentType: contentType}
	if checksummed {
		opts.UserMetadata = map[string]string{"X-Amz-Checksum-Algorithm": "SHA256"}
	}
	id, err := s.writer.NewMultipartUpload(ctx, s.cfg.Bucket, key, opts)
	return id, translate(err, "start multipart upload")
}

// PresignPart signs a PUT of part p.Number of the upload, with its size
// signed: MinIO answers 403 to a body of another length; and, when
// p.ChecksumSHA256 is set, its SHA-256 (x-amz-checksum-sha256, which the
// client sends): other bytes are refused, 400 XAmzContentChecksumMismatch,
// and the part may be sent again. The URL carries no other right: the
// upload identity may not read, so an UploadPartCopy (x-amz-copy-source)
// through it is refused.
func (s *Store) PresignPart(ctx context.Context, key, uploadID string, p document.Part, size int64, ttl time.Duration) (string, error) {
	q := url.Values{}
	q.Set("partNumber", strconv.Itoa(p.Number))
	q.Set("uploadId", uploadID)
	h := http.Header{}
	h.Set("Content-Length", strconv.FormatInt(size, 10))
	if p.ChecksumSHA256 != "" {
		h.Set(checksumSHA256Header, p.ChecksumSHA256)
	}
	u, err := s.uploads.PresignHeader(ctx, http.MethodPut, s.cfg.Bucket, key, ttl, q, h)
	if err != nil {
		return "", translate(err, "sign part upload")
	}
	return u.String(), nil
}

// ListParts returns the parts the upload holds, in number order.
func (s *Store) ListParts(ctx context.Context, key, uploadID string) ([]document.Part, error) {
	var parts []document.Part
	marker := 0
	for {
		res, err := s.core.ListObjectParts(ctx, s.cfg.Bucket, key, uploadID, marker, 1000)
		if err != nil {
			return nil, translate(err, "list parts")
		}
		for _, p := range res.ObjectParts {
			parts = append(parts, document.Part{Number: p.PartNumber, Size: p.Size, ETag: strings.Trim(p.ETag, `"`), ChecksumSHA256: p.ChecksumSHA256})
		}
		if !res.IsTruncated || res.NextPartNumberMarker <= marker || len(parts) > document.MaxParts {
			return parts, nil
		}
		marker = res.NextPartNumberMarker
	}
}

// CompleteMultipart makes key's object from parts, with If-None-Match: *
// so that an object stored under key already is never replaced.
func (s *Store) CompleteMultipart(ctx context.Context, key, uploadID string, parts []document.Part) error {
	complete := make([]minio.CompletePart, len(parts))
	for i, p := range parts {
		complete[i] = minio.CompletePart{PartNumber: p.Number, ETag: p.ETag, ChecksumSHA256: p.ChecksumSHA256}
	}
	opts := minio.PutObjectOptions{}
	opts.SetMatchETagExcept("*")
	_, err := s.writer.CompleteMultipartUpload(ctx, s.cfg.Bucket, key, uploadID, complete, opts)
	if err == nil {
		return nil
	}
	switch resp := minio.ToErrorResponse(err); {
	case resp.StatusCode == http.StatusPreconditionFailed:
		return &document.Error{Code: document.Conflict, Message: "an object is stored under the key already", Err: err}
	case resp.Code == "InvalidPart" || resp.Code == "InvalidPartOrder" || resp.Code == "EntityTooSmall":
		return &document.Error{Code: document.Invalid, Message: "the parts changed while completing: list them and complete again", Err: err}
	}
	return translate(err, "complete multipart upload")
}

// AbortMultipart drops the upload and its parts; a missing upload is not
// an error.
func (s *Store) AbortMultipart(ctx context.Context, key, uploadID string) error {
	err := s.core.AbortMultipartUpload(ctx, s.cfg.Bucket, key, uploadID)
	if document.ErrorCode(translate(err, "")) == document.UploadMissing {
		return nil
	}
	return translate(err, "abort multipart upload")
}

// AbortUploads aborts every incomplete multipart upload of exactly key:
// MinIO lists incomplete uploads by exact key only, which is all this needs.
func (s *Store) AbortUploads(ctx context.Context, key string) error {
	res, err := s.core.ListMultipartUploads(ctx, s.cfg.Bucket, key, "", "", "", 1000)
	if err != nil {
		return translate(err, "list multipart uploads")
	}
	for _, u := range res.Uploads {
		if u.Key != key {
			continue
		}
		if err := s.AbortMultipart(ctx, key, u.UploadID); err != nil {
			return err
		}
	}
	return nil
}
