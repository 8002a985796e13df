package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/docuvault/docuvault/shared/document"
)

var (
	_ document.Store = (*Store)(nil)
	_ document.Tx    = (*tx)(nil)
)

// Store is the PostgreSQL document.Store.
type Store struct {
	pool         *pgxpool.Pool
	defaultQuota int64
	listener     listener
}

// NewStore returns a Store on pool; users get defaultQuota bytes on first use.
func NewStore(pool *pgxpool.Pool, defaultQuota int64) *Store {
	return &Store{pool: pool, defaultQuota: defaultQuota}
}

// Open connects to the database at url and checks it answers.
func Open(ctx context.Context, url string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse DATABASE_URL: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, translate(err, "connect to PostgreSQL")
	}
	return pool, nil
}

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error {
	return translate(s.pool.Ping(ctx), "ping PostgreSQL")
}

const documentColumns = `id, user_id, filename, content_type, declared_size, size_bytes, etag,
	object_key, status, reject_reason, classification, detected_type, confidence, classification_reason,
	created_at, confirmed_at, updated_at`

func scanDocument(row pgx.Row) (*document.Document, error) {
	var d document.Document
	err := row.Scan(&d.ID, &d.UserID, &d.Filename, &d.ContentType, &d.DeclaredSize, &d.SizeBytes, &d.ETag,
		&d.ObjectKey, &d.Status, &d.RejectReason, &d.Classification, &d.DetectedType, &d.Confidence, &d.ClassificationReason,
		&d.CreatedAt, &d.ConfirmedAt, &d.UpdatedAt)
	if err != nil {
		return nil, err
	}
	return &d, nil
}

// CreateDocument inserts d and its owner's quota row if missing, in one round trip.
func (s *Store) CreateDocument(ctx context.Context, d *document.Document) error {
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO quotas (user_id, limit_bytes) VALUES ($1, $2) ON CONFLICT (user_id) DO NOTHING`,
		d.UserID, s.defaultQuota)
	b.Queue(`INSERT INTO documents (id, user_id, filename, content_type, declared_size, object_key, status, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		d.ID, d.UserID, d.Filename, d.ContentType, d.DeclaredSize, d.ObjectKey, d.Status, d.CreatedAt, d.UpdatedAt)
	// A batch outside a transaction runs as one implicit transaction.
	return translate(s.pool.SendBatch(ctx, b).Close(), "create document")
}

// Document returns the document with the given id.
func (s *Store) Document(ctx context.Context, id uuid.UUID) (*document.Document, error) {
	d, err := scanDocument(s.pool.QueryRow(ctx, `SELECT `+documentColumns+` FROM documents WHERE id = $1`, id))
	return d, translate(err, "document not found")
}

// Documents lists a user's documents, newest first.
func (s *Store) Documents(ctx context.Context, f document.ListFilter) ([]*document.Document, error) {
	sql := `SELECT ` + documentColumns + ` FROM documents WHERE user_id = $1`
	args := []any{f.UserID}
	if f.Status != "" {
		args = append(args, f.Status)
		sql += fmt.Sprintf(" AND status = $%d", len(args))
	}
	if f.Classification != "" {
		args = append(args, f.Classification)
		sql += fmt.Sprintf(" AND classification = $%d", len(args))
	}
	if f.After != nil {
		args = append(args, f.After.CreatedAt, f.After.ID)
		sql += fmt.Sprintf(" AND (created_at, id) < ($%d, $%d)", len(args)-1, len(args))
	}
	args = append(args, f.Limit)
	sql += fmt.Sprintf(" ORDER BY created_at DESC, id DESC LIMIT $%d", len(args))
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, translate(err, "list documents")
	}
	docs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*document.Document, error) { return scanDocument(r) })
	return docs, translate(err, "list documents")
}

// RecentUploads counts a user's documents created since since and its
// pending ones, in one index scan of the user's recent or pending rows.
func (s *Store) RecentUploads(ctx context.Context, user uuid.UUID, since time.Time) (recent, pending int, oldest time.Time, err error) {
	var first *time.Time
	err = s.pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE created_at >= $2),
			count(*) FILTER (WHERE status = 'pending'),
			min(created_at) FILTER (WHERE created_at >= $2)
		FROM documents WHERE user_id = $1 AND (created_at >= $2 OR status = 'pending')`, user, since).
		Scan(&recent, &pending, &first)
	if first != nil {
		oldest = *first
	}
	return recent, pending, oldest, translate(err, "count uploads")
}

// Quota returns a user's quota, creating it with the default limit on first use.
func (s *Store) Quota(ctx context.Context, user uuid.UUID) (document.Quota, error) {
	q := document.Quota{UserID: user}
	err := s.pool.QueryRow(ctx, `SELECT used_bytes, limit_bytes FROM quotas WHERE user_id = $1`, user).
		Scan(&q.UsedBytes, &q.LimitBytes)
	if !errors.Is(err, pgx.ErrNoRows) {
		return q, translate(err, "read quota")
	}
	// First use. The no-op update makes RETURNING answer even when a
	// concurrent first use inserted the row.
	err = s.pool.QueryRow(ctx, `INSERT INTO quotas (user_id, limit_bytes) VALUES ($1, $2)
		ON CONFLICT (user_id) DO UPDATE SET user_id = EXCLUDED.user_id
		RETURNING used_bytes, limit_bytes`, user, s.defaultQuota).Scan(&q.UsedBytes, &q.LimitBytes)
	return q, translate(err, "create quota")
}

// SetQuotaLimit sets a user's limit, creating the quota row if needed.
func (s *Store) SetQuotaLimit(ctx context.Context, user uuid.UUID, limit int64) (document.Quota, error) {
	q := document.Quota{UserID: user}
	err := s.pool.QueryRow(ctx, `INSERT INTO quotas (user_id, limit_bytes) VALUES ($1, $2)
		ON CONFLICT (user_id) DO UPDATE SET limit_bytes = EXCLUDED.limit_bytes
		RETURNING used_bytes, limit_bytes`, user, limit).Scan(&q.UsedBytes, &q.LimitBytes)
	return q, translate(err, "set quota")
}

// InTx runs fn in one transaction.
func (s *Store) InTx(ctx context.Context, fn func(document.Tx) error) error {
	err := pgx.BeginFunc(ctx, s.pool, func(t pgx.Tx) error {
		return fn(&tx{q: t, store: s})
	})
	return translate(err, "transaction")
}

// tx is the document.Tx of one pgx transaction.
type tx struct {
	q     pgx.Tx
	store *Store
}

func (t *tx) LockDocument(ctx context.Context, id uuid.UUID) (*document.Document, error) {
	d, err := scanDocument(t.q.QueryRow(ctx, `SELECT `+documentColumns+` FROM documents WHERE id = $1 FOR UPDATE`, id))
	return d, translate(err, "document not found")
}

const insertEvent = `INSERT INTO outbox (msg_id, subject, payload, created_at) VALUES ($1, $2, $3, $4)`

func (t *tx) Save(ctx context.Context, d *document.Document, e document.Event) error {
	payload, err := json.Marshal(e)
	if err != nil {
		return err
	}
	b := &pgx.Batch{}
	b.Queue(`UPDATE documents SET status = $2, size_bytes = $3, etag = $4, reject_reason = $5,
		classification = $6, detected_type = $7, confidence = $8, classification_reason = $9,
		confirmed_at = $10, updated_at = $11 WHERE id = $1`,
		d.ID, d.Status, d.SizeBytes, d.ETag, d.RejectReason, d.Classification, d.DetectedType, d.Confidence,
		d.ClassificationReason, d.ConfirmedAt, d.UpdatedAt)
	b.Queue(insertEvent, e.ID, e.Subject(), payload, e.Time)
	return translate(t.q.SendBatch(ctx, b).Close(), "save document")
}

func (t *tx) DeleteDocument(ctx context.Context, id uuid.UUID) error {
	_, err := t.q.Exec(ctx, `DELETE FROM documents WHERE id = $1`, id)
	return translate(err, "delete document")
}

func (t *tx) ChargeQuota(ctx context.Context, user uuid.UUID, delta int64) (document.Quota, bool, error) {
	q := document.Quota{UserID: user}
	// The condition and the increment are one statement on one locked row:
	// concurrent charges serialise on it and none can overshoot the limit.
	err := t.q.QueryRow(ctx, `UPDATE quotas SET used_bytes = used_bytes + $2
		WHERE user_id = $1 AND used_bytes + $2 <= limit_bytes
		RETURNING used_bytes, limit_bytes`, user, delta).Scan(&q.UsedBytes, &q.LimitBytes)
	if err == nil {
		return q, true, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return q, false, translate(err, "charge quota")
	}
	// Over the limit, or no quota row yet (created with the document, so
	// only for rows older than that rule): make it, then try once more.
	err = t.q.QueryRow(ctx, `INSERT INTO quotas (user_id, limit_bytes) VALUES ($1, $2)
		ON CONFLICT (user_id) DO UPDATE SET user_id = EXCLUDED.user_id
		RETURNING used_bytes, limit_bytes`, user, t.store.defaultQuota).Scan(&q.UsedBytes, &q.LimitBytes)
	if err != nil {
		return q, false, translate(err, "read quota")
	}
	if q.UsedBytes+delta > q.LimitBytes {
		return q, false, nil
	}
	err = t.q.QueryRow(ctx, `UPDATE quotas SET used_bytes = used_bytes + $2 WHERE user_id = $1
		RETURNING used_bytes, limit_bytes`, user, delta).Scan(&q.UsedBytes, &q.LimitBytes)
	return q, err == nil, translate(err, "charge quota")
}

func (t *tx) ReleaseQuota(ctx context.Context, user uuid.UUID, delta int64) (document.Quota, error) {
	q := document.Quota{UserID: user}
	err := t.q.QueryRow(ctx, `UPDATE quotas SET used_bytes = GREATEST(0, used_bytes - $2) WHERE user_id = $1
		RETURNING used_bytes, limit_bytes`, user, delta).Scan(&q.UsedBytes, &q.LimitBytes)
	if errors.Is(err, pgx.ErrNoRows) {
		// Nothing was ever charged to a user without a quota row.
		return q, nil
	}
	return q, translate(err, "release quota")
}

func (t *tx) AppendEvent(ctx context.Context, e document.Event) error {
	payload, err := json.Marshal(e)
	if err != nil {
		return err
	}
	_, err = t.q.Exec(ctx, insertEvent, e.ID, e.Subject(), payload, e.Time)
	return translate(err, "append event")
}

// translate turns a pgx error into a document error: no rows is NotFound
// (with message as the client text), a server that cannot be reached is
// Unavailable, anything else is Internal. Context errors pass through.
func translate(err error, message string) error {
	if err == nil {
		return nil
	}
	var derr *document.Error
	switch {
	case errors.As(err, &derr):
		return err
	case errors.Is(err, pgx.ErrNoRows):
		return &document.Error{Code: document.NotFound, Message: message, Err: err}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return &document.Error{Code: document.Internal, Message: "database error", Err: err}
	}
	return &document.Error{Code: document.Unavailable, Message: "database unavailable", Err: err}
}
