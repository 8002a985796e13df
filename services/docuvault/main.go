// Command docuvault is DocuVault's one binary; its subcommand picks the role:
//
//	docuvault api                              serve the HTTP API
//	docuvault confirmer                        confirm uploads from MinIO notifications
//	docuvault classifier                       classify uploaded documents
//	docuvault scanner                          scan uploaded documents for malware with clamd
//	docuvault sweeper                          run the scheduled sweeps
//	docuvault migrate                          apply database migrations and exit
//	docuvault setup                            create the MinIO bucket, identities and policies (admin credential), the NATS streams, consumers and schedule (NATS user setup), then migrate
//	docuvault dev                              everything in one process for local use (make run)
//	docuvault token --user <uuid> [--role admin] [--ttl 24h]   mint a token for local use
//
// Settings come from the environment (see the README's table).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/services/docuvault/stack"
	"github.com/docuvault/docuvault/shared/auth"
	"github.com/docuvault/docuvault/shared/config"
	"github.com/docuvault/docuvault/shared/logging"
)

const usage = `usage: docuvault <command> [flags]

commands:
  api       serve the HTTP API on HTTP_ADDR (and relay the event outbox)
  confirmer confirm uploads from MinIO notifications on JetStream (and relay the outbox)
  classifier classify uploaded documents (document.uploaded and .scanned consumer; relays nothing)
  scanner   scan uploaded documents for malware with the clamd at CLAMD_ADDRESS
            (document.uploaded consumer; relays nothing)
  sweeper   run the scheduled sweep: stale uploads, lost events, orphaned objects
  migrate   apply database migrations to DATABASE_URL and exit
  setup     create the bucket and the MinIO identities the roles and URLs use
            (MINIO_<ROLE>_*, MINIO_UPLOAD_*, MINIO_DOWNLOAD_*) with their policies, as
            MINIO_ADMIN_ACCESS_KEY; the NATS streams, their consumers and the sweep schedule,
            as NATS user setup (NATS_SETUP_PASSWORD); then migrate; idempotent; the roles
            never hold the admin credential and only bind to what setup made
  dev       run everything in one process for local use: embedded NATS, PostgreSQL and MinIO in .data,
            api, confirmer, sweeper, classifier and, when Debian's clamav-daemon is installed, clamd
            and the scanner; prints the page URL and a token (flags: dev -h)
  token     mint a JWT for local use: token --user <uuid> [--role user|admin] [--ttl 24h]
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "docuvault:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "api", "confirmer", "classifier", "sweeper", "scanner":
		return runRole(ctx, cfg, stack.Role(cmd), stderr)
	case "migrate":
		if err := stack.Migrate(ctx, cfg); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "migrations applied")
		return nil
	case "setup":
		if err := stack.Setup(ctx, cfg); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "migrations applied; MinIO bucket, identities and policies in place; NATS streams, consumers and schedule in place")
		return nil
	case "token":
		return mintToken(cfg, rest, stdout, stderr)
	case "dev":
		return runDev(ctx, cfg, rest, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

// runRole runs one role, as deployed, until ctx ends.
func runRole(ctx context.Context, cfg config.Config, role stack.Role, stderr io.Writer) error {
	if _, err := logging.New(stderr, string(role), cfg.LogLevel, cfg.LogFormat); err != nil {
		return err
	}
	s, err := stack.Open(ctx, cfg, stack.Options{
		Roles: []stack.Role{role},
		Log: func(service string) zerolog.Logger {
			log, _ := logging.New(stderr, service, cfg.LogLevel, cfg.LogFormat) // checked above
			return log
		},
	})
	if err != nil {
		return err
	}
	defer s.Close()
	return s.Run(ctx)
}

func mintToken(cfg config.Config, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	user := fs.String("user", "", "user id (UUID); a new one when empty")
	role := fs.String("role", string(auth.RoleUser), "role: user or admin")
	ttl := fs.Duration("ttl", 24*time.Hour, "token lifetime")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.JWTSecret == "" {
		return errors.New("JWT_SECRET is required to mint a token")
	}
	id := uuid.New()
	if *user != "" {
		var err error
		if id, err = uuid.Parse(*user); err != nil {
			return fmt.Errorf("--user must be a UUID: %w", err)
		}
	}
	r := auth.Role(*role)
	if r != auth.RoleUser && r != auth.RoleAdmin {
		return fmt.Errorf("--role must be user or admin, got %q", *role)
	}
	tok, err := auth.Mint(auth.Config{Secret: []byte(cfg.JWTSecret), Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience},
		auth.Principal{UserID: id, Role: r}, *ttl, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}
