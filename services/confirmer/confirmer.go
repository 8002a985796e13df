// Package confirmer is the door of the Confirm use case that MinIO's bucket
// notifications come through: a durable JetStream consumer on MINIO_EVENTS,
// shared by every replica, that confirms each object a browser PUT even
// when the browser never calls /confirm.
package confirmer

import (
	"context"
	"errors"
	"time"

	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/shared/document"
	"github.com/docuvault/docuvault/shared/events"
	"github.com/docuvault/docuvault/shared/metrics"
)

// ConsumerName is the durable consumer every confirmer replica shares.
const ConsumerName = events.MinIOConsumer

// consumer is the durable consumer the confirmer replicas share
// (events.ConfirmerConsumer, made by setup: its delivery settings are
// written there). A message's handling is bounded well inside its AckWait,
// so a hung dependency turns into a retry and shutdown never waits longer
// than that.
var consumer = events.Consumer{
	Durable: events.ConfirmerConsumer,
	Workers: 16,
	Timeout: 20 * time.Second,
}

// Docs is the use case the confirmer is a door of.
type Docs interface {
	// ConfirmObject handles the notification that key was written, with
	// the size and etag it reports.
	ConfirmObject(ctx context.Context, key string, written document.ObjectInfo) (document.Confirmation, error)
}

// Bus runs the confirmer's durable consumer with the one consumer loop.
type Bus interface {
	Consume(ctx context.Context, c events.Consumer, h events.Handler) error
}

// Confirmer handles MinIO notifications.
type Confirmer struct {
	docs    Docs
	bus     Bus
	bucket  string
	log     zerolog.Logger
	metrics *metrics.Metrics
	// done holds the writes (key and sequencer) already settled —
	// confirmed, rejected, found charged or removed: MinIO sends every
	// notification twice (targets PRIMARY and LIVE), and the second copy
	// then needs no database read. It remembers writes, not keys: another
	// write of the key (an upload URL used again after a delete or a
	// rejection, a replaced object) has another sequencer and is checked.
	done *keySet
}

// New returns a Confirmer of the objects in bucket, fed by bus.
func New(docs Docs, bus Bus, bucket string, m *metrics.Metrics, log zerolog.Logger) *Confirmer {
	return &Confirmer{docs: docs, bus: bus, bucket: bucket, metrics: m, log: log, done: newKeySet(doneKeys)}
}

// doneKeys bounds the confirmed keys a replica remembers (about 200 bytes each).
const doneKeys = 16384

// Run handles notifications until ctx ends, then finishes those in hand.
func (c *Confirmer) Run(ctx context.Context) error {
	return c.bus.Consume(c.log.WithContext(ctx), consumer, c.Handle)
}

// Handle confirms every object-created record of one notification. A
// record that fails for a passing reason makes the whole message retried;
// records already done are no-ops the second time.
func (c *Confirmer) Handle(ctx context.Context, msg events.Message) events.Outcome {
	records, err := ParseNotification(msg.Data)
	if err != nil {
		return events.Term(err)
	}
	var transient error
	for _, r := range records {
		if r.Bucket != c.bucket {
			c.count("ignored")
			continue
		}
		write := r.Key + "\x00" + r.Sequencer
		if r.Sequencer != "" && c.done.has(write) {
			c.count(string(document.OutcomeAlready))
			continue
		}
		res, err := c.docs.ConfirmObject(ctx, r.Key, document.ObjectInfo{Size: r.Size, ETag: r.ETag})
		log := zerolog.Ctx(ctx)
		switch code := document.ErrorCode(err); {
		case res.Stray == document.StrayUnknown || res.Stray == document.StrayRejected:
			log.Warn().Str("stray", string(res.Stray)).Str("object_key", r.Key).Msg("object of no live document removed")
		case res.Stray != "":
			log.Warn().Str("stray", string(res.Stray)).Str("document_id", res.Document.ID.String()).Str("user_id", res.Document.UserID.String()).
				Int64("size_bytes", res.Document.SizeBytes).Msg("replaced object of a charged document reconciled")
		case code == "":
			if res.Changed {
				log.Info().Str("document_id", res.Document.ID.String()).Str("user_id", res.Document.UserID.String()).Msg("document confirmed")
			}
		case document.IsRejection(err):
			log.Info().Str("reason", string(code)).Msg("upload rejected")
		case code == document.NotFound || code == document.UploadMissing:
			c.count("unknown")
			log.Info().Str("reason", string(code)).Msg("notification matches no pending upload")
		default:
			transient = errors.Join(transient, err)
			continue
		}
		if outcome := document.Outcome(res, err); outcome != document.OutcomeError {
			c.count(string(outcome))
		}
		if res.Leftover {
			// Rejected, but its bytes are still stored: try again later,
			// when the document is rejected and the object a stray.
			transient = errors.Join(transient, errors.New("object of a rejected document not removed"))
			continue
		}
		if r.Sequencer != "" {
			c.done.add(write) // this write is settled: its second copy changes nothing
		}
	}
	if transient != nil {
		return events.Retry(transient)
	}
	return events.Ack()
}

// count counts a record's outcome at the notification door.
func (c *Confirmer) count(outcome string) {
	c.metrics.Confirms.WithLabelValues("event", outcome).Inc()
}
