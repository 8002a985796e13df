package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/docuvault/docuvault/shared/document"
)

// maxCreateBatch bounds the creates one statement applies: the rate_limits
// and quota row locks of a batch are held until all of it is applied.
const maxCreateBatch = 64

// createCall is one caller's create. Concurrent creates (upload-url
// requests) go together in one statement (coalescer), create_documents:
// one transaction, one WAL flush for many, each checked against its own
// limits with its own exact answer.
type createCall struct {
	doc    document.Document // a copy: the batch may outlive its caller's wait
	limits document.UploadLimits

	usage                document.UploadUsage
	created              bool
	createdAt, updatedAt time.Time
	err                  error
}

// CreateDocument inserts d, and its owner's quota row if missing, unless one
// of limits is reached, in the next batch of creates. limits.Reserve is
// reserved in the quota with it; d's times become the stored ones. When ctx
// ends first, the caller gets its error and the batch still runs: d may be
// created, and then waits, pending, for the sweeper, as a document whose
// client never uploads does.
func (s *Store) CreateDocument(ctx context.Context, d *document.Document, l document.UploadLimits) (document.UploadUsage, bool, error) {
	c := &createCall{doc: *d, limits: l, usage: document.UploadUsage{Quota: document.Quota{UserID: d.UserID}}}
	if err := s.creates.do(ctx, c); err != nil {
		return document.UploadUsage{Quota: document.Quota{UserID: d.UserID}}, false, err
	}
	if c.created {
		d.CreatedAt, d.UpdatedAt, d.ReservedBytes = c.createdAt, c.updatedAt, l.Reserve
	}
	return c.usage, c.created, c.err
}

// newDocument is a create as create_documents reads it: the document's
// row and the limits it is checked against.
type newDocument struct {
	ID           uuid.UUID       `json:"id"`
	UserID       uuid.UUID       `json:"user_id"`
	Filename     string          `json:"filename"`
	ContentType  string          `json:"content_type"`
	DeclaredSize *int64          `json:"declared_size"`
	ObjectKey    string          `json:"object_key"`
	Status       document.Status `json:"status"`
	CreatedAt    time.Time       `json:"created_at"`
	UpdatedAt    time.Time       `json:"updated_at"`
	PartSize     *int64          `json:"part_size"` // null for a single PUT
	Now          time.Time       `json:"now"`
	WindowMicros int64           `json:"window_us"`
	MaxRequests  int             `json:"max_requests"`
	MaxPending   int             `json:"max_pending"`
	Reserve      int64           `json:"reserve"`
	// The declared checksum; null for none.
	ChecksumAlgorithm *document.ChecksumAlgorithm `json:"checksum_algorithm"`
	Checksum          *string                     `json:"checksum"`
}

// micros is t as PostgreSQL keeps it, to the microsecond below: pgx sends
// a time so, while PostgreSQL's text input (JSON) would round it.
func micros(t time.Time) time.Time { return t.Truncate(time.Microsecond) }

// newDocumentOf encodes c's create. Text that is not UTF-8 is refused as
// PostgreSQL refuses it in a parameter: JSON would change it silently.
func newDocumentOf(c *createCall) (newDocument, error) {
	d, l := &c.doc, c.limits
	for _, text := range []string{d.Filename, d.ContentType, d.ObjectKey, string(d.Status), d.Checksum.Value} {
		if !utf8.ValidString(text) {
			return newDocument{}, &document.Error{Code: document.Internal, Message: "database error",
				Err: fmt.Errorf("create document: text %q is not UTF-8", text)}
		}
	}
	e := newDocument{ID: d.ID, UserID: d.UserID, Filename: d.Filename, ContentType: d.ContentType,
		DeclaredSize: d.DeclaredSize, ObjectKey: d.ObjectKey, Status: d.Status,
		CreatedAt: micros(d.CreatedAt), UpdatedAt: micros(d.UpdatedAt), Now: micros(l.Now),
		WindowMicros: l.Window.Microseconds(), MaxRequests: l.MaxRequests, MaxPending: l.MaxPending, Reserve: l.Reserve}
	if d.PartSize > 0 {
		e.PartSize = &d.PartSize
	}
	if !d.Checksum.IsZero() {
		e.ChecksumAlgorithm, e.Checksum = &d.Checksum.Algorithm, &d.Checksum.Value
	}
	return e, nil
}

// createBatch applies batch in one statement and answers each call. A
// statement that fails for one of its creates (a document id or an object
// key already taken, a value a column refuses) writes nothing of the batch;
// each create is then sent alone, so that only that one fails, as it would
// have alone. That costs a statement per create only when one fails, and
// covers whatever error a create causes. A savepoint per create (a PL/pgSQL
// exception block) would catch only the errors it names, and cost a
// subtransaction, with a transaction id of its own, for every create of
// every batch (measured: up to a tenth of a create's server time, within
// the noise of a busy machine).
func (s *Store) createBatch(ctx context.Context, batch []*createCall) {
	calls := make([]*createCall, 0, len(batch))
	creates := make([]newDocument, 0, len(batch))
	for _, c := range batch {
		e, err := newDocumentOf(c)
		if err != nil {
			c.err = err
			continue
		}
		calls, creates = append(calls, c), append(creates, e)
	}
	if len(calls) == 0 {
		return
	}
	err := s.create(ctx, calls, creates)
	var pgErr *pgconn.PgError
	if err != nil && len(calls) > 1 && errors.As(err, &pgErr) && !serverGoingAway(pgErr) {
		for i, c := range calls {
			c.err = translate(s.create(ctx, calls[i:i+1], creates[i:i+1]), "create document")
		}
		return
	}
	for _, c := range calls {
		c.err = translate(err, "create document")
	}
}

// created is create_documents' answer to one create.
type created struct {
	i                    int
	start                *time.Time
	requests, pending    int
	quota                document.Quota
	createdAt, updatedAt *time.Time
}

// noAnswer is the error of a statement whose answer is not the one asked.
func noAnswer(err error) error {
	return &document.Error{Code: document.Internal, Message: "database error", Err: err}
}

// create runs create_documents on creates, the encoded calls, and answers
// each call; on an error it answers none.
func (s *Store) create(ctx context.Context, calls []*createCall, creates []newDocument) error {
	payload, err := json.Marshal(creates)
	if err != nil {
		return err
	}
	rows, err := s.pool.Query(ctx, `SELECT * FROM create_documents($1, $2)`, payload, s.defaultQuota)
	if err != nil {
		return err
	}
	answers := make([]*created, len(calls))
	var r created
	_, err = pgx.ForEachRow(rows, []any{&r.i, &r.start, &r.requests, &r.pending,
		&r.quota.UsedBytes, &r.quota.ReservedBytes, &r.quota.LimitBytes, &r.createdAt, &r.updatedAt}, func() error {
		if r.i < 0 || r.i >= len(calls) || answers[r.i] != nil {
			return noAnswer(fmt.Errorf("create documents: an answer for create %d of %d", r.i, len(calls)))
		}
		a := r
		answers[r.i] = &a
		return nil
	})
	if err != nil {
		return err
	}
	for i, a := range answers {
		if a == nil {
			return noAnswer(fmt.Errorf("create documents: no answer for create %d of %d", i, len(calls)))
		}
	}
	for i, c := range calls {
		a := answers[i]
		u := document.UploadUsage{Requests: document.RateWindow{Count: a.requests}, Pending: a.pending, Quota: a.quota}
		u.Quota.UserID = c.doc.UserID
		if a.start != nil {
			u.Requests.Start = *a.start
		}
		c.usage = u
		if c.created = a.createdAt != nil; c.created {
			// As stored: PostgreSQL keeps microseconds.
			c.createdAt, c.updatedAt = *a.createdAt, *a.updatedAt
		}
	}
	return nil
}
