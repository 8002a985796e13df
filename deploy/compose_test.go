package deploy

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/dotenv"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/nats-io/nats-server/v2/server"
	"go.yaml.in/yaml/v3"

	"github.com/docuvault/docuvault/shared/config"
	"github.com/docuvault/docuvault/shared/objectstore"
)

// root is the repository root, relative to this package.
const root = ".."

// roles are the compose services that run the DocuVault image, each with
// the subcommand of the same name: setup and config's roles.
var roles = append([]string{setupRole}, config.RoleNames...)

// setupRole is the one-shot role that creates the bucket, the MinIO
// identities, the NATS streams and consumers: the only one given MinIO's
// admin credential and NATS user setup's password.
const setupRole = "setup"

// clamdService is ClamAV's daemon, which the scanner streams documents
// to: the compose service, and the Deployment and Service of deploy/k8s.
// It runs the official image, not DocuVault's, and holds no credential.
const clamdService = "clamd"

// clamdImage is the official ClamAV image, at the feature release the
// examples pin (a tag the project moves to each 1.4 patch).
const clamdImage = "clamav/clamav:1.4"

// clamdPort is clamd's TCPSocket in the official image.
const clamdPort = 3310

// clamdMemory and clamdReloadMemory are what clamd takes with the real
// signature database: 1.2 GiB loaded, up to 2.4 GiB while it loads an
// update beside the one it scans with (ConcurrentDatabaseReload).
const (
	clamdMemory       = 1288490189
	clamdReloadMemory = 2576980378
)

// upper is the role's part of its variables' names (MINIO_<ROLE>_...).
func upper(role string) string { return strings.ToUpper(role) }

// minioIdentity are the variables of role's own MinIO identity.
func minioIdentity(role string) []string {
	return []string{"MINIO_" + upper(role) + "_ACCESS_KEY", "MINIO_" + upper(role) + "_SECRET_KEY"}
}

// natsPassword is the variable of the password of role's NATS user (the
// user named after the role; setup's and minio's too).
func natsPassword(role string) string { return "NATS_" + upper(role) + "_PASSWORD" }

// signerVars are the identities that sign upload and download URLs: the
// api's alone (and setup's, which creates them).
var signerVars = []string{
	"MINIO_UPLOAD_ACCESS_KEY", "MINIO_UPLOAD_SECRET_KEY",
	"MINIO_DOWNLOAD_ACCESS_KEY", "MINIO_DOWNLOAD_SECRET_KEY",
}

// adminVars are MinIO's admin credential, which only the setup role reads.
var adminVars = []string{"MINIO_ADMIN_ACCESS_KEY", "MINIO_ADMIN_SECRET_KEY"}

// removedVars are the variables of the one credential every role shared,
// which config now refuses by name (and NATS_DOCUVAULT_PASSWORD, that
// user's password in nats.conf): no deployment file may set them.
var removedVars = []string{"MINIO_ACCESS_KEY", "MINIO_SECRET_KEY", "NATS_USER", "NATS_PASSWORD", "NATS_DOCUVAULT_PASSWORD"}

// ownCredentials are the credentials role holds, and no other: its
// MinIO identity, its NATS password and DATABASE_URL; the api also the
// signers and JWT_SECRET; setup the admin credential, NATS user setup's
// password and every identity it creates.
func ownCredentials(role string) []string {
	own := []string{"DATABASE_URL"}
	switch role {
	case setupRole:
		own = append(own, adminVars...)
		own = append(own, natsPassword(setupRole))
		for _, r := range config.RoleNames {
			own = append(own, minioIdentity(r)...)
		}
		own = append(own, signerVars...)
	case "api":
		own = append(own, minioIdentity(role)...)
		own = append(own, natsPassword(role), "JWT_SECRET")
		own = append(own, signerVars...)
	default:
		own = append(own, minioIdentity(role)...)
		own = append(own, natsPassword(role))
	}
	slices.Sort(own)
	return own
}

// credentialVars are every variable that holds a credential: each role
// may hold only those of ownCredentials.
func credentialVars() map[string]bool {
	all := map[string]bool{}
	for _, role := range roles {
		for _, name := range ownCredentials(role) {
			all[name] = true
		}
	}
	for _, name := range removedVars {
		all[name] = true
	}
	return all
}

// requiredOf are the variables role's validation insists on: the
// database, MinIO's endpoint and bucket, NATS and the role's own
// credentials (NATS passwords excepted: config lets them be empty for an
// embedded server, but every example sets them). They are listed
// explicitly in its environment even where config has a default.
func requiredOf(role string) []string {
	return append([]string{"MINIO_ENDPOINT", "MINIO_BUCKET", "NATS_URL"}, ownCredentials(role)...)
}

// accessKeys are the access keys of every MinIO identity the services use;
// each must differ from the others and from MinIO's root user.
func accessKeys() []string {
	var keys []string
	for _, r := range config.RoleNames {
		keys = append(keys, minioIdentity(r)[0])
	}
	return append(keys, "MINIO_UPLOAD_ACCESS_KEY", "MINIO_DOWNLOAD_ACCESS_KEY")
}

// requiredSecrets are the secrets docker-compose.yml requires, written
// ${NAME:?...} with no default; .env.example sets each to an example value
// that config refuses.
var requiredSecrets = func() []string {
	s := []string{"POSTGRES_PASSWORD", "MINIO_ROOT_PASSWORD", "JWT_SECRET"}
	for _, r := range config.RoleNames {
		s = append(s, minioIdentity(r)[1])
	}
	s = append(s, "MINIO_UPLOAD_SECRET_KEY", "MINIO_DOWNLOAD_SECRET_KEY")
	for _, r := range append(slices.Clone(config.RoleNames), setupRole, "minio") {
		s = append(s, natsPassword(r))
	}
	return s
}()

// identityVars are the non-secret names of the MinIO users, which
// docker-compose.yml interpolates with a default the environment may change.
var identityVars = append([]string{"MINIO_ROOT_USER"}, accessKeys()...)

// bindAddrVar is the host address docker-compose.yml publishes its ports on.
const bindAddrVar = "DOCUVAULT_BIND_ADDR"

// envExample is the environment file the README has users copy to .env.
const envExample = ".env.example"

// isSecretName reports whether the variable name holds a secret: a
// password, a secret key or an HS256 secret.
func isSecretName(name string) bool {
	return strings.Contains(name, "PASSWORD") || strings.Contains(name, "SECRET")
}

// randomSecrets returns every required secret freshly generated, the way
// .env.example says to: "p" and 64 hex digits suits all of them (a NATS
// password must start with a letter, the PostgreSQL one is in a URL).
func randomSecrets() map[string]string {
	env := map[string]string{}
	for _, name := range requiredSecrets {
		env[name] = "p" + hex.EncodeToString(randomBytes(32))
	}
	return env
}

// randomBytes returns n bytes from crypto/rand (which does not fail).
func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// envExampleVars parses .env.example line by line: set holds its KEY=VALUE
// lines, commented its "# KEY=VALUE" lines (optional settings shown with
// their defaults). It also reads the file as docker compose reads a .env
// file and fails the test if the two disagree, so that what the test checks
// is what compose would pass on.
func envExampleVars(tb testing.TB) (set, commented map[string]string) {
	tb.Helper()
	path := filepath.Join(root, envExample)
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	line := regexp.MustCompile(`^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$`)
	set, commented = map[string]string{}, map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		m := line.FindStringSubmatch(strings.TrimSpace(l))
		if m == nil {
			continue
		}
		if m[1] == "" {
			set[m[2]] = m[3]
		} else {
			commented[m[2]] = m[3]
		}
	}
	compose, err := dotenv.GetEnvFromFile(map[string]string{}, []string{path})
	if err != nil {
		tb.Fatalf("%s: %v", envExample, err)
	}
	if !maps.Equal(set, compose) {
		tb.Fatalf("%s: its KEY=VALUE lines %v differ from what docker compose reads %v (quotes, spaces or comments on a line?)", envExample, set, compose)
	}
	return set, commented
}

// interpolation is one ${NAME...} or $NAME of docker-compose.yml.
type interpolation struct {
	name, op, arg string // op: "", ":-", "-", ":?", "?", ":+" or "+"
}

// interpolationRE finds compose's interpolations; "$$" is an escaped "$",
// removed before matching.
var interpolationRE = regexp.MustCompile(`\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))`)

// composeInterpolations returns every interpolation in docker-compose.yml's
// values (not its comments), each occurrence on its own.
func composeInterpolations(tb testing.TB) []interpolation {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		tb.Fatal(err)
	}
	var doc any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		tb.Fatalf("docker-compose.yml: %v", err)
	}
	var out []interpolation
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			for _, m := range interpolationRE.FindAllStringSubmatch(strings.ReplaceAll(v, "$$", ""), -1) {
				if m[4] != "" {
					out = append(out, interpolation{name: m[4]})
				} else {
					out = append(out, interpolation{m[1], m[2], m[3]})
				}
			}
		case map[string]any:
			for _, e := range v {
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(doc)
	if len(out) == 0 {
		tb.Fatal("docker-compose.yml: no interpolation found; the parse is out of step with the file")
	}
	return out
}

// distinctIdentities reports, for env (one role's settings), every pair of
// the MinIO identities' access keys it holds that are equal, and every one
// that is rootUser (MinIO's root or admin user), or empty.
func distinctIdentities(what string, env map[string]string, rootUser string) []string {
	var errs []string
	var held []string
	for _, k := range accessKeys() {
		if _, ok := env[k]; ok {
			held = append(held, k)
		}
	}
	for i, a := range held {
		if env[a] == "" {
			errs = append(errs, what+": "+a+" is empty")
			continue
		}
		if env[a] == rootUser {
			errs = append(errs, what+": "+a+"="+strconv.Quote(env[a])+" is MinIO's root/admin user; the roles must not hold it")
		}
		for _, b := range held[i+1:] {
			if env[a] == env[b] {
				errs = append(errs, what+": "+a+" and "+b+" are both "+strconv.Quote(env[a])+"; each identity needs its own access key")
			}
		}
	}
	return errs
}

// configNameRE finds the variables shared/config reads: str("NAME", ...),
// dur(...), bytes(...) and lookup("NAME").
var configNameRE = regexp.MustCompile(`\b(?:str|dur|bytes|flag|lookup)\("([A-Z][A-Z0-9_]*)"`)

// configRoleNameRE finds the variables config reads once per role:
// str(roleVar("MINIO_", role, "_ACCESS_KEY"), ...).
var configRoleNameRE = regexp.MustCompile(`\bstr\(roleVar\("([A-Z_]*)", role, "([A-Z_]*)"\)`)

// configNames returns the set of environment variables shared/config reads,
// taken from its source so that the test follows config as it changes.
func configNames(tb testing.TB) map[string]bool {
	tb.Helper()
	src, err := os.ReadFile(filepath.Join(root, "shared", "config", "config.go"))
	if err != nil {
		tb.Fatal(err)
	}
	names := map[string]bool{}
	for _, m := range configNameRE.FindAllStringSubmatch(string(src), -1) {
		names[m[1]] = true
	}
	for _, m := range configRoleNameRE.FindAllStringSubmatch(string(src), -1) {
		for _, role := range config.RoleNames {
			names[m[1]+upper(role)+m[2]] = true
		}
	}
	// A sanity floor: if the regexps stopped matching, every check built
	// on them would pass vacuously.
	floor := []string{"HTTP_ADDR", "LOG_FORMAT", "MINIO_USE_TLS", "MINIO_PUBLIC_USE_TLS"}
	for _, role := range roles {
		floor = append(floor, requiredOf(role)...)
	}
	for _, role := range config.RoleNames {
		floor = append(floor, natsPassword(role))
	}
	for _, name := range floor {
		if !names[name] {
			tb.Fatalf("shared/config/config.go: %s not found by %v and %v; update them", name, configNameRE, configRoleNameRE)
		}
	}
	for _, name := range removedVars {
		if names[name] {
			tb.Fatalf("shared/config/config.go reads %s, which the test takes as removed", name)
		}
	}
	return names
}

// subcommands returns the string cases of services/docuvault/main.go's
// switches: the subcommands the binary answers.
func subcommands(tb testing.TB) map[string]bool {
	tb.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(root, "services", "docuvault", "main.go"), nil, 0)
	if err != nil {
		tb.Fatal(err)
	}
	cmds := map[string]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		cc, ok := n.(*ast.CaseClause)
		if !ok {
			return true
		}
		for _, e := range cc.List {
			if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if s, err := strconv.Unquote(lit.Value); err == nil {
					cmds[s] = true
				}
			}
		}
		return true
	})
	for _, want := range []string{"api", "token"} {
		if !cmds[want] {
			tb.Fatalf("services/docuvault/main.go: no case %q found; the parse is out of step with main.go", want)
		}
	}
	return cmds
}

// loadCompose loads docker-compose.yml as `docker compose` would, with env
// as the only environment for interpolation (none of the process's, and no
// .env file). Most tests pass randomSecrets(): compose requires them.
func loadCompose(tb testing.TB, env map[string]string) *types.Project {
	tb.Helper()
	p, err := loadComposeErr(tb, env)
	if err != nil {
		tb.Fatalf("load docker-compose.yml: %v", err)
	}
	return p
}

// loadComposeErr is loadCompose returning the loader's error.
func loadComposeErr(tb testing.TB, env map[string]string) (*types.Project, error) {
	tb.Helper()
	wd, err := filepath.Abs(root)
	if err != nil {
		tb.Fatal(err)
	}
	opts, err := cli.NewProjectOptions([]string{filepath.Join(wd, "docker-compose.yml")},
		cli.WithWorkingDirectory(wd), cli.WithName("docuvault"))
	if err != nil {
		tb.Fatal(err)
	}
	opts.Environment = types.Mapping{}
	for k, v := range env {
		opts.Environment[k] = v
	}
	return cli.ProjectFromOptions(tb.Context(), opts)
}

// service returns the named service of p, failing the test if it is absent.
func service(tb testing.TB, p *types.Project, name string) types.ServiceConfig {
	tb.Helper()
	s, ok := p.Services[name]
	if !ok {
		tb.Fatalf("docker-compose.yml: no service %q", name)
	}
	return s
}

// envOf returns a service's environment with unset entries as "".
func envOf(s types.ServiceConfig) map[string]string {
	env := map[string]string{}
	for k, v := range s.Environment {
		if v != nil {
			env[k] = *v
		} else {
			env[k] = ""
		}
	}
	return env
}

// loadConfig runs config.Load with exactly env: every other variable config
// reads (or refuses by name, removedVars) is blanked (config treats "" as unset), so the process's own
// environment (a CI's DATABASE_URL, say) cannot leak in. It uses t.Setenv:
// callers cannot run in parallel.
func loadConfig(t *testing.T, names map[string]bool, env map[string]string) (config.Config, error) {
	t.Helper()
	for name := range names {
		t.Setenv(name, env[name])
	}
	for _, name := range removedVars {
		t.Setenv(name, env[name])
	}
	return config.Load()
}

func TestComposeServices(t *testing.T) {
	t.Parallel()
	cmds := subcommands(t)
	p := loadCompose(t, randomSecrets())
	for _, name := range append([]string{"postgres", "nats", "minio"}, roles...) {
		service(t, p, name)
	}
	// Any service of the DocuVault image (a role added later, such as the
	// classifier) runs a subcommand the binary has.
	image := service(t, p, "api").Image
	for name, s := range p.Services {
		if s.Image == image && (len(s.Command) == 0 || !cmds[s.Command[0]]) {
			t.Errorf("%s: command %v is not a subcommand of services/docuvault", name, s.Command)
		}
	}
}

// validateRole runs the validation the role's process runs: config.Validate
// with its role, and for setup ValidateSetup (and Validate of no role, the
// settings every process needs).
func validateRole(cfg config.Config, role string) error {
	if role == setupRole {
		return errors.Join(cfg.Validate(), cfg.ValidateSetup())
	}
	return cfg.Validate(role)
}

// checkOwnCredentials reports every credential env (role's settings, from
// where) holds that is not role's own, every one of its own it lacks, and
// any JWT setting outside the api.
func checkOwnCredentials(t *testing.T, where, role string, env map[string]string) {
	t.Helper()
	own := ownCredentials(role)
	all := credentialVars()
	for name := range env {
		switch {
		case all[name] && !slices.Contains(own, name):
			t.Errorf("%s: %s holds %s, which is not its own (its own: %v)", where, role, name, own)
		case strings.HasPrefix(name, "JWT_") && role != "api":
			t.Errorf("%s: %s sets %s; only the api verifies tokens", where, role, name)
		}
	}
	for _, name := range own {
		if _, ok := env[name]; !ok {
			t.Errorf("%s: %s lacks its own %s", where, role, name)
		}
	}
}

func TestComposeRolesEnvironment(t *testing.T) {
	names := configNames(t)
	p := loadCompose(t, randomSecrets())
	for _, role := range roles {
		env := envOf(service(t, p, role))
		for _, name := range requiredOf(role) {
			if _, ok := env[name]; !ok {
				t.Errorf("%s: environment lacks %s, which its validation requires", role, name)
			}
		}
		for name := range env {
			if !names[name] {
				t.Errorf("%s: environment sets %s, which shared/config does not read", role, name)
			}
		}
		checkOwnCredentials(t, "docker-compose.yml", role, env)
		cfg, err := loadConfig(t, names, env)
		if err != nil {
			t.Errorf("%s: config.Load: %v", role, err)
			continue
		}
		if err := validateRole(cfg, role); err != nil {
			t.Errorf("%s: validation: %v", role, err)
		}
		// What a role holds passes for its own role only: the api's
		// settings do not run a confirmer, say. (Setup holds every
		// identity it creates.)
		for _, other := range config.RoleNames {
			if role != setupRole && other != role && cfg.Validate(other) == nil {
				t.Errorf("%s: its environment also passes config.Validate(%q): it holds another role's credentials", role, other)
			}
		}
		if role == "api" && len(cfg.JWTSecret) < 32 {
			t.Errorf("%s: JWT_SECRET is %d bytes, want at least 32", role, len(cfg.JWTSecret))
		}
		if on, _ := strconv.ParseBool(env["REQUIRE_DECLARED_SIZE"]); role == "api" && !on {
			t.Errorf("%s: REQUIRE_DECLARED_SIZE=%q; the example runs with it on", role, env["REQUIRE_DECLARED_SIZE"])
		}
		if cfg.MinIOEndpoint != "minio:9000" || cfg.NATSURL != "nats://nats:4222" {
			t.Errorf("%s: MINIO_ENDPOINT=%q NATS_URL=%q, want the compose services minio:9000 and nats://nats:4222",
				role, cfg.MinIOEndpoint, cfg.NATSURL)
		}
		if cfg.LogFormat != "json" {
			t.Errorf("%s: LOG_FORMAT=%q, want json", role, cfg.LogFormat)
		}
	}
}

func TestComposeCredentialsAgree(t *testing.T) {
	t.Parallel()
	p := loadCompose(t, randomSecrets())
	pg := envOf(service(t, p, "postgres"))
	minio := envOf(service(t, p, "minio"))
	nats := envOf(service(t, p, "nats"))
	setup := envOf(service(t, p, setupRole))
	for _, role := range roles {
		env := envOf(service(t, p, role))
		u, err := url.Parse(env["DATABASE_URL"])
		if err != nil {
			t.Errorf("%s: DATABASE_URL: %v", role, err)
			continue
		}
		pw, _ := u.User.Password()
		if u.Host != "postgres:5432" || u.User.Username() != pg["POSTGRES_USER"] || pw != pg["POSTGRES_PASSWORD"] ||
			strings.TrimPrefix(u.Path, "/") != pg["POSTGRES_DB"] {
			t.Errorf("%s: DATABASE_URL %q does not match the postgres service's user, password and database", role, env["DATABASE_URL"])
		}
		for _, e := range distinctIdentities(role, env, minio["MINIO_ROOT_USER"]) {
			t.Error(e)
		}
		for name, v := range env {
			if strings.HasPrefix(name, "MINIO_") && strings.HasSuffix(name, "_SECRET_KEY") && name != "MINIO_ADMIN_SECRET_KEY" && v == minio["MINIO_ROOT_PASSWORD"] {
				t.Errorf("%s: %s is MinIO's root password", role, name)
			}
		}
		if role == setupRole {
			if env["MINIO_ADMIN_ACCESS_KEY"] != minio["MINIO_ROOT_USER"] || env["MINIO_ADMIN_SECRET_KEY"] != minio["MINIO_ROOT_PASSWORD"] {
				t.Errorf("%s: MINIO_ADMIN_ACCESS_KEY/MINIO_ADMIN_SECRET_KEY differ from minio's MINIO_ROOT_USER/MINIO_ROOT_PASSWORD", role)
			}
		} else {
			// setup creates the identities the roles use: the same keys.
			ids := minioIdentity(role)
			if role == "api" {
				ids = append(ids, signerVars...)
			}
			for _, name := range ids {
				if env[name] != setup[name] {
					t.Errorf("%s: %s differs from the one %s creates", role, name, setupRole)
				}
			}
		}
		name := natsPassword(role)
		if env[name] == "" || env[name] != nats[name] {
			t.Errorf("%s: %s is empty or differs from the nats service's %s", role, name, name)
		}
	}
}

// TestComposeAdminOnlySetup checks that MinIO's admin credential reaches
// the setup service and no other: not as MINIO_ADMIN_*, and not as the
// value of any variable but the setup service's and minio's own.
func TestComposeAdminOnlySetup(t *testing.T) {
	t.Parallel()
	p := loadCompose(t, randomSecrets())
	service(t, p, setupRole)
	rootPassword := envOf(service(t, p, "minio"))["MINIO_ROOT_PASSWORD"]
	if rootPassword == "" {
		t.Fatal("minio: MINIO_ROOT_PASSWORD is empty")
	}
	for name, s := range p.Services {
		for k, v := range envOf(s) {
			if strings.HasPrefix(k, "MINIO_ADMIN_") && name != setupRole {
				t.Errorf("%s: environment sets %s; only %s may hold MinIO's admin credential", name, k, setupRole)
			}
			if v == rootPassword && name != "minio" && !(name == setupRole && k == "MINIO_ADMIN_SECRET_KEY") {
				t.Errorf("%s: %s is MinIO's root password", name, k)
			}
		}
	}
}

// TestComposeSecretsReachOnlyTheirOwners checks every secret by its value:
// with each secret of the environment a random value of its own, a
// service's settings contain (under any name, or inside DATABASE_URL) only
// the secrets that service owns. No role holds another role's MinIO
// secret or NATS password, only the api holds JWT_SECRET and the signers'
// secrets, and only setup the admin's.
func TestComposeSecretsReachOnlyTheirOwners(t *testing.T) {
	t.Parallel()
	secrets := randomSecrets()
	p := loadCompose(t, secrets)
	owners := map[string][]string{
		"postgres":   {"POSTGRES_PASSWORD"},
		"minio":      {"MINIO_ROOT_PASSWORD", natsPassword("minio")},
		clamdService: nil, // it parses what attackers upload, and needs no secret
	}
	for _, role := range append(slices.Clone(config.RoleNames), setupRole, "minio") {
		owners["nats"] = append(owners["nats"], natsPassword(role))
	}
	for _, role := range roles {
		owners[role] = []string{"POSTGRES_PASSWORD"} // in DATABASE_URL
		for _, name := range ownCredentials(role) {
			switch {
			case name == "MINIO_ADMIN_SECRET_KEY":
				owners[role] = append(owners[role], "MINIO_ROOT_PASSWORD")
			case isSecretName(name):
				owners[role] = append(owners[role], name)
			}
		}
	}
	for name, s := range p.Services {
		own, ok := owners[name]
		if !ok {
			t.Errorf("service %s: the test does not know which secrets it may hold", name)
			continue
		}
		held := map[string]bool{}
		for k, v := range envOf(s) {
			for secret, value := range secrets {
				if !strings.Contains(v, value) {
					continue
				}
				held[secret] = true
				if !slices.Contains(own, secret) {
					t.Errorf("%s: %s holds %s's value; only its owners may", name, k, secret)
				}
			}
		}
		for _, secret := range own {
			if !held[secret] {
				t.Errorf("%s: does not get %s from the environment", name, secret)
			}
		}
	}
}

// TestComposeRequiresSecrets checks that docker-compose.yml requires every
// secret, with no default, and says where to get them: without .env (or
// with one secret missing or empty) it does not load, and names what is
// missing.
func TestComposeRequiresSecrets(t *testing.T) {
	t.Parallel()
	_, err := loadComposeErr(t, nil)
	if err == nil {
		t.Fatal("docker-compose.yml loads with no environment: its secrets have defaults; require each as ${NAME:?set NAME: copy .env.example to .env and fill it}")
	}
	if !strings.Contains(err.Error(), envExample) || !slices.ContainsFunc(requiredSecrets, func(name string) bool {
		return strings.Contains(err.Error(), name)
	}) {
		t.Errorf("docker-compose.yml with no environment: %v; want it to name the missing secret and %s", err, envExample)
	}
	for _, name := range requiredSecrets {
		for _, v := range []*string{nil, new(string)} {
			env := randomSecrets()
			what := "unset"
			if v == nil {
				delete(env, name)
			} else {
				env[name], what = *v, "empty"
			}
			_, err := loadComposeErr(t, env)
			if err == nil || !strings.Contains(err.Error(), name) {
				t.Errorf("docker-compose.yml with %s %s: load error %v, want one naming %s (${%s:?...})", name, what, err, name, name)
			}
		}
	}
	// Every occurrence, not only the first compose reports: a secret used
	// twice must be required both times, and no other secret may have a
	// default.
	for _, in := range composeInterpolations(t) {
		switch {
		case slices.Contains(requiredSecrets, in.name):
			if in.op != ":?" || !strings.Contains(in.arg, envExample) {
				t.Errorf("docker-compose.yml: ${%s%s%s}, want ${%s:?set %s: copy %s to .env and fill it}", in.name, in.op, in.arg, in.name, in.name, envExample)
			}
		case isSecretName(in.name):
			t.Errorf("docker-compose.yml: interpolates the secret %s, which is not in requiredSecrets (add it there and to %s, required with :?)", in.name, envExample)
		}
	}
}

// TestComposeSecretsInterpolated checks that every secret and MinIO user
// name comes from the environment.
func TestComposeSecretsInterpolated(t *testing.T) {
	t.Parallel()
	override := randomSecrets()
	defaults := loadCompose(t, maps.Clone(override))
	for _, name := range identityVars {
		override[name] = "u" + strings.ToLower(strings.ReplaceAll(name, "_", "-")) + "-" + hex.EncodeToString(randomBytes(4))
	}
	p := loadCompose(t, override)
	all := func(p *types.Project) string {
		var b strings.Builder
		for _, s := range p.Services {
			for k, v := range envOf(s) {
				b.WriteString(s.Name + "." + k + "=" + v + "\n")
			}
		}
		return b.String()
	}
	got, dflt := all(p), all(defaults)
	for name, v := range override {
		if !strings.Contains(got, v) {
			t.Errorf("setting %s changes nothing in docker-compose.yml: interpolate it as ${%s...}", name, name)
		}
	}
	if got == dflt {
		t.Error("the MinIO user names of the environment change nothing in docker-compose.yml")
	}
	// Each role's own credentials are the environment's, under the same
	// names (setup's admin pair excepted, below).
	setup := envOf(service(t, p, setupRole))
	for _, role := range roles {
		env := envOf(service(t, p, role))
		for _, name := range ownCredentials(role) {
			if want, ok := override[name]; ok && env[name] != want {
				t.Errorf("%s: %s=%q, want %q from the environment's %s", role, name, env[name], want, name)
			}
		}
	}
	if setup["MINIO_ADMIN_ACCESS_KEY"] != override["MINIO_ROOT_USER"] || setup["MINIO_ADMIN_SECRET_KEY"] != override["MINIO_ROOT_PASSWORD"] {
		t.Errorf("%s: MINIO_ADMIN_ACCESS_KEY/MINIO_ADMIN_SECRET_KEY do not follow the environment's MINIO_ROOT_USER/MINIO_ROOT_PASSWORD", setupRole)
	}
}

// TestEnvExampleRefused checks that .env.example sets every secret
// docker-compose.yml requires, that compose loads with it, and that every
// role refuses to start with its values as they are: copying the example
// without filling it in deploys nothing.
func TestEnvExampleRefused(t *testing.T) {
	names := configNames(t)
	set, _ := envExampleVars(t)
	for _, name := range requiredSecrets {
		if set[name] == "" {
			t.Errorf("%s: does not set %s, which docker-compose.yml requires", envExample, name)
		}
	}
	p, err := loadComposeErr(t, set)
	if err != nil {
		t.Fatalf("docker-compose.yml with %s's values: %v", envExample, err)
	}
	for _, role := range roles {
		cfg, err := loadConfig(t, names, envOf(service(t, p, role)))
		if err != nil {
			t.Errorf("%s: config.Load with %s's values: %v", role, envExample, err)
			continue
		}
		var secretVars []string
		for _, name := range ownCredentials(role) {
			if isSecretName(name) || name == "DATABASE_URL" {
				secretVars = append(secretVars, name)
			}
		}
		err = validateRole(cfg, role)
		if err == nil || !strings.Contains(err.Error(), "is an example value") {
			t.Errorf("%s: with %s's values, validation says %v; want it to refuse them (\"is an example value\")", role, envExample, err)
			continue
		}
		// Each secret the role holds is refused, not only one of them.
		refused := ""
		for _, line := range strings.Split(err.Error(), "\n") {
			if strings.Contains(line, "is an example value") {
				refused += line + "\n"
			}
		}
		for _, name := range secretVars {
			if !strings.Contains(refused, name) {
				t.Errorf("%s: with %s's values, %s is not refused as an example value", role, envExample, name)
			}
		}
	}
}

// TestEnvExampleComplete checks that .env.example shows every variable
// docker-compose.yml interpolates (the required secrets set, the others at
// least as a comment), and nothing compose does not read.
func TestEnvExampleComplete(t *testing.T) {
	t.Parallel()
	set, commented := envExampleVars(t)
	used := map[string]bool{}
	for _, in := range composeInterpolations(t) {
		if used[in.name] {
			continue
		}
		used[in.name] = true
		_, isSet := set[in.name]
		_, isCommented := commented[in.name]
		if !isSet && !isCommented {
			t.Errorf("%s: does not show %s, which docker-compose.yml reads", envExample, in.name)
		}
	}
	for _, m := range []map[string]string{set, commented} {
		for name := range m {
			if !used[name] {
				t.Errorf("%s: shows %s, which docker-compose.yml does not read", envExample, name)
			}
		}
	}
	for name := range set {
		if !slices.Contains(requiredSecrets, name) {
			t.Errorf("%s: sets %s, which has a default; show it as a comment, like the other optional settings", envExample, name)
		}
	}
}

// TestExampleSecretsRefused checks that every secret value the repository
// shows (.env.example, deploy/k8s's Secrets, docker-compose.yml) is one that
// config.IsExampleSecret refuses: an example added later without adding it
// to config's list fails here.
func TestExampleSecretsRefused(t *testing.T) {
	t.Parallel()
	shown := map[string][]string{} // value: where it is shown
	show := func(where, v string) {
		if v != "" {
			shown[v] = append(shown[v], where)
		}
	}
	showURL := func(where, v string) {
		if u, err := url.Parse(v); err == nil && u.User != nil {
			pw, _ := u.User.Password()
			show(where+"'s password", pw)
		}
	}

	set, commented := envExampleVars(t)
	n := 0
	for _, m := range []map[string]string{set, commented} {
		for k, v := range m {
			if isSecretName(k) || slices.Contains(requiredSecrets, k) {
				show(envExample+": "+k, v)
				n++
			}
			if k == "DATABASE_URL" {
				showURL(envExample+": "+k, v)
			}
		}
	}
	if n < len(requiredSecrets) {
		t.Errorf("%s: %d secrets found, want at least the %d docker-compose.yml requires", envExample, n, len(requiredSecrets))
	}

	objs, _ := loadK8s(t)
	secretObjs := 0
	for _, o := range objs {
		if o.Kind != "Secret" {
			continue
		}
		secretObjs++
		where := "k8s/" + o.file + ": " + o.Metadata.Name
		for k, v := range o.StringData {
			show(where+"."+k, v)
			showURL(where+"."+k, v)
		}
		for k, v := range o.Data {
			b, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				t.Errorf("%s.%s: data is not base64: %v", where, k, err)
			}
			show(where+"."+k, string(b))
			showURL(where+"."+k, string(b))
		}
	}
	if secretObjs == 0 {
		t.Error("deploy/k8s: no Secret found")
	}

	// docker-compose.yml: the default of any secret's interpolation, and any
	// secret value that does not come from the environment.
	for _, in := range composeInterpolations(t) {
		if (isSecretName(in.name) || slices.Contains(requiredSecrets, in.name)) && (in.op == ":-" || in.op == "-") {
			show("docker-compose.yml: ${"+in.name+in.op+"...}", in.arg)
		}
	}
	env := randomSecrets()
	fromEnv := map[string]bool{}
	for _, v := range env {
		fromEnv[v] = true
	}
	for name, s := range loadCompose(t, env).Services {
		for k, v := range envOf(s) {
			if isSecretName(k) && !fromEnv[v] {
				show("docker-compose.yml: "+name+"."+k, v)
			}
			if k == "DATABASE_URL" {
				if u, err := url.Parse(v); err == nil && u.User != nil {
					if pw, _ := u.User.Password(); !fromEnv[pw] {
						show("docker-compose.yml: "+name+"."+k+"'s password", pw)
					}
				}
			}
		}
	}

	for v, where := range shown {
		slices.Sort(where)
		where = slices.Compact(where)
		if !config.IsExampleSecret(v) {
			t.Errorf("%s: secret %q is shown in the repository but config.IsExampleSecret does not refuse it; add it to shared/config's exampleSecrets", strings.Join(where, ", "), v)
		}
	}
}

// TestComposePorts checks what docker-compose.yml publishes on the host:
// the api and MinIO (S3 API and console), on 127.0.0.1 unless
// DOCUVAULT_BIND_ADDR says otherwise, and nothing else.
func TestComposePorts(t *testing.T) {
	t.Parallel()
	want := []string{"api:8080", "minio:9000", "minio:9001"}
	for _, c := range []struct {
		bind   *string // DOCUVAULT_BIND_ADDR; nil: unset
		hostIP string
	}{
		{nil, "127.0.0.1"},
		{new(""), "127.0.0.1"},
		{new("0.0.0.0"), "0.0.0.0"},
		{new("192.0.2.10"), "192.0.2.10"},
	} {
		env := randomSecrets()
		what := bindAddrVar + " unset"
		if c.bind != nil {
			env[bindAddrVar] = *c.bind
			what = bindAddrVar + "=" + strconv.Quote(*c.bind)
		}
		p := loadCompose(t, env)
		var got []string
		for name, s := range p.Services {
			for _, pc := range s.Ports {
				got = append(got, name+":"+strconv.Itoa(int(pc.Target)))
				if pc.Published != strconv.Itoa(int(pc.Target)) {
					t.Errorf("%s: %s: container port %d published as %q, want %d", what, name, pc.Target, pc.Published, pc.Target)
				}
				if pc.HostIP != c.hostIP {
					t.Errorf("%s: %s: port %d published on host_ip %q, want %q (write it \"${%s:-127.0.0.1}:%d:%d\")",
						what, name, pc.Target, pc.HostIP, c.hostIP, bindAddrVar, pc.Target, pc.Target)
				}
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s: published ports %v, want %v (PostgreSQL and NATS stay inside the compose network)", what, got, want)
		}
	}
	api := envOf(service(t, loadCompose(t, randomSecrets()), "api"))
	if api["HTTP_ADDR"] != "0.0.0.0:8080" {
		t.Errorf("api: HTTP_ADDR=%q, want 0.0.0.0:8080 (the default 127.0.0.1 is unreachable from outside the container)", api["HTTP_ADDR"])
	}
	if api["MINIO_PUBLIC_ENDPOINT"] != "localhost:9000" {
		t.Errorf("api: MINIO_PUBLIC_ENDPOINT=%q, want localhost:9000, where minio is published", api["MINIO_PUBLIC_ENDPOINT"])
	}
}

// TestComposeCORSOrigins: one setting, CORS_ORIGINS, reaches the API and
// MinIO's allowed origins (beside the demo page's), by default and when set.
func TestComposeCORSOrigins(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ set, want string }{
		{"", "http://localhost:5173"},
		{"https://app.example.com,http://localhost:3000", "https://app.example.com,http://localhost:3000"},
	} {
		env := randomSecrets()
		if c.set != "" {
			env["CORS_ORIGINS"] = c.set
		}
		p := loadCompose(t, env)
		if got := envOf(service(t, p, "api"))["CORS_ORIGINS"]; got != c.want {
			t.Errorf("CORS_ORIGINS=%q: the api gets %q, want %q", c.set, got, c.want)
		}
		if got, want := envOf(service(t, p, "minio"))["MINIO_API_CORS_ALLOW_ORIGIN"], "http://localhost:8080,"+c.want; got != want {
			t.Errorf("CORS_ORIGINS=%q: MinIO allows %q, want %q", c.set, got, want)
		}
	}
}

func TestComposeMinIONotifications(t *testing.T) {
	t.Parallel()
	p := loadCompose(t, randomSecrets())
	minio := service(t, p, "minio")
	env := envOf(minio)
	nats := envOf(service(t, p, "nats"))

	var dataDir string
	for _, v := range minio.Volumes {
		if v.Type == types.VolumeTypeVolume {
			dataDir = v.Target
		}
	}
	if !slices.Contains(minio.Command, dataDir) || dataDir == "" {
		t.Errorf("minio: command %v does not serve its volume %q", minio.Command, dataDir)
	}
	want := objectstore.NATSTarget{
		Address:  "nats:4222",
		Subject:  "minio.events",
		Username: "minio",
		Password: nats["NATS_MINIO_PASSWORD"],
		QueueDir: dataDir + "/.notify-queue",
	}.ServerEnv()
	wantNames := map[string]bool{}
	for _, kv := range want {
		k, v, _ := strings.Cut(kv, "=")
		wantNames[k] = true
		if got, ok := env[k]; !ok || got != v {
			t.Errorf("minio: %s=%q, want %q (objectstore.NATSTarget.ServerEnv)", k, got, v)
		}
	}
	// MinIO refuses to start on a mix of suffixed and unsuffixed variables.
	for k := range env {
		if strings.HasPrefix(k, "MINIO_NOTIFY_") && !wantNames[k] {
			t.Errorf("minio: %s is not one of ServerEnv's variables", k)
		}
	}
	if o := env["MINIO_API_CORS_ALLOW_ORIGIN"]; o != "http://localhost:8080,http://localhost:5173" {
		t.Errorf("minio: MINIO_API_CORS_ALLOW_ORIGIN=%q, want the page's origin and CORS_ORIGINS' default (http://localhost:8080,http://localhost:5173)", o)
	}
	// minio-events.json's rules name exactly the targets MinIO is given.
	rules, err := objectstore.LoadNotifications(filepath.Join(root, "minio-events.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rules.Rules {
		var id string
		if parts := strings.Split(r.ARN, ":"); len(parts) == 6 {
			id = parts[4]
		}
		if env["MINIO_NOTIFY_NATS_ENABLE_"+id] != "on" {
			t.Errorf("minio-events.json: rule %s names target %q, which minio does not enable", r.ARN, id)
		}
	}
}

func TestComposeNATS(t *testing.T) {
	p := loadCompose(t, randomSecrets())
	nats := service(t, p, "nats")
	env := envOf(nats)

	confPath, err := filepath.Abs(filepath.Join(root, "nats.conf"))
	if err != nil {
		t.Fatal(err)
	}
	var confTarget, storeTarget string
	for _, v := range nats.Volumes {
		switch {
		case v.Type == types.VolumeTypeBind && v.Source == confPath:
			confTarget = v.Target
		case v.Type == types.VolumeTypeVolume:
			storeTarget = v.Target
		}
	}
	if confTarget == "" {
		t.Fatalf("nats: ./nats.conf is not mounted (volumes %+v)", nats.Volumes)
	}
	if cmd := strings.Join(nats.Command, " "); cmd != "-c "+confTarget && cmd != "--config "+confTarget {
		t.Errorf("nats: command %q does not load %s", cmd, confTarget)
	}
	if !strings.HasPrefix(nats.Image, "nats:2.") {
		t.Errorf("nats: image %q, want nats:2.14 or newer", nats.Image)
	}

	// nats.conf, parsed with the passwords compose gives the server: one
	// per user, no other.
	var passwordVars []string
	for _, user := range append(slices.Clone(config.RoleNames), setupRole, "minio") {
		passwordVars = append(passwordVars, natsPassword(user))
	}
	for name := range env {
		if !slices.Contains(passwordVars, name) {
			t.Errorf("nats: environment sets %s, which is not one of nats.conf's passwords %v", name, passwordVars)
		}
	}
	for _, name := range passwordVars {
		if !regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]*$`).MatchString(env[name]) {
			t.Errorf("nats: %s=%q: nats.conf wants letters, digits, - and _ only, starting with a letter", name, env[name])
		}
		t.Setenv(name, env[name])
	}
	opts, err := server.ProcessConfigFile(confPath)
	if err != nil {
		t.Fatalf("nats.conf with compose's passwords: %v", err)
	}
	if opts.StoreDir != storeTarget {
		t.Errorf("nats: JetStream volume at %q, but nats.conf's store_dir is %q", storeTarget, opts.StoreDir)
	}
	users := map[string]string{}
	for _, u := range opts.Users {
		users[u.Username] = u.Password
	}
	// Each role connects as the user named after it, setup as setup.
	for _, role := range roles {
		env := envOf(service(t, p, role))
		if pw := env[natsPassword(role)]; pw == "" || users[role] != pw {
			t.Errorf("nats.conf user %q's password is not %s's %s (no such user, cut short or parsed as another type?)", role, role, natsPassword(role))
		}
	}
	minio := envOf(service(t, p, "minio"))
	for _, id := range []string{objectstore.TargetPrimary, objectstore.TargetLive} {
		u, pw := minio["MINIO_NOTIFY_NATS_USERNAME_"+id], minio["MINIO_NOTIFY_NATS_PASSWORD_"+id]
		if users[u] != pw || pw == "" {
			t.Errorf("nats.conf user %q's password is not minio's MINIO_NOTIFY_NATS_PASSWORD_%s", u, id)
		}
	}
	if len(users) != len(passwordVars) {
		t.Errorf("nats.conf has users %v, want exactly one per password of %v", slices.Sorted(maps.Keys(users)), passwordVars)
	}

	// Monitoring has no authentication: it listens on the container's
	// loopback only, and the healthcheck asks it from inside the container.
	if ip := net.ParseIP(opts.HTTPHost); ip == nil || !ip.IsLoopback() {
		t.Errorf("nats.conf: monitoring listens on %q, want a loopback address (it has no authentication)", opts.HTTPHost)
	}
	if opts.HTTPPort <= 0 {
		t.Errorf("nats.conf: no monitoring port; the healthcheck needs one")
	}
	hc := nats.HealthCheck
	if hc == nil || len(hc.Test) < 2 || hc.Test[0] != "CMD" {
		t.Fatalf("nats: healthcheck %+v, want [CMD wget ... http://127.0.0.1:<port>/healthz...]", hc)
	}
	probe, err := url.Parse(hc.Test[len(hc.Test)-1])
	if err != nil || probe.Hostname() != opts.HTTPHost || probe.Port() != strconv.Itoa(opts.HTTPPort) || probe.Path != "/healthz" {
		t.Errorf("nats: healthcheck asks %q, want /healthz at nats.conf's monitoring address %s:%d", hc.Test[len(hc.Test)-1], opts.HTTPHost, opts.HTTPPort)
	}
	for _, pc := range nats.Ports {
		t.Errorf("nats: publishes port %d; NATS stays inside the compose network", pc.Target)
	}
}

func TestComposeDependencies(t *testing.T) {
	t.Parallel()
	p := loadCompose(t, randomSecrets())
	healthy := map[string]string{"postgres": types.ServiceConditionHealthy, "nats": types.ServiceConditionHealthy, "minio": types.ServiceConditionHealthy}
	for _, role := range roles {
		// setup creates the bucket and identities in MinIO and the streams
		// and consumers in NATS, and migrates PostgreSQL; the others need
		// what it made.
		want := maps.Clone(healthy)
		if role != setupRole {
			want = map[string]string{setupRole: types.ServiceConditionCompletedSuccessfully}
			for k, v := range healthy {
				want[k] = v
			}
		}
		if role == "scanner" {
			// It would only retry until clamd answers.
			want[clamdService] = types.ServiceConditionHealthy
		}
		s := service(t, p, role)
		got := map[string]string{}
		for name, d := range s.DependsOn {
			got[name] = d.Condition
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: depends_on %v, want %v", role, got, want)
		}
	}
	// A service_healthy dependency needs a healthcheck to become healthy.
	for _, name := range append(slices.Collect(maps.Keys(healthy)), clamdService) {
		s := service(t, p, name)
		if s.HealthCheck == nil || s.HealthCheck.Disable || len(s.HealthCheck.Test) == 0 {
			t.Errorf("%s: no healthcheck, but the roles wait for it to be healthy", name)
		}
	}
}

// clamdLimits are the clamd.conf settings that decide what clamd scans of
// a stream: StreamMaxLength (a longer stream is refused), MaxFileSize and
// MaxScanSize (what is over them is not scanned), and AlertExceedsMax
// (whether that is said, or answered OK).
type clamdLimits struct {
	stream, file, scan int64
	alert              bool
}

// clamdLimitsOf reads clamdLimits from env, the official image's
// CLAMD_CONF_<name> variables, each required: the examples write them out
// so that they are raised together.
func clamdLimitsOf(env map[string]string) (clamdLimits, error) {
	var l clamdLimits
	for _, v := range []struct {
		name string
		dst  *int64
	}{{"StreamMaxLength", &l.stream}, {"MaxFileSize", &l.file}, {"MaxScanSize", &l.scan}} {
		s, ok := env["CLAMD_CONF_"+v.name]
		if !ok {
			return l, fmt.Errorf("CLAMD_CONF_%s is not set", v.name)
		}
		n, err := clamdSize(s)
		if err != nil {
			return l, fmt.Errorf("CLAMD_CONF_%s: %w", v.name, err)
		}
		*v.dst = n
	}
	l.alert = env["CLAMD_CONF_AlertExceedsMax"] == "yes"
	return l, nil
}

// clamdSize parses a clamd.conf SIZE: bytes, or a number with K or M
// (clamd.conf(5)).
func clamdSize(s string) (int64, error) {
	unit := int64(1)
	switch {
	case strings.HasSuffix(s, "M"), strings.HasSuffix(s, "m"):
		unit, s = 1<<20, s[:len(s)-1]
	case strings.HasSuffix(s, "K"), strings.HasSuffix(s, "k"):
		unit, s = 1<<10, s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a clamd.conf size such as 100M", s)
	}
	return n * unit, nil
}

// checkScanLimits reports where SCAN_MAX_BYTES (scanMax) and the uploads
// it must cover (maxUpload) do not fit clamd's limits l: every byte a
// document may have is sent, and clamd scans every byte it is sent.
func checkScanLimits(t *testing.T, where string, scanMax, maxUpload int64, l clamdLimits) {
	t.Helper()
	if scanMax > l.stream {
		t.Errorf("%s: SCAN_MAX_BYTES=%d is over clamd's StreamMaxLength (%d): clamd would refuse documents the scanner sends", where, scanMax, l.stream)
	}
	if l.file < l.stream || l.scan < l.stream {
		t.Errorf("%s: clamd's MaxFileSize (%d) or MaxScanSize (%d) is below its StreamMaxLength (%d): streams the scanner sends are not scanned whole", where, l.file, l.scan, l.stream)
	}
	if !l.alert {
		t.Errorf("%s: CLAMD_CONF_AlertExceedsMax is not yes: clamd answers OK for a stream it did not scan whole (EICAR 20 zips deep)", where)
	}
	if l.file < l.scan {
		t.Errorf("%s: clamd's MaxFileSize (%d) is below its MaxScanSize (%d): a compressed archive member over MaxFileSize is scanned only in part and answered OK", where, l.file, l.scan)
	}
	if scanMax < maxUpload {
		t.Errorf("%s: SCAN_MAX_BYTES=%d is below MAX_UPLOAD_BYTES=%d: uploads between the two are never downloadable", where, scanMax, maxUpload)
	}
}

// TestComposeClamd checks the clamd service and what the roles take from
// it: the official image at 1.4, its signature database on a volume,
// memory for the real database, limits under which clamd scans every byte
// SCAN_MAX_BYTES lets through, every role agreeing that scanning is
// required, and a network clamd shares with the scanner alone (clamd
// answers anyone who reaches it, and parses what attackers upload).
func TestComposeClamd(t *testing.T) {
	names := configNames(t)
	p := loadCompose(t, randomSecrets())
	c := service(t, p, clamdService)
	if c.Image != clamdImage && !strings.HasPrefix(c.Image, clamdImage+".") {
		t.Errorf("%s: image %q, want the official %s (or a 1.4 patch of it)", clamdService, c.Image, clamdImage)
	}
	if !slices.ContainsFunc(c.Volumes, func(v types.ServiceVolumeConfig) bool {
		return v.Type == types.VolumeTypeVolume && v.Target == "/var/lib/clamav"
	}) {
		t.Errorf("%s: no volume at /var/lib/clamav, where freshclam keeps the signatures (volumes %+v)", clamdService, c.Volumes)
	}
	if c.MemReservation < clamdMemory || c.MemLimit < clamdReloadMemory || c.MemLimit < c.MemReservation {
		t.Errorf("%s: mem_reservation %d, mem_limit %d; clamd needs 1.2 GiB with the real signatures and up to 2.4 GiB while it loads an update", clamdService, c.MemReservation, c.MemLimit)
	}
	if len(c.Ports) > 0 {
		t.Errorf("%s: publishes %v; clamd has no authentication", clamdService, c.Ports)
	}
	limits, err := clamdLimitsOf(envOf(c))
	if err != nil {
		t.Fatalf("%s: %v", clamdService, err)
	}
	for _, role := range roles {
		cfg, err := loadConfig(t, names, envOf(service(t, p, role)))
		if err != nil {
			t.Errorf("%s: config.Load: %v", role, err)
			continue
		}
		if cfg.ClamdAddress != net.JoinHostPort(clamdService, strconv.Itoa(clamdPort)) {
			t.Errorf("%s: CLAMD_ADDRESS=%q, want the clamd service, %s:%d", role, cfg.ClamdAddress, clamdService, clamdPort)
		}
		if !cfg.ScanRequired {
			t.Errorf("%s: SCAN_REQUIRED is off; every role must agree it is on (the api serves downloads by it, the confirmer stores documents pending their scan)", role)
		}
		checkScanLimits(t, "docker-compose.yml: "+role, cfg.ScanMaxBytes, cfg.MaxUploadBytes, limits)
	}
	scanner := service(t, p, "scanner")
	shared := func(s types.ServiceConfig) []string {
		var nets []string
		for n := range s.Networks {
			if _, ok := c.Networks[n]; ok {
				nets = append(nets, n)
			}
		}
		return nets
	}
	if len(shared(scanner)) == 0 {
		t.Errorf("scanner: shares no network with %s (networks %v and %v)", clamdService, slices.Collect(maps.Keys(scanner.Networks)), slices.Collect(maps.Keys(c.Networks)))
	}
	for name, s := range p.Services {
		if name == clamdService || name == "scanner" {
			continue
		}
		if nets := shared(s); len(nets) > 0 {
			t.Errorf("%s: shares the network %v with %s; the scanner alone may reach clamd", name, nets, clamdService)
		}
	}
}

func TestComposeRolesImageAndCommand(t *testing.T) {
	t.Parallel()
	cmds := subcommands(t)
	p := loadCompose(t, randomSecrets())
	wd, _ := filepath.Abs(root)
	image := service(t, p, "api").Image
	for _, role := range roles {
		s := service(t, p, role)
		if len(s.Command) == 0 || s.Command[0] != role || !cmds[s.Command[0]] {
			t.Errorf("%s: command %v, want [%s], a subcommand of services/docuvault", role, s.Command, role)
		}
		if s.Image != image {
			t.Errorf("%s: image %q, want the one DocuVault image %q", role, s.Image, image)
		}
		if s.Build == nil || s.Build.Context != wd || s.Build.Dockerfile != "deploy/Dockerfile" {
			t.Errorf("%s: build %+v, want context . and deploy/Dockerfile", role, s.Build)
		}
	}
	if r := service(t, p, setupRole).Restart; r != "no" && r != "" {
		t.Errorf("%s: restart %q: a one-shot that others wait on must not restart", setupRole, r)
	}
}

// TestDockerfile checks the image's entrypoint and the settings it bakes in.
func TestDockerfile(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	names := configNames(t)
	var eventsDest, eventsEnv, entrypoint, user string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "COPY":
			if f[len(f)-2] == "minio-events.json" {
				eventsDest = f[len(f)-1]
			}
		case "ENV":
			k, v, _ := strings.Cut(f[1], "=")
			if !names[k] {
				t.Errorf("Dockerfile: ENV %s is not read by shared/config", k)
			}
			if k == "MINIO_EVENTS_CONFIG" {
				eventsEnv = v
			}
		case "ENTRYPOINT":
			entrypoint = strings.Join(f[1:], " ")
		case "USER":
			user = f[1]
		}
	}
	if eventsDest == "" || eventsEnv != eventsDest {
		t.Errorf("Dockerfile: MINIO_EVENTS_CONFIG=%q, but minio-events.json is copied to %q", eventsEnv, eventsDest)
	}
	if entrypoint != `["/docuvault"]` {
		t.Errorf("Dockerfile: ENTRYPOINT %s, want [\"/docuvault\"] so that compose's and k8s's commands are subcommands", entrypoint)
	}
	if user == "" || strings.HasPrefix(user, "root") || strings.HasPrefix(user, "0") {
		t.Errorf("Dockerfile: USER %q, want nonroot", user)
	}
}

// The Kubernetes manifests, as far as the tests read them.
type (
	k8sMeta struct {
		Name      string            `yaml:"name"`
		Namespace string            `yaml:"namespace"`
		Labels    map[string]string `yaml:"labels"`
	}
	k8sObject struct {
		APIVersion string            `yaml:"apiVersion"`
		Kind       string            `yaml:"kind"`
		Metadata   k8sMeta           `yaml:"metadata"`
		Data       map[string]string `yaml:"data"`
		StringData map[string]string `yaml:"stringData"`
		Spec       yaml.Node         `yaml:"spec"`
		file       string
	}
	k8sProbe struct {
		HTTPGet *struct {
			Path string `yaml:"path"`
			Port any    `yaml:"port"`
		} `yaml:"httpGet"`
		TCPSocket *struct {
			Port any `yaml:"port"`
		} `yaml:"tcpSocket"`
	}
	k8sEnvFrom struct {
		ConfigMapRef *struct {
			Name string `yaml:"name"`
		} `yaml:"configMapRef"`
		SecretRef *struct {
			Name string `yaml:"name"`
		} `yaml:"secretRef"`
	}
	k8sKeyRef struct {
		Name string `yaml:"name"`
		Key  string `yaml:"key"`
	}
	k8sEnvVar struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef    *k8sKeyRef `yaml:"secretKeyRef"`
			ConfigMapKeyRef *k8sKeyRef `yaml:"configMapKeyRef"`
		} `yaml:"valueFrom"`
	}
	k8sContainer struct {
		Name    string   `yaml:"name"`
		Image   string   `yaml:"image"`
		Command []string `yaml:"command"`
		Args    []string `yaml:"args"`
		Ports   []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
		} `yaml:"ports"`
		EnvFrom        []k8sEnvFrom `yaml:"envFrom"`
		Env            []k8sEnvVar  `yaml:"env"`
		ReadinessProbe *k8sProbe    `yaml:"readinessProbe"`
		LivenessProbe  *k8sProbe    `yaml:"livenessProbe"`
		Resources      struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
		} `yaml:"volumeMounts"`
		SecurityContext *struct {
			RunAsNonRoot             *bool `yaml:"runAsNonRoot"`
			ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
			AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
			Capabilities             *struct {
				Drop []string `yaml:"drop"`
			} `yaml:"capabilities"`
		} `yaml:"securityContext"`
	}
	k8sPodTemplate struct {
		Metadata k8sMeta `yaml:"metadata"`
		Spec     struct {
			SecurityContext *struct {
				RunAsNonRoot   *bool `yaml:"runAsNonRoot"`
				SeccompProfile *struct {
					Type string `yaml:"type"`
				} `yaml:"seccompProfile"`
			} `yaml:"securityContext"`
			InitContainers []k8sContainer `yaml:"initContainers"`
			Containers     []k8sContainer `yaml:"containers"`
			Volumes        []struct {
				Name     string    `yaml:"name"`
				EmptyDir yaml.Node `yaml:"emptyDir"`
				PVC      yaml.Node `yaml:"persistentVolumeClaim"`
			} `yaml:"volumes"`
		} `yaml:"spec"`
	}
	k8sWorkloadSpec struct {
		Replicas *int `yaml:"replicas"`
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template k8sPodTemplate `yaml:"template"`
	}
	k8sServiceSpec struct {
		Selector map[string]string `yaml:"selector"`
		Ports    []struct {
			Port       int `yaml:"port"`
			TargetPort any `yaml:"targetPort"`
		} `yaml:"ports"`
	}
)

// adminSecret is the Secret with MinIO's admin credential, which only the
// setup Job mounts.
const adminSecret = "docuvault-minio-admin"

// roleSecret is the name of role's Secret (setup's too) in deploy/k8s.
func roleSecret(role string) string { return "docuvault-" + role + "-secrets" }

// secretRefs are the Secrets c takes settings from (envFrom and env's
// secretKeyRef), sorted, each once.
func secretRefs(c k8sContainer) []string {
	var refs []string
	for _, ef := range c.EnvFrom {
		if ef.SecretRef != nil {
			refs = append(refs, ef.SecretRef.Name)
		}
	}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			refs = append(refs, e.ValueFrom.SecretKeyRef.Name)
		}
	}
	return sortedSet(refs)
}

// sortedSet returns s sorted, each element once.
func sortedSet(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}

// containerEnv is the environment c gets, as Kubernetes builds it: envFrom
// in order (a later source wins), then env; from ConfigMap cm and the
// Secrets' data secrets (Secret: key: value). A reference to a Secret,
// ConfigMap or key that does not exist is an error, as it would keep the
// pod from starting.
func containerEnv(c k8sContainer, cm k8sObject, secrets map[string]map[string]string) (map[string]string, error) {
	env := map[string]string{}
	for _, ef := range c.EnvFrom {
		var data map[string]string
		switch {
		case ef.ConfigMapRef != nil:
			if ef.ConfigMapRef.Name != cm.Metadata.Name {
				return nil, fmt.Errorf("envFrom: no ConfigMap %s", ef.ConfigMapRef.Name)
			}
			data = cm.Data
		case ef.SecretRef != nil:
			var ok bool
			if data, ok = secrets[ef.SecretRef.Name]; !ok {
				return nil, fmt.Errorf("envFrom: no Secret %s", ef.SecretRef.Name)
			}
		}
		maps.Copy(env, data)
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			v, ok := secrets[ref.Name][ref.Key]
			if !ok {
				return nil, fmt.Errorf("env %s: no key %s in Secret %s", e.Name, ref.Key, ref.Name)
			}
			env[e.Name] = v
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			v, ok := cm.Data[ref.Key]
			if ref.Name != cm.Metadata.Name || !ok {
				return nil, fmt.Errorf("env %s: no key %s in ConfigMap %s", e.Name, ref.Key, ref.Name)
			}
			env[e.Name] = v
		default:
			return nil, fmt.Errorf("env %s: a valueFrom the test does not read", e.Name)
		}
	}
	return env, nil
}

// loadK8s parses every YAML document under deploy/k8s except the
// kustomization, and returns the kustomization's resources list too.
func loadK8s(tb testing.TB) (objs []k8sObject, resources []string) {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("k8s", "*.yaml"))
	if err != nil || len(files) == 0 {
		tb.Fatalf("no manifests in deploy/k8s: %v", err)
	}
	for _, file := range files {
		f, err := os.Open(file)
		if err != nil {
			tb.Fatal(err)
		}
		dec := yaml.NewDecoder(f)
		for {
			var o k8sObject
			err := dec.Decode(&o)
			if err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				f.Close()
				tb.Fatalf("%s: %v", file, err)
			}
			if o.Kind == "" {
				f.Close()
				tb.Fatalf("%s: a document without kind", file)
			}
			o.file = filepath.Base(file)
			if o.Kind == "Kustomization" {
				var k struct {
					Resources []string `yaml:"resources"`
				}
				b, _ := os.ReadFile(file)
				if err := yaml.Unmarshal(b, &k); err != nil {
					tb.Fatal(err)
				}
				resources = append(resources, k.Resources...)
				continue
			}
			objs = append(objs, o)
		}
		f.Close()
	}
	return objs, resources
}

// decodeSpec decodes o's spec into v.
func decodeSpec(tb testing.TB, o k8sObject, v any) {
	tb.Helper()
	if err := o.Spec.Decode(v); err != nil {
		tb.Fatalf("%s: %s %s: spec: %v", o.file, o.Kind, o.Metadata.Name, err)
	}
}

// portNumber resolves a probe's or Service's port (a number or a container
// port's name) against c.
func portNumber(c k8sContainer, port any) int {
	switch p := port.(type) {
	case int:
		return p
	case string:
		for _, cp := range c.Ports {
			if cp.Name == p {
				return cp.ContainerPort
			}
		}
	}
	return 0
}

func TestK8sManifests(t *testing.T) {
	names := configNames(t)
	cmds := subcommands(t)
	objs, resources := loadK8s(t)

	// The kustomization applies every manifest, and only existing ones.
	listed := map[string]bool{}
	for _, r := range resources {
		listed[r] = true
		if _, err := os.Stat(filepath.Join("k8s", r)); err != nil {
			t.Errorf("kustomization.yaml: resource %s: %v", r, err)
		}
	}
	for _, o := range objs {
		if !listed[o.file] {
			t.Errorf("k8s/%s is not in kustomization.yaml's resources", o.file)
		}
	}

	byKind := map[string]map[string]k8sObject{}
	for _, o := range objs {
		if byKind[o.Kind] == nil {
			byKind[o.Kind] = map[string]k8sObject{}
		}
		byKind[o.Kind][o.Metadata.Name] = o
	}
	cm, ok := byKind["ConfigMap"]["docuvault-config"]
	if !ok {
		t.Fatal("no ConfigMap docuvault-config")
	}
	if _, ok := byKind["Secret"][adminSecret]; !ok {
		t.Fatalf("no Secret %s", adminSecret)
	}

	// The ConfigMap: only names config reads, and no credential.
	all := credentialVars()
	for k := range cm.Data {
		if !names[k] {
			t.Errorf("ConfigMap docuvault-config: %s is not read by shared/config", k)
		}
		if all[k] || strings.HasPrefix(k, "MINIO_ADMIN_") {
			t.Errorf("ConfigMap docuvault-config: holds the credential %s; credentials belong in their role's Secret", k)
		}
	}
	if _, port, _ := strings.Cut(cm.Data["HTTP_ADDR"], ":"); port != "8080" || strings.HasPrefix(cm.Data["HTTP_ADDR"], "127.") {
		t.Errorf("ConfigMap: HTTP_ADDR=%q, want 0.0.0.0:8080", cm.Data["HTTP_ADDR"])
	}

	// The Secrets: one per role with exactly its own credentials (setup's
	// holds only what no role's does: it takes the identities it creates
	// from the roles' Secrets), the admin's, and no other; every value the
	// placeholder.
	wantSecrets := map[string][]string{adminSecret: adminVars}
	for _, role := range config.RoleNames {
		wantSecrets[roleSecret(role)] = ownCredentials(role)
	}
	wantSecrets[roleSecret(setupRole)] = []string{"DATABASE_URL", natsPassword(setupRole)}
	placeholders := map[string]map[string]string{} // Secret: key: value
	for name, o := range byKind["Secret"] {
		want, ok := wantSecrets[name]
		if !ok {
			t.Errorf("%s: Secret %s is not one of the roles' or the admin's %v", o.file, name, slices.Sorted(maps.Keys(wantSecrets)))
			continue
		}
		if len(o.Data) != 0 {
			t.Errorf("%s: Secret %s has data; write the placeholders as stringData", o.file, name)
		}
		if got := slices.Sorted(maps.Keys(o.StringData)); !slices.Equal(got, want) {
			t.Errorf("%s: Secret %s holds %v, want exactly %v", o.file, name, got, want)
		}
		for k, v := range o.StringData {
			if !names[k] {
				t.Errorf("%s: Secret %s: %s is not read by shared/config", o.file, name, k)
			}
			if v != "REPLACE_ME" {
				t.Errorf("%s: Secret %s: %s=%q, want the placeholder REPLACE_ME", o.file, name, k, v)
			}
		}
		placeholders[name] = o.StringData
	}
	for name := range wantSecrets {
		if _, ok := byKind["Secret"][name]; !ok {
			t.Errorf("no Secret %s", name)
		}
	}
	// The same Secrets filled in as an operator would: distinct access
	// keys, fresh secrets.
	filled := map[string]map[string]string{}
	for name, data := range placeholders {
		filled[name] = map[string]string{}
		for k := range data {
			var v string
			switch {
			case k == "DATABASE_URL":
				v = "postgres://docuvault:" + hex.EncodeToString(randomBytes(16)) + "@postgres:5432/docuvault"
			case strings.HasSuffix(k, "_ACCESS_KEY"):
				v = strings.ToLower(strings.ReplaceAll(strings.TrimSuffix(k, "_ACCESS_KEY"), "_", "-"))
			case k == "JWT_SECRET":
				v = hex.EncodeToString(randomBytes(32))
			default:
				v = "p" + hex.EncodeToString(randomBytes(24))
			}
			filled[name][k] = v
		}
	}
	// MinIO's admin credential: in its own Secret, and nowhere else.
	for _, o := range objs {
		if o.Kind != "Secret" && o.Kind != "ConfigMap" || o.Metadata.Name == adminSecret {
			continue
		}
		for _, data := range []map[string]string{o.Data, o.StringData} {
			for k := range data {
				if strings.HasPrefix(k, "MINIO_ADMIN_") {
					t.Errorf("%s: %s %s holds %s; only Secret %s may", o.file, o.Kind, o.Metadata.Name, k, adminSecret)
				}
			}
		}
	}

	// Workloads: one per role, each running its subcommand with the
	// ConfigMap and its own credentials, locked down.
	type workload struct {
		kind, name, role string
		replicas         int // 0: not checked
	}
	workloads := []workload{
		{"Job", "docuvault-setup", setupRole, 0},
		{"Deployment", "docuvault-api", "api", 2},
		{"Deployment", "docuvault-confirmer", "confirmer", 2},
		{"Deployment", "docuvault-sweeper", "sweeper", 2},
		{"Deployment", "docuvault-classifier", "classifier", 2},
		{"Deployment", "docuvault-scanner", "scanner", 2},
	}
	// Deployments added later (a classifier, say) get the same checks, with
	// whatever subcommand they run; clamd, of ClamAV's image, is no role
	// (TestK8sClamd).
	for name := range byKind["Deployment"] {
		if name != clamdService && !slices.ContainsFunc(workloads, func(w workload) bool { return w.name == name }) {
			workloads = append(workloads, workload{"Deployment", name, "", 0})
		}
	}
	specs := map[string]k8sWorkloadSpec{}
	for _, w := range workloads {
		o, ok := byKind[w.kind][w.name]
		if !ok {
			t.Errorf("no %s %s", w.kind, w.name)
			continue
		}
		var spec k8sWorkloadSpec
		decodeSpec(t, o, &spec)
		if w.role != "" {
			specs[w.role] = spec
		}
		what := w.kind + " " + w.name
		if w.replicas != 0 && (spec.Replicas == nil || *spec.Replicas != w.replicas) {
			t.Errorf("%s: replicas %v, want %d", what, spec.Replicas, w.replicas)
		}
		if w.kind == "Deployment" {
			for k, v := range spec.Selector.MatchLabels {
				if spec.Template.Metadata.Labels[k] != v {
					t.Errorf("%s: selector %s=%s does not match the pod template's labels", what, k, v)
				}
			}
		}
		pod := spec.Template.Spec
		if sc := pod.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
			t.Errorf("%s: pod securityContext.runAsNonRoot is not true", what)
		}
		if len(pod.Containers) != 1 {
			t.Errorf("%s: %d containers, want 1", what, len(pod.Containers))
			continue
		}
		c := pod.Containers[0]
		if len(c.Args) != 1 || (w.role != "" && c.Args[0] != w.role) || !cmds[c.Args[0]] {
			t.Errorf("%s: args %v, want [%s], a subcommand of services/docuvault", what, c.Args, w.role)
		}
		if c.Image != "docuvault" {
			t.Errorf("%s: image %q, want docuvault (kustomization.yaml's images: sets the registry)", what, c.Image)
		}
		role := w.role
		if role == "" && len(c.Args) > 0 {
			role = c.Args[0]
		}
		// Its settings: the ConfigMap, its own Secret (setup: its own, the
		// admin's and, key by key, the identities of the roles' Secrets).
		fromCM := slices.ContainsFunc(c.EnvFrom, func(ef k8sEnvFrom) bool {
			return ef.ConfigMapRef != nil && ef.ConfigMapRef.Name == cm.Metadata.Name
		})
		if !fromCM {
			t.Errorf("%s: envFrom does not take ConfigMap %s", what, cm.Metadata.Name)
		}
		wantRefs := []string{roleSecret(role)}
		if role == setupRole {
			wantRefs = append(wantRefs, adminSecret)
			for _, r := range config.RoleNames {
				wantRefs = append(wantRefs, roleSecret(r))
			}
		}
		if got := secretRefs(c); !slices.Equal(got, sortedSet(wantRefs)) {
			t.Errorf("%s: refers to Secrets %v, want exactly %v", what, got, sortedSet(wantRefs))
		}
		if w.kind == "Deployment" {
			for _, ef := range c.EnvFrom {
				if ef.SecretRef != nil && ef.SecretRef.Name != roleSecret(role) {
					t.Errorf("%s: envFrom takes Secret %s; a Deployment reads its own role's Secret only", what, ef.SecretRef.Name)
				}
			}
		}
		env, err := containerEnv(c, cm, placeholders)
		if err != nil {
			t.Errorf("%s: %v", what, err)
			continue
		}
		checkOwnCredentials(t, "deploy/k8s: "+what, role, env)
		for _, name := range requiredOf(role) {
			if _, ok := env[name]; !ok {
				t.Errorf("%s: its settings lack %s, which its validation requires", what, name)
			}
		}
		// Unfilled, its Secrets stop it (REPLACE_ME is an example value
		// config refuses), as secret.yaml's comment says; filled, its
		// settings pass the validation its process runs.
		if cfg, err := loadConfig(t, names, env); err == nil {
			if err := validateRole(cfg, role); err == nil || !strings.Contains(err.Error(), "is an example value") {
				t.Errorf("%s with REPLACE_ME: validation says %v; secret.yaml says the services refuse REPLACE_ME as an example value", what, err)
			}
		}
		if env, err = containerEnv(c, cm, filled); err != nil {
			t.Fatal(err)
		}
		cfg, err := loadConfig(t, names, env)
		if err == nil {
			err = validateRole(cfg, role)
		}
		if err != nil {
			t.Errorf("%s with its Secrets filled: %v", what, err)
		} else if role == "api" {
			if on, _ := strconv.ParseBool(env["REQUIRE_DECLARED_SIZE"]); !on {
				t.Errorf("%s: REQUIRE_DECLARED_SIZE=%q; the example runs with it on", what, env["REQUIRE_DECLARED_SIZE"])
			}
			if !cfg.MinIOPublicUseTLS || cfg.MinIOUseTLS {
				t.Errorf("%s: MINIO_PUBLIC_USE_TLS=%v MINIO_USE_TLS=%v; the example serves MinIO's public endpoint over HTTPS (minio/ingress.yaml) and reaches it inside the cluster over HTTP", what, cfg.MinIOPublicUseTLS, cfg.MinIOUseTLS)
			}
		}
		sc := c.SecurityContext
		switch {
		case sc == nil:
			t.Errorf("%s: container has no securityContext", what)
		case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot:
			t.Errorf("%s: container securityContext.runAsNonRoot is not true", what)
		case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
			t.Errorf("%s: container securityContext.readOnlyRootFilesystem is not true", what)
		case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
			t.Errorf("%s: container securityContext.allowPrivilegeEscalation is not false", what)
		case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []string{"ALL"}):
			t.Errorf("%s: container does not drop ALL capabilities", what)
		}
	}

	// No object refers to a Secret in any way (envFrom, env's
	// secretKeyRef, a volume) but the workloads allowed above: a role's
	// Secret is its Deployment's and the setup Job's, the admin's the
	// setup Job's only.
	for _, o := range objs {
		if o.Kind == "Secret" {
			continue
		}
		b, err := yaml.Marshal(&o.Spec)
		if err != nil {
			t.Fatal(err)
		}
		for secret := range wantSecrets {
			if !bytes.Contains(b, []byte(secret)) {
				continue
			}
			role := strings.TrimSuffix(strings.TrimPrefix(secret, "docuvault-"), "-secrets")
			if !(o.Kind == "Job" && o.Metadata.Name == "docuvault-setup") && !(o.Kind == "Deployment" && o.Metadata.Name == "docuvault-"+role) {
				t.Errorf("%s: %s %s refers to Secret %s, which is not its own", o.file, o.Kind, o.Metadata.Name, secret)
			}
		}
	}

	// The api: probes on its port, a Service and a PodDisruptionBudget.
	api, ok := specs["api"]
	if !ok || len(api.Template.Spec.Containers) != 1 {
		return
	}
	c := api.Template.Spec.Containers[0]
	for _, p := range []struct {
		what  string
		probe *k8sProbe
		path  string
	}{{"readinessProbe", c.ReadinessProbe, "/readyz"}, {"livenessProbe", c.LivenessProbe, "/healthz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil || p.probe.HTTPGet.Path != p.path || portNumber(c, p.probe.HTTPGet.Port) != 8080 {
			t.Errorf("Deployment docuvault-api: %s is not GET %s on port 8080", p.what, p.path)
		}
	}
	svc, ok := byKind["Service"]["docuvault-api"]
	if !ok {
		t.Error("no Service docuvault-api")
	} else {
		var spec k8sServiceSpec
		decodeSpec(t, svc, &spec)
		if len(spec.Selector) == 0 || !matches(spec.Selector, api.Template.Metadata.Labels) {
			t.Errorf("Service docuvault-api: selector %v does not select the api pods", spec.Selector)
		}
		if len(spec.Ports) == 0 || portNumber(c, spec.Ports[0].TargetPort) != 8080 {
			t.Errorf("Service docuvault-api: does not target the api's port 8080")
		}
	}
	pdb, ok := byKind["PodDisruptionBudget"]["docuvault-api"]
	if !ok {
		t.Error("no PodDisruptionBudget docuvault-api")
	} else {
		var spec k8sWorkloadSpec
		decodeSpec(t, pdb, &spec)
		if len(spec.Selector.MatchLabels) == 0 || !matches(spec.Selector.MatchLabels, api.Template.Metadata.Labels) {
			t.Errorf("PodDisruptionBudget docuvault-api: selector %v does not select the api pods", spec.Selector.MatchLabels)
		}
	}
}

// k8sBytes parses a Kubernetes memory quantity (bytes, or a number with
// Ki, Mi, Gi, K, M or G), 0 for anything else.
func k8sBytes(q string) int64 {
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"Ki", 1 << 10}, {"Mi", 1 << 20}, {"Gi", 1 << 30}, {"K", 1e3}, {"M", 1e6}, {"G", 1e9}, {"", 1}} {
		if n, ok := strings.CutSuffix(q, u.suffix); ok {
			if v, err := strconv.ParseInt(n, 10, 64); err == nil {
				return v * u.mult
			}
		}
	}
	return 0
}

// TestK8sClamd checks clamd in deploy/k8s: the official image at 1.4,
// run as a non-root user as the namespace's restricted Pod Security
// Standard requires, memory sized for the real signature database, ready
// once its port answers (clamd opens it only with its signatures loaded),
// its signatures on a volume of the pod; a Service the ConfigMap's
// CLAMD_ADDRESS names; limits under which clamd scans every byte
// SCAN_MAX_BYTES lets through; and a NetworkPolicy that lets the scanner's
// pods alone connect (clamd has no authentication).
func TestK8sClamd(t *testing.T) {
	objs, _ := loadK8s(t)
	var cm map[string]string
	var namespace string
	var deploy, svc, policy *k8sObject
	for _, o := range objs {
		switch {
		case o.Kind == "ConfigMap" && o.Metadata.Name == "docuvault-config":
			cm = o.Data
		case o.Kind == "Namespace":
			namespace = o.Metadata.Name
		case o.Kind == "Deployment" && o.Metadata.Name == clamdService:
			deploy = &o
		case o.Kind == "Service" && o.Metadata.Name == clamdService:
			svc = &o
		case o.Kind == "NetworkPolicy" && o.Metadata.Name == clamdService:
			policy = &o
		}
	}
	if deploy == nil || svc == nil || policy == nil || cm == nil || namespace == "" {
		t.Fatalf("deploy/k8s: want the Deployment, Service and NetworkPolicy %s, the ConfigMap docuvault-config and the Namespace; found %v, %v, %v, %v, %q", clamdService, deploy != nil, svc != nil, policy != nil, cm != nil, namespace)
	}
	var spec k8sWorkloadSpec
	decodeSpec(t, *deploy, &spec)
	pod := spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("Deployment %s: %d containers, want 1", clamdService, len(pod.Containers))
	}
	c := pod.Containers[0]
	if psc := pod.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.SeccompProfile == nil || psc.SeccompProfile.Type != "RuntimeDefault" {
		t.Errorf("Deployment %s: the pod must run as non-root with the RuntimeDefault seccomp profile (the namespace enforces the restricted standard)", clamdService)
	}
	for _, ct := range append(slices.Clone(pod.InitContainers), c) {
		if ct.Image != clamdImage && !strings.HasPrefix(ct.Image, clamdImage+".") {
			t.Errorf("Deployment %s: container %s runs %q, want the official %s", clamdService, ct.Name, ct.Image, clamdImage)
		}
		sc := ct.SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []string{"ALL"}) {
			t.Errorf("Deployment %s: container %s must drop ALL capabilities and disallow privilege escalation (the restricted standard)", clamdService, ct.Name)
		}
	}
	if !slices.Equal(c.Command, []string{"/init-unprivileged"}) {
		t.Errorf("Deployment %s: command %v, want the image's entrypoint for a non-root user, [/init-unprivileged]", clamdService, c.Command)
	}
	if req, lim := k8sBytes(c.Resources.Requests["memory"]), k8sBytes(c.Resources.Limits["memory"]); req < clamdMemory || lim < clamdReloadMemory || lim < req {
		t.Errorf("Deployment %s: memory request %q, limit %q; clamd needs 1.2 GiB with the real signatures and up to 2.4 GiB while it loads an update", clamdService, c.Resources.Requests["memory"], c.Resources.Limits["memory"])
	}
	if p := c.ReadinessProbe; p == nil || p.TCPSocket == nil || portNumber(c, p.TCPSocket.Port) != clamdPort {
		t.Errorf("Deployment %s: readinessProbe is not a TCP connect to %d (clamd opens it once its signatures are loaded)", clamdService, clamdPort)
	}
	if portNumber(c, "clamd") != clamdPort {
		t.Errorf("Deployment %s: no container port clamd (%d)", clamdService, clamdPort)
	}
	volumes := map[string]bool{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = true
	}
	if !slices.ContainsFunc(c.VolumeMounts, func(m struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	}) bool {
		return m.MountPath == "/var/lib/clamav" && volumes[m.Name]
	}) {
		t.Errorf("Deployment %s: no volume at /var/lib/clamav, where freshclam keeps the signatures", clamdService)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	limits, err := clamdLimitsOf(env)
	if err != nil {
		t.Fatalf("Deployment %s: %v", clamdService, err)
	}
	scanMax, _ := strconv.ParseInt(cm["SCAN_MAX_BYTES"], 10, 64)
	maxUpload, _ := strconv.ParseInt(cm["MAX_UPLOAD_BYTES"], 10, 64)
	if scanMax <= 0 || maxUpload <= 0 {
		t.Errorf("ConfigMap: SCAN_MAX_BYTES=%q, MAX_UPLOAD_BYTES=%q; write both out, so that they are seen together", cm["SCAN_MAX_BYTES"], cm["MAX_UPLOAD_BYTES"])
	}
	checkScanLimits(t, "deploy/k8s", scanMax, maxUpload, limits)
	if on, err := strconv.ParseBool(cm["SCAN_REQUIRED"]); err != nil || !on {
		t.Errorf("ConfigMap: SCAN_REQUIRED=%q, want true (the ConfigMap is every role's: they agree)", cm["SCAN_REQUIRED"])
	}

	// The Service selects clamd's pods on its port, and is CLAMD_ADDRESS.
	var ss k8sServiceSpec
	decodeSpec(t, *svc, &ss)
	if len(ss.Selector) == 0 || !matches(ss.Selector, spec.Template.Metadata.Labels) {
		t.Errorf("Service %s: selector %v does not select clamd's pods", clamdService, ss.Selector)
	}
	if len(ss.Ports) != 1 || ss.Ports[0].Port != clamdPort || portNumber(c, ss.Ports[0].TargetPort) != clamdPort {
		t.Errorf("Service %s: ports %+v, want %d to clamd's %d", clamdService, ss.Ports, clamdPort, clamdPort)
	}
	if want := net.JoinHostPort(clamdService+"."+namespace+".svc", strconv.Itoa(clamdPort)); cm["CLAMD_ADDRESS"] != want {
		t.Errorf("ConfigMap: CLAMD_ADDRESS=%q, want the Service, %s", cm["CLAMD_ADDRESS"], want)
	}

	// Only the scanner's pods may connect.
	var np struct {
		PodSelector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"podSelector"`
		PolicyTypes []string `yaml:"policyTypes"`
		Ingress     []struct {
			From []struct {
				PodSelector *struct {
					MatchLabels map[string]string `yaml:"matchLabels"`
				} `yaml:"podSelector"`
				NamespaceSelector any `yaml:"namespaceSelector"`
				IPBlock           any `yaml:"ipBlock"`
			} `yaml:"from"`
			Ports []struct {
				Port any `yaml:"port"`
			} `yaml:"ports"`
		} `yaml:"ingress"`
	}
	decodeSpec(t, *policy, &np)
	if len(np.PodSelector.MatchLabels) == 0 || !matches(np.PodSelector.MatchLabels, spec.Template.Metadata.Labels) || !slices.Contains(np.PolicyTypes, "Ingress") {
		t.Errorf("NetworkPolicy %s: does not isolate clamd's pods for ingress (podSelector %v, policyTypes %v)", clamdService, np.PodSelector.MatchLabels, np.PolicyTypes)
	}
	var scanner k8sWorkloadSpec
	for _, o := range objs {
		if o.Kind == "Deployment" && o.Metadata.Name == "docuvault-scanner" {
			decodeSpec(t, o, &scanner)
		}
	}
	scannerLabels := scanner.Template.Metadata.Labels
	for _, in := range np.Ingress {
		for _, f := range in.From {
			if f.PodSelector == nil || f.NamespaceSelector != nil || f.IPBlock != nil || len(f.PodSelector.MatchLabels) == 0 || !matches(f.PodSelector.MatchLabels, scannerLabels) {
				t.Errorf("NetworkPolicy %s: lets in %+v; the scanner's pods alone may connect", clamdService, f)
			}
			// No other role's pods: the selector needs the scanner's own label.
			for _, w := range []string{"api", "confirmer", "sweeper", "classifier"} {
				if f.PodSelector != nil && len(f.PodSelector.MatchLabels) > 0 && matches(f.PodSelector.MatchLabels, map[string]string{"app.kubernetes.io/name": "docuvault", "app.kubernetes.io/component": w}) {
					t.Errorf("NetworkPolicy %s: selects the %s's pods too", clamdService, w)
				}
			}
		}
		if len(in.From) == 0 {
			t.Errorf("NetworkPolicy %s: an ingress rule without from lets everyone in", clamdService)
		}
		if len(in.Ports) != 1 || in.Ports[0].Port != clamdPort {
			t.Errorf("NetworkPolicy %s: ports %+v, want %d only", clamdService, in.Ports, clamdPort)
		}
	}
	if len(np.Ingress) == 0 {
		t.Errorf("NetworkPolicy %s: no ingress rule: the scanner could not connect", clamdService)
	}
}

// TestK8sMinIOPublicHTTPS checks the HTTPS example for MinIO's public
// endpoint: deploy/k8s/minio/ingress.yaml serves the ConfigMap's
// MINIO_PUBLIC_ENDPOINT with TLS, to MinIO's S3 port, while the pods reach
// MinIO inside the cluster (TestK8sManifests checks MINIO_PUBLIC_USE_TLS
// on and MINIO_USE_TLS off).
func TestK8sMinIOPublicHTTPS(t *testing.T) {
	t.Parallel()
	objs, _ := loadK8s(t)
	var cm map[string]string
	for _, o := range objs {
		if o.Kind == "ConfigMap" && o.Metadata.Name == "docuvault-config" {
			cm = o.Data
		}
	}
	host, port, err := net.SplitHostPort(cm["MINIO_PUBLIC_ENDPOINT"])
	if err != nil {
		host, port = cm["MINIO_PUBLIC_ENDPOINT"], "443"
	}
	if port != "443" || host == "" {
		t.Errorf("ConfigMap: MINIO_PUBLIC_ENDPOINT=%q, want the Ingress's host on 443", cm["MINIO_PUBLIC_ENDPOINT"])
	}
	b, err := os.ReadFile(filepath.Join("k8s", "minio", "ingress.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var ing struct {
		Kind     string  `yaml:"kind"`
		Metadata k8sMeta `yaml:"metadata"`
		Spec     struct {
			TLS []struct {
				Hosts      []string `yaml:"hosts"`
				SecretName string   `yaml:"secretName"`
			} `yaml:"tls"`
			Rules []struct {
				Host string `yaml:"host"`
				HTTP struct {
					Paths []struct {
						Path    string `yaml:"path"`
						Backend struct {
							Service struct {
								Name string `yaml:"name"`
								Port struct {
									Number int `yaml:"number"`
								} `yaml:"port"`
							} `yaml:"service"`
						} `yaml:"backend"`
					} `yaml:"paths"`
				} `yaml:"http"`
			} `yaml:"rules"`
		} `yaml:"spec"`
	}
	if err := yaml.Unmarshal(b, &ing); err != nil {
		t.Fatalf("k8s/minio/ingress.yaml: %v", err)
	}
	if ing.Kind != "Ingress" {
		t.Fatalf("k8s/minio/ingress.yaml: kind %q, want Ingress", ing.Kind)
	}
	tls := slices.ContainsFunc(ing.Spec.TLS, func(t struct {
		Hosts      []string `yaml:"hosts"`
		SecretName string   `yaml:"secretName"`
	}) bool {
		return t.SecretName != "" && slices.Contains(t.Hosts, host)
	})
	if !tls {
		t.Errorf("k8s/minio/ingress.yaml: no TLS (with a secretName) for %s, MINIO_PUBLIC_ENDPOINT's host", host)
	}
	minioHost, minioPort, err := net.SplitHostPort(cm["MINIO_ENDPOINT"])
	if err != nil {
		t.Fatalf("ConfigMap: MINIO_ENDPOINT=%q: %v", cm["MINIO_ENDPOINT"], err)
	}
	ruled := false
	for _, r := range ing.Spec.Rules {
		if r.Host != host {
			continue
		}
		for _, p := range r.HTTP.Paths {
			ruled = true
			be := p.Backend.Service
			// MINIO_ENDPOINT is <service>.<namespace>.svc:<port>: the
			// Ingress, in that namespace, sends to the same Service.
			if p.Path != "/" || be.Name+"."+ing.Metadata.Namespace+".svc" != minioHost || strconv.Itoa(be.Port.Number) != minioPort {
				t.Errorf("k8s/minio/ingress.yaml: %s%s goes to Service %s port %d in namespace %q, want every path to MINIO_ENDPOINT %s", r.Host, p.Path, be.Name, be.Port.Number, ing.Metadata.Namespace, cm["MINIO_ENDPOINT"])
			}
		}
	}
	if !ruled {
		t.Errorf("k8s/minio/ingress.yaml: no rule for host %s", host)
	}
}

// TestRemovedVariablesGone checks that no deployment file still sets the
// one credential every role shared (config refuses those variables by name).
func TestRemovedVariablesGone(t *testing.T) {
	t.Parallel()
	files := []string{filepath.Join(root, "docker-compose.yml"), filepath.Join(root, envExample), filepath.Join("nats", "values.yaml")}
	for _, glob := range []string{filepath.Join("k8s", "*.yaml"), filepath.Join("k8s", "*", "*.yaml")} {
		m, err := filepath.Glob(glob)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, m...)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range removedVars {
			if regexp.MustCompile(`\b` + name + `\b`).Match(b) {
				t.Errorf("%s: mentions %s, which this release removed (each role has credentials of its own)", f, name)
			}
		}
	}
}

// matches reports whether labels carry every key and value of selector.
func matches(selector, labels map[string]string) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// natsValueRE matches the NATS Helm chart's raw-value syntax, "<< $VAR >>".
var natsValueRE = regexp.MustCompile(`"<< (.*?) >>"`)

// TestNATSHelmValues renders the NATS config that deploy/nats/values.yaml
// gives the official chart and checks that its users, accounts and
// permissions are nats.conf's.
func TestNATSHelmValues(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("nats", "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var values struct {
		Config struct {
			Merge map[string]any `yaml:"merge"`
		} `yaml:"config"`
	}
	if err := yaml.Unmarshal(b, &values); err != nil {
		t.Fatalf("deploy/nats/values.yaml: %v", err)
	}
	merge := values.Config.Merge
	merge["jetstream"] = map[string]any{"store_dir": t.TempDir()}
	// The chart writes the config as JSON with "<< x >>" values raw.
	var js bytes.Buffer
	enc := json.NewEncoder(&js)
	enc.SetEscapeHTML(false) // keep "document.>" as it is
	enc.SetIndent("", "  ")
	if err := enc.Encode(merge); err != nil {
		t.Fatal(err)
	}
	rendered := natsValueRE.ReplaceAll(js.Bytes(), []byte("$1"))
	chartConf := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(chartConf, rendered, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, user := range append(slices.Clone(config.RoleNames), setupRole, "minio") {
		t.Setenv(natsPassword(user), "p"+user+"0123456789abcdef")
	}
	chart, err := server.ProcessConfigFile(chartConf)
	if err != nil {
		t.Fatalf("NATS config from deploy/nats/values.yaml:\n%s\n%v", rendered, err)
	}
	repo, err := server.ProcessConfigFile(filepath.Join(root, "nats.conf"))
	if err != nil {
		t.Fatal(err)
	}
	type user struct {
		Account, Password string
		Permissions       *server.Permissions
	}
	users := func(o *server.Options) map[string]user {
		m := map[string]user{}
		for _, u := range o.Users {
			var acc string
			if u.Account != nil {
				acc = u.Account.Name
			}
			m[u.Username] = user{acc, u.Password, u.Permissions}
		}
		return m
	}
	if got, want := users(chart), users(repo); !reflect.DeepEqual(got, want) {
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(want)
		t.Errorf("deploy/nats/values.yaml users differ from nats.conf's:\n got %s\nwant %s", g, w)
	}
	if chart.MaxPayload != repo.MaxPayload {
		t.Errorf("deploy/nats/values.yaml max_payload %d, nats.conf %d", chart.MaxPayload, repo.MaxPayload)
	}
}

// readmePolicyRE finds deploy/README.md's policy files:
// cat > <role>.json <<'EOF' ... EOF.
var readmePolicyRE = regexp.MustCompile(`(?s)cat > (\w+)\.json <<'EOF'\n(.*?)\nEOF\n`)

// TestREADMEPolicies checks that the policies deploy/README.md gives for
// creating the identities by hand are objectstore's, under its names, for
// the bucket the manifests configure.
func TestREADMEPolicies(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	const bucket = "documents"
	if env := envOf(service(t, loadCompose(t, randomSecrets()), "api")); env["MINIO_BUCKET"] != bucket {
		t.Errorf("docker-compose.yml: MINIO_BUCKET=%q, but README.md's policies are for %q", env["MINIO_BUCKET"], bucket)
	}
	objs, _ := loadK8s(t)
	for _, o := range objs {
		if o.Kind == "ConfigMap" && o.Metadata.Name == "docuvault-config" && o.Data["MINIO_BUCKET"] != bucket {
			t.Errorf("k8s/%s: MINIO_BUCKET=%q, but README.md's policies are for %q", o.file, o.Data["MINIO_BUCKET"], bucket)
		}
	}
	want := map[string][]byte{
		"upload":   objectstore.UploadPolicy(bucket),
		"download": objectstore.DownloadPolicy(bucket),
	}
	for _, role := range objectstore.Roles {
		p, err := objectstore.RolePolicy(bucket, role)
		if err != nil {
			t.Fatal(err)
		}
		want[role] = p
	}
	if !slices.Equal(objectstore.Roles, config.RoleNames) {
		t.Errorf("objectstore.Roles %v differ from config.RoleNames %v", objectstore.Roles, config.RoleNames)
	}
	got := map[string]string{}
	for _, m := range readmePolicyRE.FindAllSubmatch(b, -1) {
		got[string(m[1])] = string(m[2])
	}
	for role, w := range want {
		g, ok := got[role]
		if !ok {
			t.Errorf("README.md: no %s.json policy", role)
			continue
		}
		var gv, wv any
		if err := json.Unmarshal([]byte(g), &gv); err != nil {
			t.Errorf("README.md: %s.json: %v", role, err)
			continue
		}
		if err := json.Unmarshal(w, &wv); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(gv, wv) {
			t.Errorf("README.md: %s.json differs from objectstore's policy:\n got %s\nwant %s", role, g, w)
		}
		name := objectstore.PolicyName(bucket, role)
		if !bytes.Contains(b, []byte("mc admin policy attach myminio "+name+" ")) {
			t.Errorf("README.md: does not attach policy %s (objectstore.PolicyName)", name)
		}
	}
	if len(got) != len(want) {
		t.Errorf("README.md: policies %v, want exactly %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
	}
}
