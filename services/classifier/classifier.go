// Package classifier is the service that turns document.uploaded events
// into a category: a durable JetStream consumer, shared by every replica,
// reads the first CLASSIFY_MAX_BYTES of each new document, checks that its
// bytes are what its declared type says, extracts its text and classifies
// it with the rules of shared/classify.
package classifier

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/shared/document"
	"github.com/docuvault/docuvault/shared/events"
	"github.com/docuvault/docuvault/shared/metrics"
)

// ConsumerName is the durable consumer every classifier replica shares.
const ConsumerName = events.ClassifierConsumerName

// A replica tries a document whose store fails (a passing error) as many
// times in a row as its consumer's MaxDeliver, pausing its Backoff between
// tries (events.ClassifierConsumer, where they are written); then it gives
// up for restAfterGivingUp, after which the recovery tries again. A
// document is never failed for its store's outage: it stays uploaded.
const restAfterGivingUp = 15 * time.Minute

// HandleTimeout bounds one document's classification, and ClassifyTimeout
// (the use case's Config.ClassifyTimeout) the parsing within it. The
// parsers' work budget ends any document within about 2 s of CPU; the
// timeout is the backstop, short enough that a document still being parsed
// when it passes is failed as too_complex with time left to record that,
// rather than running out the handler's time and being tried again.
const (
	HandleTimeout   = 30 * time.Second
	ClassifyTimeout = 10 * time.Second
)

// Fairness. A replica classifies Workers documents at once, at most
// UserWorkers of one user, taking users in turns; it holds at most
// UserQueue documents of one user and QueueCapacity in all. A
// document.uploaded event is acked as soon as its document is queued, so
// no user's backlog waits in the log ahead of another's; an event over its
// user's share (or a full queue) is acked too and its document left
// uploaded in PostgreSQL, where the recovery takes it up.
const (
	Workers       = 4
	UserWorkers   = Workers - 1
	UserQueue     = 64
	QueueCapacity = 4096
	// RecoveryBatch bounds the documents one recovery pass claims.
	RecoveryBatch = 64
)

// consumer is the durable consumer the classifier replicas share
// (events.ClassifierConsumer, made by setup). Its handler only queues a
// document, so it needs few workers.
var consumer = events.Consumer{
	Durable: events.ClassifierConsumer,
	Workers: 2,
	Timeout: 10 * time.Second,
}

// Docs are the use cases the classifier is the door of.
type Docs interface {
	Classify(ctx context.Context, id uuid.UUID) (outcome string, c document.Classification, err error)
	ClaimUnclassified(ctx context.Context, perUser, limit int) ([]document.Waiting, error)
	PostponeClassification(ctx context.Context, id uuid.UUID, d time.Duration) error
}

// Bus runs the classifier's durable consumer with the one consumer loop.
type Bus interface {
	Consume(ctx context.Context, c events.Consumer, h events.Handler) error
}

// What the classifier did besides classifying, as counted in
// Metrics.Classifications beside document.ClassifyDone and the others.
const (
	OutcomeDeferred  = "deferred"  // over its user's share: left to the recovery
	OutcomeRecovered = "recovered" // taken up by the recovery
	OutcomeRetried   = "retried"   // its store failed: tried again after a pause
	OutcomeGaveUp    = "gave_up"   // its store failed MaxDeliver times in a row: rests, then the recovery tries again
)

// Classifier classifies uploaded documents, fairly between users: from
// their document.uploaded events and, for documents that waited longer
// than the use case's recovery delay (their event dropped by a full log,
// deferred, or lost with a replica), from PostgreSQL.
type Classifier struct {
	docs    Docs
	bus     Bus
	metrics *metrics.Metrics
	log     zerolog.Logger
	// recoverEvery is the pause between recovery passes.
	recoverEvery time.Duration
	queue        *fairQueue
}

// New returns a Classifier fed by bus; a recovery pass runs every
// recoverEvery (a fraction of the use case's recovery delay, so that a
// document waits little longer than that delay).
func New(docs Docs, bus Bus, recoverEvery time.Duration, m *metrics.Metrics, log zerolog.Logger) *Classifier {
	return &Classifier{
		docs: docs, bus: bus, metrics: m, log: log,
		recoverEvery: max(recoverEvery, 100*time.Millisecond),
		queue:        newFairQueue(UserQueue, UserWorkers, QueueCapacity),
	}
}

// Run classifies until ctx ends, then finishes the documents in hand;
// those only queued stay uploaded for the recovery of whichever replica
// runs next.
func (c *Classifier) Run(ctx context.Context) error {
	ctx = c.log.WithContext(ctx)
	// The workers and the recovery stop with the consumer, whether ctx
	// ended or the consumer failed.
	workCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	// Documents in hand finish even as ctx ends; only new ones stop.
	handleCtx := context.WithoutCancel(ctx)
	for range Workers {
		wg.Go(func() {
			for {
				e, ok := c.queue.next(workCtx)
				if !ok {
					return
				}
				c.classify(handleCtx, e)
			}
		})
	}
	wg.Go(func() { c.recoverLoop(workCtx) })
	err := c.bus.Consume(ctx, consumer, c.Handle)
	stop()
	wg.Wait()
	c.queue.close()
	return err
}

// Handle queues the document of one document.uploaded event.
func (c *Classifier) Handle(ctx context.Context, msg events.Message) events.Outcome {
	var e document.Event
	if err := json.Unmarshal(msg.Data, &e); err != nil || e.Type != document.EventUploaded {
		return events.Term(fmt.Errorf("malformed document event: %v", err))
	}
	if c.queue.offer(e.Data.UserID, e.Data.DocumentID) == refused {
		c.metrics.Classifications.WithLabelValues(OutcomeDeferred).Inc()
		zerolog.Ctx(ctx).Debug().Str("document_id", e.Data.DocumentID.String()).Str("user_id", e.Data.UserID.String()).
			Msg("over its user's share: left to the recovery")
	}
	return events.Ack()
}

// recoverLoop claims documents that waited too long, as many as the queue
// takes, every recoverEvery until ctx ends.
func (c *Classifier) recoverLoop(ctx context.Context) {
	t := time.NewTicker(c.recoverEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := c.recoverOnce(ctx); err != nil && ctx.Err() == nil {
			zerolog.Ctx(ctx).Warn().Err(err).Msg("recovery pass failed")
		}
	}
}

// recoverOnce runs one recovery pass. A claimed document the queue
// refuses (its user's share full) keeps its claim, and the recovery comes
// back to it once the claim ends.
func (c *Classifier) recoverOnce(ctx context.Context) error {
	limit := min(RecoveryBatch, c.queue.free())
	if limit <= 0 {
		return nil
	}
	waiting, err := c.docs.ClaimUnclassified(ctx, UserQueue, limit)
	if err != nil {
		return err
	}
	// A document this replica holds already (queued from its event, long
	// behind its user's others) is claimed too, and counts as nothing new.
	added := 0
	for _, w := range waiting {
		if c.queue.offer(w.UserID, w.ID) == queued {
			added++
		}
	}
	if added > 0 {
		c.metrics.Classifications.WithLabelValues(OutcomeRecovered).Add(float64(added))
		zerolog.Ctx(ctx).Info().Int("claimed", len(waiting)).Int("queued", added).Msg("documents waiting too long taken up")
	}
	return nil
}

// classify classifies e's document and settles it in the queue.
func (c *Classifier) classify(ctx context.Context, e *entry) {
	log := zerolog.Ctx(ctx).With().Str("document_id", e.id.String()).Str("user_id", e.user.String()).Logger()
	ctx, cancel := context.WithTimeout(log.WithContext(ctx), HandleTimeout)
	defer cancel()
	outcome, result, err := c.docs.Classify(ctx, e.id)
	if err != nil {
		c.queue.done(e, c.failed(ctx, log, e, err))
		return
	}
	c.queue.done(e, 0)
	c.metrics.Classifications.WithLabelValues(outcome).Inc()
	switch outcome {
	case document.ClassifyFailed:
		log.Info().Str("reason", result.Failure).Str("detected_type", result.DetectedType).Msg("classification failed")
	case document.ClassifyDone:
		log.Info().Str("classification", result.Category).Float64("confidence", result.Confidence).Msg("document classified")
	}
}

// failed decides what follows a passing failure of e: the pause before the
// next try, or 0 once the consumer's MaxDeliver tries failed in a row —
// then the document rests for restAfterGivingUp (if PostgreSQL can record
// that; otherwise the recovery finds it sooner).
func (c *Classifier) failed(ctx context.Context, log zerolog.Logger, e *entry, err error) time.Duration {
	e.failures++
	if retry := events.ClassifierConsumer; e.failures < retry.MaxDeliver {
		delay := retry.Backoff[min(e.failures-1, len(retry.Backoff)-1)]
		c.metrics.Classifications.WithLabelValues(OutcomeRetried).Inc()
		log.Warn().Err(err).Int("failures", e.failures).Dur("retry_in", delay).Msg("classification failed for now, will retry")
		return delay
	}
	c.metrics.Classifications.WithLabelValues(OutcomeGaveUp).Inc()
	log.Error().Err(err).Int("failures", e.failures).Dur("rest", restAfterGivingUp).Msg("classification failed for the last time on this replica")
	if perr := c.docs.PostponeClassification(ctx, e.id, restAfterGivingUp); perr != nil {
		log.Warn().Err(perr).Msg("could not postpone the recovery")
	}
	return 0
}
