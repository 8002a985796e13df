package postgres

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/docuvault/docuvault/shared/document"
)

var _ document.Outbox = (*Store)(nil)

// outboxChannel is the NOTIFY channel the outbox trigger signals.
const outboxChannel = "docuvault_outbox"

// RelayOutbox claims up to limit unpublished rows with FOR UPDATE SKIP LOCKED,
// so relays in several replicas never publish the same row at once, and
// marks the first n that publish reports as published before committing.
func (s *Store) RelayOutbox(ctx context.Context, limit int, publish func(context.Context, []document.OutboxMessage) (int, error)) (int, error) {
	var published int
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id, created_at, msg_id, subject, payload::text FROM outbox
			WHERE published_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED`, limit)
		if err != nil {
			return err
		}
		msgs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (document.OutboxMessage, error) {
			var m document.OutboxMessage
			var payload string
			err := r.Scan(&m.ID, &m.CreatedAt, &m.MsgID, &m.Subject, &payload)
			m.Payload = []byte(payload)
			return m, err
		})
		if err != nil || len(msgs) == 0 {
			return err
		}
		n, pubErr := publish(ctx, msgs)
		if n > 0 {
			// A mark lost in a crash only republishes the rows, and
			// JetStream drops them as duplicates: no need to wait for the
			// disk. (The events themselves were committed durably.)
			if _, err := tx.Exec(ctx, `SET LOCAL synchronous_commit = off`); err != nil {
				return err
			}
			ids := make([]int64, n)
			for i := range ids {
				ids[i] = msgs[i].ID
			}
			if _, err := tx.Exec(ctx, `UPDATE outbox SET published_at = now() WHERE id = ANY($1)`, ids); err != nil {
				return err
			}
			published = n
		}
		if pubErr != nil && n == 0 {
			return pubErr
		}
		return nil
	})
	return published, translate(err, "relay outbox")
}

// WaitOutbox waits for a NOTIFY from the outbox trigger, or timeout. It
// keeps one listening connection per Store, re-established after failures.
func (s *Store) WaitOutbox(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := s.listener.acquire(ctx, s.pool)
	if err != nil {
		<-ctx.Done() // no notifications: fall back to polling
		return nil
	}
	_, err = conn.Conn().WaitForNotification(ctx)
	if err != nil && ctx.Err() == nil {
		s.listener.drop()
		return translate(err, "wait for outbox")
	}
	return nil
}

// listener holds the connection that LISTENs on the outbox channel.
type listener struct {
	mu   sync.Mutex
	conn *pgxpool.Conn
}

func (l *listener) acquire(ctx context.Context, pool *pgxpool.Pool) (*pgxpool.Conn, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn != nil {
		return l.conn, nil
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+outboxChannel); err != nil {
		conn.Release()
		return nil, errors.Join(errors.New("listen for outbox"), err)
	}
	l.conn = conn
	return conn, nil
}

// drop closes a broken listening connection so the next wait opens another.
func (l *listener) drop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn != nil {
		_ = l.conn.Conn().Close(context.Background())
		l.conn.Release()
		l.conn = nil
	}
}

// OutboxWaiting counts the rows waiting to be published.
func (s *Store) OutboxWaiting(ctx context.Context) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE published_at IS NULL`).Scan(&n)
	return n, translate(err, "count outbox")
}

// Close releases the listening connection, if any.
func (s *Store) Close() { s.listener.drop() }
