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

// MaxNotificationBytes bounds a MinIO notification: MINIO_EVENTS refuses a
// larger one, and the confirmer would not parse it.
const MaxNotificationBytes = 1 << 20

// MinServerVersion is the oldest NATS server DocuVault runs on: message
// schedules with @every arrived in 2.14.
const MinServerVersion = "2.14.0"

// ConnectConfig says how to reach NATS.
type ConnectConfig struct {
	URL      string
	User     string
	Password string
	Name     string // the client name the server shows, e.g. the service
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

// StreamLimits bound what the streams may hold. A full MINIO_EVENTS or
// DOCUMENTS refuses new messages (DiscardNew) rather than dropping old ones
// nobody may have read: MinIO keeps refused notifications in its queue
// directory and the relays keep refused events in the outbox, and both
// retry until the age limit or an operator makes room.
type StreamLimits struct {
	MinIOMaxBytes     int64         // MINIO_EVENTS
	MinIOMaxAge       time.Duration // MINIO_EVENTS
	DocumentsMaxBytes int64         // DOCUMENTS
	DocumentsMaxAge   time.Duration // DOCUMENTS
	// Replicas is how many cluster nodes hold each stream, and the durable
	// consumers on it (which inherit it): 1 on a single server, 3 on a
	// three-node cluster, so that losing a node loses nothing. 0 means 1.
	Replicas int
}

// DefaultStreamLimits are the limits of a zero StreamLimits field.
var DefaultStreamLimits = StreamLimits{
	MinIOMaxBytes:     1 << 30,
	MinIOMaxAge:       7 * 24 * time.Hour,
	DocumentsMaxBytes: 1 << 30,
	DocumentsMaxAge:   30 * 24 * time.Hour,
}

// Fixed limits: no DocuVault message comes near them.
const (
	maxDocumentEventBytes = 64 << 10 // a document event is a few hundred bytes
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
	l.Replicas = max(l.Replicas, 1)
	streams := []jetstream.StreamConfig{
		{
			Name:        StreamMinIO,
			Description: "MinIO bucket notifications (s3:ObjectCreated:*)",
			Subjects:    []string{SubjectMinIO},
			Storage:     jetstream.FileStorage,
			Retention:   jetstream.LimitsPolicy,
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
			MaxMsgSize:  maxDocumentEventBytes,
			Discard:     jetstream.DiscardNew,
			Duplicates:  DuplicateWindow,
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
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("create stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}

// EnsureConsumer creates or updates a durable consumer, retrying with
// back-off while JetStream cannot be reached, until ctx ends: a service that
// starts during a NATS outage waits for NATS instead of exiting.
func EnsureConsumer(ctx context.Context, js jetstream.JetStream, stream string, cfg jetstream.ConsumerConfig, log zerolog.Logger) (jetstream.Consumer, error) {
	backoff := 100 * time.Millisecond
	for {
		attempt, cancel := context.WithTimeout(ctx, 5*time.Second)
		cons, err := js.CreateOrUpdateConsumer(attempt, stream, cfg)
		cancel()
		if err == nil {
			return cons, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("create consumer %s: %w", cfg.Durable, err)
		}
		log.Warn().Err(err).Str("consumer", cfg.Durable).Dur("retry_in", backoff).Msg("create consumer failed")
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("create consumer %s: %w", cfg.Durable, ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// The headers JetStream reads a message schedule from.
const (
	scheduleHeader       = "Nats-Schedule"
	scheduleTargetHeader = "Nats-Schedule-Target"
)

// EnsureSchedule makes sure stream holds a message schedule on subject
// that fires a message on target every interval (stream must allow
// schedules, and its subjects cover both). It publishes only when the
// schedule is missing or its interval changed: publishing it again
// restarts its timer, and a restart loop must not postpone the target for
// ever. Replicas starting at once race safely: the publish expects the last
// sequence it saw, and the loser finds the winner's schedule.
func EnsureSchedule(ctx context.Context, js jetstream.JetStream, stream, subject, target string, interval time.Duration) (published bool, err error) {
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return false, fmt.Errorf("stream %s: %w", stream, err)
	}
	want := "@every " + interval.String() // as jetstream.WithScheduleEvery writes it
	for attempt := 0; attempt < 3; attempt++ {
		var lastSeq uint64
		msg, err := st.GetLastMsgForSubject(ctx, subject)
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
		case err != nil:
			return false, fmt.Errorf("read schedule %s: %w", subject, err)
		case msg.Header.Get(scheduleHeader) == want && msg.Header.Get(scheduleTargetHeader) == target:
			return false, nil
		default:
			lastSeq = msg.Sequence
		}
		_, err = js.PublishMsg(ctx, &nats.Msg{Subject: subject, Header: nats.Header{}},
			jetstream.WithScheduleEvery(interval),
			jetstream.WithScheduleTarget(target),
			jetstream.WithExpectLastSequencePerSubject(lastSeq))
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
			continue // another replica published first: look again
		}
		if err != nil {
			return false, fmt.Errorf("publish schedule %s: %w", subject, err)
		}
		return true, nil
	}
	return false, fmt.Errorf("schedule %s kept changing under us", subject)
}
