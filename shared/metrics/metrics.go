// Package metrics holds DocuVault's Prometheus metrics, registered on the
// registry the composition root passes in. Every role of a process shares
// one set, so `docuvault dev` shows all of them on the API's /metrics.
package metrics

import (
	"context"
	"errors"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/docuvault/docuvault/shared/probe"
)

// Metrics are the collectors the services update.
type Metrics struct {
	// HTTPRequests counts requests by route pattern, method and status.
	HTTPRequests *prometheus.CounterVec
	// HTTPDuration observes request latency by route pattern and method.
	HTTPDuration *prometheus.HistogramVec
	// Confirms counts confirmations by door (endpoint, event, sweeper) and
	// outcome (uploaded, rejected, already, and for objects that matched no
	// live document as charged stray_unknown, stray_rejected,
	// stray_reconciled, stray_reconcile_rejected).
	Confirms *prometheus.CounterVec
	// Redeliveries counts messages a consumer received more than once.
	Redeliveries *prometheus.CounterVec
	// Terminated counts messages a consumer gave up on for good.
	Terminated *prometheus.CounterVec
	// Retries counts messages a consumer handed back for a later try.
	Retries *prometheus.CounterVec
	// Classifications counts what the classifier did with a document, by
	// outcome (classified, failed, skipped; deferred, recovered, retried,
	// gave_up: see shared/stage).
	Classifications *prometheus.CounterVec
	// Scans counts what the scanner did with a document, by outcome
	// (scanned, infected, failed, skipped; deferred, recovered, retried,
	// gave_up: see shared/stage).
	Scans *prometheus.CounterVec
	// OutboxPublished counts events the relay published.
	OutboxPublished prometheus.Counter
	// OutboxLag observes the time from an event's commit to its publish ack.
	OutboxLag prometheus.Histogram
	// SweepItems counts what sweeps did, by kind (confirmed, purged, …).
	SweepItems *prometheus.CounterVec
	// SweepRuns counts completed sweep runs.
	SweepRuns prometheus.Counter
	// LedgerDriftUsers counts quota rows the ledger check found off what
	// their users' documents hold. Anything but 0 is a bug or an
	// accounting mix: alert on it.
	LedgerDriftUsers prometheus.Counter
	// LedgerDriftBytes counts the bytes of drift by source (check: a quota
	// row off its documents, found by the sweeper's ledger check; clamp: a
	// quota write that would have gone below zero) and field (used,
	// reserved). Anything but 0 is drift: alert on it.
	LedgerDriftBytes *prometheus.CounterVec

	gatherer prometheus.Gatherer
}

// New registers the metrics on reg, or reuses those registered before by
// another role of the same process.
func New(reg prometheus.Registerer, gatherer prometheus.Gatherer) (*Metrics, error) {
	m := &Metrics{gatherer: gatherer}
	r := registrar{reg: reg}
	m.HTTPRequests = register(&r, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "docuvault_http_requests_total", Help: "HTTP requests by route, method and status.",
	}, []string{"route", "method", "status"}))
	m.HTTPDuration = register(&r, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "docuvault_http_request_duration_seconds", Help: "HTTP request latency by route and method.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"route", "method"}))
	m.Confirms = register(&r, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "docuvault_confirms_total", Help: "Confirmations by door (endpoint, event, sweeper) and outcome (uploaded, rejected, already; for notifications also unknown: no pending upload matches, ignored: another bucket; stray_unknown, stray_rejected: an object no live document owns, removed; stray_reconciled, stray_reconcile_rejected: a charged document's replaced object).",
	}, []string{"door", "outcome"}))
	m.Redeliveries = register(&r, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "docuvault_consumer_redeliveries_total", Help: "JetStream messages received more than once, by consumer.",
	}, []string{"consumer"}))
	m.Terminated = register(&r, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "docuvault_consumer_terminated_total", Help: "JetStream messages terminated (never redelivered), by consumer.",
	}, []string{"consumer"}))
	m.Retries = register(&r, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "docuvault_consumer_retries_total", Help: "JetStream messages handed back for a later try after a passing failure, by consumer.",
	}, []string{"consumer"}))
	m.Classifications = register(&r, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "docuvault_classifications_total", Help: "Documents the classifier handled, by outcome (classified, failed, skipped; deferred over a user's share, recovered after waiting, retried, gave_up).",
	}, []string{"outcome"}))
	m.Scans = register(&r, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "docuvault_scans_total", Help: "Documents the malware scanner handled, by outcome (scanned clean, infected, failed as too large, skipped; deferred over a user's share, recovered after waiting, retried, gave_up).",
	}, []string{"outcome"}))
	m.OutboxPublished = register(&r, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "docuvault_outbox_published_total", Help: "Document events published from the outbox.",
	}))
	m.OutboxLag = register(&r, prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "docuvault_outbox_publish_lag_seconds", Help: "Time from an event's commit to JetStream's acknowledgement.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5, 30, 120},
	}))
	m.SweepItems = register(&r, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "docuvault_sweep_items_total", Help: "What sweeps did, by kind (confirmed, rejected, purged, rejected_removed, removals_retried, orphans_removed, keys_checked, pending_listed, pending_stats, ledger_checked, ledger_drifted, ledger_repaired, errors).",
	}, []string{"kind"}))
	m.SweepRuns = register(&r, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "docuvault_sweep_runs_total", Help: "Completed sweep runs.",
	}))
	m.LedgerDriftUsers = register(&r, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "docuvault_ledger_drift_users_total", Help: "Quota rows the ledger check found off what their users' documents hold (0 when the ledger is right).",
	}))
	m.LedgerDriftBytes = register(&r, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "docuvault_ledger_drift_bytes_total", Help: "Bytes of quota ledger drift, by source (check: found by the ledger check; clamp: absorbed by a quota write kept from going below zero) and field (used, reserved); 0 when the ledger is right.",
	}, []string{"source", "field"}))
	return m, r.err
}

// Clamped counts the bytes a quota write absorbed by not going below zero
// (document.Config.OnClamp).
func (m *Metrics) Clamped(used, reserved int64) {
	m.LedgerDriftBytes.WithLabelValues("clamp", "used").Add(float64(used))
	m.LedgerDriftBytes.WithLabelValues("clamp", "reserved").Add(float64(reserved))
}

// registrar registers collectors and keeps the first error.
type registrar struct {
	reg prometheus.Registerer
	err error
}

// register registers c, or returns the collector of the same description
// registered before.
func register[C prometheus.Collector](r *registrar, c C) C {
	if err := r.reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		r.err = errors.Join(r.err, err)
	}
	return c
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.gatherer, promhttp.HandlerOpts{})
}

// OutboxWaiting registers on reg a gauge reporting the outbox rows waiting
// to be published, read by count at most once per probe.MaxAge however
// many scrapes come (/metrics needs no token). Only the first call for a
// registry registers it.
func OutboxWaiting(reg prometheus.Registerer, count func() float64) {
	cached := probe.New(func(context.Context) float64 { return count() })
	g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "docuvault_outbox_waiting", Help: "Outbox rows waiting to be published.",
	}, func() float64 {
		v, _ := cached.Get(context.Background()) // count bounds its own time
		return v
	})
	_ = reg.Register(g) // registered already by an earlier call
}

// NotificationsWaiting registers on reg two gauges of the MinIO
// notifications the confirmers have not yet taken (MINIO_EVENTS holds
// nothing else): how many, and their bytes, against the stream's limit
// NATS_MINIO_EVENTS_MAX_BYTES. read is called at most once per
// probe.MaxAge however many scrapes come, and its error leaves the last
// values. Only the first call for a registry registers them.
func NotificationsWaiting(reg prometheus.Registerer, read func(context.Context) (msgs, bytes uint64, err error)) {
	type backlog struct{ msgs, bytes float64 }
	var (
		mu   sync.Mutex
		last backlog
	)
	cached := probe.New(func(ctx context.Context) backlog {
		mu.Lock()
		defer mu.Unlock()
		if m, b, err := read(ctx); err == nil {
			last = backlog{float64(m), float64(b)}
		}
		return last
	})
	get := func() backlog {
		v, _ := cached.Get(context.Background()) // read bounds its own time
		return v
	}
	_ = reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "docuvault_notifications_waiting", Help: "MinIO notifications in MINIO_EVENTS the confirmers have not yet acknowledged.",
	}, func() float64 { return get().msgs }))
	_ = reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "docuvault_notifications_waiting_bytes", Help: "Bytes of the MinIO notifications in MINIO_EVENTS the confirmers have not yet acknowledged (its limit: NATS_MINIO_EVENTS_MAX_BYTES).",
	}, func() float64 { return get().bytes }))
}
