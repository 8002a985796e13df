package testenv

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/internal/devstack"
	"github.com/docuvault/docuvault/shared/postgres"
)

// cluster is the throwaway PostgreSQL cluster of this process, started on
// first use when DATABASE_URL is unset.
var cluster struct {
	once sync.Once
	url  *url.URL // admin connection URL
	err  error
}

// Postgres returns the connection string, in postgres:// URL form, of a
// fresh, empty database created for this test and dropped, with any
// connections still open to it, when the test and its subtests have
// finished.
//
// The database is created on the server named by DATABASE_URL, connecting
// to it as an administrator, or, when DATABASE_URL is unset, on a throwaway
// cluster that is started once per test process and stopped by Main.
// Postgres is safe to call from parallel tests and from test processes that
// share one DATABASE_URL server.
func Postgres(tb testing.TB) string {
	tb.Helper()
	SkipShort(tb, "a real PostgreSQL server")
	requireMain(tb)

	admin, err := postgresAdminURL(tb)
	if err != nil {
		tb.Fatal(err)
	}
	name := "t_" + randomHex(8)
	ident := pgx.Identifier{name}.Sanitize()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := execAdmin(ctx, admin, "CREATE DATABASE "+ident); err != nil {
		tb.Fatalf("testenv: create database %s on %s: %v", name, admin.Redacted(), err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := execAdmin(ctx, admin, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
			tb.Errorf("testenv: drop database %s on %s: %v", name, admin.Redacted(), err)
		}
	})

	u := *admin
	u.Path = "/" + name
	u.RawPath = ""
	return u.String()
}

// postgresAdminURL returns the URL of the database to connect to for
// creating and dropping test databases.
func postgresAdminURL(tb testing.TB) (*url.URL, error) {
	tb.Helper()
	if dsn := os.Getenv("DATABASE_URL"); dsn != "" {
		u, err := url.Parse(dsn)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			return nil, errors.New("testenv: DATABASE_URL must be a postgres:// URL, such as postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
		}
		return u, nil
	}
	cluster.once.Do(func() {
		start := time.Now()
		cluster.url, cluster.err = startCluster()
		if cluster.err == nil {
			tb.Logf("testenv: started PostgreSQL cluster %s in %v", cluster.url.Host, time.Since(start).Round(time.Millisecond))
		}
	})
	return cluster.url, cluster.err
}

// execAdmin runs sql on a new connection to admin. It retries while the
// template database is in use by another session, which makes CREATE
// DATABASE fail.
func execAdmin(ctx context.Context, admin *url.URL, sql string) error {
	conn, err := pgx.Connect(ctx, admin.String())
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	for delay := 50 * time.Millisecond; ; delay = min(2*delay, time.Second) {
		_, err := conn.Exec(ctx, sql)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "55006" { // object_in_use
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
	}
}

// startCluster initializes and starts a throwaway cluster in a temporary
// directory with devstack, registers its shutdown and removal with Main and
// returns its admin connection URL.
func startCluster() (*url.URL, error) {
	// Durability is worthless in a cluster deleted after the tests.
	pg, dir, err := startThrowaway("fsync=off", "synchronous_commit=off", "full_page_writes=off")
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(pg.URL)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("testenv: %w", err), pg.Stop(), os.RemoveAll(dir))
	}
	registerStop("PostgreSQL cluster "+u.Host, func() error {
		return errors.Join(pg.Stop(), os.RemoveAll(dir))
	})
	return u, nil
}

// startThrowaway initializes and starts a throwaway cluster with the given
// server settings in a new temporary directory with devstack, on another
// free port if the first one turns out to be taken. The caller stops it
// and removes dir.
func startThrowaway(settings ...string) (pg *devstack.Postgres, dir string, err error) {
	dir, err = os.MkdirTemp("", "testenv-pg-")
	if err != nil {
		return nil, "", fmt.Errorf("testenv: %w", err)
	}
	settings = append(slices.Clip(settings), "max_connections=300")
	for range 3 {
		ports, perr := freePorts(1)
		if perr != nil {
			err = perr
			break
		}
		// initdb runs on the first try only; a retry starts the same cluster.
		pg, err = devstack.StartPostgres(context.Background(), devstack.PostgresOptions{
			Dir:      dir,
			Port:     ports[0],
			Database: "postgres", // exists: test databases are made by Postgres
			Log:      zerolog.Nop(),
			Settings: settings,
			StopMode: "immediate",
		})
		if err == nil || !portTaken(err) {
			break
		}
	}
	if err != nil {
		os.RemoveAll(dir)
		return nil, "", fmt.Errorf("testenv: %w", err)
	}
	return pg, dir, nil
}

// PostgresServer is a throwaway PostgreSQL cluster of one test's own, which
// the test may stop and start again, on the same port and data directory,
// to see what its clients do while the database is away.
type PostgresServer struct {
	// URL connects to the postgres database as the superuser.
	URL string

	mu   sync.Mutex // serializes Stop and Start
	pg   *devstack.Postgres
	host string
}

// StartPostgres starts a throwaway PostgreSQL cluster for this test alone
// (never the DATABASE_URL server, which other tests share), stopped and
// removed when the test ends. It fails the test, saying what to install,
// when the PostgreSQL server binaries are missing.
func StartPostgres(tb testing.TB) *PostgresServer {
	tb.Helper()
	SkipShort(tb, "a real PostgreSQL server")
	// A commit must survive Stop, a crash of the server but not of the
	// machine: synchronous_commit stays on (with it off, the last commits
	// acknowledged to clients are lost), while fsync and full-page writes,
	// which only an operating system crash needs, stay off for speed.
	pg, dir, err := startThrowaway("fsync=off", "full_page_writes=off")
	if err != nil {
		tb.Fatalf("testenv: this test stops and starts a PostgreSQL cluster of its own, which needs the server binaries (initdb, pg_ctl; apt-get install postgresql): %v", err)
	}
	u, err := url.Parse(pg.URL)
	if err != nil {
		tb.Fatal(errors.Join(err, pg.Stop(), os.RemoveAll(dir)))
	}
	s := &PostgresServer{URL: pg.URL, pg: pg, host: u.Host}
	tb.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if err := errors.Join(s.pg.Stop(), os.RemoveAll(dir)); err != nil {
			tb.Errorf("testenv: stop PostgreSQL %s: %v", s.host, err)
		}
	})
	return s
}

// Database creates a fresh, empty database on the server and returns its
// connection string; it goes with the cluster when the test ends.
func (s *PostgresServer) Database(tb testing.TB) string {
	tb.Helper()
	admin, err := url.Parse(s.URL)
	if err != nil {
		tb.Fatal(err)
	}
	name := "t_" + randomHex(8)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := execAdmin(ctx, admin, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		tb.Fatalf("testenv: create database %s on %s: %v", name, s.host, err)
	}
	u := *admin
	u.Path = "/" + name
	u.RawPath = ""
	return u.String()
}

// Stop stops the server at once, as a crash would (pg_ctl stop -m
// immediate): every session ends and new connections are refused until
// Start. Stop does nothing if the server is stopped.
func (s *PostgresServer) Stop(tb testing.TB) {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.pg.Stop(); err != nil {
		tb.Fatalf("testenv: stop PostgreSQL %s: %v", s.host, err)
	}
}

// Start starts the server Stop stopped on the same port and data
// directory, after crash recovery, and returns once it accepts
// connections. Start does nothing if the server runs.
func (s *PostgresServer) Start(tb testing.TB) {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.pg.Restart(); err != nil {
		tb.Fatalf("testenv: start PostgreSQL %s again: %v", s.host, err)
	}
}

// portTaken reports whether err, from starting PostgreSQL, says (in the
// server log's last lines) that the port was in use.
func portTaken(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "could not bind") || strings.Contains(msg, "already in use")
}

// MigratedPool returns a pool on a fresh database (see Postgres) with
// DocuVault's migrations applied, closed when the test ends.
func MigratedPool(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	ctx := context.Background()
	pool, err := postgres.Open(ctx, Postgres(tb))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(pool.Close)
	if err := postgres.Migrate(ctx, pool); err != nil {
		tb.Fatal(err)
	}
	return pool
}
