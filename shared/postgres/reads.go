package postgres

import (
	"context"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/docuvault/docuvault/shared/document"
)

// maxReadBatch bounds the documents one coalesced read asks for.
const maxReadBatch = 256

// readTimeout bounds a coalesced read: it runs for every caller waiting on
// it, so no single caller's context may cancel it.
const readTimeout = 10 * time.Second

// docReads coalesces concurrent reads of single documents (each with its
// owner's quota) into one statement. A read that arrives while another is
// in flight waits for it to end and goes, with every read that arrived
// meanwhile, in the next statement. An idle process reads at once; a busy
// one (both doors of every upload read the document they confirm) sends
// one statement for many. Each read still starts after it was asked for,
// so it sees every write committed before.
type docReads struct {
	store *Store

	mu      sync.Mutex
	queue   []*docRead
	running bool
}

// docRead is one caller's read.
type docRead struct {
	id    uuid.UUID
	doc   *document.Document
	quota document.Quota
	err   error
	done  chan struct{}
}

// read returns document id and its owner's quota.
func (r *docReads) read(ctx context.Context, id uuid.UUID) (*document.Document, document.Quota, error) {
	req := &docRead{id: id, done: make(chan struct{})}
	r.mu.Lock()
	r.queue = append(r.queue, req)
	if !r.running {
		r.running = true
		go r.run(context.WithoutCancel(ctx))
	}
	r.mu.Unlock()
	select {
	case <-req.done:
		return req.doc, req.quota, req.err
	case <-ctx.Done():
		return nil, document.Quota{}, ctx.Err()
	}
}

// run sends the waiting reads, a batch per statement, until none wait.
func (r *docReads) run(ctx context.Context) {
	for {
		r.mu.Lock()
		batch := r.queue
		if len(batch) > maxReadBatch {
			batch, r.queue = batch[:maxReadBatch], batch[maxReadBatch:]
		} else {
			r.queue = nil
		}
		if len(batch) == 0 {
			r.running = false
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
		r.fetch(ctx, batch)
	}
}

// fetch reads batch's documents in one statement and answers each read.
func (r *docReads) fetch(ctx context.Context, batch []*docRead) {
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	ids := make([]uuid.UUID, len(batch))
	for i, req := range batch {
		ids[i] = req.id
	}
	results := make(map[uuid.UUID]docRead, len(batch))
	rows, err := r.store.pool.Query(ctx, `SELECT doc.*, q.used_bytes, q.reserved_bytes, q.limit_bytes
		FROM (SELECT `+documentColumns+` FROM documents WHERE id = ANY($1)) doc
		LEFT JOIN quotas q ON q.user_id = doc.user_id`, ids)
	if err == nil {
		for rows.Next() {
			var used, reserved, limit *int64
			d, err := scanDocument(rows, &used, &reserved, &limit)
			if err != nil {
				break
			}
			q := document.Quota{UserID: d.UserID, LimitBytes: r.store.defaultQuota}
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
		close(req.done)
	}
}
