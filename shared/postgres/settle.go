package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/docuvault/docuvault/shared/document"
)

// maxSettleBatch bounds the settlements one statement applies: the row
// locks of a batch are held until all of it is applied.
const maxSettleBatch = 64

// settleCall is one caller's settlement. Concurrent settlements (the
// confirmer's workers, the endpoint's, the sweeper's) go together in one
// statement (coalescer), settle_documents: one transaction, one WAL flush
// for many, each with its own exact outcome.
type settleCall struct {
	set document.Settlement
	res document.Settled
	err error
}

// Settle applies set, in the next batch of settlements.
func (s *Store) Settle(ctx context.Context, set document.Settlement) (document.Settled, error) {
	c := &settleCall{set: set}
	if err := s.settles.do(ctx, c); err != nil {
		return document.Settled{}, err
	}
	if c.err != nil || c.res.Applied {
		return c.res, c.err
	}
	// Another writer changed the row first: answer it as it is now, with
	// that writer's quota change (read after this batch committed).
	d, q, err := s.read(ctx, set.From.ID)
	if err != nil {
		return document.Settled{}, err
	}
	return document.Settled{Document: d, Quota: q}, nil
}

// settlement is a document.Settlement as settle_documents reads it.
type settlement struct {
	I       int        `json:"i"`
	ID      uuid.UUID  `json:"id"`
	From    settledRow `json:"from"`
	Charged *target    `json:"charged"` // null: refused without trying
	Refused target     `json:"refused"`
}

// settledRow is the part of a document row a settlement reads and writes.
type settledRow struct {
	Status        document.Status `json:"status"`
	RejectReason  string          `json:"reject_reason"`
	SizeBytes     int64           `json:"size_bytes"`
	ETag          string          `json:"etag"`
	ReservedBytes int64           `json:"reserved_bytes"`
	ConfirmedAt   *time.Time      `json:"confirmed_at"`
	UpdatedAt     time.Time       `json:"updated_at"`
	// ScanStatus is written, not compared: a settlement moves a pending
	// document, which has none.
	ScanStatus document.ScanState `json:"scan_status"`
}

// target is a document.Target as settle_documents reads it; MsgID is nil
// without an event.
type target struct {
	settledRow
	UsedChange     int64           `json:"used_change"`
	ReservedChange int64           `json:"reserved_change"`
	MsgID          *uuid.UUID      `json:"msg_id"`
	Subject        string          `json:"subject,omitempty"`
	Payload        json.RawMessage `json:"payload,omitempty"`
	EventAt        time.Time       `json:"event_at"`
}

// rowOf is the part of d a settlement reads and writes.
func rowOf(d *document.Document) settledRow {
	return settledRow{Status: d.Status, RejectReason: d.RejectReason, SizeBytes: d.SizeBytes, ETag: d.ETag,
		ReservedBytes: d.ReservedBytes, ConfirmedAt: d.ConfirmedAt, UpdatedAt: d.UpdatedAt, ScanStatus: d.ScanStatus}
}

// targetOf encodes t, and returns its event's outbox message (nil without
// an event).
func targetOf(t document.Target) (target, *document.OutboxMessage, error) {
	enc := target{settledRow: rowOf(t.Document), UsedChange: t.Used, ReservedChange: t.Reserved}
	if t.Event == nil {
		return enc, nil, nil
	}
	payload, err := json.Marshal(t.Event)
	if err != nil {
		return target{}, nil, err
	}
	m := outboxMessage(*t.Event, payload)
	enc.MsgID, enc.Subject, enc.Payload, enc.EventAt = &m.MsgID, m.Subject, payload, m.CreatedAt
	return enc, &m, nil
}

// settleBatch applies batch in one statement and answers each call; the
// events of those applied are handed to this process's relay.
func (s *Store) settleBatch(ctx context.Context, batch []*settleCall) {
	encoded := make([]settlement, 0, len(batch))
	messages := make([][2]*document.OutboxMessage, len(batch)) // charged, refused
	for i, c := range batch {
		e := settlement{I: i, ID: c.set.From.ID, From: rowOf(c.set.From)}
		var err error
		if e.Refused, messages[i][1], err = targetOf(c.set.Refused); err == nil && c.set.Charged != nil {
			var charged target
			charged, messages[i][0], err = targetOf(*c.set.Charged)
			e.Charged = &charged
		}
		if err != nil {
			c.err = err
			continue
		}
		encoded = append(encoded, e)
	}
	if len(encoded) == 0 {
		return
	}
	payload, err := json.Marshal(encoded)
	if err != nil {
		for _, c := range batch {
			c.err = err
		}
		return
	}
	rows, err := s.pool.Query(ctx, `SELECT * FROM settle_documents($1, $2)`, payload, s.defaultQuota)
	answered := make([]bool, len(batch))
	if err == nil {
		var (
			i       int
			present bool
			r       document.Settled
		)
		_, err = pgx.ForEachRow(rows, []any{&i, &present, &r.Applied, &r.Charged, &r.Quota.UsedBytes, &r.Quota.ReservedBytes,
			&r.Quota.LimitBytes, &r.Clamp.Used, &r.Clamp.Reserved}, func() error {
			c := batch[i]
			answered[i] = true
			if !present {
				c.err = &document.Error{Code: document.NotFound, Message: "document not found"}
				return nil
			}
			res := r
			res.Quota.UserID = c.set.From.UserID
			if res.Clamp.Used > 0 || res.Clamp.Reserved > 0 {
				res.Clamp.UserID = c.set.From.UserID
			}
			c.res = res
			return nil
		})
	}
	if err != nil {
		err = translate(err, "settle documents")
	}
	var committed []document.OutboxMessage
	for i, c := range batch {
		switch {
		case c.err != nil:
		case err != nil:
			c.err = err
		case !answered[i]:
			c.err = &document.Error{Code: document.Internal, Message: "database error", Err: errors.New("settle documents: no answer")}
		case c.res.Applied:
			written, m := c.set.Refused, messages[i][1]
			if c.res.Charged {
				written, m = *c.set.Charged, messages[i][0]
			}
			c.res.Document = written.Document
			if m != nil {
				committed = append(committed, *m)
			}
		}
	}
	s.committed.add(committed...)
}
