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
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

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

// HandleTimeout bounds one document's classification, and ClassifyTimeout
// (the use case's Config.ClassifyTimeout) the parsing within it. The
// parsers' work budget ends any document within about 2 s of CPU; the
// timeout is the backstop, short enough that a document still being parsed
// when it passes is failed as too_complex (and acked) with time left to
// record that, rather than running out the handler's time and coming back
// with every redelivery.
const (
	HandleTimeout   = 30 * time.Second
	ClassifyTimeout = 10 * time.Second
)

// Consumer is the durable consumer the classifier replicas share.
var Consumer = events.Consumer{
	Stream:        events.StreamDocuments,
	Name:          ConsumerName,
	Description:   "classifies uploaded documents",
	Subject:       document.SubjectOfType(document.EventUploaded),
	AckWait:       time.Minute,
	MaxDeliver:    MaxDeliver,
	Backoff:       Backoff,
	MaxAckPending: 256,
	Workers:       4,
	Timeout:       HandleTimeout,
}

// Docs is the use case the classifier is the door of.
type Docs interface {
	Classify(ctx context.Context, id uuid.UUID) (outcome string, c document.Classification, err error)
}

// Bus runs the classifier's durable consumer with the one consumer loop.
type Bus interface {
	Consume(ctx context.Context, c events.Consumer, h events.Handler) error
}

// Classifier handles document.uploaded events.
type Classifier struct {
	docs    Docs
	bus     Bus
	metrics *metrics.Metrics
	log     zerolog.Logger
}

// New returns a Classifier fed by bus.
func New(docs Docs, bus Bus, m *metrics.Metrics, log zerolog.Logger) *Classifier {
	return &Classifier{docs: docs, bus: bus, metrics: m, log: log}
}

// Run classifies until ctx ends, then finishes the documents in hand.
func (c *Classifier) Run(ctx context.Context) error {
	return c.bus.Consume(c.log.WithContext(ctx), Consumer, c.Handle)
}

// Handle classifies the document of one document.uploaded event.
func (c *Classifier) Handle(ctx context.Context, msg events.Message) events.Outcome {
	var e document.Event
	if err := json.Unmarshal(msg.Data, &e); err != nil || e.Type != document.EventUploaded {
		return events.Term(fmt.Errorf("malformed document event: %v", err))
	}
	log := zerolog.Ctx(ctx).With().Str("document_id", e.Data.DocumentID.String()).Logger()
	outcome, result, err := c.docs.Classify(log.WithContext(ctx), e.Data.DocumentID)
	if err != nil {
		return events.Retry(err)
	}
	c.metrics.Classifications.WithLabelValues(outcome).Inc()
	switch outcome {
	case document.ClassifyFailed:
		log.Info().Str("reason", result.Failure).Str("detected_type", result.DetectedType).Msg("classification failed")
	case document.ClassifyDone:
		log.Info().Str("classification", result.Category).Float64("confidence", result.Confidence).Msg("document classified")
	}
	return events.Ack()
}
