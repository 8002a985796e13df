// Package scanner is the service that scans stored documents for malware
// before anyone may download them: a stage (shared/stage) fed by
// document.uploaded events streams each document whose scan is pending
// from MinIO to clamd (shared/clamav, INSTREAM) and records the verdict
// (document.Service.Scan): clean, the document goes on to the classifier;
// infected, it is rejected, uncharged and its object removed. Fail-closed:
// while clamd is away or slow a document waits, is retried with back-off,
// and is never marked clean.
package scanner

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

// ConsumerName is the durable consumer every scanner replica shares.
const ConsumerName = events.ScannerConsumerName

// HandleTimeout bounds one document's scan, reading it from MinIO and
// clamd's verdict: at clamd's pace (tens of MB/s) a document of
// SCAN_MAX_BYTES takes seconds, so a scan still running after it is stuck.
const HandleTimeout = 2 * time.Minute

// Limits are the stage's defaults, but for one user's share: clamd scans
// with a thread per stream and its CPU is the bound, so a replica sends it
// Workers streams at once and at most half of them of one user: one
// user's backlog never holds most scans.
var Limits = func() stage.Limits {
	l := stage.DefaultLimits
	l.UserWorkers = l.Workers / 2
	return l
}()

// Docs are the use cases the scanner is the door of.
type Docs interface {
	Scan(ctx context.Context, id uuid.UUID) (outcome string, v document.ScanVerdict, err error)
	ClaimUnscanned(ctx context.Context, perUser, limit int) ([]document.Waiting, error)
	stage.Docs
}

// New returns the scanner: the stage that scans stored documents, fairly
// between users, fed by bus; a recovery pass runs every recoverEvery.
func New(docs Docs, bus stage.Bus, recoverEvery time.Duration, m *metrics.Metrics, log zerolog.Logger) *stage.Runner {
	return stage.New(stage.Stage{
		Consumer:      events.Consumer{Durable: events.ScannerConsumer, Workers: 2, Timeout: 10 * time.Second},
		Bus:           bus,
		Events:        []document.EventType{document.EventUploaded},
		Limits:        Limits,
		RecoverEvery:  recoverEvery,
		HandleTimeout: HandleTimeout,
		Work:          func(ctx context.Context, id uuid.UUID) (string, error) { return scan(ctx, docs, id) },
		Claim:         docs.ClaimUnscanned,
		Docs:          docs,
		Outcomes:      m.Scans,
		Log:           log,
	})
}

// scan scans document id and logs what came of it.
func scan(ctx context.Context, docs Docs, id uuid.UUID) (string, error) {
	start := time.Now()
	outcome, v, err := docs.Scan(ctx, id)
	if err != nil {
		return "", err
	}
	log := zerolog.Ctx(ctx)
	switch outcome {
	case document.ScanRejected:
		log.Info().Str("signature", v.Signature).Dur("took", time.Since(start)).Msg("infected document rejected and removed")
	case document.ScanNotDone:
		log.Info().Str("reason", v.Failure).Msg("document not scanned whole: not downloadable")
	case document.ScanDone:
		log.Info().Dur("took", time.Since(start)).Msg("document scanned clean")
	}
	return outcome, nil
}
