// Package stage runs one stage of a stored document's way (the malware
// scan, the classification): a durable JetStream consumer, shared by every
// replica, queues the documents its events name, and a bounded pool of
// workers does the stage's work on them, fairly between users, retrying a
// passing failure with back-off; a recovery claims from PostgreSQL the
// documents that waited too long (their event dropped by a full log,
// deferred over their owner's share, or lost with a replica).
package stage

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/shared/document"
	"github.com/docuvault/docuvault/shared/events"
)

// What a stage did besides its work, as counted beside the work's own
// outcomes.
const (
	OutcomeDeferred  = "deferred"  // over its user's share: left to the recovery
	OutcomeRecovered = "recovered" // taken up by the recovery
	OutcomeRetried   = "retried"   // a passing failure: tried again after a pause
	OutcomeGaveUp    = "gave_up"   // failed MaxDeliver times in a row: rests, then the recovery tries again
)

// A replica tries a document whose work fails (a passing error) as many
// times in a row as its consumer's MaxDeliver, pausing its Backoff between
// tries; then it gives up for RestAfterGivingUp, after which the recovery
// tries again. A document is never failed for an outage: it stays waiting.
const RestAfterGivingUp = 15 * time.Minute

// Docs are the use cases every stage's recovery needs.
type Docs interface {
	// Postpone keeps the recovery off a document for a while.
	Postpone(ctx context.Context, id uuid.UUID, d time.Duration) error
}

// Bus runs the stage's durable consumer with the one consumer loop.
type Bus interface {
	Consume(ctx context.Context, c events.Consumer, h events.Handler) error
}

// Stage is one stage's settings and work.
type Stage struct {
	// Consumer is the durable consumer its replicas share; its Durable's
	// MaxDeliver and Backoff are the retries of a passing failure. Its
	// handler only queues a document, and never asks for a message again:
	// the queue retries and the recovery take over from JetStream's
	// redelivery, whose naks would hold MaxAckPending slots and burn
	// MaxDeliver on a user's backlog.
	Consumer events.Consumer
	// Bus runs Consumer.
	Bus Bus
	// Events are the event types that bring a document to the stage; an
	// event of another type is acked and dropped.
	Events []document.EventType
	Limits
	// RecoverEvery is the pause between recovery passes.
	RecoverEvery time.Duration
	// HandleTimeout bounds one document's work.
	HandleTimeout time.Duration
	// Work does the stage's work on a document and names what it did
	// (counted in Outcomes); an error is passing, and the document is
	// tried again.
	Work func(ctx context.Context, id uuid.UUID) (outcome string, err error)
	// Claim claims documents waiting too long, at most perUser of one user.
	Claim func(ctx context.Context, perUser, limit int) ([]document.Waiting, error)
	Docs  Docs
	// Outcomes counts what the stage did, by outcome.
	Outcomes *prometheus.CounterVec
	Log      zerolog.Logger
}

// Limits bound a stage's work on one replica.
type Limits struct {
	// Workers documents are worked at once, at most UserWorkers of one
	// user, users taking turns; a replica holds at most UserQueue
	// documents of one user and QueueCapacity in all. An event over its
	// user's share (or a full queue) is acked, its document left waiting
	// in PostgreSQL, where the recovery takes it up.
	Workers, UserWorkers, UserQueue, QueueCapacity int
	// RecoveryBatch bounds the documents one recovery pass claims.
	RecoveryBatch int
}

// DefaultLimits are a stage's limits unless it needs others: a user's
// backlog holds at most all workers but one, and a replica queues what a
// few minutes of work take (4096 ids, about 200 KiB).
var DefaultLimits = Limits{Workers: 4, UserWorkers: 3, UserQueue: 64, QueueCapacity: 4096, RecoveryBatch: 64}

// Runner runs a Stage on one replica.
type Runner struct {
	s     Stage
	queue *fairQueue
}

// New returns a Runner of s.
func New(s Stage) *Runner {
	s.RecoverEvery = max(s.RecoverEvery, 100*time.Millisecond)
	return &Runner{s: s, queue: newFairQueue(s.UserQueue, s.UserWorkers, s.QueueCapacity)}
}

// Run works documents until ctx ends, then finishes those in hand; those
// only queued stay waiting for the recovery of whichever replica runs
// next.
func (r *Runner) Run(ctx context.Context) error {
	ctx = r.s.Log.WithContext(ctx)
	// The workers and the recovery stop with the consumer, whether ctx
	// ended or the consumer failed.
	workCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	// Documents in hand finish even as ctx ends; only new ones stop.
	handleCtx := context.WithoutCancel(ctx)
	for range r.s.Workers {
		wg.Go(func() {
			for {
				e, ok := r.queue.next(workCtx)
				if !ok {
					return
				}
				r.work(handleCtx, e)
			}
		})
	}
	wg.Go(func() { r.recoverLoop(workCtx) })
	err := r.s.Bus.Consume(ctx, r.s.Consumer, r.Handle)
	stop()
	wg.Wait()
	r.queue.close()
	return err
}

// Handle queues the document of one event.
func (r *Runner) Handle(ctx context.Context, msg events.Message) events.Outcome {
	var e document.Event
	if err := json.Unmarshal(msg.Data, &e); err != nil || !slices.Contains(r.s.Events, e.Type) {
		return events.Term(fmt.Errorf("malformed document event: %v", err))
	}
	if r.queue.offer(e.Data.UserID, e.Data.DocumentID) == refused {
		r.s.Outcomes.WithLabelValues(OutcomeDeferred).Inc()
		zerolog.Ctx(ctx).Debug().Str("document_id", e.Data.DocumentID.String()).Str("user_id", e.Data.UserID.String()).
			Msg("over its user's share: left to the recovery")
	}
	return events.Ack()
}

// recoverLoop claims documents that waited too long, as many as the queue
// takes, every RecoverEvery until ctx ends.
func (r *Runner) recoverLoop(ctx context.Context) {
	t := time.NewTicker(r.s.RecoverEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := r.recoverOnce(ctx); err != nil && ctx.Err() == nil {
			zerolog.Ctx(ctx).Warn().Err(err).Msg("recovery pass failed")
		}
	}
}

// recoverOnce runs one recovery pass. A claimed document the queue
// refuses (its user's share full) keeps its claim, and the recovery comes
// back to it once the claim ends.
func (r *Runner) recoverOnce(ctx context.Context) error {
	limit := min(r.s.RecoveryBatch, r.queue.free())
	if limit <= 0 {
		return nil
	}
	waiting, err := r.s.Claim(ctx, r.s.UserQueue, limit)
	if err != nil {
		return err
	}
	// A document this replica holds already (queued from its event, long
	// behind its user's others) is claimed too, and counts as nothing new.
	added := 0
	for _, w := range waiting {
		if r.queue.offer(w.UserID, w.ID) == queued {
			added++
		}
	}
	if added > 0 {
		r.s.Outcomes.WithLabelValues(OutcomeRecovered).Add(float64(added))
		zerolog.Ctx(ctx).Info().Int("claimed", len(waiting)).Int("queued", added).Msg("documents waiting too long taken up")
	}
	return nil
}

// work does the stage's work on e's document and settles it in the queue.
func (r *Runner) work(ctx context.Context, e *entry) {
	log := zerolog.Ctx(ctx).With().Str("document_id", e.id.String()).Str("user_id", e.user.String()).Logger()
	ctx, cancel := context.WithTimeout(log.WithContext(ctx), r.s.HandleTimeout)
	defer cancel()
	outcome, err := r.s.Work(ctx, e.id)
	if err != nil {
		r.queue.done(e, r.failed(ctx, log, e, err))
		return
	}
	r.queue.done(e, 0)
	r.s.Outcomes.WithLabelValues(outcome).Inc()
}

// failed decides what follows a passing failure of e: the pause before the
// next try, or 0 once the consumer's MaxDeliver tries failed in a row —
// then the document rests for RestAfterGivingUp (if PostgreSQL can record
// that; otherwise the recovery finds it sooner).
func (r *Runner) failed(ctx context.Context, log zerolog.Logger, e *entry, err error) time.Duration {
	e.failures++
	if retry := r.s.Consumer.Durable; e.failures < retry.MaxDeliver {
		delay := retry.Backoff[min(e.failures-1, len(retry.Backoff)-1)]
		r.s.Outcomes.WithLabelValues(OutcomeRetried).Inc()
		log.Warn().Err(err).Int("failures", e.failures).Dur("retry_in", delay).Msg("failed for now, will retry")
		return delay
	}
	r.s.Outcomes.WithLabelValues(OutcomeGaveUp).Inc()
	log.Error().Err(err).Int("failures", e.failures).Dur("rest", RestAfterGivingUp).Msg("failed for the last time on this replica")
	if perr := r.s.Docs.Postpone(ctx, e.id, RestAfterGivingUp); perr != nil {
		log.Warn().Err(perr).Msg("could not postpone the recovery")
	}
	return 0
}
