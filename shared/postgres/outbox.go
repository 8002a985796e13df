package postgres

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/docuvault/docuvault/shared/document"
)

var _ document.Outbox = (*Store)(nil)

// RelayOutbox claims up to limit unpublished rows recorded before before
// with FOR UPDATE SKIP LOCKED, so relays in several replicas never publish
// the same row at once, and deletes those publish reports published before
// committing. The transaction takes two round trips: BEGIN with the claim,
// then the delete with COMMIT. (Rows with published_at set were marked by
// relays of an earlier release during a rolling deploy; see migration 0006.)
func (s *Store) RelayOutbox(ctx context.Context, before time.Time, limit int, publish func(context.Context, []document.OutboxMessage) ([]uuid.UUID, error)) (int, error) {
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return 0, translate(err, "relay outbox")
	}
	// A connection released inside a transaction (after an error) is
	// closed by the pool, which rolls the transaction back.
	defer conn.Release()
	claim := &pgx.Batch{}
	claim.Queue(`BEGIN`)
	var msgs []document.OutboxMessage
	claim.Queue(`SELECT created_at, msg_id, subject, payload::text FROM outbox
		WHERE published_at IS NULL AND created_at < $2 ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED`, limit, before).Query(func(rows pgx.Rows) error {
		var err error
		msgs, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (document.OutboxMessage, error) {
			var m document.OutboxMessage
			var payload string
			err := r.Scan(&m.CreatedAt, &m.MsgID, &m.Subject, &payload)
			m.Payload = []byte(payload)
			return m, err
		})
		return err
	})
	if err := conn.SendBatch(ctx, claim).Close(); err != nil {
		return 0, translate(err, "relay outbox")
	}
	if st := conn.Conn().PgConn().TxStatus(); st != 'T' {
		// The claim's locks would be gone already.
		return 0, fmt.Errorf("relay outbox: the claim left the connection in transaction status %q, want 'T'", st)
	}
	var (
		published []uuid.UUID
		pubErr    error
	)
	if len(msgs) > 0 {
		published, pubErr = publish(ctx, msgs)
	}
	end := &pgx.Batch{}
	if len(published) > 0 {
		// A delete lost in a crash only republishes the rows, and JetStream
		// drops them as duplicates: no need to wait for the disk. (The
		// events themselves were committed durably.)
		end.Queue(`SET LOCAL synchronous_commit = off`)
		end.Queue(forgetOutbox, published)
	}
	end.Queue(`COMMIT`)
	if err := conn.SendBatch(ctx, end).Close(); err != nil {
		return 0, translate(err, "relay outbox")
	}
	if pubErr != nil && len(published) == 0 {
		return 0, translate(pubErr, "relay outbox")
	}
	return len(published), nil
}

const forgetOutbox = `DELETE FROM outbox WHERE msg_id = ANY($1)`

// ForgetOutbox deletes the published events msgIDs in one statement. Like
// the relay's delete it does not wait for the disk: a delete lost in a
// crash only republishes the rows, as duplicates JetStream drops.
func (s *Store) ForgetOutbox(ctx context.Context, msgIDs []uuid.UUID) error {
	b := &pgx.Batch{}
	b.Queue(`BEGIN`)
	b.Queue(`SET LOCAL synchronous_commit = off`)
	b.Queue(forgetOutbox, msgIDs)
	b.Queue(`COMMIT`)
	return translate(s.pool.SendBatch(ctx, b).Close(), "forget outbox")
}

// Committed returns the events this Store's transactions committed since
// the last call, waiting up to timeout for one.
func (s *Store) Committed(ctx context.Context, timeout time.Duration) []document.OutboxMessage {
	if msgs := s.committed.take(); len(msgs) > 0 {
		return msgs
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-s.committed.ready:
	case <-t.C:
	case <-ctx.Done():
	}
	return s.committed.take()
}

// maxCommitted bounds the committed events a process holds for its relay.
// Past it (the relay cannot publish: NATS is away) new events are only in
// the outbox table, where the relays' claims find them.
const maxCommitted = 8192

// committedEvents holds the events of committed transactions until the
// process's relay takes them.
type committedEvents struct {
	mu    sync.Mutex
	msgs  []document.OutboxMessage
	ready chan struct{} // signalled when msgs becomes non-empty
}

func newCommittedEvents() *committedEvents {
	return &committedEvents{ready: make(chan struct{}, 1)}
}

// add records msgs as committed.
func (c *committedEvents) add(msgs ...document.OutboxMessage) {
	c.mu.Lock()
	room := max(0, maxCommitted-len(c.msgs))
	c.msgs = append(c.msgs, msgs[:min(room, len(msgs))]...)
	c.mu.Unlock()
	select {
	case c.ready <- struct{}{}:
	default:
	}
}

// take returns and forgets the committed events.
func (c *committedEvents) take() []document.OutboxMessage {
	c.mu.Lock()
	defer c.mu.Unlock()
	msgs := c.msgs
	c.msgs = nil
	return msgs
}

// OutboxWaiting counts the rows waiting to be published.
func (s *Store) OutboxWaiting(ctx context.Context) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE published_at IS NULL`).Scan(&n)
	return n, translate(err, "count outbox")
}
