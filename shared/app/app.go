// Package app opens what every DocuVault service needs — PostgreSQL (with
// migrations), the object store, NATS JetStream (with the streams) — from a
// config.Config, and wires the document use cases over them. Setup prepares
// what the services may not create themselves.
package app

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/shared/config"
	"github.com/docuvault/docuvault/shared/document"
	"github.com/docuvault/docuvault/shared/events"
	"github.com/docuvault/docuvault/shared/metrics"
	"github.com/docuvault/docuvault/shared/objectstore"
	"github.com/docuvault/docuvault/shared/postgres"
)

// App is a service's open connections and the use cases over them.
type App struct {
	Config  config.Config
	Log     zerolog.Logger
	Pool    *pgxpool.Pool
	Store   *postgres.Store
	Objects *objectstore.Store
	Docs    *document.Service
	NATS    *nats.Conn
	JS      jetstream.JetStream
	Metrics *metrics.Metrics
}

// Open validates cfg, connects to everything, applies migrations, checks
// that the bucket exists (Setup makes it) and makes sure the streams do.
// service names the NATS client.
func Open(ctx context.Context, cfg config.Config, log zerolog.Logger, service string) (a *App, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	a = &App{Config: cfg, Log: log}
	if a.Metrics, err = metrics.Default(); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	a.Objects, err = objectstore.New(ObjectStoreConfig(cfg))
	if err != nil {
		return nil, err
	}
	if err := a.Objects.CheckBucket(ctx); err != nil {
		return nil, fmt.Errorf("MinIO at MINIO_ENDPOINT=%s: %w", cfg.MinIOEndpoint, err)
	}
	a.Pool, err = postgres.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	if err := postgres.Migrate(ctx, a.Pool); err != nil {
		return nil, err
	}
	a.Store = postgres.NewStore(a.Pool, cfg.QuotaDefaultBytes)
	a.NATS, a.JS, err = events.Connect(events.ConnectConfig{URL: cfg.NATSURL, User: cfg.NATSUser, Password: cfg.NATSPassword, Name: "docuvault-" + service}, log)
	if err != nil {
		return nil, err
	}
	if err := events.EnsureStreams(ctx, a.JS, events.StreamLimits{
		MinIOMaxBytes: cfg.NATSMinIOEventsMaxBytes, MinIOMaxAge: cfg.NATSMinIOEventsMaxAge,
		DocumentsMaxBytes: cfg.NATSDocumentsMaxBytes, DocumentsMaxAge: cfg.NATSDocumentsMaxAge,
	}); err != nil {
		return nil, err
	}
	store := a.Store
	metrics.OutboxWaiting(prometheus.DefaultRegisterer, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		n, _ := store.OutboxWaiting(ctx)
		return float64(n)
	})
	a.Docs = document.NewService(a.Store, a.Objects, document.Config{
		MaxUploadBytes:      cfg.MaxUploadBytes,
		UploadsPerMinute:    int(cfg.UploadsPerMinute),
		MaxPendingUploads:   int(cfg.MaxPendingUploads),
		ReclassifyPerMinute: int(cfg.ReclassifyPerMinute),
		UploadURLTTL:        cfg.UploadURLTTL,
		DownloadURLTTL:      cfg.DownloadURLTTL,
	})
	return a, nil
}

// ObjectStoreConfig is the object store cfg describes: its endpoints, its
// bucket and its three identities.
func ObjectStoreConfig(cfg config.Config) objectstore.Config {
	return objectstore.Config{
		Endpoint:       cfg.MinIOEndpoint,
		PublicEndpoint: cfg.MinIOPublicEndpoint,
		Service:        objectstore.Credentials{AccessKey: cfg.MinIOAccessKey, SecretKey: cfg.MinIOSecretKey},
		Upload:         objectstore.Credentials{AccessKey: cfg.MinIOUploadAccessKey, SecretKey: cfg.MinIOUploadSecretKey},
		Download:       objectstore.Credentials{AccessKey: cfg.MinIODownloadAccessKey, SecretKey: cfg.MinIODownloadSecretKey},
		Bucket:         cfg.MinIOBucket,
		Region:         cfg.MinIORegion,
		UseTLS:         cfg.MinIOUseTLS,
	}
}

// Setup prepares what the services need and may not create themselves: it
// applies the database migrations and, as MinIO's admin, creates the
// bucket, the three identities and their policies. It is idempotent; it is
// `docuvault setup`, and dev, the tests and the bench call it before
// opening the roles.
func Setup(ctx context.Context, cfg config.Config) error {
	if err := cfg.ValidateSetup(); err != nil {
		return err
	}
	admin := objectstore.Credentials{AccessKey: cfg.MinIOAdminAccessKey, SecretKey: cfg.MinIOAdminSecretKey}
	if err := objectstore.Provision(ctx, ObjectStoreConfig(cfg), admin); err != nil {
		return fmt.Errorf("MinIO at MINIO_ENDPOINT=%s: %w", cfg.MinIOEndpoint, err)
	}
	pool, err := postgres.Open(ctx, cfg.DatabaseURL)
	if err != nil {
		return fmt.Errorf("DATABASE_URL: %w", err)
	}
	defer pool.Close()
	return postgres.Migrate(ctx, pool)
}

// Relay returns an outbox relay over the app's store and JetStream.
func (a *App) Relay() *events.Relay {
	r := events.NewRelay(a.Store, a.JS, a.Log)
	r.Metrics = a.Metrics
	return r
}

// RunWithRelay runs fn and an outbox relay until ctx ends or fn returns,
// and returns fn's error once both have stopped.
func (a *App) RunWithRelay(ctx context.Context, fn func(context.Context) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	relayDone := make(chan struct{})
	go func() {
		defer close(relayDone)
		_ = a.Relay().Run(ctx)
	}()
	err := fn(ctx)
	cancel()
	<-relayDone
	return err
}

// Service is a running role: it runs until its context ends, then closes.
type Service interface {
	Run(ctx context.Context) error
	Close()
}

// Run opens a role with open, runs it until ctx ends and closes it.
func Run[S Service](ctx context.Context, open func() (S, error)) error {
	s, err := open()
	if err != nil {
		return err
	}
	defer s.Close()
	return s.Run(ctx)
}

// Close releases every connection Open made.
func (a *App) Close() {
	if a.NATS != nil {
		_ = a.NATS.Drain()
	}
	if a.Pool != nil {
		a.Pool.Close()
	}
}
