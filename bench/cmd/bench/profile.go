package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"
)

// profResult is a CPU profile of the in-process services under one load.
type profResult struct {
	name, what string
	path       string
	st         runStats
	header     string // pprof's summary lines
	flat, cum  string // pprof -top of the server side (client goroutines excluded)
	clientPct  string // the share of samples in client goroutines
	serverPct  string // the share of the others
}

// profiles takes CPU profiles of this process while it serves two loads:
// workload 1's DocuVault flow at 64 KiB (the path furthest from its goal)
// and confirm alone (workload 3). The load's goroutines carry the pprof
// label side=client; the tables leave them out (-tagignore side=client), so
// what is left is the api, the confirmer and the outbox relays, i.e. the
// server side, including the client libraries they call (pgx, minio-go,
// nats.go).
func profiles(ctx context.Context, s *stack, p plan, dir string) ([]*profResult, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var out []*profResult

	data := payload(64 << 10)
	r, err := profile(ctx, dir, "upload-64KiB", fmt.Sprintf("DocuVault flow (upload-url + PUT + confirm), 64 KiB, %d clients, %s", p.tpClients, p.profDuration), func() runStats {
		return run(ctx, p.tpClients, 0, p.profDuration, s.uploadOp(sysDocuVault, s.apiURL, data, s.tokens))
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
	r, err = profile(ctx, dir, "confirm", fmt.Sprintf("confirm alone, %d clients, %d distinct users, %d confirms", c.clients, c.clients, c.clients*p.profConfirmsPer), func() runStats {
		return s.runConfirms(ctx, s.apiURL, c)
	})
	if err != nil {
		return out, err
	}
	out = append(out, r)
	return out, s.wipeDocuments(ctx)
}

func profile(ctx context.Context, dir, name, what string, load func() runStats) (*profResult, error) {
	r := &profResult{name: name, what: what, path: filepath.Join(dir, name+".pprof")}
	f, err := os.Create(r.path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	r.st = load()
	pprof.StopCPUProfile()
	if err := f.Close(); err != nil {
		return nil, err
	}
	logf("  %s: %.0f ops/s, errors %d, profile %s", name, r.st.perSec(), r.st.errs, r.path)

	top := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, "go", append(append([]string{"tool", "pprof"}, args...), r.path)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("go tool pprof %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out), nil
	}
	flat, err := top("-top", "-nodecount=25", "-tagignore=side=client")
	if err != nil {
		return r, err
	}
	cum, err := top("-top", "-cum", "-nodecount=25", "-tagignore=side=client")
	if err != nil {
		return r, err
	}
	// Every node, so that "Showing nodes accounting for" is the whole share.
	client, err := top("-top", "-nodecount=1000000", "-nodefraction=0", "-edgefraction=0", "-tagfocus=side=client")
	if err != nil {
		return r, err
	}
	server, err := top("-top", "-nodecount=1000000", "-nodefraction=0", "-edgefraction=0", "-tagignore=side=client")
	if err != nil {
		return r, err
	}
	r.header, r.flat = splitTop(flat)
	_, r.cum = splitTop(cum)
	r.clientPct = showing(client)
	r.serverPct = showing(server)
	return r, nil
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

// showing returns the "Showing nodes accounting for …" line's share.
func showing(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "Showing nodes accounting for") {
			return strings.TrimSpace(l)
		}
	}
	return ""
}
