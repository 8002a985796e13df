package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/shared/auth"
	"github.com/docuvault/docuvault/shared/config"
	"github.com/docuvault/docuvault/shared/document"
	"github.com/docuvault/docuvault/shared/objectstore"
	"github.com/docuvault/docuvault/shared/postgres"
)

// Server is a running API: its connections and its routes.
type Server struct {
	pool    *pgxpool.Pool
	handler http.Handler
	log     zerolog.Logger
}

// New connects to PostgreSQL and MinIO, applies migrations and creates the
// bucket if missing.
func New(ctx context.Context, cfg config.Config, log zerolog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	verifier, err := auth.NewVerifier(auth.Config{Secret: []byte(cfg.JWTSecret), Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience})
	if err != nil {
		return nil, fmt.Errorf("JWT_SECRET: %w", err)
	}
	objects, err := objectstore.New(objectstore.Config{
		Endpoint:       cfg.MinIOEndpoint,
		PublicEndpoint: cfg.MinIOPublicEndpoint,
		AccessKey:      cfg.MinIOAccessKey,
		SecretKey:      cfg.MinIOSecretKey,
		Bucket:         cfg.MinIOBucket,
		Region:         cfg.MinIORegion,
		UseTLS:         cfg.MinIOUseTLS,
	})
	if err != nil {
		return nil, err
	}
	if err := objects.EnsureBucket(ctx); err != nil {
		return nil, fmt.Errorf("MinIO at MINIO_ENDPOINT=%s: %w", cfg.MinIOEndpoint, err)
	}
	pool, err := postgres.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	if err := postgres.Migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	store := postgres.NewStore(pool, cfg.QuotaDefaultBytes)
	docs := document.NewService(store, objects, document.Config{
		MaxUploadBytes: cfg.MaxUploadBytes,
		UploadURLTTL:   cfg.UploadURLTTL,
		DownloadURLTTL: cfg.DownloadURLTTL,
	})
	checks := []Check{{Name: "postgres", Ping: store.Ping}, {Name: "minio", Ping: objects.Ping}}
	return &Server{pool: pool, handler: Handler(docs, verifier, checks, log), log: log}, nil
}

// Handler returns the server's routes.
func (s *Server) Handler() http.Handler { return s.handler }

// Close releases the database pool.
func (s *Server) Close() { s.pool.Close() }

// shutdownGrace bounds how long in-flight requests may finish after ctx ends.
const shutdownGrace = 15 * time.Second

// Serve answers requests on ln until ctx ends, then shuts down gracefully.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return s.log.WithContext(context.Background()) },
	}
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
