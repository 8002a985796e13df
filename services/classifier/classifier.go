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
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/shared/app"
	"github.com/docuvault/docuvault/shared/classify"
	"github.com/docuvault/docuvault/shared/config"
	"github.com/docuvault/docuvault/shared/document"
	"github.com/docuvault/docuvault/shared/events"
	"github.com/docuvault/docuvault/shared/metrics"
)

// ConsumerName is the durable consumer every classifier replica shares.
const ConsumerName = "classifier"

// Delivery settings: a document whose store is away is tried again with
// growing pauses; a document that can never be read is failed, not retried.
var (
	MaxDeliver = 6
	Backoff    = []time.Duration{2 * time.Second, 5 * time.Second, 15 * time.Second, 30 * time.Second, time.Minute}
)

// handleTimeout bounds one document's classification, and classifyTimeout
// the parsing within it. The parsers' work budget ends any document within
// about 2 s of CPU; the timeout is the backstop, short enough that a
// document still being parsed when it passes is failed as too_complex (and
// acked) with time left to record that, rather than running out the
// handler's time and coming back with every redelivery.
const (
	handleTimeout   = 30 * time.Second
	classifyTimeout = 10 * time.Second
)

// Workers is how many documents one replica classifies at once.
const Workers = 4

// Reader reads the start of a stored object.
type Reader interface {
	ReadPrefix(ctx context.Context, key string, n int64) ([]byte, error)
}

// Stats counts what the classifier did; the fields only grow.
type Stats struct {
	Classified atomic.Int64 // documents that got a category
	Failed     atomic.Int64 // documents whose classification failed (type mismatch, unreadable, too complex)
	Skipped    atomic.Int64 // events of documents deleted or classified already
	Retried    atomic.Int64 // messages nak'ed for a later try
	Terminated atomic.Int64 // malformed messages
}

// Classifier handles document.uploaded events.
type Classifier struct {
	docs     *document.Service
	store    document.Store
	objects  Reader
	rules    *classify.Classifier
	maxBytes int64
	metrics  *metrics.Metrics
	log      zerolog.Logger
	Stats    Stats
}

// New returns a Classifier.
func New(docs *document.Service, store document.Store, objects Reader, rules *classify.Classifier, maxBytes int64, m *metrics.Metrics, log zerolog.Logger) *Classifier {
	return &Classifier{docs: docs, store: store, objects: objects, rules: rules, maxBytes: maxBytes, metrics: m, log: log}
}

// ConsumerConfig is the durable consumer the classifier replicas share.
func ConsumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       ConsumerName,
		Description:   "classifies uploaded documents",
		FilterSubject: document.SubjectOfType(document.EventUploaded),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       time.Minute,
		MaxDeliver:    MaxDeliver,
		BackOff:       Backoff,
		MaxAckPending: 256,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
}

// Handle classifies the document of one document.uploaded event.
func (c *Classifier) Handle(ctx context.Context, msg jetstream.Msg) {
	meta, _ := msg.Metadata()
	var seq, delivered uint64 = 0, 1
	if meta != nil {
		seq, delivered = meta.Sequence.Stream, meta.NumDelivered
	}
	if delivered > 1 {
		c.metrics.Redeliveries.WithLabelValues(ConsumerName).Inc()
	}
	log := c.log.With().Uint64("stream_seq", seq).Logger()
	var e document.Event
	if err := json.Unmarshal(msg.Data(), &e); err != nil || e.Type != document.EventUploaded {
		c.Stats.Terminated.Add(1)
		c.metrics.Terminated.WithLabelValues(ConsumerName).Inc()
		log.Error().Err(err).Msg("malformed document event terminated")
		_ = msg.TermWithReason("malformed")
		return
	}
	log = log.With().Str("document_id", e.Data.DocumentID.String()).Logger()
	ctx, cancel := context.WithTimeout(log.WithContext(ctx), handleTimeout)
	defer cancel()
	if err := c.classify(ctx, e); err != nil {
		c.Stats.Retried.Add(1)
		delay := Backoff[min(int(delivered)-1, len(Backoff)-1)]
		log.Warn().Err(err).Dur("retry_in", delay).Msg("classification failed, will retry")
		_ = msg.NakWithDelay(delay)
		return
	}
	_ = msg.Ack()
}

// classify reads, classifies and records one document; a returned error
// is passing (store or object store away) and worth a retry.
func (c *Classifier) classify(ctx context.Context, e document.Event) error {
	d, err := c.store.Document(ctx, e.Data.DocumentID)
	switch {
	case document.ErrorCode(err) == document.NotFound:
		c.Stats.Skipped.Add(1) // deleted before its turn
		return nil
	case err != nil:
		return err
	case d.Status != document.StatusUploaded:
		c.Stats.Skipped.Add(1) // classified already: a redelivery or an old event
		return nil
	}
	data, err := c.objects.ReadPrefix(ctx, d.ObjectKey, c.maxBytes)
	if document.ErrorCode(err) == document.UploadMissing {
		c.Stats.Skipped.Add(1) // deleted while we looked
		return nil
	}
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, classifyTimeout)
	r := c.rules.Classify(cctx, data, d.ContentType)
	cancel()
	if err := ctx.Err(); err != nil {
		// The handler itself is out of time (the reads were slow) or
		// stopping: a too_complex result may be its doing, and nothing can
		// be recorded now. The document is worth another try.
		return fmt.Errorf("classification cut short: %w", err)
	}
	applied, err := c.docs.ApplyClassification(ctx, d.ID, document.Classification{
		Category:     r.Category,
		DetectedType: r.DetectedType,
		Confidence:   r.Confidence,
		Failure:      r.Failure,
	})
	if err != nil || !applied {
		return err
	}
	log := zerolog.Ctx(ctx)
	if r.Failure != "" {
		c.Stats.Failed.Add(1)
		log.Info().Str("reason", r.Failure).Str("detected_type", r.DetectedType).Msg("classification failed")
	} else {
		c.Stats.Classified.Add(1)
		log.Info().Str("classification", r.Category).Float64("confidence", r.Confidence).Msg("document classified")
	}
	return nil
}

// Consume handles events until ctx ends, then finishes those in hand.
func (c *Classifier) Consume(ctx context.Context, js jetstream.JetStream) error {
	return events.Consume(ctx, js, events.StreamDocuments, ConsumerConfig(), Workers, c.Handle, c.log)
}

// Service is a running classifier.
type Service struct {
	app        *app.App
	Classifier *Classifier
}

// Open connects to everything and loads the rules (CLASSIFY_RULES, or the
// built-in ones).
func Open(ctx context.Context, cfg config.Config, log zerolog.Logger) (*Service, error) {
	rules := classify.DefaultRules()
	if cfg.ClassifyRules != "" {
		var err error
		if rules, err = classify.LoadRules(cfg.ClassifyRules); err != nil {
			return nil, fmt.Errorf("CLASSIFY_RULES: %w", err)
		}
	}
	a, err := app.Open(ctx, cfg, log, "classifier")
	if err != nil {
		return nil, err
	}
	c := New(a.Docs, a.Store, a.Objects, classify.New(rules), cfg.ClassifyMaxBytes, a.Metrics, log)
	return &Service{app: a, Classifier: c}, nil
}

// Run relays the outbox and classifies until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	return s.app.RunWithRelay(ctx, func(ctx context.Context) error { return s.Classifier.Consume(ctx, s.app.JS) })
}

// Close releases the service's connections.
func (s *Service) Close() { s.app.Close() }

// Run is the classifier service: Open, then Run until ctx ends.
func Run(ctx context.Context, cfg config.Config, log zerolog.Logger) error {
	return app.Run(ctx, func() (*Service, error) { return Open(ctx, cfg, log) })
}
