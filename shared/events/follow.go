package events

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/docuvault/docuvault/shared/document"
)

// followPull is how many events a follow (FollowUser) pulls at a time: it
// pulls again only once both are handed on.
const followPull = 2

// FollowBufferBytes bounds the bytes of events one follow holds in memory:
// one pull of the largest events DOCUMENTS takes (its MaxMsgSize), plus
// their headers and reply subjects. The channel FollowUser returns is
// unbuffered, so a follow holds at most this plus the one event its reader
// is writing; a reader that stops reading holds up nothing else.
const FollowBufferBytes = followPull*MaxDocumentEventBytes + 8<<10

// A follow's pull waits up to followWait for events (the server ends it a
// little earlier), its heartbeats
// (followHeartbeat) telling a live pull from one the server lost; an
// abandoned consumer (its api replica gone) is removed by the server
// followInactive after its last pull. followRetry spaces the attempts to
// make a consumer again after a failure.
const (
	followWait      = 25 * time.Second
	followHeartbeat = 5 * time.Second
	followInactive  = time.Minute
	followRetry     = time.Second
)

// FollowUser follows user's document events live, through an ephemeral
// consumer whose filter only the user's own events match: those
// published after the stream sequence after (0: from now on), if the event
// at after was stored no earlier than notBefore. A resume reaches back no
// further: a client long gone would otherwise replay up to DOCUMENTS' whole
// age, and a start sequence far back costs the server a scan of the blocks
// since. Otherwise the follow starts after DOCUMENTS' last sequence and says
// so (document.Follow.Reset), unless nothing was published since after.
//
// Per call: one message lookup by sequence when resuming (plus one stream
// info when that event is too old or gone), and one consumer. The consumer
// holds at most followPull pulled events (FollowBufferBytes); a reader that
// falls behind holds up only its own consumer.
func (b *Bus) FollowUser(ctx context.Context, user uuid.UUID, after uint64, notBefore time.Time) (document.Follow, error) {
	fl := &follow{
		js: b.js,
		cfg: jetstream.ConsumerConfig{
			FilterSubject:     document.SubjectOfUser(user), // one subject: the create request names it, as the api's NATS permissions require
			DeliverPolicy:     jetstream.DeliverNewPolicy,
			AckPolicy:         jetstream.AckNonePolicy,
			InactiveThreshold: followInactive,
			MemoryStorage:     true,
			Replicas:          1,
		},
		// Unbuffered: the pull holds the backlog, followPull events.
		out: make(chan document.LiveEvent),
	}
	var f document.Follow
	if after > 0 {
		start, reset, err := b.resumePoint(ctx, after, notBefore)
		if err != nil {
			return document.Follow{}, fmt.Errorf("follow user events: %w", err)
		}
		fl.cfg.DeliverPolicy, fl.cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, start+1
		f.Reset, f.Seq = reset, start
	}
	cons, err := b.js.CreateConsumer(ctx, StreamDocuments, fl.cfg)
	if err != nil {
		return document.Follow{}, fmt.Errorf("follow user events: %w", err)
	}
	// From now on the follow resumes after what it handed on: a consumer
	// made again delivers from there, not from its own start.
	fl.resumeAfter(cons.CachedInfo().Delivered.Stream)
	runCtx, stop := context.WithCancel(ctx)
	go fl.run(runCtx, cons)
	f.Events, f.Stop = fl.out, stop
	return f, nil
}

// follow is one FollowUser: a loop of fetches of followPull events from an
// ephemeral consumer without acks, made again from the next sequence when
// the server loses it, as nats.go's ordered consumer does. (Its Consume
// can stop for good between pulls: v1.55's pull subscription skips the
// next pull when the events of the one it is still sending were all
// handled first, and with a pull of two the follow then waited for missed
// heartbeats, 10 s, seen under load in TestFollowUserHoldsBoundedBytes. A
// Fetch is one request answered in full, so nothing is skipped.)
type follow struct {
	js  jetstream.JetStream
	cfg jetstream.ConsumerConfig
	out chan document.LiveEvent

	delivered uint64 // consumer sequence of the last event handed on
}

// run hands the consumer's events on until ctx ends, then deletes it.
func (f *follow) run(ctx context.Context, cons jetstream.Consumer) {
	defer func() {
		if cons != nil {
			del, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = f.js.DeleteConsumer(del, StreamDocuments, cons.CachedInfo().Name)
		}
	}()
	for ctx.Err() == nil {
		if cons == nil {
			var err error
			if cons, err = f.js.CreateConsumer(ctx, StreamDocuments, f.cfg); err != nil {
				cons = nil
				wait(ctx, followRetry)
				continue
			}
			f.delivered = 0
		}
		if !f.fetch(ctx, cons) {
			// Lost (the server restarted, the consumer expired, or its
			// sequence jumped): make it again after the last event.
			cons = nil
			wait(ctx, followRetry)
		}
	}
}

// fetch hands on one pull's events; false when the consumer must be made
// again.
func (f *follow) fetch(ctx context.Context, cons jetstream.Consumer) bool {
	// The pull ends at its deadline, or at once when the follow stops.
	pull, cancel := context.WithTimeout(ctx, followWait)
	defer cancel()
	batch, err := cons.Fetch(followPull, jetstream.FetchContext(pull), jetstream.FetchHeartbeat(followHeartbeat))
	if err != nil {
		return false
	}
	for m := range batch.Messages() {
		meta, err := m.Metadata()
		if err != nil || meta.Sequence.Consumer != f.delivered+1 {
			return false
		}
		e := document.LiveEvent{Type: document.TypeOfSubject(m.Subject()), Data: m.Data(), Seq: meta.Sequence.Stream}
		select {
		case f.out <- e:
		case <-ctx.Done():
			return true
		}
		f.delivered = meta.Sequence.Consumer
		f.resumeAfter(meta.Sequence.Stream)
	}
	err = batch.Error()
	return err == nil || ctx.Err() != nil || errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded)
}

// resumeAfter makes the next consumer start after stream sequence seq.
func (f *follow) resumeAfter(seq uint64) {
	f.cfg.DeliverPolicy, f.cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, seq+1
}

// wait sleeps d or until ctx ends.
func wait(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
