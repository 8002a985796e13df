package testenv

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// pgBinGlob matches the bin directories of Debian's PostgreSQL packages.
const pgBinGlob = "/usr/lib/postgresql/*/bin"

// errNoPGBinaries is the failure when no PostgreSQL server is installed.
var errNoPGBinaries = errors.New("PostgreSQL server binaries not found: apt-get install postgresql (or set DATABASE_URL)")

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

// pgCluster is a PostgreSQL cluster in a temporary directory.
type pgCluster struct {
	dir     string // removed when the cluster stops
	binDir  string
	runAs   string // user to run the server binaries as; "" for the current user
	runuser string // path of runuser, set with runAs
}

// startCluster initializes and starts a throwaway cluster, registers its
// shutdown with Main and returns its admin connection URL.
func startCluster() (*url.URL, error) {
	binDir, err := findPGBinDir(pgBinGlob)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "testenv-pg-")
	if err != nil {
		return nil, fmt.Errorf("testenv: %w", err)
	}
	c := &pgCluster{dir: dir, binDir: binDir}
	u, err := c.start()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	registerStop("PostgreSQL cluster "+u.Host, c.stop)
	return u, nil
}

// findPGBinDir returns the directory holding initdb and pg_ctl: the bin
// directory of the highest PostgreSQL version matching glob or, failing
// that, the directory of the initdb found in PATH.
func findPGBinDir(glob string) (string, error) {
	dirs, _ := filepath.Glob(glob) // the only error is a malformed pattern
	slices.SortFunc(dirs, func(a, b string) int {
		return -compareVersions(filepath.Base(filepath.Dir(a)), filepath.Base(filepath.Dir(b)))
	})
	if initdb, err := exec.LookPath("initdb"); err == nil {
		dirs = append(dirs, filepath.Dir(initdb))
	}
	for _, dir := range dirs {
		if isExecutable(filepath.Join(dir, "initdb")) && isExecutable(filepath.Join(dir, "pg_ctl")) {
			return dir, nil
		}
	}
	return "", fmt.Errorf("testenv: %w", errNoPGBinaries)
}

// compareVersions compares dotted version numbers such as "9.6" and "16".
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := range max(len(as), len(bs)) {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if c := cmp.Compare(x, y); c != 0 {
			return c
		}
	}
	return 0
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// start runs initdb and pg_ctl start, on another free port if the first
// one turns out to be taken.
func (c *pgCluster) start() (*url.URL, error) {
	if os.Geteuid() == 0 {
		// initdb and postgres refuse to run as root.
		if err := c.useServiceUser("postgres"); err != nil {
			return nil, err
		}
	}
	data := filepath.Join(c.dir, "data")
	logFile := filepath.Join(c.dir, "postgres.log")
	if out, err := c.command("initdb", "-A", "trust", "-U", "postgres", "--no-sync",
		"-E", "UTF8", "--locale=C", "-D", data).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("testenv: initdb in %s failed: %v\n%s", data, err, out)
	}

	var err error
	for range 3 {
		var ports []int
		if ports, err = freePorts(1); err != nil {
			return nil, fmt.Errorf("testenv: %w", err)
		}
		opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off"+
			" -c synchronous_commit=off -c full_page_writes=off -c max_connections=300", ports[0], c.dir)
		out, startErr := c.command("pg_ctl", "-D", data, "-l", logFile, "-w", "-t", "60", "-o", opts, "start").CombinedOutput()
		if startErr == nil {
			return &url.URL{
				Scheme:   "postgres",
				User:     url.User("postgres"),
				Host:     fmt.Sprintf("127.0.0.1:%d", ports[0]),
				Path:     "/postgres",
				RawQuery: "sslmode=disable",
			}, nil
		}
		tail := logTail(logFile, 20)
		err = fmt.Errorf("testenv: pg_ctl start failed: %v\n%s\n%s (last lines):\n%s", startErr, out, logFile, tail)
		if !strings.Contains(tail, "could not bind") && !strings.Contains(tail, "already in use") {
			break
		}
	}
	return nil, err
}

// useServiceUser makes the cluster's binaries run as the named user and
// hands the cluster directory over to it.
func (c *pgCluster) useServiceUser(name string) error {
	u, err := user.Lookup(name)
	if err != nil {
		return fmt.Errorf("testenv: initdb refuses to run as root and user %q cannot be looked up (%v): apt-get install postgresql (creates it), or set DATABASE_URL", name, err)
	}
	runuser, err := lookPathOrSbin("runuser")
	if err != nil {
		return fmt.Errorf("testenv: running PostgreSQL as %q from root needs runuser: apt-get install util-linux, or set DATABASE_URL", name)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(c.dir, uid, gid); err != nil {
		return fmt.Errorf("testenv: %w", err)
	}
	c.runAs, c.runuser = name, runuser
	return nil
}

// lookPathOrSbin finds the named program in PATH or, as PATH often lacks
// them, in /usr/sbin and /sbin.
func lookPathOrSbin(name string) (string, error) {
	path, err := exec.LookPath(name)
	if err == nil {
		return path, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		if p := filepath.Join(dir, name); isExecutable(p) {
			return p, nil
		}
	}
	return "", err
}

// command returns a command running the named PostgreSQL binary as c.runAs
// in the cluster directory.
func (c *pgCluster) command(name string, args ...string) *exec.Cmd {
	path := filepath.Join(c.binDir, name)
	var cmd *exec.Cmd
	if c.runAs != "" {
		cmd = exec.Command(c.runuser, append([]string{"-u", c.runAs, "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = c.dir // the working directory may be unreadable for c.runAs
	return cmd
}

// stop stops the cluster without a checkpoint and removes its directory.
func (c *pgCluster) stop() error {
	out, err := c.command("pg_ctl", "-D", filepath.Join(c.dir, "data"), "-m", "immediate", "stop").CombinedOutput()
	if err != nil {
		err = fmt.Errorf("pg_ctl stop: %v\n%s", err, out)
	}
	return errors.Join(err, os.RemoveAll(c.dir))
}
