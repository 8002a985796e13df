package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/shared/app"
	"github.com/docuvault/docuvault/shared/auth"
	"github.com/docuvault/docuvault/shared/config"
)

// Server is a running API: its connections, its routes and its outbox relay.
type Server struct {
	app     *app.App
	handler http.Handler
	log     zerolog.Logger
	closing chan struct{}
	// readHeaderTimeout bounds how long a client may take to send its
	// request headers (slowloris).
	readHeaderTimeout time.Duration
}

// Option changes how New builds the server.
type Option func(*Deps)

// WithDevTokens enables POST /api/dev/token, which hands the page a token
// minted by mint. Only `docuvault dev` uses it.
func WithDevTokens(mint func() (string, uuid.UUID, error)) Option {
	return func(d *Deps) { d.DevToken = mint }
}

// New opens PostgreSQL (applying migrations), MinIO (checking the bucket
// and the signing identities) and NATS (creating the streams).
func New(ctx context.Context, cfg config.Config, log zerolog.Logger, opts ...Option) (*Server, error) {
	verifier, err := newVerifier(cfg)
	if err != nil {
		return nil, err
	}
	a, err := app.Open(ctx, cfg, log, "api")
	if err != nil {
		return nil, err
	}
	// The api signs every URL: refuse to sign with identities that would
	// grant a URL's holder more than one PUT or one GET.
	if err := a.Objects.CheckSigners(ctx); err != nil {
		a.Close()
		return nil, fmt.Errorf("MinIO signing identities: %w", err)
	}
	checks := []Check{
		{Name: "postgres", Ping: a.Store.Ping},
		{Name: "minio", Ping: a.Objects.Ping},
		{Name: "nats", Ping: func(context.Context) error {
			if !a.NATS.IsConnected() {
				return errors.New("nats disconnected")
			}
			return nil
		}},
	}
	closing := make(chan struct{})
	deps := Deps{Docs: a.Docs, Verifier: verifier, JS: a.JS, Checks: checks, Log: log, Closing: closing, MinIOOrigin: minioOrigin(cfg), Metrics: a.Metrics,
		MaxStreams: int(cfg.MaxEventStreams), CORSOrigins: cfg.CORSOrigins}
	for _, o := range opts {
		o(&deps)
	}
	h := Handler(deps)
	return &Server{app: a, handler: h, log: log, closing: closing, readHeaderTimeout: cfg.ReadHeaderTimeout}, nil
}

// Close releases the server's connections.
func (s *Server) Close() { s.app.Close() }

// shutdownGrace bounds how long in-flight requests may finish after ctx ends.
const shutdownGrace = 15 * time.Second

// Serve answers requests on ln, and relays the outbox, until ctx ends; then
// it shuts down gracefully.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	return s.app.RunWithRelay(ctx, func(ctx context.Context) error { return s.serve(ctx, ln) })
}

func (s *Server) serve(ctx context.Context, ln net.Listener) error {

	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.readHeaderTimeout,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return s.log.WithContext(context.Background()) },
	}
	var closeOnce sync.Once
	srv.RegisterOnShutdown(func() { closeOnce.Do(func() { close(s.closing) }) })
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.log.Info().Str("addr", ln.Addr().String()).Msg("api listening")
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Run starts the API on cfg.HTTPAddr and serves until ctx ends.
func Run(ctx context.Context, cfg config.Config, log zerolog.Logger) error {
	s, err := New(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer s.Close()
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("HTTP_ADDR=%s: %w (set HTTP_ADDR to a free address)", cfg.HTTPAddr, err)
	}
	return s.Serve(ctx, ln)
}

// minioOrigin is the origin browsers upload to.
func minioOrigin(cfg config.Config) string {
	host := cfg.MinIOPublicEndpoint
	if host == "" {
		host = cfg.MinIOEndpoint
	}
	if cfg.MinIOUseTLS {
		return "https://" + host
	}
	return "http://" + host
}

// newVerifier checks tokens signed with JWT_SECRET and with the keys of
// JWT_PUBLIC_KEYS_FILE, whichever are set.
func newVerifier(cfg config.Config) (*auth.Verifier, error) {
	ac := auth.Config{Secret: []byte(cfg.JWTSecret), Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience, Leeway: cfg.JWTLeeway}
	if cfg.JWTPublicKeysFile != "" {
		data, err := os.ReadFile(cfg.JWTPublicKeysFile)
		if err != nil {
			return nil, fmt.Errorf("JWT_PUBLIC_KEYS_FILE: %w", err)
		}
		if ac.PublicKeys, err = auth.ParsePublicKeys(data); err != nil {
			return nil, fmt.Errorf("JWT_PUBLIC_KEYS_FILE %s: %w", cfg.JWTPublicKeysFile, err)
		}
	}
	v, err := auth.NewVerifier(ac)
	if err != nil {
		return nil, fmt.Errorf("JWT_SECRET: %w", err)
	}
	return v, nil
}
