package objectstore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/madmin-go/v3"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/notification"

	"github.com/docuvault/docuvault/internal/testenv"
	"github.com/docuvault/docuvault/shared/objectstore"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// fixture is a bucket with its identities, provisioned on a real MinIO.
type fixture struct {
	mi    *testenv.MinIOServer
	cfg   objectstore.Config // Service is the api's identity
	roles map[string]objectstore.Credentials
	root  objectstore.Credentials
	adm   *madmin.AdminClient
}

// newFixture returns a fresh bucket and fresh identities for it, not yet
// provisioned.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	mi := testenv.MinIO(t)
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	tag := "t" + hex.EncodeToString(b)
	f := &fixture{
		mi:    mi,
		roles: map[string]objectstore.Credentials{},
		root:  objectstore.Credentials{AccessKey: mi.AccessKey, SecretKey: mi.SecretKey},
	}
	for _, role := range objectstore.Roles {
		f.roles[role] = objectstore.Credentials{AccessKey: tag + "-" + role, SecretKey: role + "-secret"}
	}
	f.cfg = objectstore.Config{
		Endpoint: mi.Endpoint,
		Service:  f.roles["api"],
		Role:     "api",
		Upload:   objectstore.Credentials{AccessKey: tag + "-put", SecretKey: "upload-secret"},
		Download: objectstore.Credentials{AccessKey: tag + "-get", SecretKey: "download-secret"},
		Bucket:   mi.NewBucket(t),
		Region:   mi.Region,
	}
	adm, err := madmin.NewWithOptions(mi.Endpoint, &madmin.Options{Creds: credentials.NewStaticV4(mi.AccessKey, mi.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	f.adm = adm
	return f
}

// roleStore is a store acting as role's identity, as that role's process
// opens it.
func (f *fixture) roleStore(t *testing.T, role string) *objectstore.Store {
	t.Helper()
	cfg := f.cfg
	cfg.Service, cfg.Role = f.roles[role], role
	s, err := objectstore.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (f *fixture) provision(t *testing.T, ctx context.Context) {
	t.Helper()
	if err := objectstore.Provision(ctx, f.cfg, f.roles, f.root); err != nil {
		t.Fatal(err)
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

// TestProvisionedIdentitiesHoldOnlyTheirJob provisions the bucket, the
// signers and every role's identity twice (it is idempotent) and checks,
// against MinIO, every right each identity uses and every one it lacks.
func TestProvisionedIdentitiesHoldOnlyTheirJob(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// An earlier release's shared "service" identity, with its policy.
	oldPolicy := []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:DeleteObject"],"Resource":["arn:aws:s3:::` + f.cfg.Bucket + `/*"]},{"Effect":"Allow","Action":["s3:ListBucket","s3:PutBucketNotification"],"Resource":["arn:aws:s3:::` + f.cfg.Bucket + `"]}]}`)
	oldName := objectstore.PolicyName(f.cfg.Bucket, "service")
	oldUser := f.cfg.Upload.AccessKey + "-svc"
	if err := f.adm.AddCannedPolicy(ctx, oldName, oldPolicy); err != nil {
		t.Fatal(err)
	}
	if err := f.adm.AddUser(ctx, oldUser, "service-secret"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.adm.AttachPolicy(ctx, madmin.PolicyAssociationReq{Policies: []string{oldName}, User: oldUser}); err != nil {
		t.Fatal(err)
	}

	for range 2 {
		f.provision(t, ctx)
	}
	if _, err := f.adm.InfoCannedPolicyV2(ctx, oldName); madmin.ToErrorResponse(err).Code != "XMinioAdminNoSuchPolicy" {
		t.Errorf("the earlier release's policy %s is still there after provisioning (%v)", oldName, err)
	}
	if info, err := f.adm.GetUserInfo(ctx, oldUser); err != nil || info.PolicyName != "" {
		t.Errorf("the earlier release's service user holds %q after provisioning (%v)", info.PolicyName, err)
	}

	bucket := f.cfg.Bucket
	body := []byte("hello")
	up := client(t, f.mi, f.cfg.Upload)
	put := func(c *minio.Client, key string) error {
		_, err := c.PutObject(ctx, bucket, key, bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{})
		return err
	}
	if err := put(up, "obj/read"); err != nil {
		t.Fatal(err)
	}
	// Each role deletes and aborts its own object and upload.
	uploads := map[string]string{}
	for _, role := range objectstore.Roles {
		if err := put(up, "del/"+role); err != nil {
			t.Fatal(err)
		}
		id, err := (minio.Core{Client: up}).NewMultipartUpload(ctx, bucket, "mp/"+role, minio.PutObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		uploads[role] = id
	}
	t.Cleanup(func() {
		root := minio.Core{Client: f.mi.Client(t)}
		for role, id := range uploads {
			_ = root.AbortMultipartUpload(context.Background(), bucket, "mp/"+role, id)
		}
	})

	denyAll := `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":{"AWS":["*"]},"Action":["s3:GetObject"],"Resource":["arn:aws:s3:::` + bucket + `/nothing/*"]}]}`
	type action struct {
		name string
		do   func(c *minio.Client, role string) error
	}
	actions := []action{
		{"put an object", func(c *minio.Client, role string) error { return put(c, "put/"+role) }},
		{"stat an object", func(c *minio.Client, _ string) error {
			_, err := c.StatObject(ctx, bucket, "obj/read", minio.StatObjectOptions{})
			return err
		}},
		{"read an object", func(c *minio.Client, _ string) error {
			o, err := c.GetObject(ctx, bucket, "obj/read", minio.GetObjectOptions{})
			if err != nil {
				return err
			}
			defer o.Close()
			_, err = io.ReadAll(o)
			return err
		}},
		{"delete an object", func(c *minio.Client, role string) error {
			return c.RemoveObject(ctx, bucket, "del/"+role, minio.RemoveObjectOptions{})
		}},
		{"list the bucket", func(c *minio.Client, _ string) error {
			for o := range c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
				return o.Err
			}
			return nil
		}},
		{"list multipart uploads", func(c *minio.Client, role string) error {
			_, err := (minio.Core{Client: c}).ListMultipartUploads(ctx, bucket, "mp/"+role, "", "", "", 10)
			return err
		}},
		{"list an upload's parts", func(c *minio.Client, role string) error {
			_, err := (minio.Core{Client: c}).ListObjectParts(ctx, bucket, "mp/"+role, uploads[role], 0, 10)
			return err
		}},
		{"abort an upload", func(c *minio.Client, role string) error {
			return (minio.Core{Client: c}).AbortMultipartUpload(ctx, bucket, "mp/"+role, uploads[role])
		}},
		{"read the notification rules", func(c *minio.Client, _ string) error {
			_, err := c.GetBucketNotification(ctx, bucket)
			return err
		}},
		{"set the notification rules", func(c *minio.Client, _ string) error {
			return c.SetBucketNotification(ctx, bucket, notification.Configuration{})
		}},
		{"read the bucket policy", func(c *minio.Client, _ string) error {
			_, err := c.GetBucketPolicy(ctx, bucket)
			return err
		}},
		{"set the bucket policy", func(c *minio.Client, _ string) error { return c.SetBucketPolicy(ctx, bucket, denyAll) }},
		{"read the versioning", func(c *minio.Client, _ string) error {
			_, err := c.GetBucketVersioning(ctx, bucket)
			return err
		}},
		{"set the versioning", func(c *minio.Client, _ string) error { return c.SuspendVersioning(ctx, bucket) }},
		{"see the bucket", func(c *minio.Client, _ string) error {
			_, err := c.BucketExists(ctx, bucket)
			return err
		}},
		{"make a bucket", func(c *minio.Client, role string) error {
			return c.MakeBucket(ctx, bucket+"-"+role, minio.MakeBucketOptions{Region: f.mi.Region})
		}},
		{"remove the bucket", func(c *minio.Client, _ string) error { return c.RemoveBucket(ctx, bucket) }},
	}
	// What each role's code calls, and nothing else.
	uses := map[string][]string{
		"api": {"stat an object", "read an object", "delete an object", "list multipart uploads", "list an upload's parts",
			"abort an upload", "read the bucket policy", "read the versioning", "see the bucket"},
		"confirmer":  {"stat an object", "read an object", "delete an object", "read the notification rules", "set the notification rules", "see the bucket"},
		"sweeper":    {"stat an object", "read an object", "delete an object", "list the bucket", "list multipart uploads", "abort an upload", "see the bucket"},
		"classifier": {"stat an object", "read an object", "see the bucket"},
		"scanner":    {"stat an object", "read an object", "delete an object", "see the bucket"},
		"upload":     {"put an object"},
		"download":   {"stat an object", "read an object"},
	}
	creds := map[string]objectstore.Credentials{"upload": f.cfg.Upload, "download": f.cfg.Download}
	for role, c := range f.roles {
		creds[role] = c
	}
	for _, who := range append(slices.Clone(objectstore.Roles), "upload", "download") {
		c := client(t, f.mi, creds[who])
		for _, a := range actions {
			if who == "upload" && a.name == "put an object" {
				continue // it put the objects above
			}
			want := slices.Contains(uses[who], a.name)
			err := a.do(c, who)
			if got := allowed(t, who+" "+a.name, err); got != want {
				t.Errorf("the %s identity may %s: %v, want %v (%v)", who, a.name, got, want, err)
			}
		}
	}

	for _, role := range objectstore.Roles {
		if err := f.roleStore(t, role).CheckBucket(ctx); err != nil {
			t.Errorf("%s: %v", role, err)
		}
	}
	s, err := objectstore.New(f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CheckSigners(ctx); err != nil {
		t.Fatalf("the provisioned identities fail the api's start-up check: %v", err)
	}
}

// TestProvisionRefusesSharedOrUnknownIdentities checks that one access key
// never serves two jobs and that an unknown role is refused.
func TestProvisionRefusesSharedOrUnknownIdentities(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	same := f.cfg
	same.Download = f.cfg.Upload
	if err := objectstore.Provision(ctx, same, f.roles, f.root); err == nil {
		t.Error("provisioning one identity for two jobs succeeded")
	}
	roles := map[string]objectstore.Credentials{"api": f.roles["api"], "sweeper": f.roles["api"]}
	if err := objectstore.Provision(ctx, f.cfg, roles, f.root); err == nil {
		t.Error("provisioning one identity for two roles succeeded")
	}
	roles = map[string]objectstore.Credentials{"service": f.roles["api"]}
	if err := objectstore.Provision(ctx, f.cfg, roles, f.root); err == nil || !strings.Contains(err.Error(), `unknown role "service"`) {
		t.Errorf("provisioning an unknown role: %v", err)
	}
	if _, err := objectstore.RolePolicy(f.cfg.Bucket, "admin"); err == nil {
		t.Error("RolePolicy of an unknown role succeeded")
	}
}

// checkSays runs the store's start-up check until it fails saying every
// one of want (MinIO applies an IAM change at once on one node; the wait
// only covers a slow machine), and fails the test if it never does.
func checkSays(t *testing.T, ctx context.Context, s *objectstore.Store, want ...string) error {
	t.Helper()
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		err = s.CheckSigners(ctx)
		missing := ""
		for _, w := range want {
			if err == nil || !strings.Contains(err.Error(), w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return err
		}
		if time.Now().After(deadline) {
			t.Errorf("check says %v, want it to say %q", err, missing)
			return err
		}
	}
}

// checkPasses runs the store's start-up check until it passes, for up to
// 5 s, and fails the test if it never does.
func checkPasses(t *testing.T, ctx context.Context, s *objectstore.Store) {
	t.Helper()
	var err error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if err = s.CheckSigners(ctx); err == nil {
			return
		}
	}
	t.Errorf("the check still fails: %v", err)
}

// TestStartUpCheckNamesWhatFailed breaks a provisioned store in each way
// the api's start-up check looks for, and checks that it then fails
// naming it, and passes once repaired.
func TestStartUpCheckNamesWhatFailed(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	f.provision(t, ctx)
	s, err := objectstore.New(f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkPasses(t, ctx, s)
	root := f.mi.Client(t)

	t.Run("root signs", func(t *testing.T) {
		cfg := f.cfg
		cfg.Service, cfg.Upload, cfg.Download = f.root, f.root, f.root
		rs, err := objectstore.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		checkSays(t, ctx, rs, "MINIO_UPLOAD_ACCESS_KEY", "may read objects", "may read another bucket's objects",
			"may list the bucket", "MINIO_DOWNLOAD_ACCESS_KEY", "MINIO_API_ACCESS_KEY", "is not refused a PUT",
			"is not refused setting the bucket's notification rules", "is not refused setting the bucket's policy",
			"is not refused setting the bucket's versioning", "is not refused listing the bucket")
	})

	t.Run("wrong upload secret", func(t *testing.T) {
		cfg := f.cfg
		cfg.Upload.SecretKey = "not-the-secret"
		ws, err := objectstore.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		checkSays(t, ctx, ws, "cannot put objects")
	})

	// An operator attaches readwrite to an identity: the check refuses
	// it, and provisioning again takes it away.
	broaden := func(t *testing.T, user, policy string, want ...string) {
		t.Helper()
		if _, err := f.adm.AttachPolicy(ctx, madmin.PolicyAssociationReq{Policies: []string{policy}, User: user}); err != nil {
			t.Fatal(err)
		}
		checkSays(t, ctx, s, want...)
		f.provision(t, ctx)
		checkPasses(t, ctx, s)
	}
	t.Run("too-broad upload identity", func(t *testing.T) {
		broaden(t, f.cfg.Upload.AccessKey, "readwrite", "MINIO_UPLOAD_ACCESS_KEY", "may read objects",
			"may read objects under another prefix", "may read another bucket's objects", "may list the bucket", "may delete objects")
	})
	t.Run("download identity may write", func(t *testing.T) {
		broaden(t, f.cfg.Download.AccessKey, "readwrite", "MINIO_DOWNLOAD_ACCESS_KEY", "is not refused a PUT", "is not refused a delete")
	})
	t.Run("api identity may set notification rules", func(t *testing.T) {
		broaden(t, f.cfg.Service.AccessKey, objectstore.PolicyName(f.cfg.Bucket, "confirmer"),
			"MINIO_API_ACCESS_KEY", "is not refused setting the bucket's notification rules")
	})
	t.Run("api identity may list", func(t *testing.T) {
		broaden(t, f.cfg.Service.AccessKey, objectstore.PolicyName(f.cfg.Bucket, "sweeper"),
			"MINIO_API_ACCESS_KEY", "is not refused listing the bucket")
	})

	t.Run("a header statement removed", func(t *testing.T) {
		var p struct {
			Version   string
			Statement []map[string]any
		}
		if err := json.Unmarshal(objectstore.UploadPolicy(f.cfg.Bucket), &p); err != nil {
			t.Fatal(err)
		}
		name := objectstore.PolicyName(f.cfg.Bucket, "upload")
		denies := 0
		for i, st := range p.Statement {
			if st["Effect"] != "Deny" {
				continue
			}
			denies++
			without := p
			without.Statement = slices.Delete(slices.Clone(p.Statement), i, i+1)
			b, _ := json.Marshal(without)
			if err := f.adm.AddCannedPolicy(ctx, name, b); err != nil {
				t.Fatal(err)
			}
			headers, ok := st["Condition"].(map[string]any)["Null"].(map[string]any)
			if !ok {
				// The statement refusing a PUT whose signature is not checked.
				err := checkSays(t, ctx, s, "MINIO_UPLOAD_ACCESS_KEY", "is not refused a PUT whose signature MinIO does not check", "BadDigest")
				if strings.Contains(errText(err), "is not refused a PUT with") {
					t.Errorf("without the unsigned PUT's Deny statement the check names headers: %v", err)
				}
				continue
			}
			var key string
			for k := range headers {
				key = k
			}
			err := checkSays(t, ctx, s, "MINIO_UPLOAD_ACCESS_KEY", "is not refused a PUT with", "condition "+key+")")
			if n := strings.Count(errText(err), "is not refused a PUT with"); n != 1 || strings.Contains(errText(err), "signature MinIO does not check") {
				t.Errorf("without the Deny statement of %s the check names %d headers: %v", key, n, err)
			}
		}
		if denies != 11 {
			t.Errorf("the upload policy has %d Deny statements, want one per header (10) and the unsigned PUT's", denies)
		}
		f.provision(t, ctx)
		checkPasses(t, ctx, s)
	})

	t.Run("anonymous read policy", func(t *testing.T) {
		public := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["*"]},"Action":["s3:GetObject"],"Resource":["arn:aws:s3:::` + f.cfg.Bucket + `/*"]}]}`
		if err := root.SetBucketPolicy(ctx, f.cfg.Bucket, public); err != nil {
			t.Fatal(err)
		}
		checkSays(t, ctx, s, "has a bucket policy", "lets anonymous requests read")
		if err := root.SetBucketPolicy(ctx, f.cfg.Bucket, ""); err != nil {
			t.Fatal(err)
		}
		checkPasses(t, ctx, s)
	})

	t.Run("versioning enabled", func(t *testing.T) {
		if err := root.EnableVersioning(ctx, f.cfg.Bucket); err != nil {
			t.Fatal(err)
		}
		checkSays(t, ctx, s, "has versioning enabled")
		if err := root.SuspendVersioning(ctx, f.cfg.Bucket); err != nil {
			t.Fatal(err)
		}
		checkPasses(t, ctx, s)
	})

	// The probes stored nothing.
	for o := range root.ListObjects(ctx, f.cfg.Bucket, minio.ListObjectsOptions{Recursive: true, WithVersions: true}) {
		if o.Err != nil {
			t.Fatal(o.Err)
		}
		t.Errorf("the check left %s (version %q) in the bucket", o.Key, o.VersionID)
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestEachRoleChecksItsOwnIdentity: every role's start-up check passes on
// the identity setup made for it, and fails naming what a broadened
// identity could do beyond its role: the classifier deleting or listing,
// the confirmer writing objects.
func TestEachRoleChecksItsOwnIdentity(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f.provision(t, ctx)
	stores := map[string]*objectstore.Store{}
	for _, role := range objectstore.Roles {
		s := f.roleStore(t, role)
		stores[role] = s
		if err := s.CheckIdentity(ctx); err != nil {
			t.Errorf("%s's own identity: %v", role, err)
		}
	}
	// until runs role's check until it says every one of want (nil: until
	// it passes), for up to 5 s.
	until := func(role string, want ...string) {
		t.Helper()
		var err error
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			err = stores[role].CheckIdentity(ctx)
			says := err != nil || len(want) == 0
			for _, w := range want {
				says = says && strings.Contains(err.Error(), w)
			}
			if says && (len(want) > 0 || err == nil) {
				return
			}
		}
		t.Errorf("%s's check says %v, want %q", role, err, want)
	}
	for _, c := range []struct {
		role, policy string
		want         []string
	}{
		{"classifier", objectstore.PolicyName(f.cfg.Bucket, "sweeper"), []string{"MINIO_CLASSIFIER_ACCESS_KEY", "is not refused a delete", "is not refused listing the bucket"}},
		{"confirmer", "readwrite", []string{"MINIO_CONFIRMER_ACCESS_KEY", "is not refused a PUT", "is not refused setting the bucket's policy"}},
		{"sweeper", objectstore.PolicyName(f.cfg.Bucket, "confirmer"), []string{"MINIO_SWEEPER_ACCESS_KEY", "is not refused setting the bucket's notification rules"}},
	} {
		if _, err := f.adm.AttachPolicy(ctx, madmin.PolicyAssociationReq{Policies: []string{c.policy}, User: f.roles[c.role].AccessKey}); err != nil {
			t.Fatal(err)
		}
		until(c.role, c.want...)
		f.provision(t, ctx) // takes the extra policy away
		until(c.role)
	}
}
