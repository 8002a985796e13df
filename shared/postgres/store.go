package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
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
	// committed holds the events this process's transactions committed,
	// for its relay to publish at once.
	committed *committedEvents
	// reads, settles and creates coalesce concurrent single-document
	// reads, settlements and creates, a statement per batch.
	reads   *coalescer[*docRead]
	settles *coalescer[*settleCall]
	creates *coalescer[*createCall]
}

// NewStore returns a Store on pool; users get defaultQuota bytes on first use.
func NewStore(pool *pgxpool.Pool, defaultQuota int64) *Store {
	s := &Store{pool: pool, defaultQuota: defaultQuota, committed: newCommittedEvents()}
	s.reads = &coalescer[*docRead]{max: maxReadBatch, send: s.fetch}
	s.settles = &coalescer[*settleCall]{max: maxSettleBatch, send: s.settleBatch}
	s.creates = &coalescer[*createCall]{max: maxCreateBatch, send: s.createBatch}
	return s
}

// Open connects to the database at url and checks it answers. Every
// connection declares AccountingVersion.
func Open(ctx context.Context, url string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("parse DATABASE_URL: %w", err)
	}
	declareAccounting(&cfg.ConnConfig.Config)
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
	created_at, confirmed_at, updated_at, coalesce(upload_id, '') AS upload_id,
	coalesce(part_size, 0) AS part_size, reserved_bytes,
	coalesce(checksum_algorithm, '') AS checksum_algorithm, coalesce(checksum, '') AS checksum,
	coalesce(scan_status, '') AS scan_status, scan_detail`

// scanDocument scans documentColumns, then extra.
func scanDocument(row pgx.Row, extra ...any) (*document.Document, error) {
	var d document.Document
	dest := []any{&d.ID, &d.UserID, &d.Filename, &d.ContentType, &d.DeclaredSize, &d.SizeBytes, &d.ETag,
		&d.ObjectKey, &d.Status, &d.RejectReason, &d.Classification, &d.DetectedType, &d.Confidence, &d.ClassificationReason,
		&d.CreatedAt, &d.ConfirmedAt, &d.UpdatedAt, &d.UploadID, &d.PartSize, &d.ReservedBytes,
		&d.Checksum.Algorithm, &d.Checksum.Value, &d.ScanStatus, &d.ScanDetail}
	if err := row.Scan(append(dest, extra...)...); err != nil {
		return nil, err
	}
	return &d, nil
}

// Document returns the document with the given id. Concurrent reads go
// together (see docRead).
func (s *Store) Document(ctx context.Context, id uuid.UUID) (*document.Document, error) {
	d, _, err := s.read(ctx, id)
	return d, err
}

// DocumentAndQuota returns the document with the given id and its owner's
// quota in one statement; concurrent reads go together (see docRead).
func (s *Store) DocumentAndQuota(ctx context.Context, id uuid.UUID) (*document.Document, document.Quota, error) {
	return s.read(ctx, id)
}

// DocumentWithChecksum returns user's newest document in one of statuses
// whose checksum is c (index documents_user_checksum); NotFound when there
// is none.
func (s *Store) DocumentWithChecksum(ctx context.Context, user uuid.UUID, c document.Checksum, statuses []document.Status) (*document.Document, error) {
	d, err := scanDocument(s.pool.QueryRow(ctx, `SELECT `+documentColumns+` FROM documents
		WHERE user_id = $1 AND checksum = $2 AND checksum_algorithm = $3 AND status = ANY($4)
		ORDER BY created_at DESC, id DESC LIMIT 1`, user, c.Value, c.Algorithm, statuses))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, document.Errorf(document.NotFound, "document not found")
	}
	return d, translate(err, "find document by checksum")
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

// Quota returns a user's quota, creating it with the default limit on first use.
func (s *Store) Quota(ctx context.Context, user uuid.UUID) (document.Quota, error) {
	q := document.Quota{UserID: user}
	err := s.pool.QueryRow(ctx, `SELECT used_bytes, reserved_bytes, limit_bytes FROM quotas WHERE user_id = $1`, user).
		Scan(&q.UsedBytes, &q.ReservedBytes, &q.LimitBytes)
	if !errors.Is(err, pgx.ErrNoRows) {
		return q, translate(err, "read quota")
	}
	// First use. The no-op update makes RETURNING answer even when a
	// concurrent first use inserted the row.
	err = s.pool.QueryRow(ctx, `INSERT INTO quotas (user_id, limit_bytes) VALUES ($1, $2)
		ON CONFLICT (user_id) DO UPDATE SET user_id = EXCLUDED.user_id
		RETURNING used_bytes, reserved_bytes, limit_bytes`, user, s.defaultQuota).Scan(&q.UsedBytes, &q.ReservedBytes, &q.LimitBytes)
	return q, translate(err, "create quota")
}

// SetQuotaLimit sets a user's limit, creating the quota row if needed.
func (s *Store) SetQuotaLimit(ctx context.Context, user uuid.UUID, limit int64) (document.Quota, error) {
	q := document.Quota{UserID: user}
	err := s.pool.QueryRow(ctx, `INSERT INTO quotas (user_id, limit_bytes) VALUES ($1, $2)
		ON CONFLICT (user_id) DO UPDATE SET limit_bytes = EXCLUDED.limit_bytes
		RETURNING used_bytes, reserved_bytes, limit_bytes`, user, limit).Scan(&q.UsedBytes, &q.ReservedBytes, &q.LimitBytes)
	return q, translate(err, "set quota")
}

// takeRate counts a request in the user's window for the action
// (count_request, migration 0016), in one statement.
const takeRate = `SELECT window_start, count FROM count_request($1, $2, $3, $4)`

// TakeRate counts one request of action by user in its current window.
func (s *Store) TakeRate(ctx context.Context, user uuid.UUID, action string, now time.Time, window time.Duration, limit int) (document.RateWindow, bool, error) {
	var w document.RateWindow
	err := s.pool.QueryRow(ctx, takeRate, user, action, now, window.Microseconds()).Scan(&w.Start, &w.Count)
	if err != nil {
		return w, false, translate(err, "count request")
	}
	return w, w.Count <= limit, nil
}

// InTx runs fn in one transaction.
func (s *Store) InTx(ctx context.Context, fn func(document.Tx) error) error {
	var events []document.OutboxMessage
	err := pgx.BeginFunc(ctx, s.pool, func(t pgx.Tx) error {
		tx := &tx{q: t}
		err := fn(tx)
		events = tx.events
		return err
	})
	if err == nil && len(events) > 0 {
		s.committed.add(events...)
	}
	return translate(err, "transaction")
}

// tx is the document.Tx of one pgx transaction.
type tx struct {
	q      pgx.Tx
	events []document.OutboxMessage // the events the transaction recorded
	clamps []document.Clamp         // what its quota writes absorbed below zero
}

// Clamps returns what the transaction's quota writes absorbed below zero.
func (t *tx) Clamps() []document.Clamp { return t.clamps }

// clamp records what a quota write of user absorbed, if anything.
func (t *tx) clamp(user uuid.UUID, used, reserved int64) {
	if used > 0 || reserved > 0 {
		t.clamps = append(t.clamps, document.Clamp{UserID: user, Used: used, Reserved: reserved})
	}
}

// outboxMessage is event e, whose JSON is payload, as its outbox row holds it.
func outboxMessage(e document.Event, payload []byte) document.OutboxMessage {
	return document.OutboxMessage{CreatedAt: e.Time, MsgID: e.ID, Subject: e.Subject(), Payload: payload}
}

func (t *tx) LockDocument(ctx context.Context, id uuid.UUID) (*document.Document, error) {
	d, err := scanDocument(t.q.QueryRow(ctx, `SELECT `+documentColumns+` FROM documents WHERE id = $1 FOR UPDATE`, id))
	return d, translateRow(err, "lock document", "document")
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
		confirmed_at = $10, updated_at = $11, scan_status = nullif($12, ''), scan_detail = $13 WHERE id = $1`,
		d.ID, d.Status, d.SizeBytes, d.ETag, d.RejectReason, d.Classification, d.DetectedType, d.Confidence,
		d.ClassificationReason, d.ConfirmedAt, d.UpdatedAt, d.ScanStatus, d.ScanDetail)
	b.Queue(insertEvent, e.ID, e.Subject(), payload, e.Time)
	t.events = append(t.events, outboxMessage(e, payload))
	return translate(t.q.SendBatch(ctx, b).Close(), "save document")
}

func (t *tx) DeleteDocument(ctx context.Context, id uuid.UUID) error {
	_, err := t.q.Exec(ctx, `DELETE FROM documents WHERE id = $1`, id)
	return translate(err, "delete document")
}

func (t *tx) RecordRemoval(ctx context.Context, key string, at time.Time) error {
	_, err := t.q.Exec(ctx, `INSERT INTO object_removals (object_key, recorded_at) VALUES ($1, $2)
		ON CONFLICT (object_key) DO NOTHING`, key, at)
	return translate(err, "record removal")
}

// release takes $2 used and $3 reserved bytes from a user's quota, each
// never below zero, and answers what the clamps absorbed. It locks the
// quota row first (held), so that what it absorbed is read from the
// version it writes.
const release = `WITH held AS (
		SELECT user_id, used_bytes, reserved_bytes FROM quotas WHERE user_id = $1 FOR UPDATE
	)
	UPDATE quotas SET used_bytes = GREATEST(0, quotas.used_bytes - $2::bigint),
		reserved_bytes = GREATEST(0, quotas.reserved_bytes - $3::bigint)
	FROM held WHERE quotas.user_id = held.user_id
	RETURNING GREATEST(0, $2::bigint - held.used_bytes), GREATEST(0, $3::bigint - held.reserved_bytes)`

func (t *tx) Release(ctx context.Context, user uuid.UUID, used, reserved int64) error {
	var usedClamped, reservedClamped int64
	err := t.q.QueryRow(ctx, release, user, used, reserved).Scan(&usedClamped, &reservedClamped)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil // a user without a quota row holds nothing
	}
	if err == nil {
		t.clamp(user, usedClamped, reservedClamped)
	}
	return translate(err, "release quota")
}

func (t *tx) AppendEvent(ctx context.Context, e document.Event) error {
	payload, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if _, err = t.q.Exec(ctx, insertEvent, e.ID, e.Subject(), payload, e.Time); err != nil {
		return translate(err, "append event")
	}
	t.events = append(t.events, outboxMessage(e, payload))
	return nil
}

// serverGoingAway reports whether the server's error says it cannot serve
// now but will: a connection exception (class 08), or admin_shutdown,
// crash_shutdown or cannot_connect_now ("the database system is starting
// up", class 57P), as a restart answers.
func serverGoingAway(e *pgconn.PgError) bool {
	return strings.HasPrefix(e.Code, "08") || strings.HasPrefix(e.Code, "57P")
}

// translate turns the error of operation op (a name for logs, such as
// "read quota") into a document error whose message is client text: no
// rows is NotFound ("not found"; translateRow names the row), a server that
// cannot be reached, or that refuses or ends sessions while it shuts down,
// restarts or recovers (SQLSTATE classes 08 and 57P), is Unavailable,
// anything else is Internal. op goes in the wrapped error, never in the
// message. Context errors and document errors pass through.
func translate(err error, op string) error {
	if err == nil {
		return nil
	}
	var derr *document.Error
	switch {
	case errors.As(err, &derr):
		return err
	case errors.Is(err, pgx.ErrNoRows):
		return &document.Error{Code: document.NotFound, Message: "not found", Err: fmt.Errorf("%s: %w", op, err)}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && !serverGoingAway(pgErr) {
		return &document.Error{Code: document.Internal, Message: "database error", Err: fmt.Errorf("%s: %w", op, err)}
	}
	return &document.Error{Code: document.Unavailable, Message: "database unavailable", Err: fmt.Errorf("%s: %w", op, err)}
}

// translateRow is translate for op on one row a client knows as what
// ("document"): its absence is NotFound with the message "document not
// found".
func translateRow(err error, op, what string) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return &document.Error{Code: document.NotFound, Message: what + " not found", Err: fmt.Errorf("%s: %w", op, err)}
	}
	return translate(err, op)
}
