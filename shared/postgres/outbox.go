package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/docuvault/docuvault/shared/document"
)

var _ document.Outbox = (*Store)(nil)

// RelayOutbox claims up to limit unpublished rows with FOR UPDATE SKIP LOCKED,
// so relays in several replicas never publish the same row at once, and
// deletes the first n that publish reports as published before committing.
// The transaction takes two round trips: BEGIN with the claim, then the
// delete with COMMIT. (Rows with published_at set were marked by relays of
// the previous release during a rolling deploy; see migration 0006.)
func (s *Store) RelayOutbox(ctx context.Context, limit int, publish func(context.Context, []document.OutboxMessage) (int, error)) (int, error) {
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
	claim.Queue(`SELECT id, created_at, msg_id, subject, payload::text FROM outbox
		WHERE published_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED`, limit).Query(func(rows pgx.Rows) error {
		var err error
		msgs, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (document.OutboxMessage, error) {
			var m document.OutboxMessage
			var payload string
			err := r.Scan(&m.ID, &m.CreatedAt, &m.MsgID, &m.Subject, &payload)
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
	n, pubErr := 0, error(nil)
	if len(msgs) > 0 {
		n, pubErr = publish(ctx, msgs)
	}
	end := &pgx.Batch{}
	if n > 0 {
		// A delete lost in a crash only republishes the rows, and JetStream
		// drops them as duplicates: no need to wait for the disk. (The
		// events themselves were committed durably.)
		end.Queue(`SET LOCAL synchronous_commit = off`)
		ids := make([]int64, n)
		for i := range ids {
			ids[i] = msgs[i].ID
		}
		end.Queue(`DELETE FROM outbox WHERE id = ANY($1)`, ids)
	}
	end.Queue(`COMMIT`)
	if err := conn.SendBatch(ctx, end).Close(); err != nil {
		return 0, translate(err, "relay outbox")
	}
	if pubErr != nil && n == 0 {
		return 0, translate(pubErr, "relay outbox")
	}
	return n, nil
}

// WaitOutbox returns when a transaction of this Store that recorded events
// has committed, or after timeout. Each process relays what it writes at
// once; what another process wrote and left (it stopped before relaying)
// is found by the relays' polls.
func (s *Store) WaitOutbox(ctx context.Context, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-s.outboxWritten:
	case <-t.C:
	case <-ctx.Done():
	}
	return nil
}

// kickOutbox wakes the relay waiting in WaitOutbox, if any.
func (s *Store) kickOutbox() {
	select {
	case s.outboxWritten <- struct{}{}:
	default:
	}
}

// OutboxWaiting counts the rows waiting to be published.
func (s *Store) OutboxWaiting(ctx context.Context) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE published_at IS NULL`).Scan(&n)
	return n, translate(err, "count outbox")
}
