// Package classifier is the service that turns stored documents into a
// category: a stage (shared/stage) fed by document.uploaded and
// document.scanned events reads the first CLASSIFY_MAX_BYTES of each
// document waiting for it (found clean, or stored while scanning was off),
// checks that its bytes are what its declared type says, extracts its text
// and classifies it with the rules of shared/classify.
package classifier

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/shared/document"
	"github.com/docuvault/docuvault/shared/events"
	"github.com/docuvault/docuvault/shared/metrics"
	"github.com/docuvault/docuvault/shared/stage"
)

// ConsumerName is the durable consumer every classifier replica shares.
const ConsumerName = events.ClassifierConsumerName

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

// What the classifier did besides classifying (stage's outcomes).
const (
	OutcomeDeferred  = stage.OutcomeDeferred
	OutcomeRecovered = stage.OutcomeRecovered
)

// Docs are the use cases the classifier is the door of.
type Docs interface {
	Classify(ctx context.Context, id uuid.UUID) (outcome string, c document.Classification, err error)
	ClaimUnclassified(ctx context.Context, perUser, limit int) ([]document.Waiting, error)
	stage.Docs
}

// New returns the classifier: the stage that classifies stored documents,
// fairly between users, fed by bus; a recovery pass runs every
// recoverEvery (a fraction of the use case's recovery delay, so that a
// document waits little longer than that delay).
func New(docs Docs, bus stage.Bus, recoverEvery time.Duration, m *metrics.Metrics, log zerolog.Logger) *stage.Runner {
	return stage.New(stage.Stage{
		// Its handler only queues a document, so it needs few workers.
		Consumer:      events.Consumer{Durable: events.ClassifierConsumer, Workers: 2, Timeout: 10 * time.Second},
		Bus:           bus,
		Events:        []document.EventType{document.EventUploaded, document.EventScanned},
		Limits:        stage.DefaultLimits,
		RecoverEvery:  recoverEvery,
		HandleTimeout: HandleTimeout,
		Work:          func(ctx context.Context, id uuid.UUID) (string, error) { return classify(ctx, docs, id) },
		Claim:         docs.ClaimUnclassified,
		Docs:          docs,
		Outcomes:      m.Classifications,
		Log:           log,
	})
}

// classify classifies document id and logs what came of it.
func classify(ctx context.Context, docs Docs, id uuid.UUID) (string, error) {
	outcome, result, err := docs.Classify(ctx, id)
	if err != nil {
		return "", err
	}
	log := zerolog.Ctx(ctx)
	switch outcome {
	case document.ClassifyFailed:
		log.Info().Str("reason", result.Failure).Str("detected_type", result.DetectedType).Msg("classification failed")
	case document.ClassifyDone:
		log.Info().Str("classification", result.Category).Float64("confidence", result.Confidence).Msg("document classified")
	}
	return outcome, nil
}
