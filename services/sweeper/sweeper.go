// Package sweeper runs the periodic clean-up: a JetStream message schedule
// puts a tick on sweeper.tick every SWEEP_INTERVAL, a durable consumer
// shared by every replica hands each tick to exactly one of them, and that
// replica runs the Sweep use case and publishes the run's counts on
// sweeper.run.completed.
package sweeper

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/shared/document"
	"github.com/docuvault/docuvault/shared/events"
	"github.com/docuvault/docuvault/shared/metrics"
)

// ConsumerName is the durable consumer every sweeper replica shares.
const ConsumerName = events.SweeperConsumerName

// The sweeper's subjects, all in the SWEEPER stream (events.SubjectSweeper;
// written in events, since setup makes the schedule and the consumer).
const (
	SubjectSchedule  = events.SubjectSweepSchedule  // holds the message schedule
	SubjectTick      = events.SubjectSweepTick      // a sweep to run, from the schedule or an admin
	SubjectCompleted = events.SubjectSweepCompleted // a finished run's counts
)

// Completed is published on sweeper.run.completed when a run ends.
type Completed struct {
	RunID          string    `json:"run_id"`
	StartedAt      time.Time `json:"started_at"`
	FinishedAt     time.Time `json:"finished_at"`
	DurationMS     int64     `json:"duration_ms"`
	MaxBatchLockMS float64   `json:"max_batch_lock_ms"`
	document.SweepResult
}

// Tick asks for a sweep. Ticks from the schedule carry no body.
type Tick struct {
	RunID string `json:"run_id"`
}

// Docs is the use case the sweeper runs.
type Docs interface {
	Sweep(ctx context.Context, cfg document.SweepConfig) (document.SweepResult, error)
}

// Publisher publishes on JetStream, waiting for the store.
type Publisher interface {
	Publish(ctx context.Context, subject string, data []byte, msgID string) error
}

// Bus is what the sweeper does with JetStream.
type Bus interface {
	Publisher
	Consume(ctx context.Context, c events.Consumer, h events.Handler) error
	SweepSchedule(ctx context.Context) (time.Duration, error)
}

// Sweeper runs a sweep per tick.
type Sweeper struct {
	docs     Docs
	bus      Bus
	cfg      document.SweepConfig
	interval time.Duration
	metrics  *metrics.Metrics
	log      zerolog.Logger
}

// New returns a Sweeper that sweeps with cfg on every tick; interval is
// SWEEP_INTERVAL, which the schedule setup made should fire at.
func New(docs Docs, bus Bus, cfg document.SweepConfig, interval time.Duration, m *metrics.Metrics, log zerolog.Logger) *Sweeper {
	return &Sweeper{docs: docs, bus: bus, cfg: cfg, interval: interval, metrics: m, log: log}
}

// consumer is the durable consumer the sweeper replicas share
// (events.SweeperConsumer, made by setup): one tick in flight at a time.
var consumer = events.Consumer{Durable: events.SweeperConsumer, Workers: 1}

// Run checks that setup made the schedule, then handles ticks until ctx
// ends.
func (s *Sweeper) Run(ctx context.Context) error {
	every, err := s.bus.SweepSchedule(ctx)
	if err != nil {
		return fmt.Errorf("sweep schedule: %w", err)
	}
	if every != s.interval {
		s.log.Warn().Dur("schedule_every", every).Dur("sweep_interval", s.interval).
			Msg("the sweep schedule does not fire every SWEEP_INTERVAL: run docuvault setup")
	}
	return s.bus.Consume(s.log.WithContext(ctx), consumer, s.Handle)
}

// Handle runs the sweep a tick asks for; the tick is settled before the
// run is announced.
func (s *Sweeper) Handle(ctx context.Context, msg events.Message) events.Outcome {
	if len(msg.Data) == 0 && msg.Pending > 0 {
		// Scheduled ticks piled up while no sweeper ran; a later tick does
		// the work. (An admin's tick always runs: its id was promised.)
		return events.Ack()
	}
	var tick Tick
	if len(msg.Data) > 0 {
		if err := json.Unmarshal(msg.Data, &tick); err != nil {
			return events.Term(fmt.Errorf("malformed sweep tick: %w", err))
		}
	}
	if tick.RunID == "" {
		// A scheduled tick: its stream sequence names the run, so a
		// redelivery keeps the same id.
		tick.RunID = "scheduled-" + strconv.FormatUint(msg.StreamSeq, 10)
	}
	log := zerolog.Ctx(ctx).With().Str("run_id", tick.RunID).Logger()

	started := time.Now()
	res, err := s.docs.Sweep(log.WithContext(ctx), s.cfg)
	if err != nil {
		return events.RetryAfter(30*time.Second, fmt.Errorf("sweep %s: %w", tick.RunID, err))
	}
	s.record(res)
	done := Completed{
		RunID:          tick.RunID,
		StartedAt:      started.UTC(),
		FinishedAt:     time.Now().UTC(),
		DurationMS:     time.Since(started).Milliseconds(),
		MaxBatchLockMS: float64(res.MaxBatchLock.Microseconds()) / 1000,
		SweepResult:    res,
	}
	log.Info().
		Int("confirmed", res.Confirmed).Int("rejected", res.Rejected).Int("purged", res.Purged).
		Int("rejected_removed", res.RejectedRemoved).Int("removals_retried", res.RemovalsRetried).
		Int("orphans_removed", res.OrphansRemoved).Int("keys_checked", res.KeysChecked).
		Int("pending_listed", res.PendingListed).Int("pending_stats", res.PendingStats).
		Int("uploads_aborted", res.UploadsAborted).
		Int("ledger_checked", res.LedgerChecked).Int("ledger_drifted", res.LedgerDrifted).Int("ledger_repaired", res.LedgerRepaired).
		Int64("ledger_drift_used_bytes", res.LedgerDriftUsedBytes).Int64("ledger_drift_reserved_bytes", res.LedgerDriftReservedBytes).
		Int("errors", res.Errors).Int64("duration_ms", done.DurationMS).Float64("max_batch_lock_ms", done.MaxBatchLockMS).
		Msg("sweep completed")
	// Settle the tick before announcing the run: whoever acts on the
	// completion then finds no tick of it still in hand. Should the ack be
	// lost, the tick comes back, the run (safe to repeat) runs again and
	// its announcement carries the same message id.
	return events.AckThen(func(ctx context.Context) {
		body, _ := json.Marshal(done)
		if err := s.bus.Publish(ctx, SubjectCompleted, body, tick.RunID+".completed"); err != nil {
			log.Warn().Err(err).Msg("publish sweep result failed")
		}
	})
}

// record adds a run's counts to the metrics.
func (s *Sweeper) record(res document.SweepResult) {
	s.metrics.SweepRuns.Inc()
	s.metrics.Confirms.WithLabelValues("sweeper", string(document.OutcomeUploaded)).Add(float64(res.Confirmed))
	s.metrics.Confirms.WithLabelValues("sweeper", string(document.OutcomeRejected)).Add(float64(res.Rejected))
	for kind, n := range map[string]int{
		"confirmed": res.Confirmed, "rejected": res.Rejected, "purged": res.Purged,
		"rejected_removed": res.RejectedRemoved, "removals_retried": res.RemovalsRetried,
		"orphans_removed": res.OrphansRemoved, "keys_checked": res.KeysChecked, "errors": res.Errors,
		"pending_listed": res.PendingListed, "pending_stats": res.PendingStats,
		"uploads_aborted": res.UploadsAborted,
		"ledger_checked":  res.LedgerChecked, "ledger_drifted": res.LedgerDrifted, "ledger_repaired": res.LedgerRepaired,
	} {
		s.metrics.SweepItems.WithLabelValues(kind).Add(float64(n))
	}
	s.metrics.LedgerDriftUsers.Add(float64(res.LedgerDrifted))
	s.metrics.LedgerDriftBytes.WithLabelValues("check", "used").Add(float64(res.LedgerDriftUsedBytes))
	s.metrics.LedgerDriftBytes.WithLabelValues("check", "reserved").Add(float64(res.LedgerDriftReservedBytes))
}

// Trigger asks the sweepers for a run now: the admin's door.
type Trigger struct{ pub Publisher }

// NewTrigger returns a Trigger publishing ticks with pub.
func NewTrigger(pub Publisher) *Trigger { return &Trigger{pub: pub} }

// TriggerSweep asks for a sweep now and returns the run's id; the run's
// result is published on sweeper.run.completed under it.
func (t *Trigger) TriggerSweep(ctx context.Context) (string, error) {
	id := uuid.NewString()
	body, _ := json.Marshal(Tick{RunID: id})
	if err := t.pub.Publish(ctx, SubjectTick, body, id); err != nil {
		return "", err
	}
	return id, nil
}
