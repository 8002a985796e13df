package postgres

import (
	"context"

	"github.com/google/uuid"

	"github.com/docuvault/docuvault/shared/document"
)

// maxReadBatch bounds the documents one coalesced read asks for.
const maxReadBatch = 256

// docRead is one caller's read of a single document with its owner's
// quota. Concurrent reads go together in one statement (coalescer): both
// doors of every upload read the document they confirm.
type docRead struct {
	id    uuid.UUID
	doc   *document.Document
	quota document.Quota
	err   error
}

// read returns document id and its owner's quota.
func (s *Store) read(ctx context.Context, id uuid.UUID) (*document.Document, document.Quota, error) {
	r := &docRead{id: id}
	if err := s.reads.do(ctx, r); err != nil {
		return nil, document.Quota{}, err
	}
	return r.doc, r.quota, r.err
}

// fetch reads batch's documents in one statement and answers each read.
func (s *Store) fetch(ctx context.Context, batch []*docRead) {
	ids := make([]uuid.UUID, len(batch))
	for i, req := range batch {
		ids[i] = req.id
	}
	results := make(map[uuid.UUID]docRead, len(batch))
	rows, err := s.pool.Query(ctx, `SELECT doc.*, q.used_bytes, q.reserved_bytes, q.limit_bytes
		FROM (SELECT `+documentColumns+` FROM documents WHERE id = ANY($1)) doc
		LEFT JOIN quotas q ON q.user_id = doc.user_id`, ids)
	if err == nil {
		for rows.Next() {
			var used, reserved, limit *int64
			d, err := scanDocument(rows, &used, &reserved, &limit)
			if err != nil {
				break
			}
			q := document.Quota{UserID: d.UserID, LimitBytes: s.defaultQuota}
			if used != nil {
				q.UsedBytes, q.ReservedBytes, q.LimitBytes = *used, *reserved, *limit
			}
			results[d.ID] = docRead{doc: d, quota: q}
		}
		rows.Close()
		err = rows.Err()
	}
	for _, req := range batch {
		res, ok := results[req.id]
		switch {
		case err != nil:
			req.err = translate(err, "read document")
		case !ok:
			req.err = &document.Error{Code: document.NotFound, Message: "document not found"}
		default:
			// Each caller gets its own copy: callers change what they read.
			d := *res.doc
			req.doc, req.quota = &d, res.quota
		}
	}
}
