package objectstore_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/minio/madmin-go/v3"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/docuvault/docuvault/shared/objectstore"
	"github.com/docuvault/docuvault/shared/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// identities returns a Config for a fresh bucket name on mi with three
// fresh identities.
func identities(t *testing.T, mi *testenv.MinIOServer) objectstore.Config {
	t.Helper()
	tag := strings.ReplaceAll(t.Name(), "/", "-")
	tag = strings.ToLower(tag[max(0, len(tag)-12):])
	return objectstore.Config{
		Endpoint: mi.Endpoint,
		Service:  objectstore.Credentials{AccessKey: tag + "-svc", SecretKey: "service-secret"},
		Upload:   objectstore.Credentials{AccessKey: tag + "-put", SecretKey: "upload-secret"},
		Download: objectstore.Credentials{AccessKey: tag + "-get", SecretKey: "download-secret"},
		Bucket:   "id-" + strings.Trim(tag, "-"),
		Region:   mi.Region,
	}
}

func client(t *testing.T, mi *testenv.MinIOServer, c objectstore.Credentials) *minio.Client {
	t.Helper()
	mc, err := minio.New(mi.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(c.AccessKey, c.SecretKey, ""), Region: mi.Region})
	if err != nil {
		t.Fatal(err)
	}
	return mc
}

// allowed reports whether MinIO let the call through: an error other than
// AccessDenied (say NoSuchKey) still means the policy allowed it.
func allowed(t *testing.T, what string, err error) bool {
	t.Helper()
	if err == nil {
		return true
	}
	r := minio.ToErrorResponse(err)
	if r.StatusCode == http.StatusForbidden {
		if r.Code != "AccessDenied" {
			t.Fatalf("%s: refused as %s, not AccessDenied: the credential itself is wrong", what, r.Code)
		}
		return false
	}
	return true
}

// TestProvisionedIdentitiesHoldOnlyTheirJob creates the bucket and the three
// identities twice (it is idempotent) and checks, against MinIO, what each
// identity may do.
func TestProvisionedIdentitiesHoldOnlyTheirJob(t *testing.T) {
	t.Parallel()
	mi := testenv.MinIO(t)
	cfg := identities(t, mi)
	root := objectstore.Credentials{AccessKey: mi.AccessKey, SecretKey: mi.SecretKey}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for range 2 {
		if err := objectstore.Provision(ctx, cfg, root); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { removeBucket(t, mi, cfg.Bucket) })

	body := []byte("hello")
	put := func(c *minio.Client, key string) error {
		_, err := c.PutObject(ctx, cfg.Bucket, key, bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{})
		return err
	}
	stat := func(c *minio.Client, key string) error {
		_, err := c.StatObject(ctx, cfg.Bucket, key, minio.StatObjectOptions{})
		return err
	}
	list := func(c *minio.Client) error {
		for o := range c.ListObjects(ctx, cfg.Bucket, minio.ListObjectsOptions{Recursive: true}) {
			return o.Err
		}
		return nil
	}
	del := func(c *minio.Client, key string) error {
		return c.RemoveObject(ctx, cfg.Bucket, key, minio.RemoveObjectOptions{})
	}
	notify := func(c *minio.Client) error {
		_, err := c.GetBucketNotification(ctx, cfg.Bucket)
		return err
	}
	makeBucket := func(c *minio.Client) error {
		return c.MakeBucket(ctx, cfg.Bucket+"-x", minio.MakeBucketOptions{Region: mi.Region})
	}
	up, down, svc := client(t, mi, cfg.Upload), client(t, mi, cfg.Download), client(t, mi, cfg.Service)
	cases := []struct {
		who, what string
		err       error
		want      bool
	}{
		{"upload", "put", put(up, "a/1"), true},
		{"upload", "stat", stat(up, "a/1"), false},
		{"upload", "list", list(up), false},
		{"upload", "delete", del(up, "a/1"), false},
		{"upload", "read notifications", notify(up), false},
		{"upload", "make a bucket", makeBucket(up), false},
		{"download", "stat", stat(down, "a/1"), true},
		{"download", "put", put(down, "a/2"), false},
		{"download", "list", list(down), false},
		{"download", "delete", del(down, "a/1"), false},
		{"service", "stat", stat(svc, "a/1"), true},
		{"service", "list", list(svc), true},
		{"service", "read notifications", notify(svc), true},
		{"service", "put", put(svc, "a/3"), false},
		{"service", "make a bucket", makeBucket(svc), false},
		{"service", "delete", del(svc, "a/1"), true},
	}
	for _, c := range cases {
		if got := allowed(t, c.who+" "+c.what, c.err); got != c.want {
			t.Errorf("the %s identity may %s: %v, want %v (%v)", c.who, c.what, got, c.want, c.err)
		}
	}

	s, err := objectstore.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CheckBucket(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckSigners(ctx); err != nil {
		t.Fatalf("the provisioned signers fail the check: %v", err)
	}
}

// TestSignersWithMoreRightsAreRefused checks that the api's start-up check
// refuses to sign with the root credential, or with an identity that was
// given a broader policy beside its own.
func TestSignersWithMoreRightsAreRefused(t *testing.T) {
	t.Parallel()
	mi := testenv.MinIO(t)
	cfg := identities(t, mi)
	root := objectstore.Credentials{AccessKey: mi.AccessKey, SecretKey: mi.SecretKey}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := objectstore.Provision(ctx, cfg, root); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removeBucket(t, mi, cfg.Bucket) })

	rootSigns := cfg
	rootSigns.Service, rootSigns.Upload, rootSigns.Download = root, root, root
	s, err := objectstore.New(rootSigns)
	if err != nil {
		t.Fatal(err)
	}
	err = s.CheckSigners(ctx)
	for _, want := range []string{"MINIO_UPLOAD_ACCESS_KEY", "may read objects", "MINIO_DOWNLOAD_ACCESS_KEY", "MINIO_ACCESS_KEY", "is not refused a PUT"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("root signing: check says %v, want it to say %q", err, want)
		}
	}

	wrong := cfg
	wrong.Upload.SecretKey = "not-the-secret"
	if s, err = objectstore.New(wrong); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckSigners(ctx); err == nil || !strings.Contains(err.Error(), "cannot put objects") {
		t.Errorf("a wrong upload secret: check says %v", err)
	}

	// An operator attaches readwrite to the upload identity: the check
	// refuses it, and provisioning again takes it away.
	adm, err := madmin.NewWithOptions(mi.Endpoint, &madmin.Options{Creds: credentials.NewStaticV4(root.AccessKey, root.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := adm.AttachPolicy(ctx, madmin.PolicyAssociationReq{Policies: []string{"readwrite"}, User: cfg.Upload.AccessKey}); err != nil {
		t.Fatal(err)
	}
	if s, err = objectstore.New(cfg); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckSigners(ctx); err == nil || !strings.Contains(err.Error(), "may read objects") {
		t.Errorf("upload identity with readwrite: check says %v", err)
	}
	if err := objectstore.Provision(ctx, cfg, root); err != nil {
		t.Fatal(err)
	}
	if err := s.CheckSigners(ctx); err != nil {
		t.Errorf("after provisioning again: %v", err)
	}

	same := cfg
	same.Download = cfg.Upload
	if err := objectstore.Provision(ctx, same, root); err == nil {
		t.Error("provisioning one identity for two jobs succeeded")
	}
}

func removeBucket(t *testing.T, mi *testenv.MinIOServer, bucket string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := mi.Client(t)
	for o := range c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
		if o.Err == nil {
			_ = c.RemoveObject(ctx, bucket, o.Key, minio.RemoveObjectOptions{})
		}
	}
	if err := c.RemoveBucket(ctx, bucket); err != nil {
		t.Errorf("remove bucket %s: %v", bucket, err)
	}
}
