package postgres

import (
	"context"
	"errors"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/docuvault/docuvault/shared/document"
)

// CheckLedger locks the quota rows of up to limit users after after, in
// user order, then sums what each user's documents hold under rule in a
// second statement. In READ COMMITTED the second statement's snapshot is
// taken after every lock is held, so it sees exactly the document changes
// of the writes that committed their quota change before the lock: every
// write that moves a user's holdings writes the user's quota row in the
// same transaction (a document whose holdings stay 0 — a create without a
// declared size, a purge of a document holding nothing — writes none, and
// changes no sum), and one that has not yet written it waits for this
// transaction with its document change uncommitted, out of the sums.
//
// Lock order: this transaction takes quota rows only, in user order, and
// no document row. The other writers take one document row (or several,
// SKIP LOCKED, in a purge) and then one quota row, or several in user
// order (a purge), and wait for nothing after a quota row. A cycle through
// this transaction would need a writer holding a quota row it wants while
// waiting for one it holds: none does. So it cannot deadlock.
func (t *tx) CheckLedger(ctx context.Context, after uuid.UUID, limit int, rule document.LedgerRule) ([]document.LedgerEntry, error) {
	rows, err := t.q.Query(ctx, `SELECT user_id, used_bytes, reserved_bytes, limit_bytes FROM quotas
		WHERE user_id > $1 ORDER BY user_id LIMIT $2 FOR UPDATE`, after, limit)
	if err != nil {
		return nil, translate(err, "lock quotas")
	}
	entries, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (document.LedgerEntry, error) {
		var e document.LedgerEntry
		err := r.Scan(&e.Stored.UserID, &e.Stored.UsedBytes, &e.Stored.ReservedBytes, &e.Stored.LimitBytes)
		return e, err
	})
	if err != nil || len(entries) == 0 {
		return nil, translate(err, "lock quotas")
	}
	users := make([]uuid.UUID, len(entries))
	for i, e := range entries {
		users[i] = e.Stored.UserID
	}
	rows, err = t.q.Query(ctx, `SELECT u.user_id,
			coalesce(sum(d.size_bytes) FILTER (WHERE d.status = ANY($2)), 0),
			coalesce(sum(d.reserved_bytes) FILTER (WHERE d.status = ANY($3)), 0)
		FROM unnest($1::uuid[]) AS u(user_id) LEFT JOIN documents d ON d.user_id = u.user_id
		GROUP BY u.user_id`, users, statuses(rule.Used), statuses(rule.Reserved))
	if err != nil {
		return nil, translate(err, "sum documents")
	}
	byUser := make(map[uuid.UUID]int, len(entries))
	for i, e := range entries {
		byUser[e.Stored.UserID] = i
	}
	var (
		user           uuid.UUID
		used, reserved int64
	)
	_, err = pgx.ForEachRow(rows, []any{&user, &used, &reserved}, func() error {
		i, ok := byUser[user]
		if !ok {
			return errors.New("sum documents: a user not asked for")
		}
		entries[i].UsedBytes, entries[i].ReservedBytes = used, reserved
		return nil
	})
	if err != nil {
		return nil, translate(err, "sum documents")
	}
	return entries, nil
}

// statuses returns ss as text, as the statements compare them.
func statuses(ss []document.Status) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = string(s)
	}
	return out
}

// RepairLedger sets the quota rows of entries to what their documents
// hold, in one statement.
func (t *tx) RepairLedger(ctx context.Context, entries []document.LedgerEntry) error {
	users := make([]uuid.UUID, len(entries))
	used := make([]int64, len(entries))
	reserved := make([]int64, len(entries))
	for i, e := range entries {
		users[i], used[i], reserved[i] = e.Stored.UserID, e.UsedBytes, e.ReservedBytes
	}
	_, err := t.q.Exec(ctx, `UPDATE quotas SET used_bytes = r.used, reserved_bytes = r.reserved
		FROM unnest($1::uuid[], $2::bigint[], $3::bigint[]) AS r(user_id, used, reserved)
		WHERE quotas.user_id = r.user_id`, users, used, reserved)
	return translate(err, "repair quotas")
}

// LedgerCursor returns the ledger check's position; uuid.Nil between
// passes and before the first.
func (s *Store) LedgerCursor(ctx context.Context) (uuid.UUID, error) {
	var after *uuid.UUID
	err := s.pool.QueryRow(ctx, `SELECT after_user FROM ledger_cursor`).Scan(&after)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return uuid.Nil, nil
	case err != nil:
		return uuid.Nil, translate(err, "read ledger cursor")
	case after == nil:
		return uuid.Nil, nil
	}
	return *after, nil
}

// SaveLedgerCursor stores the ledger check's position.
func (s *Store) SaveLedgerCursor(ctx context.Context, after uuid.UUID) error {
	var v *uuid.UUID
	if after != uuid.Nil {
		v = &after
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO ledger_cursor (after_user) VALUES ($1)
		ON CONFLICT (id) DO UPDATE SET after_user = EXCLUDED.after_user`, v)
	return translate(err, "save ledger cursor")
}
