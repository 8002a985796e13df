package devstack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/docuvault/docuvault/shared/clamav"
)

const (
	clamdReadyAfter = 60 * time.Second // how long clamd may take to load its signatures
	clamdStopGrace  = 5 * time.Second
)

// ClamdPaths are where Debian's packages put what a local clamd needs:
// the daemon (clamav-daemon), sigtool (clamav) and the samples the test
// signature database is made of (clamav-testfiles).
var ClamdPaths = struct{ Clamd, Sigtool, TestFiles string }{"/usr/sbin/clamd", "/usr/bin/sigtool", "/usr/share/clamav-testfiles"}

// DefaultClamdAddr is where the dev stack's clamd listens.
const DefaultClamdAddr = "127.0.0.1:3310"

// ClamdInstall is the command that installs them on Debian.
const ClamdInstall = "apt-get install clamav clamav-daemon clamav-testfiles"

// EICAR is the antivirus test file every scanner knows (eicar.org): 68
// bytes of printable text, harmless, found by every signature database.
const EICAR = `X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*`

// TestSignatureSamples are the clamav-testfiles samples whose MD5s the
// local signature database holds (with EICAR): clamd finds them, and
// finds them inside archives (clam.zip, clam.7z, … hold clam.exe).
var TestSignatureSamples = []string{"clam.exe", "clam.pdf", "clam.ole.doc"}

// ClamdOptions configures a clamd run as a child process.
type ClamdOptions struct {
	// Dir holds its configuration, signature database, temporary files
	// and log (clamd.log).
	Dir string
	// Addr is the TCP address it listens on, host:port.
	Addr string
	// StreamMaxLength is the longest INSTREAM it scans (clamd answers
	// "INSTREAM size limit exceeded" past it); 0 means 25 MiB, as
	// Debian's clamd.conf has it.
	StreamMaxLength int64
}

// Clamd is a clamd running as a child process, offline: its signature
// database is made locally by sigtool from EICAR and TestSignatureSamples
// (freshclam cannot download signatures here; production's clamd keeps
// the real database current with freshclam). It is killed if this
// process dies without stopping it.
type Clamd struct {
	Addr    string // host:port
	LogPath string

	proc *process
}

// HaveClamd reports whether clamd, sigtool and the test samples are
// installed, and if not, says what to install.
func HaveClamd() error {
	for _, p := range []string{ClamdPaths.Clamd, ClamdPaths.Sigtool, ClamdPaths.TestFiles} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("clamd needs %s, missing: %s (as root; make test's .ci/prepare does)", p, ClamdInstall)
		}
	}
	return nil
}

// StartClamd writes clamd's configuration and signature database into
// opts.Dir, starts it and waits until it answers PING (its signatures
// loaded), it exits or ctx ends.
func StartClamd(ctx context.Context, opts ClamdOptions) (*Clamd, error) {
	if err := HaveClamd(); err != nil {
		return nil, err
	}
	host, port, err := splitAddr(opts.Addr, "clamd address")
	if err != nil {
		return nil, err
	}
	db, tmp := filepath.Join(opts.Dir, "db"), filepath.Join(opts.Dir, "tmp")
	for _, d := range []string{db, tmp} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	if err := writeTestSignatures(db, opts.Dir); err != nil {
		return nil, err
	}
	maxLen := opts.StreamMaxLength
	if maxLen <= 0 {
		maxLen = 25 << 20
	}
	c := &Clamd{Addr: fmt.Sprintf("%s:%d", dialHost(host), port), LogPath: filepath.Join(opts.Dir, "clamd.log")}
	conf := filepath.Join(opts.Dir, "clamd.conf")
	lines := []string{
		"Foreground yes",
		"TCPSocket " + fmt.Sprint(port),
		"TCPAddr " + host,
		"DatabaseDirectory " + db,
		"TemporaryDirectory " + tmp,
		"LogFile " + c.LogPath,
		fmt.Sprintf("StreamMaxLength %d", maxLen),
		// What clamd cannot scan whole is said, never passed as OK:
		// AlertExceedsMax reports an archive over its limits as
		// Heuristics.Limits.Exceeded.*. MaxFileSize is MaxScanSize:
		// with a smaller MaxFileSize, a compressed archive member over it
		// is scanned only in part and answered OK (tried on clamd 1.4.6).
		"AlertExceedsMax yes",
		fmt.Sprintf("MaxScanSize %d", max(4*maxLen, 400<<20)),
		fmt.Sprintf("MaxFileSize %d", max(4*maxLen, 400<<20)),
		"MaxThreads 4",
		"ReadTimeout 30",
		"SelfCheck 0", // the database never changes here
	}
	if err := os.WriteFile(conf, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command(ClamdPaths.Clamd, "--config-file="+conf)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + opts.Dir}
	out, err := os.OpenFile(filepath.Join(opts.Dir, "clamd.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = out, out
	p, err := startProcess(cmd)
	out.Close()
	if err != nil {
		return nil, fmt.Errorf("start clamd: %w", err)
	}
	client := clamav.Client{Network: "tcp", Address: c.Addr, Timeout: 2 * time.Second}
	deadline := time.Now().Add(clamdReadyAfter)
	for {
		err := client.Ping(ctx)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			err = fmt.Errorf("not ready after %v: %w", clamdReadyAfter, err)
		} else {
			select {
			case <-p.exited:
				err = fmt.Errorf("%w: %v", ErrExited, p.err)
			case <-ctx.Done():
				err = errors.Join(errors.New("interrupted while starting"), ctx.Err())
			case <-time.After(50 * time.Millisecond):
				continue
			}
		}
		p.stop(clamdStopGrace)
		return nil, fmt.Errorf("clamd on %s: %w\n%s (last lines):\n%s", opts.Addr, err, c.LogPath, logTail(filepath.Join(opts.Dir, "clamd.out"), 20))
	}
	c.proc = p
	return c, nil
}

// writeTestSignatures writes db/local.hdb: the MD5 signatures sigtool
// makes of EICAR (written to dir/eicar.com) and TestSignatureSamples.
func writeTestSignatures(db, dir string) error {
	eicar := filepath.Join(dir, "eicar.com")
	if err := os.WriteFile(eicar, []byte(EICAR), 0o600); err != nil {
		return err
	}
	args := []string{"--md5", eicar}
	for _, s := range TestSignatureSamples {
		args = append(args, filepath.Join(ClamdPaths.TestFiles, s))
	}
	sigs, err := exec.Command(ClamdPaths.Sigtool, args...).Output()
	if err != nil {
		return fmt.Errorf("make the test signatures (sigtool --md5): %w", err)
	}
	return os.WriteFile(filepath.Join(db, "local.hdb"), sigs, 0o600)
}

// Stop stops clamd with SIGTERM, then SIGKILL after 5 s, and waits for
// it to exit. Stop does nothing the second time.
func (c *Clamd) Stop() {
	if c == nil || c.proc == nil {
		return
	}
	c.proc.stop(clamdStopGrace)
	c.proc = nil
}
