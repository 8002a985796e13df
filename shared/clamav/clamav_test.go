package clamav_test

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docuvault/docuvault/internal/devstack"
	"github.com/docuvault/docuvault/internal/testenv"
	"github.com/docuvault/docuvault/shared/clamav"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// zipOf is a zip archive holding data as name.
func zipOf(t *testing.T, name string, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	f, err := w.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestScanFindsWhatTheSignaturesName streams samples to a real clamd:
// EICAR, EICAR inside a zip and every clamav-testfiles sample are
// infected, each with its signature's name; a clean PDF-like text and
// bytes larger than a chunk are clean.
func TestScanFindsWhatTheSignaturesName(t *testing.T) {
	t.Parallel()
	srv := testenv.StartClamAV(t, 0)
	c := clamav.Client{Network: "tcp", Address: srv.Addr, Timeout: 30 * time.Second}
	ctx := context.Background()
	infected := map[string][]byte{
		"eicar.com":      []byte(devstack.EICAR),
		"eicar in a zip": zipOf(t, "readme.com", []byte(devstack.EICAR)),
	}
	samples, err := os.ReadDir(devstack.ClamdPaths.TestFiles)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range samples {
		data, err := os.ReadFile(filepath.Join(devstack.ClamdPaths.TestFiles, s.Name()))
		if err != nil {
			t.Fatal(err)
		}
		infected[s.Name()] = data
	}
	found := 0
	for name, data := range infected {
		v, err := c.Scan(ctx, bytes.NewReader(data))
		switch {
		case err != nil:
			t.Errorf("%s: %v", name, err)
		case !v.Infected || v.Signature == "":
			t.Logf("%s: clean (no signature of the local database matches it)", name)
		default:
			found++
			t.Logf("%s: %s", name, v.Signature)
		}
		if strings.HasPrefix(name, "eicar") && !v.Infected {
			t.Errorf("%s: %+v, want infected", name, v)
		}
	}
	// The database holds the samples of devstack.TestSignatureSamples;
	// clamd also finds them inside the archives and packers of the set.
	if found < len(samples)/2 {
		t.Errorf("%d of %d samples found infected, want at least half", found, len(samples)+3)
	}
	for name, data := range map[string][]byte{
		"text":           []byte("%PDF-1.4\n% a clean document\n"),
		"over one chunk": bytes.Repeat([]byte("clean bytes "), 20000),
		"empty":          nil,
	} {
		if v, err := c.Scan(ctx, bytes.NewReader(data)); err != nil || v.Infected {
			t.Errorf("%s: %+v, %v; want clean", name, v, err)
		}
	}
}

// TestScanFailsClosed: nothing but clamd's own "OK" is clean. A stream
// over clamd's StreamMaxLength or over MaxBytes is ErrTooLarge; a reader
// that fails mid-stream, a clamd that is down, and a deadline that passes
// are errors, never a verdict.
func TestScanFailsClosed(t *testing.T) {
	t.Parallel()
	srv := testenv.StartClamAV(t, 1<<20)
	ctx := context.Background()
	c := clamav.Client{Network: "tcp", Address: srv.Addr, Timeout: 30 * time.Second}

	big := bytes.Repeat([]byte("x"), 2<<20)
	if v, err := c.Scan(ctx, bytes.NewReader(big)); !errors.Is(err, clamav.ErrTooLarge) {
		t.Errorf("2 MiB to a clamd taking 1 MiB: %+v, %v; want ErrTooLarge", v, err)
	}
	bounded := c
	bounded.MaxBytes = 100 << 10
	if v, err := bounded.Scan(ctx, bytes.NewReader(big[:200<<10])); !errors.Is(err, clamav.ErrTooLarge) {
		t.Errorf("200 KiB with MaxBytes 100 KiB: %+v, %v; want ErrTooLarge", v, err)
	}
	broken := io.MultiReader(bytes.NewReader(big[:100<<10]), iotestErr{})
	if v, err := c.Scan(ctx, broken); err == nil || v.Infected {
		t.Errorf("a reader failing mid-stream: %+v, %v; want an error", v, err)
	}
	slow := clamav.Client{Network: "tcp", Address: srv.Addr, Timeout: 200 * time.Millisecond}
	if v, err := slow.Scan(ctx, stallingReader{}); err == nil {
		t.Errorf("a stream that stalls past the timeout: %+v, want an error", v)
	}

	srv.Stop()
	if v, err := c.Scan(ctx, bytes.NewReader([]byte("clean"))); err == nil {
		t.Errorf("clamd down: %+v, want an error", v)
	}
	if err := c.Ping(ctx); err == nil {
		t.Error("PING with clamd down answered")
	}
	srv.Restart(t)
	if v, err := c.Scan(ctx, bytes.NewReader([]byte(devstack.EICAR))); err != nil || !v.Infected {
		t.Errorf("EICAR after the restart: %+v, %v; want infected", v, err)
	}
}

type iotestErr struct{}

func (iotestErr) Read([]byte) (int, error) { return 0, errors.New("the object store went away") }

// stallingReader gives a byte a second, forever.
type stallingReader struct{}

func (stallingReader) Read(p []byte) (int, error) {
	time.Sleep(300 * time.Millisecond)
	p[0] = 'x'
	return 1, nil
}

// TestScanSaysWhatItCouldNotScanWhole: EICAR nested deeper than clamd
// unpacks (MaxRecursion, 17) is neither infected nor clean: clamd,
// configured with AlertExceedsMax as devstack's is, says its limits were
// exceeded (without it, it answers OK).
func TestScanSaysWhatItCouldNotScanWhole(t *testing.T) {
	t.Parallel()
	srv := testenv.StartClamAV(t, 0)
	c := clamav.Client{Network: "tcp", Address: srv.Addr, Timeout: 30 * time.Second}
	data := []byte(devstack.EICAR)
	for i := range 20 {
		data = zipOf(t, fmt.Sprintf("level%d.zip", i), data)
	}
	v, err := c.Scan(context.Background(), bytes.NewReader(data))
	if err != nil || !v.LimitsExceeded || v.Infected || !strings.HasPrefix(v.Signature, "Heuristics.Limits.Exceeded") {
		t.Fatalf("EICAR 20 zips deep: %+v, %v; want the limits exceeded", v, err)
	}
	t.Logf("EICAR 20 zips deep: %s", v.Signature)
}
