package objectstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
//   - upload URLs: s3:PutObject only, and only by a request whose
//     signature MinIO checks (unsignedPut). Without read rights a PUT with
//     x-amz-copy-source cannot read its source (CopyObject is refused), and
//     the deny statements refuse every header that would store the object
//     differently from a plain PUT (copy, encryption, storage class, object
//     lock, tags).
//   - download URLs: s3:GetObject only.
//   - each role (Roles) its own, with the calls its code makes through a
//     Store (RolePolicy) and no more. No role writes an object: the api
//     starts and completes multipart uploads as the upload identity (which
//     may do no more than an upload URL may).

// Roles are the services' roles, each with a MinIO identity of its own.
var Roles = []string{"api", "confirmer", "sweeper", "classifier", "scanner"}

// The S3 actions the roles are granted, named as MinIO's policies name
// them (github.com/minio/pkg/v3/policy action.go).
const (
	actGetObject           = "s3:GetObject" // GetObject and HeadObject (Stat)
	actDeleteObject        = "s3:DeleteObject"
	actListParts           = "s3:ListMultipartUploadParts"
	actAbortUpload         = "s3:AbortMultipartUpload"
	actHeadBucket          = "s3:HeadBucket" // BucketExists: CheckBucket, Ping
	actListBucket          = "s3:ListBucket"
	actListUploads         = "s3:ListBucketMultipartUploads"
	actGetNotification     = "s3:GetBucketNotification"
	actPutNotification     = "s3:PutBucketNotification"
	actGetBucketPolicy     = "s3:GetBucketPolicy"
	actGetBucketVersioning = "s3:GetBucketVersioning"
)

// rights are the actions a role's identity is granted on the bucket's
// objects and on the bucket itself.
type rights struct {
	objects, bucket []string
}

// roleRights are each role's rights: the S3 calls its code makes through a
// Store, found in shared/document and services/* (every role checks the
// bucket at start and in its readiness probe: HeadBucket).
var roleRights = map[string]rights{
	// Confirm (Stat), a rejected upload's removal and Delete (Remove),
	// multipart: Parts and Complete (ListParts), an abandoned or failed
	// start (AbortMultipart; AbortUploads lists the key's uploads), and
	// CheckSigners' read-only queries of the bucket's policy and
	// versioning. MinIO's GetBucketPolicyStatus says "public" only when
	// anonymous users may both list and put, so the policy itself is read.
	"api": {
		objects: []string{actGetObject, actDeleteObject, actListParts, actAbortUpload},
		bucket:  []string{actHeadBucket, actListUploads, actGetBucketPolicy, actGetBucketVersioning},
	},
	// ConfirmObject: Stat, and Remove of strays and rejected uploads; it
	// alone (besides setup) reads and sets the bucket's notification rules.
	"confirmer": {
		objects: []string{actGetObject, actDeleteObject},
		bucket:  []string{actHeadBucket, actGetNotification, actPutNotification},
	},
	// Sweep: listing the bucket (stale uploads, reconciliation), Stat of
	// stale uploads, Remove of rejected, deleted and orphaned objects,
	// aborting purged uploads (AbortMultipart) and those of a removed key
	// (AbortUploads lists them).
	"sweeper": {
		objects: []string{actGetObject, actDeleteObject, actAbortUpload},
		bucket:  []string{actHeadBucket, actListBucket, actListUploads},
	},
	// Classify reads a prefix of the object (ReadPrefix).
	"classifier": {
		objects: []string{actGetObject},
		bucket:  []string{actHeadBucket},
	},
	// Scan streams the object (Open) and removes an infected one (Remove).
	"scanner": {
		objects: []string{actGetObject, actDeleteObject},
		bucket:  []string{actHeadBucket},
	},
}

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

// deniedHeader is a request header an upload URL refuses: each would make
// the PUT store something other than the signed body as a plain object (a
// server-side copy, bytes the services cannot read, another storage class,
// a lock the sweeper cannot lift, tags).
type deniedHeader struct {
	key    string // the policy condition key the header sets
	header string // the header
	// value is one MinIO accepts, so that CheckSigners' probe reaches the
	// policy (an invalid storage class, say, is refused before it).
	value string
}

// uploadDeniedHeaders are the headers the upload identity's policy
// refuses, one Deny statement each, and CheckSigners probes each.
var uploadDeniedHeaders = []deniedHeader{
	// Routed to CopyObject, whose first check is the policy's; a source
	// with no object is refused after it (InvalidCopySource).
	{"s3:x-amz-copy-source", "X-Amz-Copy-Source", "/docuvault-signer-check/"},
	{"s3:x-amz-metadata-directive", "X-Amz-Metadata-Directive", "REPLACE"},
	{"s3:x-amz-server-side-encryption", "X-Amz-Server-Side-Encryption", "AES256"},
	{"s3:x-amz-server-side-encryption-customer-algorithm", "X-Amz-Server-Side-Encryption-Customer-Algorithm", "AES256"},
	{"s3:x-amz-server-side-encryption-aws-kms-key-id", "X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id", "docuvault-signer-check"},
	{"s3:x-amz-storage-class", "X-Amz-Storage-Class", "STANDARD"},
	{"s3:object-lock-mode", "X-Amz-Object-Lock-Mode", "GOVERNANCE"},
	{"s3:object-lock-retain-until-date", "X-Amz-Object-Lock-Retain-Until-Date", "2099-01-01T00:00:00Z"},
	{"s3:object-lock-legal-hold", "X-Amz-Object-Lock-Legal-Hold", "ON"},
	{"s3:RequestObjectTagKeys", "X-Amz-Tagging", "docuvault=signer-check"},
}

// unsignedPut is the Deny statement's condition that refuses the upload
// identity every request MinIO does not check the signature of. A PUT
// carrying "x-amz-content-sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER" and
// an aws-chunked body, with the identity's access key in the query
// (X-Amz-Credential, as every upload URL shows it) and no Authorization
// header, is taken as the identity's and its signature is never checked
// (MinIO at the pinned version: object-handlers.go PutObjectHandler calls
// newUnsignedV4ChunkedReader with signature false; getReqAccessKeyV4 reads
// the query's credential): the holder of any upload URL could put any
// bytes under any key, over stored documents too. Such a request has no
// signature version in the policy's condition values (getConditionValues
// sets "AWS4-HMAC-SHA256" for the checked SigV4 kinds only: presigned,
// header-signed, streaming-signed, POST policy).
var unsignedPut = map[string]map[string]string{"StringNotEquals": {"s3:signatureversion": "AWS4-HMAC-SHA256"}}

// UploadPolicy is the policy of the identity that signs upload URLs:
// s3:PutObject on bucket's objects, refused to a request whose signature
// is not checked (unsignedPut) and whenever one of uploadDeniedHeaders is
// sent.
func UploadPolicy(bucket string) []byte {
	return uploadPolicy(bucket, "")
}

// uploadPolicy is UploadPolicy without the Deny statement of condition
// key without (none if ""): the tests' too-broad upload identity.
func uploadPolicy(bucket, without string) []byte {
	objects := []string{"arn:aws:s3:::" + bucket + "/*"}
	p := policy{Version: "2012-10-17", Statement: []statement{
		{Effect: "Allow", Action: []string{"s3:PutObject"}, Resource: objects},
		{Effect: "Deny", Action: []string{"s3:PutObject"}, Resource: objects, Condition: unsignedPut},
	}}
	// One statement per header: the conditions of one statement must all
	// hold, and any one header is enough to refuse.
	for _, h := range uploadDeniedHeaders {
		if h.key == without {
			continue
		}
		p.Statement = append(p.Statement, statement{
			Effect: "Deny", Action: []string{"s3:PutObject"}, Resource: objects,
			Condition: map[string]map[string]string{"Null": {h.key: "false"}},
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

// RolePolicy is the policy of role's identity on bucket (error for an
// unknown role): the S3 calls the role's code makes, on bucket only.
func RolePolicy(bucket, role string) ([]byte, error) {
	r, ok := roleRights[role]
	if !ok {
		return nil, fmt.Errorf("unknown role %q (the roles are %s)", role, strings.Join(Roles, ", "))
	}
	return policy{Version: "2012-10-17", Statement: []statement{
		{Effect: "Allow", Action: r.objects, Resource: []string{"arn:aws:s3:::" + bucket + "/*"}},
		{Effect: "Allow", Action: r.bucket, Resource: []string{"arn:aws:s3:::" + bucket}},
	}}.json(), nil
}

// identity is one of the store's identities with the policy it gets.
type identity struct {
	role   string // upload, download or one of Roles
	creds  Credentials
	policy []byte
}

// identities are the upload and download identities of cfg and those of
// roles, in Roles' order.
func identities(cfg Config, roles map[string]Credentials) ([]identity, error) {
	ids := []identity{
		{"upload", cfg.Upload, UploadPolicy(cfg.Bucket)},
		{"download", cfg.Download, DownloadPolicy(cfg.Bucket)},
	}
	for role := range roles {
		if _, err := RolePolicy(cfg.Bucket, role); err != nil {
			return nil, err
		}
	}
	for _, role := range Roles {
		creds, ok := roles[role]
		if !ok {
			continue
		}
		p, _ := RolePolicy(cfg.Bucket, role)
		ids = append(ids, identity{role, creds, p})
	}
	return ids, nil
}

// PolicyName is the name of the canned policy of role (upload, download
// or one of Roles) for bucket.
func PolicyName(bucket, role string) string {
	return "docuvault-" + bucket + "-" + role
}

// retiredRoles are the roles of identities earlier releases provisioned:
// "service" held every role's rights (stat, read, delete, list, abort
// uploads and the notification rules).
var retiredRoles = []string{"service"}

// Provision creates, as admin, the bucket, cfg.Upload and cfg.Download
// identities and one identity per entry of roles (role name ->
// credentials) with RolePolicy; cfg.Service is not used. It attaches to
// each identity its policy and no other, and takes the policies of
// retired roles (an earlier release's shared "service" identity) from
// whoever holds them, then deletes them. It is idempotent: run again, it
// sets the same policies and secrets.
func Provision(ctx context.Context, cfg Config, roles map[string]Credentials, admin Credentials) error {
	ids, err := identities(cfg, roles)
	if err != nil {
		return err
	}
	keys := map[string]bool{admin.AccessKey: true}
	for _, id := range ids {
		if id.creds.AccessKey == "" || keys[id.creds.AccessKey] {
			return fmt.Errorf("the %s identity needs an access key of its own, not %q", id.role, id.creds.AccessKey)
		}
		keys[id.creds.AccessKey] = true
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	root, err := newClient(cfg.Endpoint, admin, cfg.UseTLS, cfg.Region, 3)
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
	for _, id := range ids {
		if err := provisionIdentity(ctx, adm, PolicyName(cfg.Bucket, id.role), id); err != nil {
			return fmt.Errorf("MinIO %s identity %q: %w", id.role, id.creds.AccessKey, err)
		}
	}
	for _, role := range retiredRoles {
		if err := retirePolicy(ctx, adm, PolicyName(cfg.Bucket, role)); err != nil {
			return fmt.Errorf("MinIO policy %s of an earlier release: %w", PolicyName(cfg.Bucket, role), err)
		}
	}
	return nil
}

// retirePolicy detaches the canned policy name from every user and group
// that holds it and deletes it; a policy that is not there is not an
// error.
func retirePolicy(ctx context.Context, adm *madmin.AdminClient, name string) error {
	if _, err := adm.InfoCannedPolicyV2(ctx, name); err != nil {
		if madmin.ToErrorResponse(err).Code == "XMinioAdminNoSuchPolicy" {
			return nil
		}
		return fmt.Errorf("read policy: %w", err)
	}
	ents, err := adm.GetPolicyEntities(ctx, madmin.PolicyEntitiesQuery{Policy: []string{name}})
	if err != nil {
		return fmt.Errorf("list who holds it: %w", err)
	}
	for _, pm := range ents.PolicyMappings {
		for _, user := range pm.Users {
			if _, err := adm.DetachPolicy(ctx, madmin.PolicyAssociationReq{Policies: []string{name}, User: user}); err != nil {
				return fmt.Errorf("detach it from user %q: %w", user, err)
			}
		}
		for _, group := range pm.Groups {
			if _, err := adm.DetachPolicy(ctx, madmin.PolicyAssociationReq{Policies: []string{name}, Group: group}); err != nil {
				return fmt.Errorf("detach it from group %q: %w", group, err)
			}
		}
	}
	if err := adm.RemoveCannedPolicy(ctx, name); err != nil && madmin.ToErrorResponse(err).Code != "XMinioAdminNoSuchPolicy" {
		return fmt.Errorf("delete it: %w", err)
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
