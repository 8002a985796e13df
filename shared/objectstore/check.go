package objectstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
)

// setupFixes is how a message says to give an identity its policy again.
const setupFixes = "give it only its policy (`docuvault setup` does)"

// CheckSigners refuses identities and a bucket that could grant more than
// the store's jobs, with probes that store nothing (every PUT carries a
// Content-MD5 its body does not match: a PUT the policy allows is refused
// after it with BadDigest, before anything is written). It proves that:
//
//   - the upload identity may put (a wrong upload secret fails here), and is
//     refused every header of uploadDeniedHeaders, each on its own, and a
//     PUT whose signature MinIO does not check (unsignedPut);
//   - the upload identity may not read the bucket's objects (or a PUT could
//     copy any object in), under the probe's prefix or another, nor those
//     of another bucket, and may not list or delete;
//   - the download identity may not put or delete;
//   - the store's own identity (the api's, whose process runs the check)
//     may not put objects, set the bucket's notification rules, policy or
//     versioning, nor list the bucket;
//   - the bucket has no bucket policy, and anonymous requests are refused
//     a read and a listing;
//   - the bucket's versioning is not enabled: with it every Remove keeps a
//     noncurrent version, and deleted and stray bytes are never freed.
//
// It returns every failure, each naming what failed; MinIO's root
// credential fails all but the first probe.
func (s *Store) CheckSigners(ctx context.Context) error {
	c := checker{cfg: s.cfg, self: s.internal, probe: "docuvault-signer-check/" + randomHex(8)}
	var err error
	if c.upload, err = newClient(s.cfg.Endpoint, s.cfg.Upload, s.cfg.UseTLS, s.cfg.Region, 3); err != nil {
		return err
	}
	if c.download, err = newClient(s.cfg.Endpoint, s.cfg.Download, s.cfg.UseTLS, s.cfg.Region, 3); err != nil {
		return err
	}
	for _, check := range []func(context.Context) error{c.uploads, c.uploadReads, c.downloads, c.own, c.bucket} {
		if err := check(ctx); err != nil {
			return translate(err, "check signer")
		}
	}
	return errors.Join(c.errs...)
}

// checker is one run of CheckSigners: its clients and what failed.
type checker struct {
	cfg              Config
	self             *minio.Client // the store's own identity
	upload, download *minio.Client // the signers, on the internal endpoint
	probe            string        // a key no object has
	errs             []error
}

func (c *checker) fail(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf(format, args...))
}

// badMD5 is the Content-MD5 of no bytes; a probe PUT sends one byte.
var badMD5 = http.Header{"Content-Md5": {"1B2M2Y8AsgTpgAmY7PhCfg=="}}

// uploads checks that the upload identity may put, and may not with any
// header of uploadDeniedHeaders.
func (c *checker) uploads(ctx context.Context) error {
	key := c.cfg.Upload.AccessKey
	status, code, err := presignedProbe(ctx, c.upload, http.MethodPut, c.cfg.Bucket, c.probe, nil, badMD5, "x")
	if err != nil {
		return err
	}
	if code != "BadDigest" {
		// Every header probe below would be refused for another reason.
		c.fail("MINIO_UPLOAD_ACCESS_KEY %q cannot put objects: MinIO answered %d %s", key, status, code)
		return nil
	}
	for _, h := range uploadDeniedHeaders {
		hdr := badMD5.Clone()
		hdr.Set(h.header, h.value)
		status, code, err := presignedProbe(ctx, c.upload, http.MethodPut, c.cfg.Bucket, c.probe, nil, hdr, "x")
		if err != nil {
			return err
		}
		if code == "InvalidRequest" && strings.HasPrefix(h.header, "X-Amz-Server-Side-Encryption-Customer-") {
			// MinIO without TLS of its own refuses any SSE-C header before
			// the policy (setRequestValidityMiddleware). The policy's
			// conditions also take the request's query parameters
			// (getConditionValues), so the same condition key, sent
			// signed in the query, proves its Deny statement.
			q := url.Values{strings.TrimPrefix(h.key, "s3:"): {h.value}}
			if status, code, err = presignedProbe(ctx, c.upload, http.MethodPut, c.cfg.Bucket, c.probe, q, badMD5, "x"); err != nil {
				return err
			}
		}
		if code != "AccessDenied" {
			c.fail("MINIO_UPLOAD_ACCESS_KEY %q is not refused a PUT with %s (condition %s): MinIO answered %d %s; an upload URL's holder could add it; %s",
				key, h.header, h.key, status, code, setupFixes)
		}
	}
	status, code, err = unsignedProbe(ctx, c.upload, c.cfg.Bucket, c.probe)
	if err != nil {
		return err
	}
	if code != "AccessDenied" {
		c.fail("MINIO_UPLOAD_ACCESS_KEY %q is not refused a PUT whose signature MinIO does not check (an unsigned-trailer PUT with the key in the query; condition s3:signatureversion): MinIO answered %d %s; an upload URL's holder could put any bytes under any key; %s",
			key, status, code, setupFixes)
	}
	return nil
}

// unsignedProbe sends, as c's identity, the PUT of key that MinIO takes
// without checking its signature (see unsignedPut): an upload URL's query
// (the credential) with "x-amz-content-sha256:
// STREAMING-UNSIGNED-PAYLOAD-TRAILER" and a one-byte aws-chunked body with
// its checksum trailer, under badMD5; it returns MinIO's status and error
// code.
func unsignedProbe(ctx context.Context, c *minio.Client, bucket, key string) (int, string, error) {
	u, err := c.PresignHeader(ctx, http.MethodPut, bucket, key, time.Minute, nil, nil)
	if err != nil {
		return 0, "", err
	}
	hdr := badMD5.Clone()
	hdr.Set("X-Amz-Content-Sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
	hdr.Set("Content-Encoding", "aws-chunked")
	hdr.Set("X-Amz-Decoded-Content-Length", "1")
	hdr.Set("X-Amz-Trailer", "x-amz-checksum-crc32")
	// "x" and its CRC32 in the trailer.
	return send(ctx, http.MethodPut, u, hdr, "1\r\nx\r\n0\r\nx-amz-checksum-crc32:jNwWgw==\r\n\r\n")
}

// uploadReads checks that the upload identity may not read, list or
// delete, here or in another bucket.
func (c *checker) uploadReads(ctx context.Context) error {
	key := c.cfg.Upload.AccessKey
	otherBucket := "docuvault-signer-check-" + randomHex(6)
	for _, p := range []struct {
		what, method, bucket, key string
		query                     url.Values
	}{
		{"read objects", http.MethodHead, c.cfg.Bucket, c.probe, nil},
		{"read objects under another prefix", http.MethodGet, c.cfg.Bucket, randomHex(16) + "/" + randomHex(8), nil},
		{"read another bucket's objects", http.MethodGet, otherBucket, c.probe, nil},
		{"list the bucket", http.MethodGet, c.cfg.Bucket, "", url.Values{"list-type": {"2"}}},
		{"delete objects", http.MethodDelete, c.cfg.Bucket, c.probe, nil},
	} {
		status, code, err := presignedProbe(ctx, c.upload, p.method, p.bucket, p.key, p.query, nil, "")
		if err != nil {
			return err
		}
		// A HEAD answer has no body, so no code: its status tells.
		if status != http.StatusForbidden || p.method != http.MethodHead && code != "AccessDenied" {
			c.fail("MINIO_UPLOAD_ACCESS_KEY %q may %s (MinIO answered %d %s, not 403 AccessDenied): an upload URL could copy objects in or reach what is not its own; %s",
				key, p.what, status, code, setupFixes)
		}
	}
	return nil
}

// downloads checks that the download identity may not write.
func (c *checker) downloads(ctx context.Context) error {
	key := c.cfg.Download.AccessKey
	if status, code, err := presignedProbe(ctx, c.download, http.MethodPut, c.cfg.Bucket, c.probe, nil, badMD5, "x"); err != nil {
		return err
	} else if code != "AccessDenied" {
		c.fail("MINIO_DOWNLOAD_ACCESS_KEY %q is not refused a PUT (MinIO answered %d %s): a download URL could be turned into an upload; %s", key, status, code, setupFixes)
	}
	if status, code, err := presignedProbe(ctx, c.download, http.MethodDelete, c.cfg.Bucket, c.probe, nil, nil, ""); err != nil {
		return err
	} else if code != "AccessDenied" {
		c.fail("MINIO_DOWNLOAD_ACCESS_KEY %q is not refused a delete (MinIO answered %d %s): %s", key, status, code, setupFixes)
	}
	return nil
}

// own checks that the store's own identity (a role's) is refused what its
// role may not do (roleRights, the one home of each role's rights): it
// never writes objects, nor sets the bucket's policy or versioning; only
// the confirmer sets the bucket's notification rules, only the sweeper
// lists the bucket, and the classifier deletes nothing. A store of no
// known role is held to all of these.
func (c *checker) own(ctx context.Context) error {
	name, key := c.cfg.serviceKey(), c.cfg.Service.AccessKey
	granted := roleRights[c.cfg.Role]
	has := func(action string) bool {
		return slices.Contains(granted.objects, action) || slices.Contains(granted.bucket, action)
	}
	if status, code, err := presignedProbe(ctx, c.self, http.MethodPut, c.cfg.Bucket, c.probe, nil, badMD5, "x"); err != nil {
		return err
	} else if code != "AccessDenied" {
		c.fail("%s %q is not refused a PUT (MinIO answered %d %s): the services never write objects; %s", name, key, status, code, setupFixes)
	}
	if !has(actDeleteObject) {
		// The probe's key holds nothing: a delete allowed removes nothing.
		if status, code, err := presignedProbe(ctx, c.self, http.MethodDelete, c.cfg.Bucket, c.probe, nil, nil, ""); err != nil {
			return err
		} else if code != "AccessDenied" {
			c.fail("%s %q is not refused a delete (MinIO answered %d %s): %s", name, key, status, code, setupFixes)
		}
	}
	for _, p := range []struct {
		what, action, method, sub string
	}{
		// A body that is no configuration: refused (MalformedXML,
		// MalformedPolicy) after the policy allowed it, so nothing changes.
		{"setting the bucket's notification rules", actPutNotification, http.MethodPut, "notification"},
		{"setting the bucket's policy", "s3:PutBucketPolicy", http.MethodPut, "policy"},
		{"setting the bucket's versioning", "s3:PutBucketVersioning", http.MethodPut, "versioning"},
		{"listing the bucket", actListBucket, http.MethodGet, "list-type"},
	} {
		if has(p.action) {
			continue
		}
		q := url.Values{p.sub: {""}}
		body := "x"
		if p.method == http.MethodGet {
			q, body = url.Values{p.sub: {"2"}}, ""
		}
		status, code, err := presignedProbe(ctx, c.self, p.method, c.cfg.Bucket, "", q, nil, body)
		if err != nil {
			return err
		}
		if code != "AccessDenied" {
			c.fail("%s %q is not refused %s (MinIO answered %d %s): %s", name, key, p.what, status, code, setupFixes)
		}
	}
	return nil
}

// CheckIdentity refuses the store's own identity (a role's, Config.Role)
// when it could do more than that role (see own), with probes that store
// and change nothing. Every role runs it at start; the api runs
// CheckSigners, which includes it.
func (s *Store) CheckIdentity(ctx context.Context) error {
	c := checker{cfg: s.cfg, self: s.internal, probe: "docuvault-identity-check/" + randomHex(8)}
	if err := c.own(ctx); err != nil {
		return translate(err, "check identity")
	}
	return errors.Join(c.errs...)
}

// bucket checks that the bucket has no bucket policy, refuses anonymous
// requests and is not versioned.
func (c *checker) bucket(ctx context.Context) error {
	name, key, bucket := c.cfg.serviceKey(), c.cfg.Service.AccessKey, c.cfg.Bucket
	switch p, err := c.self.GetBucketPolicy(ctx, bucket); {
	case minio.ToErrorResponse(err).StatusCode == http.StatusForbidden:
		c.fail("%s %q may not read bucket %q's policy, so it cannot check there is none: give it its role's policy (`docuvault setup` does)", name, key, bucket)
	case err != nil:
		return err
	case p != "":
		c.fail("bucket %q has a bucket policy (anonymous access to it): every object must be reached through a signed URL; remove it (mc anonymous set none): %s", bucket, p)
	}
	for _, p := range []struct {
		what, key string
		query     url.Values
	}{
		{"read", c.probe, nil},
		{"list", "", url.Values{"list-type": {"2"}}},
	} {
		status, code, err := anonymousProbe(ctx, c.self.EndpointURL(), bucket, p.key, p.query)
		if err != nil {
			return err
		}
		if status != http.StatusForbidden || code != "AccessDenied" {
			c.fail("bucket %q lets anonymous requests %s (MinIO answered %d %s, not 403 AccessDenied): remove its bucket policy (mc anonymous set none)", bucket, p.what, status, code)
		}
	}
	switch v, err := c.self.GetBucketVersioning(ctx, bucket); {
	case minio.ToErrorResponse(err).StatusCode == http.StatusForbidden:
		c.fail("%s %q may not read bucket %q's versioning, so it cannot check it is off: give it its role's policy (`docuvault setup` does)", name, key, bucket)
	case err != nil:
		return err
	case v.Enabled():
		c.fail("bucket %q has versioning enabled: every removal would keep a noncurrent version, so deleted and stray bytes would never be freed; use a bucket without versioning (`docuvault setup` makes one)", bucket)
	}
	return nil
}

// presignedProbe sends method to a URL c presigns for key (the bucket if
// ""), with query and hdr signed, and body, and returns MinIO's status and
// error code.
func presignedProbe(ctx context.Context, c *minio.Client, method, bucket, key string, query url.Values, hdr http.Header, body string) (int, string, error) {
	u, err := c.PresignHeader(ctx, method, bucket, key, time.Minute, query, hdr)
	if err != nil {
		return 0, "", err
	}
	return send(ctx, method, u, hdr, body)
}

// anonymousProbe sends an unsigned GET of key (the bucket if "") with
// query to endpoint, and returns MinIO's status and error code.
func anonymousProbe(ctx context.Context, endpoint *url.URL, bucket, key string, query url.Values) (int, string, error) {
	u := *endpoint
	u.Path = "/" + bucket + "/" + key
	u.RawQuery = query.Encode()
	return send(ctx, http.MethodGet, &u, nil, "")
}

func send(ctx context.Context, method string, u *url.URL, hdr http.Header, body string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, method, u.String(), strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var e struct {
		Code string `xml:"Code"`
	}
	_ = xml.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&e)
	return resp.StatusCode, e.Code, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
