package postgres

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/docuvault/docuvault/shared/document"
)

// waitingFor is the predicate of the documents waiting for each stage:
// document.Document.Waiting's twin, and word for word the predicate of
// the stage's index (migration 0018), so that the planner uses it.
var waitingFor = map[document.Stage]string{
	document.StageScan:     `status = 'uploaded' AND scan_status = 'pending'`,
	document.StageClassify: `status = 'uploaded' AND (scan_status IS NULL OR scan_status IN ('clean', 'released'))`,
}

// ClaimWaiting claims documents waiting for q.Stage in turns between
// users, in one statement. The turns are numbered over the stage's index
// (user, then age), which holds only the waiting rows: a pass reads them
// and nothing else. The UPDATE checks the claim again under the row lock,
// so of two replicas claiming at once each document goes to one.
func (s *Store) ClaimWaiting(ctx context.Context, q document.ClaimQuery) ([]document.Waiting, error) {
	waiting, ok := waitingFor[q.Stage]
	if !ok {
		return nil, fmt.Errorf("claim documents: no stage %q", q.Stage)
	}
	rows, err := s.pool.Query(ctx, `WITH waiting AS (
			SELECT id, updated_at,
				row_number() OVER (PARTITION BY user_id ORDER BY updated_at, id) AS turn
			FROM documents
			WHERE `+waiting+` AND updated_at <= $1
				AND (classify_after IS NULL OR classify_after <= $2)
		), picked AS (
			SELECT id, turn FROM waiting WHERE turn <= $3 ORDER BY turn, updated_at, id LIMIT $4
		)
		UPDATE documents d SET classify_after = $5
		FROM picked
		WHERE d.id = picked.id AND d.`+waiting+`
			AND (d.classify_after IS NULL OR d.classify_after <= $2)
		RETURNING d.id, d.user_id, d.updated_at, picked.turn`,
		q.WaitedSince, q.Now, q.PerUser, q.Limit, q.Until)
	if err != nil {
		return nil, translate(err, "claim waiting documents")
	}
	type claimed struct {
		document.Waiting
		turn int64
	}
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (claimed, error) {
		var c claimed
		err := r.Scan(&c.ID, &c.UserID, &c.Since, &c.turn)
		return c, err
	})
	if err != nil {
		return nil, translate(err, "claim waiting documents")
	}
	// RETURNING keeps no order: put the turns back.
	slices.SortFunc(got, func(a, b claimed) int {
		return cmp.Or(cmp.Compare(a.turn, b.turn), a.Since.Compare(b.Since), slices.Compare(a.ID[:], b.ID[:]))
	})
	out := make([]document.Waiting, len(got))
	for i, c := range got {
		out[i] = c.Waiting
	}
	return out, nil
}

// Postpone sets the end of document id's claim to until if it is still
// uploaded.
func (s *Store) Postpone(ctx context.Context, id uuid.UUID, until time.Time) error {
	_, err := s.pool.Exec(ctx, `UPDATE documents SET classify_after = $2 WHERE id = $1 AND status = 'uploaded'`, id, until)
	return translate(err, "postpone")
}
