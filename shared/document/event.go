package document

import (
	"cmp"
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/google/uuid"
)

// EventType names a document event; it is also the CloudEvents type.
type EventType string

// Document event types.
const (
	EventUploaded EventType = "document.uploaded"
	EventRejected EventType = "document.rejected"
	EventDeleted  EventType = "document.deleted"
	// EventScanned: the scanner found the bytes clean, or could not scan
	// them (scan_status failed). An infected document is EventRejected.
	EventScanned EventType = "document.scanned"

	EventClassified           EventType = "document.classified"
	EventClassificationFailed EventType = "document.classification_failed"
)

// EventSource is the CloudEvents source of every document event.
const EventSource = "/docuvault"

// Event is a change to a document, recorded in the same transaction as the
// change and published later.
type Event struct {
	ID   uuid.UUID
	Type EventType
	Time time.Time
	Data EventData
}

// EventData is the payload of a document event.
type EventData struct {
	DocumentID  uuid.UUID `json:"document_id"`
	UserID      uuid.UUID `json:"user_id"`
	ObjectKey   string    `json:"object_key"`
	Filename    string    `json:"filename"`
	ContentType string    `json:"content_type"`
	SizeBytes   int64     `json:"size_bytes"`
	Status      Status    `json:"status"`
	Reason      string    `json:"reason,omitempty"`
	// Checksum is the checksum its client declared and MinIO proved at
	// the write; left out when none was declared.
	Checksum *Checksum `json:"checksum,omitempty"`
	// ScanStatus is where its malware scan stands (left out when stored
	// while scanning was off), and ScanDetail the signature found or why
	// it could not be scanned.
	ScanStatus ScanState `json:"scan_status,omitempty"`
	ScanDetail string    `json:"scan_detail,omitempty"`

	// Set by the classifier's events.
	Classification string  `json:"classification,omitempty"`
	DetectedType   string  `json:"detected_type,omitempty"`
	Confidence     float64 `json:"confidence,omitempty"`
	// TypeMismatch flags a document whose bytes are not what its declared
	// content type says (e.g. an executable uploaded as a PDF).
	TypeMismatch bool `json:"type_mismatch,omitempty"`
}

// NewEvent returns an event of type t describing d as it is now.
func NewEvent(t EventType, d *Document, at time.Time) Event {
	return Event{
		ID:   uuid.New(),
		Type: t,
		Time: at.UTC(),
		Data: EventData{
			DocumentID:     d.ID,
			UserID:         d.UserID,
			ObjectKey:      d.ObjectKey,
			Filename:       d.Filename,
			ContentType:    d.ContentType,
			SizeBytes:      d.SizeBytes,
			Status:         d.Status,
			Reason:         cmp.Or(d.RejectReason, d.ClassificationReason),
			Checksum:       d.Checksum.OrNil(),
			ScanStatus:     d.ScanStatus,
			ScanDetail:     d.ScanDetail,
			Classification: d.Classification,
			DetectedType:   d.DetectedType,
			Confidence:     d.Confidence,
			TypeMismatch:   d.ClassificationReason == ReasonTypeMismatch,
		},
	}
}

// The subjects of document events, in one place: an event of type
// document.<type> about a document of user is published on
// document.<type>.<user_id>, e.g. document.uploaded.<user_id>.
const (
	// SubjectAllEvents matches every document event.
	SubjectAllEvents = "document.>"
)

// Subject returns the subject the event is published on.
func (e Event) Subject() string {
	return string(e.Type) + "." + e.Data.UserID.String()
}

// SubjectOfType matches every event of type t, whoever's document.
func SubjectOfType(t EventType) string { return string(t) + ".>" }

// SubjectOfUser matches every event about user's documents.
func SubjectOfUser(user uuid.UUID) string { return "document.*." + user.String() }

// TypeOfSubject returns the event type a subject was published for.
func TypeOfSubject(subject string) EventType {
	if i := strings.LastIndexByte(subject, '.'); i > 0 {
		return EventType(subject[:i])
	}
	return EventType(subject)
}

// cloudEvent is the CloudEvents 1.0 structured-mode JSON form of an Event.
type cloudEvent struct {
	SpecVersion     string    `json:"specversion"`
	ID              string    `json:"id"`
	Type            EventType `json:"type"`
	Source          string    `json:"source"`
	Subject         string    `json:"subject"`
	Time            time.Time `json:"time"`
	DataContentType string    `json:"datacontenttype"`
	Data            EventData `json:"data"`
}

// MarshalJSON encodes e as a CloudEvents 1.0 structured JSON event whose
// subject is the document id.
func (e Event) MarshalJSON() ([]byte, error) {
	return json.Marshal(cloudEvent{
		SpecVersion:     "1.0",
		ID:              e.ID.String(),
		Type:            e.Type,
		Source:          EventSource,
		Subject:         e.Data.DocumentID.String(),
		Time:            e.Time,
		DataContentType: "application/json",
		Data:            e.Data,
	})
}

// UnmarshalJSON decodes a CloudEvents structured JSON document event.
func (e *Event) UnmarshalJSON(b []byte) error {
	var ce cloudEvent
	if err := json.Unmarshal(b, &ce); err != nil {
		return err
	}
	id, err := uuid.Parse(ce.ID)
	if err != nil {
		return err
	}
	if ce.SpecVersion != "1.0" || !strings.HasPrefix(string(ce.Type), "document.") {
		return Errorf(Invalid, "not a document event")
	}
	*e = Event{ID: id, Type: ce.Type, Time: ce.Time, Data: ce.Data}
	return nil
}

// OutboxMessage is a recorded event waiting to be published.
type OutboxMessage struct {
	CreatedAt time.Time
	MsgID     uuid.UUID // the event id, used to drop duplicates downstream
	Subject   string
	Payload   []byte
}

// Outbox hands recorded events to a relay, safely from many replicas.
// Each process publishes the events its own transactions commit at once,
// from memory (Committed), and forgets them in the outbox once published
// (ForgetOutbox, batched); the outbox rows are the durable copy. What a
// process committed and did not publish (it stopped, or publishing
// failed) is claimed from the table by any relay once it is older than a
// grace period (RelayOutbox). JetStream drops the duplicates a crash
// between publish and forget can cause, by the event id.
type Outbox interface {
	// Committed returns the events this process committed since the last
	// call, in commit order, waiting up to timeout for the first one.
	Committed(ctx context.Context, timeout time.Duration) []OutboxMessage
	// ForgetOutbox removes the published events msgIDs from the outbox.
	ForgetOutbox(ctx context.Context, msgIDs []uuid.UUID) error
	// RelayOutbox claims up to limit unpublished messages recorded before
	// before, oldest first, skipping those another relay holds, and calls
	// publish with them. The messages publish reports published are
	// removed from the outbox in the same transaction; the rest stay for
	// the next call.
	RelayOutbox(ctx context.Context, before time.Time, limit int, publish func(context.Context, []OutboxMessage) (published []uuid.UUID, err error)) (int, error)
}

// LiveEvent is a document event as the event log stored it, for a live
// follow.
type LiveEvent struct {
	Seq  uint64    // its sequence in the log (the DOCUMENTS stream)
	Type EventType // e.g. document.uploaded
	Data []byte    // the CloudEvents JSON
}

// Follow is a live follow of one user's document events, as the event log
// delivers them (events.Bus.FollowUser).
type Follow struct {
	// Events delivers the events, in log order.
	Events <-chan LiveEvent
	// Reset is set when the follow could not resume after the sequence it
	// was asked for (older than notBefore, or no longer in the log): it
	// delivers only what is published after Seq, and the follower must
	// reload what it shows, since events it never received are not
	// replayed.
	Reset bool
	// Seq is the sequence the follow delivers events after, when Reset:
	// the log's last sequence when the follow started (0 when it was
	// empty). Resuming after it later misses nothing.
	Seq uint64
	// Stop ends the follow.
	Stop func()
}
