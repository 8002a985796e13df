package sweeper_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/services/sweeper"
	"github.com/docuvault/docuvault/shared/document"
	"github.com/docuvault/docuvault/shared/events"
	"github.com/docuvault/docuvault/shared/metrics"
)

// sweepOnce is a use case whose every sweep answers res.
type sweepOnce struct{ res document.SweepResult }

func (s sweepOnce) Sweep(context.Context, document.SweepConfig) (document.SweepResult, error) {
	return s.res, nil
}

// A run's ledger drift goes into the metrics operators alert on, and into
// the run's report published on sweeper.run.completed.
func TestARunCountsLedgerDrift(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	m, err := metrics.New(reg, reg)
	if err != nil {
		t.Fatal(err)
	}
	res := document.SweepResult{LedgerChecked: 40, LedgerDrifted: 3, LedgerRepaired: 3,
		LedgerDriftUsedBytes: 1000, LedgerDriftReservedBytes: 50}
	sw := sweeper.New(sweepOnce{res}, nil, document.SweepConfig{}, time.Hour, m, zerolog.Nop())
	sw.Handle(context.Background(), events.Message{Data: []byte(`{"run_id":"r1"}`)})

	for name, c := range map[string]struct {
		got  prometheus.Collector
		want float64
	}{
		"drift users":          {m.LedgerDriftUsers, 3},
		"drift used bytes":     {m.LedgerDriftBytes.WithLabelValues("check", "used"), 1000},
		"drift reserved bytes": {m.LedgerDriftBytes.WithLabelValues("check", "reserved"), 50},
		"rows checked":         {m.SweepItems.WithLabelValues("ledger_checked"), 40},
		"rows repaired":        {m.SweepItems.WithLabelValues("ledger_repaired"), 3},
	} {
		if got := testutil.ToFloat64(c.got); got != c.want {
			t.Errorf("%s: %v, want %v", name, got, c.want)
		}
	}
	body, err := json.Marshal(sweeper.Completed{RunID: "r1", SweepResult: res})
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{`"ledger_checked":40`, `"ledger_drifted":3`, `"ledger_repaired":3`,
		`"ledger_drift_used_bytes":1000`, `"ledger_drift_reserved_bytes":50`} {
		if !strings.Contains(string(body), field) {
			t.Errorf("the run's report %s lacks %s", body, field)
		}
	}
}
