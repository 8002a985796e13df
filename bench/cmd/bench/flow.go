package main

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// flowRun is one repetition of the confirm-flow workload on one stack.
type flowRun struct {
	baseline bool // on the baseline's stack
	rep      int
	lat      []time.Duration // the confirms' latencies, sorted
}

// flowSize is the size of confirm-flow's files, workload 3's and 4's.
const flowSize = 1024

// flowWarmUp is how many uploads on each stack precede the timed ones.
const flowWarmUp = 10

// confirmFlow runs the confirm-flow workload: one client uploads one file
// after another in DocuVault's whole flow (upload-url, PUT, confirm) with
// MinIO's notifications flowing, and times each confirm: what a user
// waits for once the bytes are in, the wait for the notification door
// included. With a baseline's stack (base, else nil) each repetition runs
// on both, one after the other (the order alternating); after each run
// the harness waits until that stack's event path is idle, so that its
// asynchronous work does not run under the other's.
func confirmFlow(ctx context.Context, s, base *stack, p plan) ([]flowRun, error) {
	stacks := []*stack{s}
	if base != nil {
		stacks = append(stacks, base)
	}
	data := payload(flowSize)
	for _, st := range stacks {
		if _, err := st.flowConfirms(ctx, flowWarmUp, data); err != nil {
			return nil, fmt.Errorf("warm-up: %w", err)
		}
	}
	var out []flowRun
	for rep := range p.flowReps {
		for k := range stacks {
			st := stacks[(k+rep)%len(stacks)]
			seq0, err := st.minioLastSeq(ctx)
			if err != nil {
				return out, err
			}
			lat, err := st.flowConfirms(ctx, p.flowUploads, data)
			if err != nil {
				return out, err
			}
			r := flowRun{baseline: st == base, rep: rep, lat: lat}
			out = append(out, r)
			logf("  %-9s rep %d: %d confirms, p50 %.2f ms  p90 %.2f ms  p99 %.2f ms", r.stackName(), rep+1, len(lat),
				ms(pct(lat, .5)), ms(pct(lat, .9)), ms(pct(lat, .99)))
			// Two notifications per object (targets PRIMARY and LIVE).
			if _, err := st.waitIdle(ctx, seq0+uint64(2*p.flowUploads), 20*time.Second); err != nil {
				logf("  %v", err)
			}
			if err := st.serviceError(); err != nil {
				return out, err
			}
		}
	}
	for _, st := range stacks {
		if err := st.wipeDocuments(ctx); err != nil {
			return out, err
		}
	}
	return out, nil
}

func (r flowRun) stackName() string {
	if r.baseline {
		return "baseline"
	}
	return "this tree"
}

// flowConfirms uploads n files one after another through the stack's api,
// as one user, and returns the confirms' latencies, sorted.
func (s *stack) flowConfirms(ctx context.Context, n int, data []byte) ([]time.Duration, error) {
	lat := make([]time.Duration, 0, n)
	for range n {
		d, err := s.docuvaultUpload(ctx, s.apiURL, s.tokens[0], data)
		if err != nil {
			return nil, err
		}
		lat = append(lat, d)
	}
	slices.Sort(lat)
	return lat, nil
}

// flowP50Diffs returns, per repetition, this tree's confirm p50 minus the
// baseline's, in milliseconds (nil without a baseline).
func flowP50Diffs(runs []flowRun) []float64 {
	var out []float64
	for _, a := range runs {
		if a.baseline {
			continue
		}
		for _, b := range runs {
			if b.baseline && b.rep == a.rep {
				out = append(out, ms(pct(a.lat, .5))-ms(pct(b.lat, .5)))
			}
		}
	}
	return out
}
