package objectstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/minio/madmin-go/v3"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// A presigned URL is authorised with the rights of the identity that
// signed it, and MinIO checks only the signature: a client may add any
// header the signature does not cover. So each job has its own identity,
// with a policy granting that job and nothing else:
//
//   - upload URLs: s3:PutObject only. Without read rights a PUT with
//     x-amz-copy-source cannot read its source (CopyObject is refused), and
//     the deny statements refuse every header that would store the object
//     differently from a plain PUT (copy, encryption, storage class, object
//     lock, tags).
//   - download URLs: s3:GetObject only.
//   - the services: stat and read (s3:GetObject), delete, list, list and
//     abort multipart uploads, and the bucket's notification rules. They
//     never write an object: they start and complete multipart uploads as
//     the upload identity (which may do no more than an upload URL may).

// statement is one statement of an IAM policy.
type statement struct {
	Effect    string                       `json:"Effect"`
	Action    []string                     `json:"Action"`
	Resource  []string                     `json:"Resource"`
	Condition map[string]map[string]string `json:"Condition,omitempty"`
}

type policy struct {
	Version   string      `json:"Version"`
	Statement []statement `json:"Statement"`
}

func (p policy) json() []byte {
	b, _ := json.Marshal(p) // cannot fail: strings only
	return b
}

// uploadDeniedHeaders are the condition keys of request headers an upload
// URL refuses: each would make the PUT store something other than the
// signed body as a plain object (a server-side copy, bytes the services
// cannot read, another storage class, a lock the sweeper cannot lift, tags).
var uploadDeniedHeaders = []string{
	"s3:x-amz-copy-source",
	"s3:x-amz-metadata-directive",
	"s3:x-amz-server-side-encryption",
	"s3:x-amz-server-side-encryption-customer-algorithm",
	"s3:x-amz-server-side-encryption-aws-kms-key-id",
	"s3:x-amz-storage-class",
	"s3:object-lock-mode",
	"s3:object-lock-retain-until-date",
	"s3:object-lock-legal-hold",
	"s3:RequestObjectTagKeys",
}

// UploadPolicy is the policy of the identity that signs upload URLs:
// s3:PutObject on bucket's objects, refused whenever one of
// uploadDeniedHeaders is sent.
func UploadPolicy(bucket string) []byte {
	objects := []string{"arn:aws:s3:::" + bucket + "/*"}
	p := policy{Version: "2012-10-17", Statement: []statement{{Effect: "Allow", Action: []string{"s3:PutObject"}, Resource: objects}}}
	// One statement per header: the conditions of one statement must all
	// hold, and any one header is enough to refuse.
	for _, key := range uploadDeniedHeaders {
		p.Statement = append(p.Statement, statement{
			Effect: "Deny", Action: []string{"s3:PutObject"}, Resource: objects,
			Condition: map[string]map[string]string{"Null": {key: "false"}},
		})
	}
	return p.json()
}

// DownloadPolicy is the policy of the identity that signs download URLs:
// s3:GetObject on bucket's objects.
func DownloadPolicy(bucket string) []byte {
	return policy{Version: "2012-10-17", Statement: []statement{
		{Effect: "Allow", Action: []string{"s3:GetObject"}, Resource: []string{"arn:aws:s3:::" + bucket + "/*"}},
	}}.json()
}

// ServicePolicy is the policy of the services' own identity: stat, read
// and delete bucket's objects, list it, list and abort its multipart
// uploads, and read and set its notification rules.
func ServicePolicy(bucket string) []byte {
	return policy{Version: "2012-10-17", Statement: []statement{
		{Effect: "Allow", Action: []string{"s3:GetObject", "s3:DeleteObject", "s3:ListMultipartUploadParts", "s3:AbortMultipartUpload"}, Resource: []string{"arn:aws:s3:::" + bucket + "/*"}},
		{Effect: "Allow", Action: []string{"s3:ListBucket", "s3:ListBucketMultipartUploads", "s3:GetBucketNotification", "s3:PutBucketNotification"}, Resource: []string{"arn:aws:s3:::" + bucket}},
	}}.json()
}

// identity is one of the store's identities with the policy it gets.
type identity struct {
	role   string // service, upload or download
	creds  Credentials
	policy []byte
}

func (cfg Config) identities() []identity {
	return []identity{
		{"service", cfg.Service, ServicePolicy(cfg.Bucket)},
		{"upload", cfg.Upload, UploadPolicy(cfg.Bucket)},
		{"download", cfg.Download, DownloadPolicy(cfg.Bucket)},
	}
}

// PolicyName is the name of the canned policy of role (service, upload or
// download) for bucket.
func PolicyName(bucket, role string) string {
	return "docuvault-" + bucket + "-" + role
}

// Provision creates, as admin, the bucket, the three identities of cfg and
// their policies, and attaches to each identity its policy and no other.
// It is idempotent: run again, it sets the same policies and secrets.
func Provision(ctx context.Context, cfg Config, admin Credentials) error {
	keys := map[string]bool{admin.AccessKey: true}
	for _, id := range cfg.identities() {
		if id.creds.AccessKey == "" || keys[id.creds.AccessKey] {
			return fmt.Errorf("the %s identity needs an access key of its own, not %q", id.role, id.creds.AccessKey)
		}
		keys[id.creds.AccessKey] = true
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	root, err := newClient(cfg.Endpoint, admin, cfg, 3)
	if err != nil {
		return err
	}
	if err := makeBucket(ctx, root, cfg.Bucket, cfg.Region); err != nil {
		return err
	}
	adm, err := madmin.NewWithOptions(cfg.Endpoint, &madmin.Options{
		Creds: credentials.NewStaticV4(admin.AccessKey, admin.SecretKey, ""), Secure: cfg.UseTLS,
	})
	if err != nil {
		return fmt.Errorf("minio admin client for %s: %w", cfg.Endpoint, err)
	}
	for _, id := range cfg.identities() {
		if err := provisionIdentity(ctx, adm, PolicyName(cfg.Bucket, id.role), id); err != nil {
			return fmt.Errorf("MinIO %s identity %q: %w", id.role, id.creds.AccessKey, err)
		}
	}
	return nil
}

// iamSettles bounds how long Provision retries an identity whose policy or
// user MinIO briefly forgets: its IAM cache, refreshed from its store in
// the background, can drop an entry written during the refresh (seen here
// when tests provision identities side by side).
const iamSettles = 10 * time.Second

// provisionIdentity creates id's policy and user and attaches the one to
// the other, retrying while MinIO says the policy or user it was just
// given does not exist.
func provisionIdentity(ctx context.Context, adm *madmin.AdminClient, policyName string, id identity) error {
	deadline := time.Now().Add(iamSettles)
	for {
		err := provisionIdentityOnce(ctx, adm, policyName, id)
		var resp madmin.ErrorResponse
		forgot := errors.As(err, &resp) && (resp.Code == "XMinioAdminNoSuchPolicy" || resp.Code == "XMinioAdminNoSuchUser")
		if !forgot || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func makeBucket(ctx context.Context, c *minio.Client, bucket, region string) error {
	exists, err := c.BucketExists(ctx, bucket)
	if err != nil {
		return translate(err, "check bucket")
	}
	if exists {
		return nil
	}
	err = c.MakeBucket(ctx, bucket, minio.MakeBucketOptions{Region: region})
	if err != nil && minio.ToErrorResponse(err).Code != "BucketAlreadyOwnedByYou" {
		return translate(err, "create bucket")
	}
	return nil
}

func provisionIdentityOnce(ctx context.Context, adm *madmin.AdminClient, policyName string, id identity) error {
	if err := adm.AddCannedPolicy(ctx, policyName, id.policy); err != nil {
		return fmt.Errorf("create policy %s: %w", policyName, err)
	}
	if err := adm.AddUser(ctx, id.creds.AccessKey, id.creds.SecretKey); err != nil {
		return fmt.Errorf("create user: %w", err)
	}
	_, err := adm.AttachPolicy(ctx, madmin.PolicyAssociationReq{Policies: []string{policyName}, User: id.creds.AccessKey})
	if err != nil && madmin.ToErrorResponse(err).Code != "XMinioAdminPolicyChangeAlreadyApplied" {
		return fmt.Errorf("attach policy %s: %w", policyName, err)
	}
	// Exactly this policy: detach any other an operator or an older
	// version attached.
	info, err := adm.GetUserInfo(ctx, id.creds.AccessKey)
	if err != nil {
		return fmt.Errorf("read user: %w", err)
	}
	var others []string
	for p := range strings.SplitSeq(info.PolicyName, ",") {
		if p = strings.TrimSpace(p); p != "" && p != policyName {
			others = append(others, p)
		}
	}
	if len(others) > 0 {
		if _, err := adm.DetachPolicy(ctx, madmin.PolicyAssociationReq{Policies: others, User: id.creds.AccessKey}); err != nil {
			return fmt.Errorf("detach policies %v: %w", others, err)
		}
	}
	if len(info.MemberOf) > 0 {
		return fmt.Errorf("is a member of groups %v, whose policies it would hold too: remove it from them", info.MemberOf)
	}
	return nil
}

// CheckSigners refuses identities that could grant more than their job,
// with probes that store nothing: the upload identity must be able to put
// (a PUT whose Content-MD5 does not match its body: refused with BadDigest
// after the policy allowed it) and must not be able to read (or a PUT could
// copy any object in); the services' identity must not be able to put; the
// download identity must not be able to delete. MinIO's root credential
// fails all but the first probe, a wrong upload secret the first.
func (s *Store) CheckSigners(ctx context.Context) error {
	probe := "docuvault-signer-check/" + randomHex(8)
	var errs []error
	uploads, err := newClient(s.cfg.Endpoint, s.cfg.Upload, s.cfg, 3)
	if err != nil {
		return err
	}
	md5 := http.Header{"Content-Md5": {"1B2M2Y8AsgTpgAmY7PhCfg=="}} // the MD5 of no bytes; the probe sends one
	if status, code, err := presignedProbe(ctx, uploads, http.MethodPut, s.cfg.Bucket, probe, md5, "x"); err != nil {
		return translate(err, "check signer")
	} else if code != "BadDigest" {
		errs = append(errs, fmt.Errorf("MINIO_UPLOAD_ACCESS_KEY %q cannot put objects: MinIO answered %d %s", s.cfg.Upload.AccessKey, status, code))
	}
	if status, _, err := presignedProbe(ctx, uploads, http.MethodHead, s.cfg.Bucket, probe, nil, ""); err != nil {
		return translate(err, "check signer")
	} else if status != http.StatusForbidden {
		errs = append(errs, fmt.Errorf("MINIO_UPLOAD_ACCESS_KEY %q may read objects (MinIO answered %d, not 403): an upload URL could copy any object in; give it only s3:PutObject (`docuvault setup` does)", s.cfg.Upload.AccessKey, status))
	}
	if status, code, err := presignedProbe(ctx, s.internal, http.MethodPut, s.cfg.Bucket, probe, md5, "x"); err != nil {
		return translate(err, "check signer")
	} else if code != "AccessDenied" {
		errs = append(errs, fmt.Errorf("MINIO_ACCESS_KEY %q is not refused a PUT (MinIO answered %d %s): the services never write objects; give it only the service policy (`docuvault setup` does)", s.cfg.Service.AccessKey, status, code))
	}
	downloads, err := newClient(s.cfg.Endpoint, s.cfg.Download, s.cfg, 3)
	if err != nil {
		return err
	}
	if status, code, err := presignedProbe(ctx, downloads, http.MethodDelete, s.cfg.Bucket, probe, nil, ""); err != nil {
		return translate(err, "check signer")
	} else if code != "AccessDenied" {
		errs = append(errs, fmt.Errorf("MINIO_DOWNLOAD_ACCESS_KEY %q is not refused a delete (MinIO answered %d %s): give it only s3:GetObject (`docuvault setup` does)", s.cfg.Download.AccessKey, status, code))
	}
	return errors.Join(errs...)
}

// presignedProbe sends method to a URL c presigns for key, with hdr signed
// and body, and returns MinIO's status and error code.
func presignedProbe(ctx context.Context, c *minio.Client, method, bucket, key string, hdr http.Header, body string) (int, string, error) {
	u, err := c.PresignHeader(ctx, method, bucket, key, time.Minute, nil, hdr)
	if err != nil {
		return 0, "", err
	}
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
