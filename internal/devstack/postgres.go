package devstack

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
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/rs/zerolog"
)

// pgBinGlob matches the bin directories of Debian's PostgreSQL packages.
const pgBinGlob = "/usr/lib/postgresql/*/bin"

// pgServiceUser is who runs the PostgreSQL binaries when this process is
// root: initdb and postgres refuse to run as root.
const pgServiceUser = "postgres"

// PostgresOptions configures a local PostgreSQL cluster.
type PostgresOptions struct {
	// Dir is the cluster's directory: the cluster itself goes in Dir/data,
	// the server's socket in Dir/run and its log in Dir/postgres.log.
	Dir string
	// Port is the TCP port the server listens on at 127.0.0.1.
	Port int
	// Database is created when missing; "docuvault" if empty.
	Database string
	// Log receives progress messages.
	Log zerolog.Logger

	// Settings are more server settings, as name=value, each passed to
	// the server with -c, such as "fsync=off" for a throwaway cluster.
	Settings []string
	// StopMode is the pg_ctl stop mode of Stop: "fast" if empty. A cluster
	// about to be deleted may take "immediate", which skips the shutdown
	// checkpoint.
	StopMode string
}

// Postgres is a local PostgreSQL cluster started with pg_ctl; it keeps
// running until Stop, even if this process dies.
type Postgres struct {
	// URL connects to Database as the superuser postgres (trust
	// authentication, no password).
	URL string
	// Created reports whether this start made the cluster with initdb.
	Created bool

	c       *pgCluster
	stopped bool // by Stop; Restart starts it again
}

// StartPostgres makes the cluster in opts.Dir with initdb if it does not
// exist yet, stops a server of that cluster left running by an earlier
// process, starts it on 127.0.0.1:opts.Port, waits until it accepts
// connections and creates opts.Database if missing.
func StartPostgres(ctx context.Context, opts PostgresOptions) (*Postgres, error) {
	c, err := newPGCluster(opts)
	if err != nil {
		return nil, err
	}
	if err := c.stopLeftover(); err != nil {
		return nil, err
	}
	return c.start(ctx)
}

// Stop stops the server with pg_ctl stop -m fast (sessions are ended,
// the data is checkpointed), or in PostgresOptions.StopMode, and waits
// until it has exited. Stop does nothing the second time, until Restart.
// Stop and Restart are not safe for concurrent use.
func (p *Postgres) Stop() error {
	if p == nil || p.c == nil || p.stopped {
		return nil
	}
	p.stopped = true
	return p.c.stop()
}

// Restart starts the server that Stop stopped again, on the same port and
// data directory, and waits until it accepts connections; clients
// reconnect to the same URL. Restart does nothing while the server runs.
func (p *Postgres) Restart() error {
	if p == nil || p.c == nil {
		return errors.New("restart of a PostgreSQL server that was never started")
	}
	if !p.stopped {
		return nil
	}
	if err := p.c.startServer(); err != nil {
		// pg_ctl may have given up on a server that starts later: stop it
		// rather than leave it running after this process.
		_ = p.c.stop()
		return err
	}
	p.stopped = false
	return nil
}

// pgCluster is a PostgreSQL cluster directory and how to run its binaries.
type pgCluster struct {
	opts    PostgresOptions
	data    string // the cluster (PGDATA)
	sockets string // unix_socket_directories
	logPath string
	binDir  string
	runAs   string // user to run the binaries as; "" for the current user
	runuser string // path of runuser, set with runAs
}

// newPGCluster prepares opts.Dir, finds the binaries and, as root, hands
// the directory to the postgres user. It starts nothing.
func newPGCluster(opts PostgresOptions) (*pgCluster, error) {
	if opts.Database == "" {
		opts.Database = "docuvault"
	}
	if opts.StopMode == "" {
		opts.StopMode = "fast"
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	opts.Dir = dir
	c := &pgCluster{
		opts:    opts,
		data:    filepath.Join(dir, "data"),
		sockets: filepath.Join(dir, "run"),
		logPath: filepath.Join(dir, "postgres.log"),
	}
	// The socket path has a hard limit of 107 bytes.
	if sock := filepath.Join(c.sockets, ".s.PGSQL."+strconv.Itoa(opts.Port)); len(sock) > 100 {
		return nil, fmt.Errorf("PostgreSQL socket path %s is too long for a unix socket: choose a shorter --data-dir", sock)
	}
	version := ""
	if b, err := os.ReadFile(filepath.Join(c.data, "PG_VERSION")); err == nil {
		version = strings.TrimSpace(string(b))
	}
	if c.binDir, err = findPGBinDir(pgBinGlob, version); err != nil {
		return nil, err
	}
	for _, d := range []string{dir, c.sockets} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	if os.Geteuid() == 0 {
		if err := c.useServiceUser(pgServiceUser); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// findPGBinDir returns the directory holding initdb and pg_ctl: that of
// the given major version if it is installed (an existing cluster needs
// its own), else that of the highest version matching glob, else the
// directory of the initdb in PATH.
func findPGBinDir(glob, version string) (string, error) {
	dirs, _ := filepath.Glob(glob) // the only error is a malformed pattern
	slices.SortFunc(dirs, func(a, b string) int {
		return -compareVersions(filepath.Base(filepath.Dir(a)), filepath.Base(filepath.Dir(b)))
	})
	if version != "" {
		for i, d := range dirs {
			if filepath.Base(filepath.Dir(d)) == version {
				dirs = append([]string{d}, slices.Delete(dirs, i, i+1)...)
				break
			}
		}
	}
	if initdb, err := exec.LookPath("initdb"); err == nil {
		dirs = append(dirs, filepath.Dir(initdb))
	}
	for _, dir := range dirs {
		if IsExecutable(filepath.Join(dir, "initdb")) && IsExecutable(filepath.Join(dir, "pg_ctl")) {
			return dir, nil
		}
	}
	return "", errors.New("PostgreSQL server binaries (initdb, pg_ctl) not found in " + glob + " or PATH: apt-get install postgresql, or set DATABASE_URL")
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

// useServiceUser makes the cluster's binaries run as the named user and
// hands the cluster directory over to it.
func (c *pgCluster) useServiceUser(name string) error {
	u, err := user.Lookup(name)
	if err != nil {
		return fmt.Errorf("initdb refuses to run as root and user %q cannot be looked up (%v): apt-get install postgresql (creates it), or set DATABASE_URL", name, err)
	}
	runuser, err := lookPathOrSbin("runuser")
	if err != nil {
		return fmt.Errorf("running PostgreSQL as %q from root needs runuser: apt-get install util-linux, or set DATABASE_URL", name)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := reachable(filepath.Dir(c.opts.Dir), name, uid, gid); err != nil {
		return err
	}
	for _, d := range []string{c.opts.Dir, c.sockets} {
		if err := os.Chown(d, uid, gid); err != nil {
			return err
		}
	}
	c.runAs, c.runuser = name, runuser
	return nil
}

// reachable fails unless the user uid (of group gid) may enter dir and
// every directory above it.
func reachable(dir, name string, uid, gid int) error {
	for {
		fi, err := os.Stat(dir)
		if err != nil {
			return err
		}
		perm := fi.Mode().Perm()
		ok := perm&0o001 != 0
		if st, isUnix := fi.Sys().(*syscall.Stat_t); isUnix {
			ok = ok || (int(st.Uid) == uid && perm&0o100 != 0) || (int(st.Gid) == gid && perm&0o010 != 0)
		}
		if !ok {
			return fmt.Errorf("PostgreSQL runs as user %s, which cannot enter %s (mode %v): chmod o+x %s, or choose another --data-dir", name, dir, perm, dir)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return nil
		}
		dir = parent
	}
}

// lookPathOrSbin finds the named program in PATH or, as PATH often lacks
// them, in /usr/sbin and /sbin.
func lookPathOrSbin(name string) (string, error) {
	path, err := exec.LookPath(name)
	if err == nil {
		return path, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		if p := filepath.Join(dir, name); IsExecutable(p) {
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
	cmd.Dir = c.opts.Dir // the working directory may be unreadable for c.runAs
	return cmd
}

// exists reports whether initdb has made the cluster.
func (c *pgCluster) exists() bool {
	_, err := os.Stat(filepath.Join(c.data, "PG_VERSION"))
	return err == nil
}

// stopLeftover stops a server of this cluster that an earlier process
// started and never stopped (it was killed): it holds the port and the
// data directory.
func (c *pgCluster) stopLeftover() error {
	if !c.exists() {
		return nil
	}
	// pg_ctl status exits 0 while a server runs on the directory.
	if err := c.command("pg_ctl", "-D", c.data, "status").Run(); err != nil {
		return nil
	}
	c.opts.Log.Warn().Str("dir", c.data).Msg("stopping the PostgreSQL server an earlier run left running")
	return c.stop()
}

// start makes the cluster if needed, starts the server and creates the
// database.
func (c *pgCluster) start(ctx context.Context) (*Postgres, error) {
	p := &Postgres{c: c}
	if !c.exists() {
		// A data directory without PG_VERSION is what an initdb killed
		// half-way leaves; it holds nothing worth keeping.
		if err := os.RemoveAll(c.data); err != nil {
			return nil, err
		}
		// --no-sync: a crash in the next seconds would only cost this
		// fresh, empty cluster; it saves seconds on every first start.
		out, err := c.command("initdb", "-D", c.data, "-A", "trust", "-U", "postgres",
			"-E", "UTF8", "--locale=C", "--no-sync").CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("initdb in %s failed: %v\n%s", c.data, err, out)
		}
		p.Created = true
	}
	if err := c.startServer(); err != nil {
		return nil, err
	}
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User("postgres"),
		Host:     fmt.Sprintf("127.0.0.1:%d", c.opts.Port),
		Path:     "/postgres",
		RawQuery: "sslmode=disable",
	}
	if err := createDatabase(ctx, u.String(), c.opts.Database); err != nil {
		return nil, errors.Join(err, c.stop())
	}
	u.Path = "/" + c.opts.Database
	p.URL = u.String()
	return p, nil
}

// startServer starts the server of the existing cluster with pg_ctl and
// waits until it accepts connections.
func (c *pgCluster) startServer() error {
	// pg_ctl hands -o to a shell: quote the path and the settings.
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1", c.opts.Port, shellQuote(c.sockets))
	for _, setting := range c.opts.Settings {
		opts += " -c " + shellQuote(setting)
	}
	out, err := c.command("pg_ctl", "-D", c.data, "-l", c.logPath, "-w", "-t", "60", "-o", opts, "start").CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl start of %s on 127.0.0.1:%d failed: %v\n%s\n%s (last lines):\n%s",
			c.data, c.opts.Port, err, bytesTrim(out), c.logPath, logTail(c.logPath, 20))
	}
	return nil
}

// stop stops the server in c.opts.StopMode: with "fast", ending sessions
// and checkpointing.
func (c *pgCluster) stop() error {
	out, err := c.command("pg_ctl", "-D", c.data, "-m", c.opts.StopMode, "-w", "-t", "60", "stop").CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl stop of %s: %v\n%s", c.data, err, bytesTrim(out))
	}
	return nil
}

// createDatabase creates the database name on the server at admin unless
// it exists.
func createDatabase(ctx context.Context, admin, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return fmt.Errorf("connect to the local PostgreSQL: %w", err)
	}
	defer conn.Close(context.Background())
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("look up database %s: %w", name, err)
	}
	if exists {
		return nil
	}
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// bytesTrim returns b as a string without surrounding white space.
func bytesTrim(b []byte) string { return strings.TrimSpace(string(b)) }
