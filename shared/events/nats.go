package events

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/shared/document"
)

// Streams and subjects.
const (
	StreamMinIO     = "MINIO_EVENTS"
	SubjectMinIO    = "minio.events"
	StreamDocuments = "DOCUMENTS"
	SubjectDocument = document.SubjectAllEvents

	// StreamSweeper holds the sweeper's schedule, ticks and run results,
	// under subjects the sweeper names.
	StreamSweeper  = "SWEEPER"
	SubjectSweeper = "sweeper.>"
)

// LargestNotification bounds the largest notification MinIO makes. A
// client sets part of one: MinIO copies the first X-Forwarded-For address
// twice (requestParameters.sourceIPAddress, source.host) and the
// User-Agent once, and JSON writes each "<", ">" or "&" as 6 bytes. MinIO
// refuses (400) a request whose headers (the first value of each) add up
// to more than 8 KiB (isHTTPHeaderSizeTooLarge in its cmd/generic-handlers.go),
// so a notification is at most about 12 × 8 KiB plus its own 1.5 KB: about
// 100 KB. TestRealMinIOPublishesEvents (deploy) measures it with the real
// MinIO.
const LargestNotification = 128 << 10

// MaxNotificationBytes bounds a message of MINIO_EVENTS (its MaxMsgSize),
// and what the confirmer parses: eight times LargestNotification, room for
// a MinIO with other limits. A notification the stream refused would stay
// at the head of MinIO's PRIMARY queue, retried every 3 s with every later
// event behind it, so no limit on its path may be below what MinIO can
// make: NATS servers must let clients publish MaxPayload.
const MaxNotificationBytes = 1 << 20

// MaxPayload is the max_payload the NATS servers DocuVault uses must allow
// at least (NATS's default): MinIO publishes notifications up to
// MaxNotificationBytes.
const MaxPayload = MaxNotificationBytes

// MinIOConsumer is the durable consumer of MINIO_EVENTS that every
// confirmer replica shares. MINIO_EVENTS keeps a notification only while
// a consumer still has to take it (interest retention), so the consumer
// is made with the stream: a notification published before the first
// confirmer started would otherwise be dropped at once.
const MinIOConsumer = "confirmer"

// MinServerVersion is the oldest NATS server DocuVault runs on: message
// schedules with @every arrived in 2.14.
const MinServerVersion = "2.14.0"

// ConnectConfig says how to reach NATS.
type ConnectConfig struct {
	URL      string
	User     string // empty: connect without credentials (embedded dev and test servers)
	Password string
	Name     string // the client name the server shows, e.g. the service
	// InboxPrefix is the prefix of the subjects the connection receives
	// replies on (API answers, PubAcks, pulled messages), "_INBOX_<role>"
	// for a role's connection: nats.conf lets each user subscribe to its
	// own prefix only, so no role can read another's replies. Empty means
	// NATS's "_INBOX".
	InboxPrefix string
}

// Connect connects to NATS, reconnecting for ever after outages, and fails
// when the server is older than MinServerVersion.
func Connect(cfg ConnectConfig, log zerolog.Logger) (*nats.Conn, jetstream.JetStream, error) {
	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.RetryOnFailedConnect(false),
		nats.DisconnectErrHandler(func(nc *nats.Conn, err error) {
			if err == nil || nc.IsClosed() || nc.IsDraining() {
				return // closed on purpose, at shutdown
			}
			log.Warn().Err(err).Msg("nats disconnected")
		}),
		nats.ReconnectHandler(func(*nats.Conn) { log.Info().Msg("nats reconnected") }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			log.Warn().Err(err).Msg("nats async error")
		}),
	}
	if cfg.User != "" {
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password))
	}
	if cfg.InboxPrefix != "" {
		opts = append(opts, nats.CustomInboxPrefix(cfg.InboxPrefix))
	}
	nc, err := nats.Connect(cfg.URL, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to NATS at NATS_URL: %w", err)
	}
	if v := nc.ConnectedServerVersion(); !versionAtLeast(v, MinServerVersion) {
		nc.Close()
		return nil, nil, fmt.Errorf("NATS server version %s is too old: DocuVault needs %s or newer (JetStream message schedules with @every)", v, MinServerVersion)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

// versionAtLeast compares dotted versions such as "2.15.2" or "2.14.0-beta".
func versionAtLeast(have, want string) bool {
	h, w := parseVersion(have), parseVersion(want)
	for i := range w {
		if h[i] != w[i] {
			return h[i] > w[i]
		}
	}
	return true
}

func parseVersion(v string) [3]int {
	var out [3]int
	v, _, _ = strings.Cut(strings.TrimPrefix(v, "v"), "-")
	for i, part := range strings.SplitN(v, ".", 3) {
		out[i], _ = strconv.Atoi(part)
	}
	return out
}

// DuplicateWindow is how long JetStream remembers Nats-Msg-Id values of
// document events: a relay that crashed between publish and commit
// republishes well within it.
const DuplicateWindow = 10 * time.Minute

// StreamLimits bound what the streams may hold.
//
// MINIO_EVENTS is a queue of work: a notification leaves it once the
// confirmers have acknowledged it (interest retention), so its limits
// bound only the backlog, which grows while no confirmer runs. A full
// backlog refuses new notifications (DiscardNew): MinIO keeps them in its
// queue directory and retries, and nothing is lost.
//
// DOCUMENTS is a log for subscribers: the newest events, within MaxAge and
// MaxBytes. When full it drops its oldest events (DiscardOld), never
// refuses a new one, so the relay always drains the outbox; and it keeps
// at most DocumentsMaxPerSubject events of each subject (one type of one
// user's events), so that one user's flood cannot push everyone else's
// recent events out. What reads DOCUMENTS must not depend on old events
// staying: the classifier recovers documents whose event it never saw, and
// a live stream resuming from an event no longer held starts afresh.
type StreamLimits struct {
	MinIOMaxBytes          int64         // MINIO_EVENTS: the backlog
	MinIOMaxAge            time.Duration // MINIO_EVENTS
	DocumentsMaxBytes      int64         // DOCUMENTS: the retained window
	DocumentsMaxAge        time.Duration // DOCUMENTS
	DocumentsMaxPerSubject int64         // DOCUMENTS: events kept of one type of one user
	// Replicas is how many cluster nodes hold each stream, and the durable
	// consumers on it (which inherit it): 1 on a single server, 3 on a
	// three-node cluster, so that losing a node loses nothing. 0 means 1.
	Replicas int
}

// DefaultStreamLimits are the limits of a zero StreamLimits field.
var DefaultStreamLimits = StreamLimits{
	MinIOMaxBytes:          1 << 30,
	MinIOMaxAge:            7 * 24 * time.Hour,
	DocumentsMaxBytes:      1 << 30,
	DocumentsMaxAge:        30 * 24 * time.Hour,
	DocumentsMaxPerSubject: 10000,
}

// Fixed limits: no DocuVault message comes near them.
const (
	// MaxDocumentEventBytes bounds a document event (DOCUMENTS' MaxMsgSize):
	// one is a few hundred bytes.
	MaxDocumentEventBytes = 64 << 10
	sweeperMaxBytes       = 64 << 20
)

// EnsureStreams creates or updates the streams DocuVault uses, with l's
// limits and replica count; it is idempotent and safe from many replicas.
// A stream created earlier with another replica count is updated to l's
// (JetStream moves it; nothing is re-created).
func EnsureStreams(ctx context.Context, js jetstream.JetStream, l StreamLimits) error {
	d := DefaultStreamLimits
	l.MinIOMaxBytes = cmp.Or(l.MinIOMaxBytes, d.MinIOMaxBytes)
	l.MinIOMaxAge = cmp.Or(l.MinIOMaxAge, d.MinIOMaxAge)
	l.DocumentsMaxBytes = cmp.Or(l.DocumentsMaxBytes, d.DocumentsMaxBytes)
	l.DocumentsMaxAge = cmp.Or(l.DocumentsMaxAge, d.DocumentsMaxAge)
	l.DocumentsMaxPerSubject = cmp.Or(l.DocumentsMaxPerSubject, d.DocumentsMaxPerSubject)
	l.Replicas = max(l.Replicas, 1)
	streams := []jetstream.StreamConfig{
		{
			Name:        StreamMinIO,
			Description: "MinIO bucket notifications (s3:ObjectCreated:*)",
			Subjects:    []string{SubjectMinIO},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.InterestPolicy,
			MaxAge:      l.MinIOMaxAge,
			MaxBytes:    l.MinIOMaxBytes,
			MaxMsgSize:  MaxNotificationBytes,
			Discard:     jetstream.DiscardNew,
			Duplicates:  2 * time.Minute,
		},
		{
			Name:        StreamDocuments,
			Description: "DocuVault document events (CloudEvents JSON)",
			Subjects:    []string{SubjectDocument},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
			MaxAge:      l.DocumentsMaxAge,
			MaxBytes:    l.DocumentsMaxBytes,
			MaxMsgSize:  MaxDocumentEventBytes,
			Discard:     jetstream.DiscardOld,
			Duplicates:  DuplicateWindow,
			// Per subject: document.<type>.<user>.
			MaxMsgsPerSubject: l.DocumentsMaxPerSubject,
		},
		{
			Name:        StreamSweeper,
			Description: "sweeper schedule, ticks and run results",
			Subjects:    []string{SubjectSweeper},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
			// No MaxAge: it would expire the schedule message itself. Ticks
			// and results are bounded per subject instead, the oldest going
			// first; MaxBytes is a backstop those never reach.
			MaxMsgsPerSubject: 1000,
			MaxBytes:          sweeperMaxBytes,
			AllowMsgSchedules: true,
			Duplicates:        DuplicateWindow,
		},
	}
	for _, cfg := range streams {
		cfg.Replicas = l.Replicas
		if cfg.Retention == jetstream.InterestPolicy {
			if err := ensureInterest(ctx, js, cfg); err != nil {
				return err
			}
		}
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("create stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}

// ensureInterest makes sure MINIO_EVENTS (cfg) has its durable consumer
// before the stream is made, or moved, to interest retention: a stream
// with interest retention drops at once a message no consumer wants, and
// a stream switched to it without a consumer drops every message it held.
// A new stream is made with limits retention first, to hold the consumer;
// an existing one (limits retention before DocuVault made notifications a
// work queue) keeps all it holds: the switch drops only what the consumer
// acknowledged already, and the rest is delivered as before.
//
// The consumer is made only when missing; Setup then brings it to
// ConfirmerConsumer's settings.
func ensureInterest(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig) error {
	if _, err := js.Stream(ctx, cfg.Name); errors.Is(err, jetstream.ErrStreamNotFound) {
		first := cfg
		first.Retention = jetstream.LimitsPolicy
		if _, err := js.CreateStream(ctx, first); err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return fmt.Errorf("create stream %s: %w", cfg.Name, err)
		}
	} else if err != nil {
		return fmt.Errorf("stream %s: %w", cfg.Name, err)
	}
	_, err := js.Consumer(ctx, cfg.Name, MinIOConsumer)
	if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		if err != nil {
			return fmt.Errorf("consumer %s: %w", MinIOConsumer, err)
		}
		return nil
	}
	_, err = js.CreateConsumer(ctx, cfg.Name, ConfirmerConsumer.config())
	if err != nil && !errors.Is(err, jetstream.ErrConsumerExists) {
		return fmt.Errorf("create consumer %s: %w", MinIOConsumer, err)
	}
	return nil
}
