package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/docuvault/docuvault/shared/document"
)

// StaleDocuments returns documents in status (pending or rejected: the
// statuses documents_unsettled_updated indexes) last changed before before,
// in (updated_at, id) order after the given position. It locks nothing.
func (s *Store) StaleDocuments(ctx context.Context, status document.Status, before time.Time, after *document.StaleCursor, limit int) ([]*document.Document, error) {
	sql := `SELECT ` + documentColumns + ` FROM documents
		WHERE status = $1 AND status IN ('pending', 'rejected') AND updated_at < $2`
	args := []any{status, before}
	if after != nil {
		sql += ` AND (updated_at, id) > ($4, $5)`
		args = append(args, limit, after.UpdatedAt, after.ID)
	} else {
		args = append(args, limit)
	}
	sql += ` ORDER BY updated_at, id LIMIT $3`
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, translate(err, "list stale documents")
	}
	docs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*document.Document, error) { return scanDocument(r) })
	return docs, translate(err, "list stale documents")
}

// PurgeDocuments deletes those of p.IDs still in p.Status and unchanged
// since p.Before, in one statement; rows locked by a confirm or another
// sweep are skipped, not waited for. What the deleted documents hold under
// p.Rule leaves their owners' quotas in the same statement, the quota rows
// locked in user order (two sweeps never wait on each other in a cycle),
// and the keys of those with a multipart upload are recorded for removal
// as of p.At: the upload is aborted after the row is gone, so that no part
// signed meanwhile renews a row whose upload is aborted, and the record
// keeps it found should the abort fail. What a release absorbed below
// zero comes back as a Clamp per user, read from the locked row it writes.
func (s *Store) PurgeDocuments(ctx context.Context, p document.Purge) ([]uuid.UUID, []document.Clamp, error) {
	rows, err := s.pool.Query(ctx, `WITH gone AS (
			DELETE FROM documents WHERE id IN (
				SELECT id FROM documents WHERE id = ANY($1) AND status = $2 AND updated_at < $3
				FOR UPDATE SKIP LOCKED)
			RETURNING id, user_id, status, size_bytes, reserved_bytes, object_key, upload_id
		), recorded AS (
			INSERT INTO object_removals (object_key, recorded_at)
			SELECT object_key, $4 FROM gone WHERE upload_id IS NOT NULL
			ON CONFLICT (object_key) DO NOTHING
		), held AS (
			SELECT user_id, used, reserved FROM (
				SELECT user_id,
					coalesce(sum(size_bytes) FILTER (WHERE status = ANY($5)), 0) AS used,
					coalesce(sum(reserved_bytes) FILTER (WHERE status = ANY($6)), 0) AS reserved
				FROM gone GROUP BY user_id
			) sums WHERE used > 0 OR reserved > 0
		), locked AS (
			SELECT quotas.user_id, quotas.used_bytes, quotas.reserved_bytes FROM quotas JOIN held USING (user_id)
			ORDER BY quotas.user_id FOR UPDATE OF quotas
		), released AS (
			UPDATE quotas SET used_bytes = GREATEST(0, quotas.used_bytes - held.used),
				reserved_bytes = GREATEST(0, quotas.reserved_bytes - held.reserved)
			FROM held JOIN locked USING (user_id) WHERE quotas.user_id = held.user_id
			RETURNING quotas.user_id, GREATEST(0, held.used - locked.used_bytes) AS used_clamped,
				GREATEST(0, held.reserved - locked.reserved_bytes) AS reserved_clamped
		)
		SELECT id, NULL::uuid, 0::bigint, 0::bigint FROM gone
		UNION ALL
		SELECT NULL, user_id, used_clamped, reserved_clamped FROM released WHERE used_clamped > 0 OR reserved_clamped > 0`,
		p.IDs, p.Status, p.Before, p.At, statuses(p.Rule.Used), statuses(p.Rule.Reserved))
	if err != nil {
		return nil, nil, translate(err, "purge documents")
	}
	var (
		deleted []uuid.UUID
		clamps  []document.Clamp
		id      *uuid.UUID
		user    *uuid.UUID
		c       document.Clamp
	)
	_, err = pgx.ForEachRow(rows, []any{&id, &user, &c.Used, &c.Reserved}, func() error {
		if id != nil {
			deleted = append(deleted, *id)
		} else if user != nil {
			c.UserID = *user
			clamps = append(clamps, c)
		}
		return nil
	})
	return deleted, clamps, translate(err, "purge documents")
}

// SetChecksum records the checksum of pending document id's bytes, of the
// algorithm it declared; false when it is no longer pending.
func (s *Store) SetChecksum(ctx context.Context, id uuid.UUID, c document.Checksum) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE documents SET checksum = $2 WHERE id = $1 AND status = $3 AND checksum_algorithm = $4`,
		id, c.Value, document.StatusPending, c.Algorithm)
	if err != nil {
		return false, translate(err, "record checksum")
	}
	return tag.RowsAffected() == 1, nil
}

// SetUpload records the object store's upload id of pending document id.
func (s *Store) SetUpload(ctx context.Context, id uuid.UUID, uploadID string) error {
	tag, err := s.pool.Exec(ctx, `UPDATE documents SET upload_id = $2 WHERE id = $1 AND status = $3`, id, uploadID, document.StatusPending)
	if err == nil && tag.RowsAffected() == 0 {
		return &document.Error{Code: document.Conflict, Message: "the upload is no longer pending"}
	}
	return translate(err, "record upload")
}

// TouchPending sets pending document id's updated_at to at, unless it is
// later already; it reports whether the document is still pending.
func (s *Store) TouchPending(ctx context.Context, id uuid.UUID, at time.Time) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE documents SET updated_at = GREATEST(updated_at, $2)
		WHERE id = $1 AND status = $3`, id, at, document.StatusPending)
	if err != nil {
		return false, translate(err, "renew upload")
	}
	return tag.RowsAffected() > 0, nil
}

// KnownKeys returns which of keys belong to a document that may hold
// bytes: any but a rejected one.
func (s *Store) KnownKeys(ctx context.Context, keys []string) (map[string]bool, error) {
	rows, err := s.pool.Query(ctx, `SELECT object_key FROM documents WHERE object_key = ANY($1) AND status <> $2`, keys, document.StatusRejected)
	if err != nil {
		return nil, translate(err, "look up object keys")
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, translate(err, "look up object keys")
	}
	known := make(map[string]bool, len(found))
	for _, k := range found {
		known[k] = true
	}
	return known, nil
}

// PendingRemovals returns up to limit keys recorded for removal before
// before, oldest first.
func (s *Store) PendingRemovals(ctx context.Context, before time.Time, limit int) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT object_key FROM object_removals WHERE recorded_at < $1
		ORDER BY recorded_at LIMIT $2`, before, limit)
	if err != nil {
		return nil, translate(err, "list removals")
	}
	keys, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return keys, translate(err, "list removals")
}

// ForgetRemovals drops the removal records of keys.
func (s *Store) ForgetRemovals(ctx context.Context, keys []string) error {
	_, err := s.pool.Exec(ctx, `DELETE FROM object_removals WHERE object_key = ANY($1)`, keys)
	return translate(err, "forget removals")
}

// ReconcileCursor returns the reconciliation's position; the zero cursor
// before the first pass.
func (s *Store) ReconcileCursor(ctx context.Context) (document.ReconcileCursor, error) {
	var (
		c       document.ReconcileCursor
		started *time.Time
	)
	err := s.pool.QueryRow(ctx, `SELECT after_key, pass_started FROM reconcile_cursor`).Scan(&c.After, &started)
	if errors.Is(err, pgx.ErrNoRows) {
		return c, nil
	}
	if started != nil {
		c.PassStarted = *started
	}
	return c, translate(err, "read reconcile cursor")
}

// SaveReconcileCursor stores the reconciliation's position.
func (s *Store) SaveReconcileCursor(ctx context.Context, c document.ReconcileCursor) error {
	var started *time.Time
	if !c.PassStarted.IsZero() {
		started = &c.PassStarted
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO reconcile_cursor (after_key, pass_started) VALUES ($1, $2)
		ON CONFLICT (id) DO UPDATE SET after_key = EXCLUDED.after_key, pass_started = EXCLUDED.pass_started`, c.After, started)
	return translate(err, "save reconcile cursor")
}
