package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/internal/devstack"
	"github.com/docuvault/docuvault/services/docuvault/stack"
	"github.com/docuvault/docuvault/shared/auth"
	"github.com/docuvault/docuvault/shared/config"
	"github.com/docuvault/docuvault/shared/logging"
)

// devTokenTTL is the lifetime of the token the dev banner prints.
const devTokenTTL = 24 * time.Hour

// devReadyAfter bounds how long the services may take to answer /readyz
// once they are open.
const devReadyAfter = 30 * time.Second

// devFlags are the settings of `docuvault dev`.
type devFlags struct {
	dataDir, httpAddr, natsAddr, minioAddr, consoleAddr, minioBin, logFormat, clamdAddr string
	pgPort                                                                              int
	corsOrigins                                                                         []string
}

// parseDevFlags reads dev's flags, with their defaults from cfg, and
// checks them; flag.ErrHelp when asked for help.
func parseDevFlags(cfg config.Config, args []string, stderr io.Writer) (devFlags, error) {
	var f devFlags
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.dataDir, "data-dir", cmp.Or(cfg.DevDataDir, devstack.DefaultDataDir), "directory holding every server's state (kept between runs); DEV_DATA_DIR sets the default")
	fs.StringVar(&f.httpAddr, "http-addr", cfg.HTTPAddr, "API and web page listen address; HTTP_ADDR sets the default")
	fs.StringVar(&f.natsAddr, "nats-addr", cmp.Or(cfg.DevNATSAddr, devstack.DefaultNATSAddr), "embedded NATS listen address; DEV_NATS_ADDR sets the default")
	fs.StringVar(&f.minioAddr, "minio-addr", cmp.Or(cfg.DevMinIOAddr, devstack.DefaultMinIOAddr), "MinIO S3 API listen address; DEV_MINIO_ADDR sets the default")
	fs.StringVar(&f.consoleAddr, "minio-console-addr", cmp.Or(cfg.DevMinIOConsoleAddr, devstack.DefaultMinIOConsoleAddr), "MinIO console listen address; DEV_MINIO_CONSOLE_ADDR sets the default")
	fs.StringVar(&f.minioBin, "minio-bin", cmp.Or(cfg.DevMinIOBin, devstack.DefaultMinIOBin), "MinIO server binary (built by make tools); DEV_MINIO_BIN sets the default")
	fs.IntVar(&f.pgPort, "pg-port", cmp.Or(int(cfg.DevPGPort), devstack.DefaultPGPort), "port of the local PostgreSQL cluster on 127.0.0.1 (unused when DATABASE_URL is set); DEV_PG_PORT sets the default")
	fs.StringVar(&f.clamdAddr, "clamd-addr", devstack.DefaultClamdAddr, "listen address of the clamd started for the scanner (when Debian's clamav-daemon is installed)")
	fs.StringVar(&f.logFormat, "log-format", "console", "log format: console or json")
	cors := fs.String("cors-origin", strings.Join(cfg.CORSOrigins, ","), "comma-separated origins of frontends served elsewhere (e.g. a Vite dev server, http://localhost:5173) that may call the API and PUT to MinIO; CORS_ORIGINS sets the default")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	for o := range strings.SplitSeq(*cors, ",") {
		if o = strings.TrimSpace(o); o == "" {
			continue
		}
		if err := config.ValidateOrigin(o); err != nil {
			return f, fmt.Errorf("--cors-origin or CORS_ORIGINS: %w", err)
		}
		f.corsOrigins = append(f.corsOrigins, o)
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("dev takes no arguments, got %q", fs.Args())
	}
	if f.logFormat != "console" && f.logFormat != "json" {
		return f, fmt.Errorf("--log-format must be console or json, got %q", f.logFormat)
	}
	if _, _, err := net.SplitHostPort(f.httpAddr); err != nil {
		return f, fmt.Errorf("HTTP_ADDR or --http-addr: %q is not host:port", f.httpAddr)
	}
	return f, nil
}

// runDev is `docuvault dev`: PostgreSQL, NATS JetStream and MinIO from
// devstack, and every role on top of them in one stack, in one process
// until ctx ends. It prints one banner on stdout once everything answers;
// logs go to stderr.
func runDev(ctx context.Context, cfg config.Config, args []string, stdout, stderr io.Writer) (err error) {
	started := time.Now()
	f, err := parseDevFlags(cfg, args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	log, err := logging.New(stderr, "dev", cfg.LogLevel, f.logFormat)
	if err != nil {
		return err
	}
	devUser, err := loadDevState(&cfg, f.dataDir)
	if err != nil {
		return err
	}
	servers, err := startDevServers(ctx, cfg, f, log)
	if err != nil {
		return devStartErr(ctx, err) // none when stopped while starting, as asked
	}
	// Deferred first, so it runs last: after the services have closed.
	defer func() {
		if stopErr := servers.Stop(); stopErr != nil {
			err = errors.Join(err, stopErr)
		}
		log.Info().Msg("dev stack stopped")
	}()
	if err := useDevServers(&cfg, f, servers); err != nil {
		return err
	}
	scanning, err := startDevClamd(ctx, &cfg, f, log)
	if err != nil {
		return devStartErr(ctx, err)
	}
	defer scanning.stop()
	if err := setUpDev(ctx, cfg, servers); err != nil {
		return devStartErr(ctx, err)
	}
	devToken := devTokenMinter(cfg, devUser)
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("HTTP address %s is taken: set HTTP_ADDR or --http-addr (%w)", cfg.HTTPAddr, err)
	}
	roles, err := openDevStack(ctx, cfg, f, ln, devToken, scanning.roles(), stderr)
	if err != nil {
		ln.Close()
		return devStartErr(ctx, err)
	}
	defer roles.Close()
	return serveDev(ctx, roles, ln, log, func(httpAddr string) error {
		return printDevBanner(stdout, started, httpAddr, f.httpAddr, devToken, servers, scanning.banner)
	})
}

// loadDevState sets cfg's JWT secret, unless set, and returns the dev
// user: both are made on the first run and kept in dataDir, so that tokens
// and documents outlive a run.
func loadDevState(cfg *config.Config, dataDir string) (uuid.UUID, error) {
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return uuid.Nil, fmt.Errorf("--data-dir: %w", err)
	}
	if cfg.JWTSecret == "" {
		var err error
		if cfg.JWTSecret, err = readOrCreate(filepath.Join(dataDir, "jwt-secret"), randomHex32); err != nil {
			return uuid.Nil, err
		}
	}
	userFile := filepath.Join(dataDir, "dev-user")
	userText, err := readOrCreate(userFile, func() (string, error) { return uuid.NewString(), nil })
	if err != nil {
		return uuid.Nil, err
	}
	devUser, err := uuid.Parse(userText)
	if err != nil {
		return uuid.Nil, fmt.Errorf("%s holds no user id (UUID): delete it to get a new one", userFile)
	}
	return devUser, nil
}

// startDevServers starts PostgreSQL (unless cfg has a DATABASE_URL), NATS
// and MinIO at the flags' addresses, with their state in the data dir,
// having first checked that their ports and the API's are free.
func startDevServers(ctx context.Context, cfg config.Config, f devFlags, log zerolog.Logger) (*devstack.Stack, error) {
	return devstack.Start(ctx, devstack.Options{
		DataDir:          f.dataDir,
		NATSAddr:         f.natsAddr,
		MinIOAddr:        f.minioAddr,
		MinIOConsoleAddr: f.consoleAddr,
		MinIOBin:         f.minioBin,
		PGPort:           f.pgPort,
		DatabaseURL:      cfg.DatabaseURL,
		CORSOrigins:      append(pageOrigins(f.httpAddr), f.corsOrigins...),
		ExtraPorts:       devPortsOf(f),
		Log:              log,
	})
}

// setUpDev is `docuvault setup` on the dev servers: MinIO's root user
// makes the bucket and cfg's identities, then is forgotten, since the
// services run, and sign URLs, as those identities.
func setUpDev(ctx context.Context, cfg config.Config, servers *devstack.Stack) error {
	cfg.MinIOAdminAccessKey, cfg.MinIOAdminSecretKey = servers.MinIOAccessKey, servers.MinIOSecretKey
	return stack.Setup(ctx, cfg)
}

// devTokenMinter returns what mints the dev user's admin token, with cfg's
// JWT secret, for the banner and the page.
func devTokenMinter(cfg config.Config, devUser uuid.UUID) func() (string, uuid.UUID, error) {
	return func() (string, uuid.UUID, error) {
		tok, err := auth.Mint(auth.Config{Secret: []byte(cfg.JWTSecret), Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience},
			auth.Principal{UserID: devUser, Role: auth.RoleAdmin}, devTokenTTL, time.Now())
		return tok, devUser, err
	}
}

// devPortsOf are the ports the dev stack listens on beside the servers':
// the API's, and clamd's when it is installed.
func devPortsOf(f devFlags) []devstack.Port {
	ports := []devstack.Port{{Name: "HTTP address", Addr: f.httpAddr, Setting: "HTTP_ADDR or --http-addr"}}
	if devstack.HaveClamd() == nil {
		ports = append(ports, devstack.Port{Name: "clamd address", Addr: f.clamdAddr, Setting: "--clamd-addr"})
	}
	return ports
}

// devScanning is the dev stack's clamd, if it runs, and what the banner
// says of scanning.
type devScanning struct {
	clamd  *devstack.Clamd // nil: scanning is off
	banner string
}

// startDevClamd starts clamd for the scanner, with the local test
// signature database, when Debian's clamav-daemon is installed, and turns
// scanning on in cfg: every upload MAX_UPLOAD_BYTES allows is scanned.
// Without it, scanning is off and the banner says what to install.
func startDevClamd(ctx context.Context, cfg *config.Config, f devFlags, log zerolog.Logger) (devScanning, error) {
	if err := devstack.HaveClamd(); err != nil {
		cfg.ClamdAddress, cfg.ScanRequired = "", false
		return devScanning{banner: "off: " + err.Error()}, nil
	}
	c, err := devstack.StartClamd(ctx, devstack.ClamdOptions{Dir: filepath.Join(f.dataDir, "clamd"), Addr: f.clamdAddr, StreamMaxLength: cfg.MaxUploadBytes})
	if err != nil {
		return devScanning{}, fmt.Errorf("clamd (set --clamd-addr to move it): %w", err)
	}
	log.Info().Str("addr", c.Addr).Msg("clamd started")
	cfg.ClamdAddress, cfg.ScanRequired, cfg.ScanMaxBytes = c.Addr, true, cfg.MaxUploadBytes
	return devScanning{clamd: c, banner: "on: clamd " + c.Addr + " with test signatures only (EICAR, clamav-testfiles); a download waits for a clean verdict"}, nil
}

// roles are the roles the dev stack runs: every one, the scanner only with
// a clamd.
func (d devScanning) roles() []stack.Role {
	if d.clamd != nil {
		return stack.Roles
	}
	return slices.DeleteFunc(slices.Clone(stack.Roles), func(r stack.Role) bool { return r == stack.Scanner })
}

func (d devScanning) stop() {
	if d.clamd != nil {
		d.clamd.Stop()
	}
}

// openDevStack opens roles in one stack, the api on ln, each service
// logging to stderr in the flags' format.
func openDevStack(ctx context.Context, cfg config.Config, f devFlags, ln net.Listener, devToken func() (string, uuid.UUID, error), roles []stack.Role, stderr io.Writer) (*stack.Stack, error) {
	return stack.Open(ctx, cfg, stack.Options{
		Roles:    roles,
		Listener: ln,
		DevToken: devToken,
		DevHosts: devHosts(ln.Addr().String(), f.httpAddr),
		Log: func(service string) zerolog.Logger {
			l, _ := logging.New(stderr, service, cfg.LogLevel, f.logFormat) // parseDevFlags checked the format
			return l
		},
	})
}

// serveDev runs roles until ctx ends or one of them stops, and returns
// their errors. Once the api on ln answers /readyz, it calls ready with
// the address to dial it at.
func serveDev(ctx context.Context, roles *stack.Stack, ln net.Listener, log zerolog.Logger, ready func(httpAddr string) error) error {
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- roles.Run(runCtx) }()
	wait := func() error {
		stop()
		err := <-done
		log.Info().Msg("services stopped")
		return err
	}

	httpAddr := devstack.DialAddr(ln.Addr().String())
	if err := waitReady(runCtx, "http://"+httpAddr+"/readyz"); err != nil {
		return errors.Join(devStartErr(ctx, err), wait())
	}
	if err := ready(httpAddr); err != nil {
		return errors.Join(err, wait())
	}
	select {
	case <-ctx.Done():
		log.Info().Msg("stopping the dev stack")
	case err := <-done:
		done <- err // a role stopped by itself: wait returns its error
	}
	return wait()
}

// printDevBanner prints on stdout where everything is, with a fresh token,
// once the dev stack answers at httpAddr (asked for as asked).
func printDevBanner(stdout io.Writer, started time.Time, httpAddr, asked string, devToken func() (string, uuid.UUID, error), servers *devstack.Stack, scanning string) error {
	token, devUser, err := devToken()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, `
DocuVault dev stack ready in %.1fs

  page        http://%s/
  token       %s
              (user %s, role admin, valid %gh; paste it on the page, or send it as "Authorization: Bearer <token>")
  MinIO       http://%s (console %s, user %s, password %s)
  NATS        %s
  PostgreSQL  %s
  scanning    %s
  data        %s

Press Ctrl-C to stop.

`, time.Since(started).Seconds(), pageHost(httpAddr, asked), token, devUser, devTokenTTL.Hours(),
		servers.MinIOEndpoint, servers.MinIOConsole, servers.MinIOAccessKey, servers.MinIOSecretKey,
		servers.NATSURL, servers.RedactedDatabaseURL(), scanning, servers.DataDir)
	return nil
}

// useDevServers points cfg at the dev servers, with the flags' addresses and
// the dev identities (made on the first run and kept in the data dir).
func useDevServers(cfg *config.Config, f devFlags, servers *devstack.Stack) error {
	cfg.DatabaseURL = servers.DatabaseURL
	cfg.MinIOEndpoint = servers.MinIOEndpoint
	cfg.MinIOPublicEndpoint = servers.MinIOEndpoint
	cfg.MinIOUseTLS = false
	cfg.NATSURL = servers.NATSURL
	for _, role := range config.RoleNames {
		cfg.Role(role).NATSPassword = "" // the dev server takes no credentials
	}
	cfg.NATSSetupPassword = ""
	cfg.HTTPAddr = f.httpAddr
	cfg.CORSOrigins = f.corsOrigins // the page itself is same-origin
	cfg.LogFormat = f.logFormat
	cfg.MinIOAdminAccessKey, cfg.MinIOAdminSecretKey = "", "" // the services never hold it
	return devIdentities(cfg, f.dataDir)
}

// devStartErr is err, unless ctx ended: then the user stopped the start and
// there is nothing to report.
func devStartErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// waitReady polls url until it answers 200 OK, ctx ends or devReadyAfter
// passes.
func waitReady(ctx context.Context, url string) error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(devReadyAfter)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s: %s %s", url, resp.Status, strings.TrimSpace(string(body)))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("services not ready after %v: %w", devReadyAfter, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("services stopped before they were ready: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// pageOrigins returns the origins a browser shows the page under when the
// API listens on addr: the loopback names for a loopback or wildcard
// address, and the address itself otherwise.
func pageOrigins(addr string) []string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil
	}
	origins := []string{"http://" + net.JoinHostPort("127.0.0.1", port), "http://" + net.JoinHostPort("localhost", port)}
	if ip := net.ParseIP(host); host != "" && host != "localhost" && (ip == nil || !(ip.IsLoopback() || ip.IsUnspecified())) {
		origins = append([]string{"http://" + net.JoinHostPort(host, port)}, origins...)
	}
	return origins
}

// devHosts returns the Host headers the dev server mints tokens for when
// it listens on listen, asked for as asked (--http-addr): its loopback
// names and addresses — localhost, 127.0.0.1 and [::1] — and the host
// asked for unless it was a wildcard, each with the port listened on (and
// also without it on port 80, which browsers leave out). A page that
// rebinds a name of its own to 127.0.0.1 sends that name: refused.
func devHosts(listen, asked string) []string {
	_, port, err := net.SplitHostPort(listen)
	if err != nil {
		return nil
	}
	names := []string{"localhost", "127.0.0.1", "::1"}
	if host, _, err := net.SplitHostPort(asked); err == nil && host != "" && !net.ParseIP(host).IsUnspecified() && !slices.Contains(names, strings.ToLower(host)) {
		names = append(names, strings.ToLower(host))
	}
	var hosts []string
	for _, n := range names {
		hosts = append(hosts, net.JoinHostPort(n, port))
		if port == "80" {
			if strings.Contains(n, ":") {
				n = "[" + n + "]"
			}
			hosts = append(hosts, n)
		}
	}
	return hosts
}

// pageHost returns the host:port to show in the page's URL: the host
// asked for, unless it was a wildcard address, with the port listened on.
func pageHost(dial, asked string) string {
	host, _, err := net.SplitHostPort(asked)
	_, port, dialErr := net.SplitHostPort(dial)
	if err != nil || dialErr != nil || host == "" || net.ParseIP(host).IsUnspecified() {
		return dial
	}
	return net.JoinHostPort(host, port)
}

// devIdentities sets cfg's MinIO identities (each role's, the upload
// signer's and the download signer's): fixed names, and secrets made on
// the first run and kept in dataDir.
func devIdentities(cfg *config.Config, dataDir string) error {
	for _, id := range cfg.MinIOIdentities() {
		secret, err := readOrCreate(filepath.Join(dataDir, "minio-"+id.Name+"-secret"), randomHex32)
		if err != nil {
			return err
		}
		*id.AccessKey, *id.SecretKey = "docuvault-"+id.Name, secret
	}
	return nil
}

// readOrCreate returns the trimmed content of the file at path, first
// writing gen's value into it (readable by the owner only) if it does not
// exist.
func readOrCreate(path string, gen func() (string, error)) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if v := strings.TrimSpace(string(b)); v != "" {
			return v, nil
		}
		return "", fmt.Errorf("%s is empty: delete it to get a new value", path)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	v, err := gen()
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(path, []byte(v+"\n"), 0o600); err != nil {
		return "", err
	}
	return v, nil
}

// randomHex32 returns 32 random bytes in hexadecimal: a JWT secret.
func randomHex32() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}
