package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	root "github.com/docuvault/docuvault/services/docuvault/stack"
)

// profResult is CPU profiles of the service processes under one load.
type profResult struct {
	name, what string
	seconds    int // each profile's length, from the start of the load
	st         runStats
	procs      []procProfile
}

// procProfile is one child's CPU profile.
type procProfile struct {
	proc      string // "api", "confirmer"
	path      string
	header    string // pprof's summary lines
	flat, cum string // pprof -top
}

// profiles takes CPU profiles of the api and confirmer children (from
// their PPROF_ADDR, /debug/pprof/profile, both at once) while they serve
// two loads: workload 1's DocuVault flow at 64 KiB (the path furthest from
// its goal) and confirm alone (workload 3). Each process's profile holds
// that process only: the load clients run in the harness, not there.
func profiles(ctx context.Context, s *stack, p plan, dir string) ([]*profResult, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var out []*profResult
	secs := int(math.Ceil(p.profDuration.Seconds()))

	data := payload(64 << 10)
	r, err := s.profile(ctx, dir, "upload-64KiB", fmt.Sprintf("DocuVault flow (upload-url + PUT + confirm), 64 KiB, %d clients, %d s", p.tpClients, secs), secs, s.api, func() runStats {
		return run(ctx, p.tpClients, 0, time.Duration(secs)*time.Second, s.uploadOp(sysDocuVault, s.apiURL, data, s.tokens))
	})
	if err != nil {
		return out, err
	}
	out = append(out, r)
	if _, err := s.waitIdle(ctx, 0, 30*time.Second); err != nil {
		logf("  %v", err)
	}
	if err := s.wipeDocuments(ctx); err != nil {
		return out, err
	}

	c := &ctlCase{op: "confirm", clients: 32}
	if err := s.prepareConfirms(ctx, c, p.profConfirmsPer); err != nil {
		return out, err
	}
	// As workload 3's confirms, to an api child that does not wait for
	// the notification door (off here): the default one would wait the
	// whole CONFIRM_WAIT per confirm, and its profile show idle waiting.
	nowait, err := s.startDocuVault(ctx, root.API, "api-profile-nowait", noConfirmWait(nil))
	if err != nil {
		return out, err
	}
	defer nowait.stop()
	r, err = s.profile(ctx, dir, "confirm", fmt.Sprintf("confirm alone, %d clients, %d distinct users, %d confirms", c.clients, c.clients, c.clients*p.profConfirmsPer), secs, nowait, func() runStats {
		return s.runConfirms(ctx, nowait.url, c)
	})
	if err != nil {
		return out, err
	}
	out = append(out, r)
	return out, s.wipeDocuments(ctx)
}

// profile asks api (an api child) and the confirmer child for secs-second
// CPU profiles and runs load meanwhile, then tabulates each profile.
func (s *stack) profile(ctx context.Context, dir, name, what string, secs int, api *child, load func() runStats) (*profResult, error) {
	r := &profResult{name: name, what: what, seconds: secs}
	children := []*child{api, s.confirmer}
	errs := make([]error, len(children))
	var wg sync.WaitGroup
	for i, c := range children {
		pp := procProfile{proc: c.name, path: filepath.Join(dir, name+"-"+c.name+".pprof")}
		r.procs = append(r.procs, pp)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.fetchProfile(ctx, c.pprofURL, secs, pp.path)
		}()
	}
	// The profiles start when their requests arrive: give them a moment.
	time.Sleep(100 * time.Millisecond)
	r.st = load()
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return r, err
	}
	logf("  %s: %.0f ops/s, errors %d, profiles %s", name, r.st.perSec(), r.st.errs, filepath.Join(dir, name+"-*.pprof"))

	for i := range r.procs {
		pp := &r.procs[i]
		top := func(args ...string) (string, error) {
			cmd := exec.CommandContext(ctx, "go", append(append([]string{"tool", "pprof"}, args...), s.bin, pp.path)...)
			out, err := cmd.CombinedOutput()
			if err != nil {
				return "", fmt.Errorf("go tool pprof %s %s: %v\n%s", strings.Join(args, " "), pp.path, err, out)
			}
			return string(out), nil
		}
		flat, err := top("-top", "-nodecount=25")
		if err != nil {
			return r, err
		}
		cum, err := top("-top", "-cum", "-nodecount=25")
		if err != nil {
			return r, err
		}
		pp.header, pp.flat = splitTop(flat)
		_, pp.cum = splitTop(cum)
	}
	return r, nil
}

// fetchProfile saves the CPU profile of secs seconds that base's
// /debug/pprof/profile answers into path.
func (s *stack) fetchProfile(ctx context.Context, base string, secs int, path string) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", base, secs), nil)
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: %s %s", req.URL, resp.Status, b)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// splitTop separates pprof -top's summary lines from its table.
func splitTop(out string) (header, table string) {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	for i, l := range lines {
		if strings.Contains(l, "flat%") {
			return strings.Join(lines[:i], "\n"), strings.Join(lines[i:], "\n")
		}
	}
	return "", out
}
