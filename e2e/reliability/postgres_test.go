package reliability_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/docuvault/docuvault/internal/apitest"
	"github.com/docuvault/docuvault/services/confirmer"
	"github.com/docuvault/docuvault/services/sweeper"
)

const (
	// pgOutages is how many times the run stops PostgreSQL.
	pgOutages = 2
	// pgDownMin and pgDownMax bound how long PostgreSQL stays stopped.
	pgDownMin, pgDownMax = 2 * time.Second, 4 * time.Second
	// pgGrace is how long after PostgreSQL is back the test's own reads
	// may still fail on a connection the stop broke: a pool finds out it
	// is dead only by using it.
	pgGrace = 2 * time.Second
)

// pgOutage is one stop of PostgreSQL and what was in flight when it
// stopped.
type pgOutage struct {
	stop, start time.Time // start is zero while PostgreSQL is away
	inflight    map[string]int
	outbox      int64 // events committed but not yet relayed
	sweep       bool  // a sweep was asked for just before the stop
	// sweepRetries and confirmRetries count the sweeps and MinIO
	// notifications the sweeper and the confirmer handed back for a later
	// try from the stop to just after the start: work the outage cut.
	sweepRetries, confirmRetries int64
	// unavailable counts the answers 503 per kind of operation between
	// the stop and pgGrace after the start.
	unavailable map[string]int
	sampleErrs  int // samples lost to the outage
}

// pgStop is one PostgreSQL outage of the run, injected as a fault: it asks
// for a sweep now and then so that one is running when PostgreSQL goes,
// records which operations are in flight and how many events wait for the
// relay, stops PostgreSQL at once (pg_ctl stop -m immediate, as a crash
// would) for pgDownMin to pgDownMax, and starts it again on the same port
// and data directory. The services are left to reconnect by themselves.
func (r *rig) pgStop(rng *rand.Rand) {
	r.t.Helper()
	sweep := rng.IntN(2) == 0
	if sweep {
		r.sweep()
		// The sweeper picks the tick up within milliseconds; stop while it
		// lists pending rows, purges or reconciles the bucket.
		time.Sleep(time.Duration(rng.IntN(150)) * time.Millisecond)
	}
	var outbox int64
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	if err := r.s.DB.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&outbox); err != nil {
		outbox = -1
	}
	cancel()
	down := pgDownMin + time.Duration(rng.Int64N(int64(pgDownMax-pgDownMin)))

	sweepRetries, confirmRetries := r.retries()
	r.mu.Lock()
	o := &pgOutage{stop: time.Now(), inflight: nonZero(r.inflight), outbox: outbox, sweep: sweep, unavailable: map[string]int{}}
	r.pgOutages = append(r.pgOutages, o)
	r.mu.Unlock()
	r.pg.Stop(r.t)
	time.Sleep(down)
	r.pg.Start(r.t)
	r.mu.Lock()
	o.start = time.Now()
	r.mu.Unlock()
	sw, co := r.retries()
	o.sweepRetries, o.confirmRetries = sw-sweepRetries, co-confirmRetries
	r.t.Logf("PostgreSQL outage at +%s for %s: in flight at the stop: %s; %d event(s) waiting for the relay; sweep asked for just before: %v; sweeps retried %d, notifications retried %d",
		o.stop.Sub(r.began).Round(time.Millisecond), o.start.Sub(o.stop).Round(time.Millisecond),
		formatCounts(o.inflight), outbox, sweep, o.sweepRetries, o.confirmRetries)
}

// retries returns how many sweeps the sweepers, and how many MinIO
// notifications the running confirmer, have handed back for a later try.
func (r *rig) retries() (sweeps, confirms int64) {
	for _, sw := range r.s.Sweepers {
		sweeps += apitest.Count(sw.Metrics.Retries.WithLabelValues(sweeper.ConsumerName))
	}
	return sweeps, apitest.Count(r.s.Confirmer.Metrics.Retries.WithLabelValues(confirmer.ConsumerName))
}

// nonZero returns a copy of m without its zero counts.
func nonZero(m map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}

// pgOutageAt returns the PostgreSQL outage at covers, from its stop to
// pgGrace after its start, or nil. Call with r.mu held.
func (r *rig) pgOutageAt(at time.Time) *pgOutage {
	for _, o := range r.pgOutages {
		if !at.Before(o.stop) && (o.start.IsZero() || at.Before(o.start.Add(pgGrace))) {
			return o
		}
	}
	return nil
}

// pgAway reports whether err, from the test's own read of PostgreSQL begun
// at began, is a lost or refused connection while PostgreSQL was away (or
// just back), and counts it then. Every other error, and any error outside
// an outage, is the caller's to report.
func (r *rig) pgAway(began time.Time, err error) bool {
	if err == nil || !connectionError(err) {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	o := r.pgOutageAt(began)
	if o == nil {
		o = r.pgOutageAt(time.Now())
	}
	if o == nil {
		return false
	}
	o.sampleErrs++
	return true
}

// connectionError reports whether err says the connection to PostgreSQL
// failed, was cut, or was refused while the server shut down or started
// up — not that a statement failed.
func connectionError(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Class 57P: admin_shutdown, crash_shutdown, cannot_connect_now;
		// class 08: connection exceptions.
		return strings.HasPrefix(pgErr.Code, "57P") || strings.HasPrefix(pgErr.Code, "08")
	}
	return !errors.Is(err, context.Canceled)
}

// noteUnavailable counts an answer 503 of kind if a PostgreSQL outage
// covers now.
func (r *rig) noteUnavailable(kind string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if o := r.pgOutageAt(time.Now()); o != nil {
		o.unavailable[kind]++
	}
}

// reportPGOutages says what each PostgreSQL outage hit: the operations in
// flight when it stopped, the events waiting for the relay, the sweeps and
// notifications it cut (retried later), the 503s answered meanwhile and the
// test's own reads it cost. Call with r.mu held.
func (r *rig) reportPGOutages(t *testing.T) {
	t.Helper()
	for i, o := range r.pgOutages {
		t.Logf("PostgreSQL outage %d at +%s for %s: in flight at the stop: %s; events waiting for the relay %d; sweep asked for just before: %v; sweeps retried %d, notifications retried %d; 503s meanwhile: %s; test reads lost %d",
			i+1, o.stop.Sub(r.began).Round(time.Millisecond), o.start.Sub(o.stop).Round(time.Millisecond),
			formatCounts(o.inflight), o.outbox, o.sweep, o.sweepRetries, o.confirmRetries,
			formatCounts(o.unavailable), o.sampleErrs)
	}
}

// pgFaultPlan returns where the PostgreSQL outages go among the other
// faults: before which of the n others each comes (n is after the last),
// sorted.
func pgFaultPlan(rng *rand.Rand, n int) []int {
	at := make([]int, pgOutages)
	for i := range at {
		at[i] = rng.IntN(n + 1)
	}
	slices.Sort(at)
	return at
}
