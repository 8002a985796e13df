package events

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/shared/document"
)

// The sweeper's subjects, all in the SWEEPER stream (SubjectSweeper). They
// are written here because setup makes the schedule and the consumer on
// them; package sweeper uses them under its own names.
const (
	SubjectSweepSchedule  = "sweeper.schedule"      // holds the message schedule
	SubjectSweepTick      = "sweeper.tick"          // a sweep to run, from the schedule or an admin
	SubjectSweepCompleted = "sweeper.run.completed" // a finished run's counts
)

// The durable consumers' names: each is shared by every replica of its
// service.
const (
	ClassifierConsumerName = "classifier"
	ScannerConsumerName    = "scanner"
	SweeperConsumerName    = "sweeper"
)

// Durable is a durable pull consumer as setup makes it. The three below
// are the only place their settings are written: setup creates them from
// these, and a service's consumer loop binds to the one it names and
// settles messages by the same values (Bus.Consume).
type Durable struct {
	Stream      string // the stream it reads
	Name        string // the durable name
	Description string
	Subjects    []string // the filter subjects
	// AckWait is how long a message may go unsettled before it is
	// delivered again; the loop tells the server a message is still in
	// progress while its handler runs, so a long handler keeps it. With
	// Backoff, the server takes Backoff[0] as the consumer's AckWait
	// instead, and waits Backoff[n-1] for the ack of delivery n.
	AckWait       time.Duration
	MaxDeliver    int
	Backoff       []time.Duration // the delay before delivery n+1 after a retry: Backoff[n-1], the last one repeated
	MaxAckPending int
	// DeliverNew starts a new consumer at the messages published after it
	// was made, instead of at the start of the stream.
	DeliverNew bool
}

// config is the JetStream form of d.
func (d Durable) config() jetstream.ConsumerConfig {
	cfg := jetstream.ConsumerConfig{
		Durable:       d.Name,
		Description:   d.Description,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       d.AckWait,
		MaxDeliver:    d.MaxDeliver,
		BackOff:       d.Backoff,
		MaxAckPending: d.MaxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	if d.DeliverNew {
		cfg.DeliverPolicy = jetstream.DeliverNewPolicy
	}
	// The server keeps one filter as FilterSubject; so does this.
	if len(d.Subjects) == 1 {
		cfg.FilterSubject = d.Subjects[0]
	} else {
		cfg.FilterSubjects = d.Subjects
	}
	return cfg
}

// ConfirmerConsumer is the durable consumer of MINIO_EVENTS the confirmer
// replicas share. A notification is tried MaxDeliver times, waiting longer
// after each failure; after that the sweeper recovers the document. The
// confirmer bounds a message's handling well inside AckWait, so a hung
// dependency turns into a retry.
var ConfirmerConsumer = Durable{
	Stream:        StreamMinIO,
	Name:          MinIOConsumer,
	Description:   "confirms uploads from MinIO notifications",
	Subjects:      []string{SubjectMinIO},
	AckWait:       30 * time.Second,
	MaxDeliver:    8,
	Backoff:       []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute},
	MaxAckPending: 1024,
}

// ClassifierConsumer is the durable consumer of document.uploaded and
// document.scanned events the classifier replicas share (a document is
// classified once found clean, or at once when stored while scanning was
// off). Its handler only queues a document, and never asks for a message
// again: the stage's queue retries (with the same MaxDeliver and Backoff)
// and its recovery take over from JetStream's redelivery (package stage).
// MaxDeliver and Backoff remain for a message whose ack was lost.
var ClassifierConsumer = Durable{
	Stream:        StreamDocuments,
	Name:          ClassifierConsumerName,
	Description:   "classifies uploaded documents",
	Subjects:      []string{document.SubjectOfType(document.EventUploaded), document.SubjectOfType(document.EventScanned)},
	AckWait:       time.Minute,
	MaxDeliver:    6,
	Backoff:       []time.Duration{2 * time.Second, 5 * time.Second, 15 * time.Second, 30 * time.Second, time.Minute},
	MaxAckPending: 256,
}

// ScannerConsumer is the durable consumer of document.uploaded events the
// scanner replicas share, as the classifier's is (the stage's queue
// retries a scan while clamd is away: Backoff between tries, up to
// MaxDeliver in a row, then the document rests and the recovery takes it
// up again; it is never marked clean meanwhile).
var ScannerConsumer = Durable{
	Stream:        StreamDocuments,
	Name:          ScannerConsumerName,
	Description:   "scans stored documents for malware",
	Subjects:      []string{document.SubjectOfType(document.EventUploaded)},
	AckWait:       time.Minute,
	MaxDeliver:    8,
	Backoff:       []time.Duration{2 * time.Second, 5 * time.Second, 15 * time.Second, 30 * time.Second, time.Minute},
	MaxAckPending: 256,
}

// SweeperConsumer is the durable consumer of sweeper.tick the sweeper
// replicas share. One tick is in flight at a time, so runs never overlap;
// AckWait is how long a replica may go silent on a tick before it is handed
// to another (the consumer loop reports progress well within it).
var SweeperConsumer = Durable{
	Stream:        StreamSweeper,
	Name:          SweeperConsumerName,
	Description:   "runs a sweep per tick",
	Subjects:      []string{SubjectSweepTick},
	AckWait:       time.Minute,
	MaxDeliver:    3,
	MaxAckPending: 1,
	DeliverNew:    true,
}

// Durables are the durable consumers setup makes.
func Durables() []Durable {
	return []Durable{ConfirmerConsumer, ClassifierConsumer, ScannerConsumer, SweeperConsumer}
}

// ErrNotSetUp marks what a role needs and does not find on the server:
// `docuvault setup` (the only user allowed to make streams, consumers and
// the schedule) has not run, or ran with an older release.
var ErrNotSetUp = errors.New("run docuvault setup")

// Setup creates or updates the streams with l's limits (EnsureStreams),
// the durable consumers (Durables) and the sweeper's message schedule,
// which fires a tick every sweepEvery. It is idempotent. Only `docuvault
// setup` calls it, as the NATS user setup: the roles may not change
// streams or consumers, and bind to what it made.
func Setup(ctx context.Context, js jetstream.JetStream, l StreamLimits, sweepEvery time.Duration) error {
	if sweepEvery <= 0 {
		return fmt.Errorf("SWEEP_INTERVAL must be positive, got %s", sweepEvery)
	}
	if err := EnsureStreams(ctx, js, l); err != nil {
		return err
	}
	for _, d := range Durables() {
		if _, err := js.CreateOrUpdateConsumer(ctx, d.Stream, d.config()); err != nil {
			return fmt.Errorf("create consumer %s on %s: %w", d.Name, d.Stream, err)
		}
	}
	return ensureSchedule(ctx, js, StreamSweeper, SubjectSweepSchedule, SubjectSweepTick, sweepEvery)
}

// The headers JetStream reads a message schedule from.
const (
	scheduleHeader       = "Nats-Schedule"
	scheduleTargetHeader = "Nats-Schedule-Target"
)

// ensureSchedule makes sure stream holds a message schedule on subject
// that fires a message on target every interval (stream must allow
// schedules, and its subjects cover both). It publishes only when the
// schedule is missing or its interval changed: publishing it again
// restarts its timer, and a restart loop must not postpone the target for
// ever. Replicas starting at once race safely: the publish expects the last
// sequence it saw, and the loser finds the winner's schedule.
func ensureSchedule(ctx context.Context, js jetstream.JetStream, stream, subject, target string, interval time.Duration) error {
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("stream %s: %w", stream, err)
	}
	want := "@every " + interval.String() // as jetstream.WithScheduleEvery writes it
	for attempt := 0; attempt < 3; attempt++ {
		var lastSeq uint64
		msg, err := st.GetLastMsgForSubject(ctx, subject)
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound):
		case err != nil:
			return fmt.Errorf("read schedule %s: %w", subject, err)
		case msg.Header.Get(scheduleHeader) == want && msg.Header.Get(scheduleTargetHeader) == target:
			return nil
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
			return fmt.Errorf("publish schedule %s: %w", subject, err)
		}
		return nil
	}
	return fmt.Errorf("schedule %s kept changing under us", subject)
}

// CheckStreams returns an error wrapping ErrNotSetUp, naming the streams,
// when some of names do not exist (a STREAM.INFO request each). A role
// calls it at start for the streams it publishes to.
func (b *Bus) CheckStreams(ctx context.Context, names ...string) error {
	var missing []string
	for _, name := range names {
		_, err := b.js.Stream(ctx, name)
		switch {
		case errors.Is(err, jetstream.ErrStreamNotFound):
			missing = append(missing, name)
		case err != nil:
			return fmt.Errorf("NATS stream %s: %w", name, err)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("NATS stream %s does not exist: %w", strings.Join(missing, ", "), ErrNotSetUp)
	}
	return nil
}

// SweepSchedule returns how often the sweeper's message schedule fires a
// tick (one message get on SWEEPER); an error wrapping ErrNotSetUp when
// there is none, or it fires on another subject than sweeper.tick.
func (b *Bus) SweepSchedule(ctx context.Context) (every time.Duration, err error) {
	st, err := b.js.Stream(ctx, StreamSweeper)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, fmt.Errorf("NATS stream %s does not exist: %w", StreamSweeper, ErrNotSetUp)
	}
	if err != nil {
		return 0, fmt.Errorf("NATS stream %s: %w", StreamSweeper, err)
	}
	msg, err := st.GetLastMsgForSubject(ctx, SubjectSweepSchedule)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, fmt.Errorf("no sweep schedule on %s: %w", SubjectSweepSchedule, ErrNotSetUp)
	}
	if err != nil {
		return 0, fmt.Errorf("read the sweep schedule: %w", err)
	}
	spec, ok := strings.CutPrefix(msg.Header.Get(scheduleHeader), "@every ")
	every, perr := time.ParseDuration(spec)
	if !ok || perr != nil || msg.Header.Get(scheduleTargetHeader) != SubjectSweepTick {
		return 0, fmt.Errorf("the sweep schedule is %q on %q, not @every on %s: %w",
			msg.Header.Get(scheduleHeader), msg.Header.Get(scheduleTargetHeader), SubjectSweepTick, ErrNotSetUp)
	}
	return every, nil
}

// CheckConsumer returns an error wrapping ErrNotSetUp when the durable
// consumer d (or its stream) does not exist; it waits while JetStream
// cannot be reached, until ctx ends. A role calls it at start for the
// consumer it will read (a CONSUMER.INFO request, which its user may send
// where it may not ask about the stream).
func (b *Bus) CheckConsumer(ctx context.Context, d Durable) error {
	_, err := b.bind(ctx, d)
	return err
}

// bind looks up the durable consumer c names, retrying while JetStream
// cannot be reached, until ctx ends: a service that starts during a NATS
// outage waits for NATS instead of exiting. A consumer (or stream) that
// does not exist is an error wrapping ErrNotSetUp, at once.
func (b *Bus) bind(ctx context.Context, d Durable) (jetstream.Consumer, error) {
	log := zerolog.Ctx(ctx)
	backoff := 100 * time.Millisecond
	for {
		attempt, cancel := context.WithTimeout(ctx, 5*time.Second)
		cons, err := b.js.Consumer(attempt, d.Stream, d.Name)
		cancel()
		switch {
		case err == nil:
			return cons, nil
		case errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, jetstream.ErrStreamNotFound):
			return nil, fmt.Errorf("NATS consumer %s on stream %s: %w: %w", d.Name, d.Stream, err, ErrNotSetUp)
		case ctx.Err() != nil:
			return nil, fmt.Errorf("NATS consumer %s: %w", d.Name, err)
		}
		log.Warn().Err(err).Str("consumer", d.Name).Dur("retry_in", backoff).Msg("looking up the consumer failed")
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("NATS consumer %s: %w", d.Name, ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// drift names the settings of the consumer the server has that differ
// from what this release's setup makes of d: setup has not run since an
// upgrade.
func drift(d Durable, got jetstream.ConsumerConfig) []string {
	want := d.config()
	if len(want.BackOff) > 0 {
		want.AckWait = want.BackOff[0] // as the server stores it
	}
	var diff []string
	if got.FilterSubject != want.FilterSubject {
		diff = append(diff, "filter "+got.FilterSubject)
	}
	if got.AckWait != want.AckWait {
		diff = append(diff, "ack wait "+got.AckWait.String())
	}
	if got.MaxDeliver != want.MaxDeliver {
		diff = append(diff, fmt.Sprintf("max deliver %d", got.MaxDeliver))
	}
	if !slices.Equal(got.BackOff, want.BackOff) {
		diff = append(diff, fmt.Sprintf("back-off %v", got.BackOff))
	}
	if got.MaxAckPending != want.MaxAckPending {
		diff = append(diff, fmt.Sprintf("max ack pending %d", got.MaxAckPending))
	}
	return diff
}
