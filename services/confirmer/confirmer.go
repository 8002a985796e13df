// Package confirmer is the door of the Confirm use case that MinIO's bucket
// notifications come through: a durable JetStream consumer on MINIO_EVENTS,
// shared by every replica, that confirms each object a browser PUT even
// when the browser never calls /confirm.
package confirmer

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/shared/app"
	"github.com/docuvault/docuvault/shared/config"
	"github.com/docuvault/docuvault/shared/document"
	"github.com/docuvault/docuvault/shared/events"
	"github.com/docuvault/docuvault/shared/metrics"
	"github.com/docuvault/docuvault/shared/objectstore"
)

// ConsumerName is the durable consumer every confirmer replica shares.
const ConsumerName = "confirmer"

// Delivery settings: a message is tried MaxDeliver times, waiting longer
// after each failure; after that the sweeper recovers the document.
var (
	MaxDeliver = 8
	Backoff    = []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute}
)

// Stats counts what the confirmer did; the fields only grow.
type Stats struct {
	Confirmed atomic.Int64 // documents this confirmer moved to uploaded
	Already   atomic.Int64 // events for documents confirmed before
	Rejected  atomic.Int64 // documents rejected (over quota, too large)
	Unknown   atomic.Int64 // keys DocuVault did not make, or pending uploads whose object is gone
	// Removed counts objects no live document owned (deleted, rejected or
	// unknown documents' keys), removed at once.
	Removed atomic.Int64
	// Reconciled counts charged documents whose object was replaced: their
	// size and charge now follow it, or, over quota, they were rejected.
	Reconciled atomic.Int64
	Ignored    atomic.Int64 // records of other buckets or other events
	Retried    atomic.Int64 // messages nak'ed for a later try
	Terminated atomic.Int64 // malformed messages, never redelivered
}

// Confirmer handles MinIO notifications.
type Confirmer struct {
	docs    *document.Service
	bucket  string
	log     zerolog.Logger
	metrics *metrics.Metrics
	// done holds the writes (key and sequencer) already settled —
	// confirmed, rejected, found charged or removed: MinIO sends every
	// notification twice (targets PRIMARY and LIVE), and the second copy
	// then needs no database read. It remembers writes, not keys: another
	// write of the key (an upload URL used again after a delete or a
	// rejection, a replaced object) has another sequencer and is checked.
	done  *keySet
	Stats Stats
}

// New returns a Confirmer of objects in bucket.
func New(docs *document.Service, bucket string, m *metrics.Metrics, log zerolog.Logger) *Confirmer {
	return &Confirmer{docs: docs, bucket: bucket, metrics: m, log: log, done: newKeySet(doneKeys)}
}

// doneKeys bounds the confirmed keys a replica remembers (about 200 bytes each).
const doneKeys = 16384

// outcome is what to tell JetStream about a message.
type outcome int

const (
	ack outcome = iota
	retry
	term
)

// Handle processes one message and acks, naks with a delay or terminates it.
func (c *Confirmer) Handle(ctx context.Context, msg jetstream.Msg) {
	meta, _ := msg.Metadata()
	var seq uint64
	var delivered uint64 = 1
	if meta != nil {
		seq, delivered = meta.Sequence.Stream, meta.NumDelivered
	}
	log := c.log.With().Uint64("stream_seq", seq).Logger()
	// Bound the work well inside AckWait, so a hung dependency turns into
	// a nak and shutdown never waits longer than this.
	ctx, cancel := context.WithTimeout(ctx, handleTimeout)
	defer cancel()
	if delivered > 1 {
		c.metrics.Redeliveries.WithLabelValues(ConsumerName).Inc()
	}
	out, err := c.process(log.WithContext(ctx), msg.Data())
	switch out {
	case ack:
		_ = msg.Ack()
	case term:
		c.Stats.Terminated.Add(1)
		c.metrics.Terminated.WithLabelValues(ConsumerName).Inc()
		log.Error().Err(err).Msg("malformed notification terminated")
		_ = msg.TermWithReason("malformed")
	case retry:
		c.Stats.Retried.Add(1)
		delay := Backoff[min(int(delivered)-1, len(Backoff)-1)]
		if int(delivered) >= MaxDeliver {
			log.Error().Err(err).Uint64("deliveries", delivered).Msg("confirm failed for the last time; the sweeper will recover it")
		} else {
			log.Warn().Err(err).Dur("retry_in", delay).Msg("confirm failed, will retry")
		}
		_ = msg.NakWithDelay(delay)
	}
}

// process confirms every object-created record of one notification. A
// record that fails for a passing reason makes the whole message retried;
// records already done are no-ops the second time.
func (c *Confirmer) process(ctx context.Context, data []byte) (outcome, error) {
	records, err := events.ParseNotification(data)
	if err != nil {
		return term, err
	}
	var transient error
	for _, r := range records {
		if r.Bucket != c.bucket {
			c.Stats.Ignored.Add(1)
			continue
		}
		write := r.Key + "\x00" + r.Sequencer
		if r.Sequencer != "" && c.done.has(write) {
			c.Stats.Already.Add(1)
			c.metrics.Confirms.WithLabelValues("event", "already").Inc()
			continue
		}
		res, err := c.docs.ConfirmObject(ctx, r.Key, r.ETag)
		if outcome := document.ConfirmOutcome(res, err); outcome != "error" {
			c.metrics.Confirms.WithLabelValues("event", outcome).Inc()
		}
		log := zerolog.Ctx(ctx)
		switch code := document.ErrorCode(err); {
		case res.Stray == document.StrayUnknown || res.Stray == document.StrayRejected:
			c.Stats.Removed.Add(1)
			log.Warn().Str("stray", res.Stray).Str("object_key", r.Key).Msg("object of no live document removed")
		case res.Stray != "":
			c.Stats.Reconciled.Add(1)
			log.Warn().Str("stray", res.Stray).Str("document_id", res.Document.ID.String()).Str("user_id", res.Document.UserID.String()).
				Int64("size_bytes", res.Document.SizeBytes).Msg("replaced object of a charged document reconciled")
		case code == "":
			if res.Changed {
				c.Stats.Confirmed.Add(1)
				log.Info().Str("document_id", res.Document.ID.String()).Str("user_id", res.Document.UserID.String()).Msg("document confirmed")
			} else {
				c.Stats.Already.Add(1)
			}
		case document.IsRejection(err):
			c.Stats.Rejected.Add(1)
			log.Info().Str("reason", string(code)).Msg("upload rejected")
		case code == document.NotFound || code == document.UploadMissing:
			c.Stats.Unknown.Add(1)
			log.Info().Str("reason", string(code)).Msg("notification matches no pending upload")
		default:
			transient = errors.Join(transient, err)
			continue
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
		return retry, transient
	}
	return ack, nil
}

// ConsumerConfig is the durable consumer the confirmer replicas share.
func ConsumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       ConsumerName,
		Description:   "confirms uploads from MinIO notifications",
		FilterSubject: events.SubjectMinIO,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       30 * time.Second,
		MaxDeliver:    MaxDeliver,
		BackOff:       Backoff,
		MaxAckPending: 1024,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
}

// handleTimeout bounds the handling of one message.
const handleTimeout = 20 * time.Second

// Workers is how many notifications one replica processes at once.
const Workers = 16

// Consume processes messages of the durable consumer until ctx ends, then
// waits for the messages in hand.
func (c *Confirmer) Consume(ctx context.Context, js jetstream.JetStream) error {
	return events.Consume(ctx, js, events.StreamMinIO, ConsumerConfig(), Workers, c.Handle, c.log)
}

// Service is a running confirmer: its connections and its handler.
type Service struct {
	app       *app.App
	Confirmer *Confirmer
}

// Open connects to everything and applies the bucket notification rule
// (minio-events.json, or the built-in default).
func Open(ctx context.Context, cfg config.Config, log zerolog.Logger) (*Service, error) {
	a, err := app.Open(ctx, cfg, log, "confirmer")
	if err != nil {
		return nil, err
	}
	rules := objectstore.DefaultNotifications
	if cfg.MinIOEventsConfig != "" {
		if rules, err = objectstore.LoadNotifications(cfg.MinIOEventsConfig); err != nil {
			a.Close()
			return nil, fmt.Errorf("MINIO_EVENTS_CONFIG: %w", err)
		}
	}
	if err := a.Objects.SetNotifications(ctx, rules); err != nil {
		a.Close()
		return nil, fmt.Errorf("bucket notification (is MinIO started with the MINIO_NOTIFY_NATS_*_PRIMARY and _LIVE variables?): %w", err)
	}
	return &Service{app: a, Confirmer: New(a.Docs, cfg.MinIOBucket, a.Metrics, log)}, nil
}

// Run relays the outbox and consumes notifications until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	return s.app.RunWithRelay(ctx, func(ctx context.Context) error { return s.Confirmer.Consume(ctx, s.app.JS) })
}

// Close releases the service's connections.
func (s *Service) Close() { s.app.Close() }

// Run is the confirmer service: Open, then Run until ctx ends.
func Run(ctx context.Context, cfg config.Config, log zerolog.Logger) error {
	return app.Run(ctx, func() (*Service, error) { return Open(ctx, cfg, log) })
}
