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
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/shared/app"
	"github.com/docuvault/docuvault/shared/config"
	"github.com/docuvault/docuvault/shared/document"
	"github.com/docuvault/docuvault/shared/events"
	"github.com/docuvault/docuvault/shared/metrics"
)

// ConsumerName is the durable consumer every sweeper replica shares.
const ConsumerName = "sweeper"

// ackWait is how long a replica may go silent on a tick before it is
// handed to another; a running sweep reports progress well within it.
const ackWait = time.Minute

// Completed is published on sweeper.run.completed when a run ends.
type Completed struct {
	RunID          string    `json:"run_id"`
	StartedAt      time.Time `json:"started_at"`
	FinishedAt     time.Time `json:"finished_at"`
	DurationMS     int64     `json:"duration_ms"`
	MaxBatchLockMS float64   `json:"max_batch_lock_ms"`
	document.SweepResult
}

// Sweeper handles ticks.
type Sweeper struct {
	docs    *document.Service
	cfg     document.SweepConfig
	js      jetstream.JetStream
	metrics *metrics.Metrics
	log     zerolog.Logger

	// Runs counts the sweeps this replica ran; Skipped the ticks it
	// acknowledged without a run because a newer tick was already waiting.
	Runs, Skipped atomic.Int64
}

// New returns a Sweeper.
func New(docs *document.Service, cfg document.SweepConfig, js jetstream.JetStream, m *metrics.Metrics, log zerolog.Logger) *Sweeper {
	return &Sweeper{docs: docs, cfg: cfg, js: js, metrics: m, log: log}
}

// ConsumerConfig is the durable consumer the sweeper replicas share. One
// tick is in flight at a time, so runs never overlap.
func ConsumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       ConsumerName,
		Description:   "runs a sweep per tick",
		FilterSubject: events.SubjectSweepTick,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxDeliver:    3,
		MaxAckPending: 1,
		DeliverPolicy: jetstream.DeliverNewPolicy,
	}
}

// Handle runs the sweep a tick asks for and acknowledges it.
func (s *Sweeper) Handle(ctx context.Context, msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		_ = msg.TermWithReason("no metadata")
		return
	}
	if len(msg.Data()) == 0 && meta.NumPending > 0 {
		// Scheduled ticks piled up while no sweeper ran; a later tick does
		// the work. (An admin's tick always runs: its id was promised.)
		s.Skipped.Add(1)
		_ = msg.Ack()
		return
	}
	var tick events.SweepTick
	if len(msg.Data()) > 0 {
		if err := json.Unmarshal(msg.Data(), &tick); err != nil {
			s.log.Error().Err(err).Uint64("stream_seq", meta.Sequence.Stream).Msg("malformed sweep tick terminated")
			_ = msg.TermWithReason("malformed")
			return
		}
	}
	if tick.RunID == "" {
		// A scheduled tick: its stream sequence names the run, so a
		// redelivery keeps the same id.
		tick.RunID = "scheduled-" + strconv.FormatUint(meta.Sequence.Stream, 10)
	}
	log := s.log.With().Str("run_id", tick.RunID).Logger()

	// Keep the tick ours while the sweep runs.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		t := time.NewTicker(ackWait / 4)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	}()

	started := time.Now()
	res, err := s.docs.Sweep(log.WithContext(ctx), s.cfg)
	if err != nil {
		log.Error().Err(err).Msg("sweep failed; will retry")
		_ = msg.NakWithDelay(30 * time.Second)
		return
	}
	s.Runs.Add(1)
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
		Int("rejected_removed", res.RejectedRemoved).Int("orphans_removed", res.OrphansRemoved).
		Int("errors", res.Errors).Int64("duration_ms", done.DurationMS).Float64("max_batch_lock_ms", done.MaxBatchLockMS).
		Msg("sweep completed")
	// Settle the tick before announcing the run: whoever acts on the
	// completion then finds no tick of it still in hand. Should the ack be
	// lost, the tick comes back, the run (safe to repeat) runs again and
	// its announcement carries the same message id.
	if err := msg.DoubleAck(ctx); err != nil {
		log.Warn().Err(err).Msg("ack sweep tick failed; it will be redelivered")
	}
	body, _ := json.Marshal(done)
	if _, err := s.js.Publish(ctx, events.SubjectSweepCompleted, body, jetstream.WithMsgID(tick.RunID+".completed")); err != nil {
		log.Warn().Err(err).Msg("publish sweep result failed")
	}
}

// record adds a run's counts to the metrics.
func (s *Sweeper) record(res document.SweepResult) {
	s.metrics.SweepRuns.Inc()
	s.metrics.Confirms.WithLabelValues("sweeper", "uploaded").Add(float64(res.Confirmed))
	s.metrics.Confirms.WithLabelValues("sweeper", "rejected").Add(float64(res.Rejected))
	for kind, n := range map[string]int{
		"confirmed": res.Confirmed, "rejected": res.Rejected, "purged": res.Purged,
		"rejected_removed": res.RejectedRemoved, "orphans_removed": res.OrphansRemoved, "errors": res.Errors,
	} {
		s.metrics.SweepItems.WithLabelValues(kind).Add(float64(n))
	}
}

// Consume handles ticks until ctx ends.
func (s *Sweeper) Consume(ctx context.Context) error {
	return events.Consume(ctx, s.js, events.StreamSweeper, ConsumerConfig(), 1, s.Handle, s.log)
}

// SweepConfig returns the sweep settings in cfg.
func SweepConfig(cfg config.Config) document.SweepConfig {
	return document.SweepConfig{PendingTTL: cfg.PendingTTL, RejectedRetention: cfg.RejectedRetention, BatchSize: int(cfg.SweepBatchSize)}
}

// Service is a running sweeper.
type Service struct {
	app     *app.App
	Sweeper *Sweeper
}

// Open connects to everything and makes sure the schedule exists.
func Open(ctx context.Context, cfg config.Config, log zerolog.Logger) (*Service, error) {
	a, err := app.Open(ctx, cfg, log, "sweeper")
	if err != nil {
		return nil, err
	}
	published, err := events.EnsureSweepSchedule(ctx, a.JS, cfg.SweepInterval)
	if err != nil {
		a.Close()
		return nil, fmt.Errorf("SWEEP_INTERVAL schedule: %w", err)
	}
	if published {
		log.Info().Dur("interval", cfg.SweepInterval).Msg("sweep schedule published")
	}
	return &Service{app: a, Sweeper: New(a.Docs, SweepConfig(cfg), a.JS, a.Metrics, log)}, nil
}

// Run relays the outbox and handles ticks until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	return s.app.RunWithRelay(ctx, s.Sweeper.Consume)
}

// Close releases the service's connections.
func (s *Service) Close() { s.app.Close() }

// Run is the sweeper service: Open, then Run until ctx ends.
func Run(ctx context.Context, cfg config.Config, log zerolog.Logger) error {
	return app.Run(ctx, func() (*Service, error) { return Open(ctx, cfg, log) })
}
