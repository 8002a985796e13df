package config

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func lookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

// withRoles adds to env a MinIO identity and a NATS password for every
// role, each its own, and returns env.
func withRoles(env map[string]string) map[string]string {
	for _, role := range RoleNames {
		env[roleVar("MINIO_", role, "_ACCESS_KEY")] = role
		env[roleVar("MINIO_", role, "_SECRET_KEY")] = role + "-secret"
		env[roleVar("NATS_", role, "_PASSWORD")] = "p" + role
	}
	env["CLAMD_ADDRESS"] = "clamd:3310" // the scanner's
	return env
}

// TestMinIOIdentitiesAreWhatParseReads: each of MinIOIdentities is read
// from MINIO_<NAME>_ACCESS_KEY and _SECRET_KEY, into the keys it points at,
// and no two share a name or a key.
func TestMinIOIdentitiesAreWhatParseReads(t *testing.T) {
	t.Parallel()
	env := map[string]string{}
	var c Config
	for _, id := range c.MinIOIdentities() {
		env[roleVar("MINIO_", id.Name, "_ACCESS_KEY")] = id.Name + "-key"
		env[roleVar("MINIO_", id.Name, "_SECRET_KEY")] = id.Name + "-secret"
	}
	if want := len(RoleNames) + 2; len(env) != 2*want {
		t.Fatalf("%d variables for %d identities, want %d identities with a name each", len(env), len(env)/2, want)
	}
	c, err := parse(lookup(env))
	if err != nil {
		t.Fatal(err)
	}
	keys := map[*string]bool{}
	for _, id := range c.MinIOIdentities() {
		if *id.AccessKey != id.Name+"-key" || *id.SecretKey != id.Name+"-secret" {
			t.Errorf("identity %s holds %q, %q", id.Name, *id.AccessKey, *id.SecretKey)
		}
		if keys[id.AccessKey] || keys[id.SecretKey] {
			t.Errorf("identity %s shares a key with another", id.Name)
		}
		keys[id.AccessKey], keys[id.SecretKey] = true, true
	}
}

func TestParseReadsEveryVariable(t *testing.T) {
	t.Parallel()
	c, err := parse(lookup(withRoles(map[string]string{
		"DATABASE_URL":              "postgres://x",
		"MINIO_ENDPOINT":            "minio:9000",
		"MINIO_PUBLIC_ENDPOINT":     "localhost:9000",
		"MINIO_UPLOAD_ACCESS_KEY":   "up",
		"MINIO_UPLOAD_SECRET_KEY":   "up-secret",
		"MINIO_DOWNLOAD_ACCESS_KEY": "down",
		"MINIO_DOWNLOAD_SECRET_KEY": "down-secret",
		"MINIO_ADMIN_ACCESS_KEY":    "root",
		"MINIO_ADMIN_SECRET_KEY":    "root-secret",
		"MINIO_BUCKET":              "docs",
		"MINIO_REGION":              "eu-west-1",
		"JWT_SECRET":                strings.Repeat("s", 32),
		"HTTP_ADDR":                 ":9999",
		"UPLOAD_URL_TTL":            "5m",
		"MAX_UPLOAD_BYTES":          "1000",
		"QUOTA_DEFAULT_BYTES":       "2000",
		"MINIO_PUBLIC_USE_TLS":      "true",
		"NATS_SETUP_PASSWORD":       "psetup",
	})))
	if err != nil {
		t.Fatal(err)
	}
	for _, role := range RoleNames {
		if rc := c.Role(role); *rc != (RoleCredentials{MinIOAccessKey: role, MinIOSecretKey: role + "-secret", NATSPassword: "p" + role}) {
			t.Errorf("%s's credentials parsed as %+v", role, *rc)
		}
	}
	if c.MinIOUseTLS || !c.MinIOPublicUseTLS || c.NATSSetupPassword != "psetup" {
		t.Errorf("MINIO_USE_TLS %v, MINIO_PUBLIC_USE_TLS %v, NATS_SETUP_PASSWORD %q", c.MinIOUseTLS, c.MinIOPublicUseTLS, c.NATSSetupPassword)
	}
	if c.MinIOUploadAccessKey != "up" || c.MinIOUploadSecretKey != "up-secret" || c.MinIODownloadAccessKey != "down" ||
		c.MinIODownloadSecretKey != "down-secret" || c.MinIOAdminAccessKey != "root" || c.MinIOAdminSecretKey != "root-secret" {
		t.Fatalf("identities parsed as %+v", c)
	}
	if c.MinIOPublicEndpoint != "localhost:9000" || c.MinIORegion != "eu-west-1" || c.UploadURLTTL != 5*time.Minute ||
		c.MaxUploadBytes != 1000 || c.QuotaDefaultBytes != 2000 || c.HTTPAddr != ":9999" {
		t.Fatalf("parsed %+v", c)
	}
	if err := c.Validate(RoleNames...); err != nil {
		t.Fatal(err)
	}
}

// TestEachRoleNeedsOnlyItsOwnCredentials: a process is refused for want of
// its own roles' credentials and never asks for another role's.
func TestEachRoleNeedsOnlyItsOwnCredentials(t *testing.T) {
	t.Parallel()
	common := map[string]string{"DATABASE_URL": "postgres://x", "MINIO_ENDPOINT": "minio:9000", "NATS_URL": "nats://n:4222"}
	for _, role := range RoleNames {
		env := map[string]string{
			roleVar("MINIO_", role, "_ACCESS_KEY"): role, roleVar("MINIO_", role, "_SECRET_KEY"): role + "-secret",
		}
		for k, v := range common {
			env[k] = v
		}
		if role == "scanner" {
			env["CLAMD_ADDRESS"] = "/run/clamav/clamd.ctl"
		}
		if role == "api" {
			env["JWT_SECRET"] = strings.Repeat("s", 32)
			env["MINIO_UPLOAD_ACCESS_KEY"], env["MINIO_UPLOAD_SECRET_KEY"] = "up", "up-secret"
			env["MINIO_DOWNLOAD_ACCESS_KEY"], env["MINIO_DOWNLOAD_SECRET_KEY"] = "down", "down-secret"
		}
		c, err := parse(lookup(env))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(role); err != nil {
			t.Errorf("%s with its own credentials only: %v", role, err)
		}
		for _, other := range RoleNames {
			if other == role {
				continue
			}
			err := c.Validate(other)
			if want := roleVar("MINIO_", other, "_ACCESS_KEY") + " is required"; err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s's credentials run as %s: %v, want %q", role, other, err, want)
			}
		}
	}
	if err := (Config{}).Validate("virus"); err == nil || !strings.Contains(err.Error(), `unknown role "virus"`) {
		t.Errorf("unknown role: %v", err)
	}
}

// TestSharedCredentialsAreRefused: the variables of the one identity every
// role shared are refused by name, not ignored.
func TestSharedCredentialsAreRefused(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"MINIO_ACCESS_KEY", "MINIO_SECRET_KEY", "NATS_USER", "NATS_PASSWORD"} {
		_, err := parse(lookup(map[string]string{name: "x"}))
		if err == nil || !strings.Contains(err.Error(), name+" is no longer read") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c, err := parse(lookup(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.QuotaDefaultBytes != 104857600 || c.UploadURLTTL != 15*time.Minute {
		t.Fatalf("defaults %+v", c)
	}
}

func TestErrorsNameTheVariable(t *testing.T) {
	t.Parallel()
	_, err := parse(lookup(map[string]string{"UPLOAD_URL_TTL": "soon", "MAX_UPLOAD_BYTES": "-1", "QUOTA_DEFAULT_BYTES": "lots"}))
	for _, name := range []string{"UPLOAD_URL_TTL", "MAX_UPLOAD_BYTES", "QUOTA_DEFAULT_BYTES"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("error %v does not name %s", err, name)
		}
	}
	c, _ := parse(lookup(map[string]string{"JWT_SECRET": "short", "MINIO_ENDPOINT": "http://minio:9000"}))
	err = c.Validate("api")
	for _, name := range []string{"DATABASE_URL", "MINIO_API_ACCESS_KEY", "JWT_SECRET must be at least 32 bytes", "MINIO_ENDPOINT must be host:port"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("validate error %v does not name %s", err, name)
		}
	}
}

func TestTokensNeedASecretOrPublicKeys(t *testing.T) {
	t.Parallel()
	base := map[string]string{"DATABASE_URL": "postgres://x", "MINIO_ENDPOINT": "minio:9000", "MINIO_API_ACCESS_KEY": "ak",
		"MINIO_API_SECRET_KEY": "service-secret", "MINIO_BUCKET": "docs", "NATS_URL": "nats://n:4222",
		"MINIO_UPLOAD_ACCESS_KEY": "up", "MINIO_UPLOAD_SECRET_KEY": "up-secret", "MINIO_DOWNLOAD_ACCESS_KEY": "down", "MINIO_DOWNLOAD_SECRET_KEY": "down-secret"}
	c, _ := parse(lookup(base))
	if err := c.Validate("api"); err == nil || !strings.Contains(err.Error(), "JWT_SECRET or JWT_PUBLIC_KEYS_FILE is required") {
		t.Fatalf("neither set: %v", err)
	}
	base["JWT_PUBLIC_KEYS_FILE"] = "/etc/docuvault/jwt.pem"
	c, _ = parse(lookup(base))
	if err := c.Validate("api"); err == nil || !strings.Contains(err.Error(), "JWT_PUBLIC_KEYS_FILE needs JWT_ISSUER and JWT_AUDIENCE") {
		t.Fatalf("JWT_PUBLIC_KEYS_FILE without issuer and audience: %v", err)
	}
	base["JWT_ISSUER"], base["JWT_AUDIENCE"] = "https://idp.example", "docuvault"
	c, _ = parse(lookup(base))
	if err := c.Validate("api"); err != nil || c.JWTPublicKeysFile != "/etc/docuvault/jwt.pem" {
		t.Fatalf("only JWT_PUBLIC_KEYS_FILE: %q, %v", c.JWTPublicKeysFile, err)
	}
}

func TestExampleSecretsAreRefused(t *testing.T) {
	t.Parallel()
	env := map[string]string{"DATABASE_URL": "postgres://docuvault:example-postgres-password@db:5432/docuvault",
		"MINIO_ENDPOINT": "minio:9000", "MINIO_BUCKET": "docs", "NATS_URL": "nats://n:4222",
		"NATS_CONFIRMER_PASSWORD": "pexampledocuvaultpassword",
		"JWT_SECRET":              "example-jwt-secret-replace-with-openssl-rand-hex-32",
		"MINIO_UPLOAD_ACCESS_KEY": "up", "MINIO_UPLOAD_SECRET_KEY": "example-upload-secret",
		"MINIO_DOWNLOAD_ACCESS_KEY": "down", "MINIO_DOWNLOAD_SECRET_KEY": "example-download-secret",
		"MINIO_ADMIN_ACCESS_KEY": "root", "MINIO_ADMIN_SECRET_KEY": "example-minio-root-password"}
	withRoles(env)
	env["MINIO_SWEEPER_SECRET_KEY"] = "example-service-secret"
	env["NATS_CONFIRMER_PASSWORD"] = "pexampledocuvaultpassword"
	c, _ := parse(lookup(env))
	err := c.ValidateSetup()
	for _, name := range []string{"JWT_SECRET", "MINIO_SWEEPER_SECRET_KEY", "MINIO_UPLOAD_SECRET_KEY", "MINIO_DOWNLOAD_SECRET_KEY", "MINIO_ADMIN_SECRET_KEY", "NATS_CONFIRMER_PASSWORD", "DATABASE_URL's password"} {
		if err == nil || !strings.Contains(err.Error(), name+" is an example value") {
			t.Errorf("%s: %v", name, err)
		}
	}
	for _, k := range []string{"DATABASE_URL", "NATS_CONFIRMER_PASSWORD", "JWT_SECRET", "MINIO_SWEEPER_SECRET_KEY", "MINIO_UPLOAD_SECRET_KEY", "MINIO_DOWNLOAD_SECRET_KEY", "MINIO_ADMIN_SECRET_KEY"} {
		env[k] = strings.ReplaceAll(env[k], "example", "a-real-and-long")
	}
	c, _ = parse(lookup(env))
	if err := c.ValidateSetup(); err != nil {
		t.Fatalf("own secrets: %v", err)
	}
}

func TestIdentitiesMustDiffer(t *testing.T) {
	t.Parallel()
	base := withRoles(map[string]string{"DATABASE_URL": "postgres://x", "MINIO_ENDPOINT": "minio:9000", "MINIO_BUCKET": "docs",
		"NATS_URL": "nats://n:4222", "JWT_SECRET": strings.Repeat("s", 32),
		"MINIO_UPLOAD_ACCESS_KEY": "root", "MINIO_UPLOAD_SECRET_KEY": "root-secret",
		"MINIO_DOWNLOAD_ACCESS_KEY": "down", "MINIO_DOWNLOAD_SECRET_KEY": "down-secret",
		"MINIO_ADMIN_ACCESS_KEY": "root", "MINIO_ADMIN_SECRET_KEY": "root-secret"})
	c, _ := parse(lookup(base))
	if err := c.Validate("api"); err == nil || !strings.Contains(err.Error(), "MINIO_UPLOAD_ACCESS_KEY and MINIO_ADMIN_ACCESS_KEY must name different MinIO identities") {
		t.Fatalf("upload signer = admin: %v", err)
	}
	base["MINIO_UPLOAD_ACCESS_KEY"] = "up"
	base["MINIO_CLASSIFIER_ACCESS_KEY"] = "confirmer"
	c, _ = parse(lookup(base))
	if err := c.Validate("classifier"); err == nil || !strings.Contains(err.Error(), "MINIO_CONFIRMER_ACCESS_KEY and MINIO_CLASSIFIER_ACCESS_KEY must name different MinIO identities") {
		t.Fatalf("classifier = confirmer: %v", err)
	}
	base["MINIO_CLASSIFIER_ACCESS_KEY"] = "classifier"
	c, _ = parse(lookup(base))
	if err := c.Validate(RoleNames...); err != nil {
		t.Fatalf("distinct identities: %v", err)
	}
	if err := c.ValidateSetup(); err != nil {
		t.Fatalf("setup: %v", err)
	}
	base["MINIO_UPLOAD_SECRET_KEY"] = "short"
	delete(base, "MINIO_ADMIN_SECRET_KEY")
	c, _ = parse(lookup(base))
	err := c.ValidateSetup()
	for _, want := range []string{"MINIO_UPLOAD_SECRET_KEY must be at least 8 characters", "MINIO_ADMIN_SECRET_KEY is required"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("setup error %v does not say %q", err, want)
		}
	}
}

func TestCORSOrigins(t *testing.T) {
	t.Parallel()
	c, err := parse(lookup(map[string]string{"CORS_ORIGINS": " http://localhost:5173, https://app.example.com:8443 ,"}))
	if err != nil || !slices.Equal(c.CORSOrigins, []string{"http://localhost:5173", "https://app.example.com:8443"}) {
		t.Fatalf("parsed %q, %v", c.CORSOrigins, err)
	}
	for _, bad := range []string{"*", "https://*.example.com", "localhost:5173", "http://localhost:5173/", "http://localhost:5173/app",
		"ftp://example.com", "https://App.Example.com", "http://user@example.com", "https://"} {
		if err := ValidateOrigin(bad); err == nil {
			t.Errorf("ValidateOrigin(%q) = nil, want an error", bad)
		}
	}
	c.CORSOrigins = []string{"http://localhost:5173/"}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "CORS_ORIGINS") {
		t.Errorf("validate with a bad origin: %v", err)
	}
}

func TestPprofAddr(t *testing.T) {
	t.Parallel()
	c, err := parse(lookup(nil))
	if err != nil || c.PprofAddr != "" {
		t.Fatalf("default PPROF_ADDR = %q, %v; want empty (off)", c.PprofAddr, err)
	}
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:6060", true},
		{":6060", true},
		{"[::1]:6060", true},
		{"127.0.0.1", false},
		{"127.0.0.1:http", false},
		{"127.0.0.1:0", false},
		{"127.0.0.1:70000", false},
		{"http://127.0.0.1:6060", false},
	} {
		err := validateHostPort(tc.addr)
		if (err == nil) != tc.ok {
			t.Errorf("PPROF_ADDR=%q: %v, want ok=%v", tc.addr, err, tc.ok)
		}
	}
	c, _ = parse(lookup(map[string]string{"PPROF_ADDR": "localhost"}))
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "PPROF_ADDR") {
		t.Errorf("validate with PPROF_ADDR=localhost: %v, want an error naming PPROF_ADDR", err)
	}
}

func TestNATSStreamReplicas(t *testing.T) {
	t.Parallel()
	c, err := parse(lookup(nil))
	if err != nil || c.NATSStreamReplicas != 1 {
		t.Fatalf("default NATS_STREAM_REPLICAS = %d, %v; want 1 (a single server)", c.NATSStreamReplicas, err)
	}
	c, err = parse(lookup(map[string]string{"NATS_STREAM_REPLICAS": "3"}))
	if err != nil || c.NATSStreamReplicas != 3 {
		t.Fatalf("NATS_STREAM_REPLICAS=3 parsed as %d, %v", c.NATSStreamReplicas, err)
	}
	for _, v := range []string{"0", "6", "-1", "three"} {
		c, err := parse(lookup(map[string]string{"NATS_STREAM_REPLICAS": v}))
		if err == nil {
			err = c.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), "NATS_STREAM_REPLICAS") {
			t.Errorf("NATS_STREAM_REPLICAS=%s: %v, want an error naming it", v, err)
		}
	}
}

// CONFIRM_WAIT is 2s by default, may be 0 (no wait) and at most
// MaxConfirmWait; nothing else parses or validates.
func TestConfirmWait(t *testing.T) {
	t.Parallel()
	if d := Defaults().ConfirmWait; d != 2*time.Second {
		t.Errorf("default CONFIRM_WAIT %v, want 2s", d)
	}
	for v, want := range map[string]time.Duration{"0": 0, "0s": 0, "500ms": 500 * time.Millisecond, "10s": 10 * time.Second} {
		c, err := parse(lookup(map[string]string{"CONFIRM_WAIT": v}))
		if err != nil || c.ConfirmWait != want {
			t.Errorf("CONFIRM_WAIT=%s: %v, %v; want %v", v, c.ConfirmWait, err, want)
		}
	}
	for _, v := range []string{"-1s", "soon", "2"} {
		if _, err := parse(lookup(map[string]string{"CONFIRM_WAIT": v})); err == nil || !strings.Contains(err.Error(), "CONFIRM_WAIT") {
			t.Errorf("CONFIRM_WAIT=%s: %v, want an error naming it", v, err)
		}
	}
	c, err := parse(lookup(map[string]string{"CONFIRM_WAIT": "11s"}))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "CONFIRM_WAIT") {
		t.Errorf("validate CONFIRM_WAIT=11s: %v, want an error naming it", err)
	}
}

// TestScanningIsRequiredWhereAClamdIsConfigured: SCAN_REQUIRED defaults to
// on wherever CLAMD_ADDRESS is set, and can be said either way; a scanner
// without a clamd is refused.
func TestScanningIsRequiredWhereAClamdIsConfigured(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env  map[string]string
		want bool
	}{
		{map[string]string{}, false},
		{map[string]string{"CLAMD_ADDRESS": "clamd:3310"}, true},
		{map[string]string{"CLAMD_ADDRESS": "clamd:3310", "SCAN_REQUIRED": "false"}, false},
		{map[string]string{"SCAN_REQUIRED": "true"}, true},
	} {
		c, err := parse(lookup(tc.env))
		if err != nil {
			t.Fatal(err)
		}
		if c.ScanRequired != tc.want {
			t.Errorf("%v: SCAN_REQUIRED %v, want %v", tc.env, c.ScanRequired, tc.want)
		}
	}
	env := withRoles(map[string]string{"DATABASE_URL": "postgres://x", "MINIO_ENDPOINT": "minio:9000"})
	delete(env, "CLAMD_ADDRESS")
	c, _ := parse(lookup(env))
	if err := c.Validate("scanner"); err == nil || !strings.Contains(err.Error(), "CLAMD_ADDRESS is required") {
		t.Errorf("a scanner without clamd: %v", err)
	}
}
