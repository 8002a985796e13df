package document

import (
	"context"
	"io"
	"time"

	"github.com/google/uuid"
)

// Store keeps documents, quotas and the event outbox. Implementations
// translate their driver's errors into *Error codes (NotFound, Unavailable).
type Store interface {
	// CreateDocument inserts a new document, and its owner's quota row if
	// missing, unless one of limits is reached; created says which. usage
	// is what the limits were checked against.
	CreateDocument(ctx context.Context, d *Document, limits UploadLimits) (usage UploadUsage, created bool, err error)
	// Settle applies s to document s.From.ID if its row is still as s.From
	// was read (status, size, etag and reservation), with its quota change
	// and its event, atomically: s.Charged when its charge fits the owner's
	// quota (Quota.Fits), s.Refused otherwise. A row changed since comes
	// back as it is now, and nothing is written.
	Settle(ctx context.Context, s Settlement) (Settled, error)
	// SetChecksum records the checksum of pending document id's bytes, once
	// known (an upload in parts: when its parts are complete); false when
	// it is no longer pending.
	SetChecksum(ctx context.Context, id uuid.UUID, c Checksum) (bool, error)
	// SetUpload records the object store's upload id of pending multipart
	// document id; Conflict when it is no longer pending.
	SetUpload(ctx context.Context, id uuid.UUID, uploadID string) error
	// TouchPending moves pending document id's updated_at forward to at (the
	// sweeper's stale clock restarts); pending says whether it still is.
	TouchPending(ctx context.Context, id uuid.UUID, at time.Time) (pending bool, err error)
	// Document returns the document with the given id.
	Document(ctx context.Context, id uuid.UUID) (*Document, error)
	// DocumentAndQuota returns the document with the given id and its
	// owner's quota, in one read; an owner without a quota row yet has the
	// default limit and nothing used.
	DocumentAndQuota(ctx context.Context, id uuid.UUID) (*Document, Quota, error)
	// Documents lists a user's documents, newest first.
	Documents(ctx context.Context, f ListFilter) ([]*Document, error)
	// DocumentWithChecksum returns user's newest document in one of
	// statuses whose checksum is c; NotFound when there is none.
	DocumentWithChecksum(ctx context.Context, user uuid.UUID, c Checksum, statuses []Status) (*Document, error)
	// Quota returns a user's quota, creating it with the default limit on first use.
	Quota(ctx context.Context, user uuid.UUID) (Quota, error)
	// SetQuotaLimit sets a user's limit, creating the quota row if needed.
	SetQuotaLimit(ctx context.Context, user uuid.UUID, limit int64) (Quota, error)
	// StaleDocuments returns up to limit documents in status (pending or
	// rejected) whose updated_at is before before, ordered by (updated_at,
	// id) after the position after (nil for the start). It takes no locks.
	StaleDocuments(ctx context.Context, status Status, before time.Time, after *StaleCursor, limit int) ([]*Document, error)
	// PurgeDocuments is the batched twin of removing a document
	// (Service.remove): in one short transaction it deletes those of p.IDs
	// that are still in p.Status and last changed before p.Before,
	// skipping rows another transaction holds, takes what each holds under
	// p.Rule from its owner's quota, and records as of p.At the removal of
	// the keys of those with a multipart upload (see Tx.RecordRemoval: the
	// sweeper aborts their uploads by exact key until the record is
	// forgotten). It returns the ids deleted, and what the releases
	// absorbed by not going below zero.
	PurgeDocuments(ctx context.Context, p Purge) ([]uuid.UUID, []Clamp, error)
	// TakeRate counts one request of action by user in the fixed window of
	// length window that holds now (a new window starts when the last one
	// is over), and reports whether the count is within limit.
	TakeRate(ctx context.Context, user uuid.UUID, action string, now time.Time, window time.Duration, limit int) (RateWindow, bool, error)
	// KnownKeys returns which of keys belong to a document that may hold
	// bytes: any but a rejected one (whose bytes must be gone).
	KnownKeys(ctx context.Context, keys []string) (map[string]bool, error)
	// PendingRemovals returns up to limit object keys recorded for removal
	// (Tx.RecordRemoval) before before, oldest first.
	PendingRemovals(ctx context.Context, before time.Time, limit int) ([]string, error)
	// ForgetRemovals drops the removal records of keys: their objects are gone.
	ForgetRemovals(ctx context.Context, keys []string) error
	// ReconcileCursor returns where the reconciliation of the bucket against
	// the table stands; the zero cursor before the first pass.
	ReconcileCursor(ctx context.Context) (ReconcileCursor, error)
	// SaveReconcileCursor stores c as the reconciliation's position.
	SaveReconcileCursor(ctx context.Context, c ReconcileCursor) error
	// LedgerCursor returns the last user the ledger check's current pass
	// checked; uuid.Nil between passes.
	LedgerCursor(ctx context.Context) (uuid.UUID, error)
	// SaveLedgerCursor stores after as the ledger check's position.
	SaveLedgerCursor(ctx context.Context, after uuid.UUID) error
	// ClaimWaiting claims for a recovery, until q.Until, up to q.Limit
	// documents waiting for q.Stage (Document.Waiting) whose last change
	// is at or before q.WaitedSince and whose earlier claim, if any, ended
	// by q.Now. They are taken in turns: every user's oldest such document
	// (the oldest of those first), then every user's second oldest, and so
	// on, at most q.PerUser of one user; they come back in that order. A
	// document another caller claims meanwhile is not returned.
	ClaimWaiting(ctx context.Context, q ClaimQuery) ([]Waiting, error)
	// Postpone keeps the recoveries off document id until until, if it
	// still waits for a stage (status uploaded).
	Postpone(ctx context.Context, id uuid.UUID, until time.Time) error
	// InTx runs fn in one transaction, committed when fn returns nil and
	// rolled back otherwise.
	InTx(ctx context.Context, fn func(Tx) error) error
}

// Tx is the work done inside one Store transaction. Locks are taken in one
// order everywhere — the document row, then the quota row — so confirms and
// deletes never deadlock.
type Tx interface {
	// LockDocument returns the document and locks its row until the end of the transaction.
	LockDocument(ctx context.Context, id uuid.UUID) (*Document, error)
	// Save writes the document's status, size, etag, reasons,
	// classification, scan state and timestamps, and records e, the event describing
	// the change, in the outbox — in one round trip, so the row locks of the
	// transaction are held as briefly as possible.
	Save(ctx context.Context, d *Document, e Event) error
	// DeleteDocument removes the document row.
	DeleteDocument(ctx context.Context, id uuid.UUID) error
	// RecordRemoval records, as of at, that the object under key must go:
	// the record stays until ForgetRemovals, so a removal that fails after
	// commit is retried by the sweeper.
	RecordRemoval(ctx context.Context, key string, at time.Time) error
	// Release takes used and reserved bytes from the user's quota, each
	// never below zero (Clamps reports what that absorbed). A user without
	// a quota row holds nothing: nothing to take.
	Release(ctx context.Context, user uuid.UUID, used, reserved int64) error
	// AppendEvent records an event in the outbox, to be published after commit.
	AppendEvent(ctx context.Context, e Event) error
	// Clamps returns what this transaction's quota writes (Release)
	// absorbed so far by not going below zero,
	// a Clamp per write that absorbed anything.
	Clamps() []Clamp
	// CheckLedger locks the quota rows of up to limit users after after (in
	// user order) until the end of the transaction, then returns each with
	// what its user's documents hold under rule, read after the locks: a
	// change to a user's documents that moves their quota commits with its
	// quota write, so it is either in both or in neither. It takes no
	// document lock, and its quota locks go in user order, so it cannot
	// deadlock with the writes that lock a document, then a quota row.
	CheckLedger(ctx context.Context, after uuid.UUID, limit int, rule LedgerRule) ([]LedgerEntry, error)
	// RepairLedger sets the quota rows of entries (locked by CheckLedger)
	// to what their documents hold.
	RepairLedger(ctx context.Context, entries []LedgerEntry) error
}

// ClaimQuery says which documents waiting for a stage a recovery pass
// claims (Store.ClaimWaiting), as the use case decided.
type ClaimQuery struct {
	Stage       Stage     // StageScan or StageClassify
	WaitedSince time.Time // documents last changed at or before it
	Now         time.Time // earlier claims that ended by now are over
	Until       time.Time // the end of the new claims
	PerUser     int       // most documents of one user
	Limit       int       // most documents in all
}

// Waiting is a document waiting for a stage, as a recovery pass claimed
// it.
type Waiting struct {
	ID     uuid.UUID
	UserID uuid.UUID
	Since  time.Time // its last change: when it became uploaded
}

// RateWindow is a user's request count for one action in the current window.
type RateWindow struct {
	Start time.Time
	Count int
}

// RateActionUpload is the action a user's upload requests are counted
// under (TakeRate's action; create_documents, migration 0016, counts its
// creates under the same name).
const RateActionUpload = "upload"

// UploadLimits bound a user's new uploads.
type UploadLimits struct {
	// Now is when the request is counted: in the user's upload window that
	// holds it, a window of length Window starting at the first request
	// after the last window was over. Every request counts, refused ones
	// too, and nothing gives a request back (a delete does not).
	Now         time.Time
	Window      time.Duration
	MaxRequests int // most upload requests in a window, this one included; 0 for no bound
	MaxPending  int // most documents pending; 0 for no bound
	// Reserve is the declared size that must fit in the quota with the
	// other reservations, and is reserved with the document; 0 for none.
	Reserve int64
}

// UploadUsage is what UploadLimits were checked against.
type UploadUsage struct {
	// Requests is the user's upload requests in the current window, this
	// one included; zero when neither MaxRequests nor MaxPending is set
	// (nothing is counted then).
	Requests RateWindow
	// Pending is the user's pending documents before this one, those of
	// requests that raced it included, so concurrent requests cannot pass
	// MaxPending together; zero when MaxPending is not set (nothing is
	// counted then).
	Pending int
	Quota   Quota
}

// Settlement moves one document out of the state it was read in (From)
// to one of two targets the domain chose, by whether a charge fits: the
// store writes the outcome's values as they are and keeps only what must
// be atomic, the fit check under the row locks.
type Settlement struct {
	From *Document // the document as read; nothing is written once its row has changed
	// Charged is written when its quota change fits the owner's quota;
	// nil means Refused is written without trying.
	Charged *Target
	Refused Target // written otherwise
}

// Target is a document as a settlement writes it, with what it does to
// its owner's quota and the event recorded with it.
type Target struct {
	// Document holds the row's new status, reason, size, etag,
	// reservation, confirmed_at and updated_at.
	Document *Document
	Event    *Event // nil records none
	// Used and Reserved are what the outcome adds to its owner's used and
	// reserved bytes (negative: takes): what Document holds under the
	// Ledger rule less what From held (see target).
	Used, Reserved int64
}

// Settled is what Store.Settle did.
type Settled struct {
	// Document is the row as stored after the call: the target written,
	// or, when Applied is false, the row as another writer left it.
	Document *Document
	Quota    Quota // the owner's quota after the call, reservations included
	Applied  bool  // a target was written
	Charged  bool  // the target written is Charged
	Clamp    Clamp // what the quota change absorbed by not going below zero
}

// Purge says which documents Store.PurgeDocuments removes, and how.
type Purge struct {
	IDs    []uuid.UUID
	Status Status     // removed only while still in it
	Before time.Time  // and last changed before it
	At     time.Time  // when the removals of their keys are recorded
	Rule   LedgerRule // what each holds of its owner's quota, released with it
}

// StaleCursor marks a position in a sweep's walk over stale documents,
// ordered by (updated_at, id).
type StaleCursor struct {
	UpdatedAt time.Time
	ID        uuid.UUID
}

// ReconcileCursor is the position of the incremental reconciliation of the
// bucket against the table: a pass walks the bucket's keys in order, a
// bounded slice per sweep, and the next pass starts a ReconcilePeriod after
// this one started.
type ReconcileCursor struct {
	After       string    // the last key the current pass checked; "" between passes
	PassStarted time.Time // when the current (or the last) pass started; zero before the first
}

// ListFilter selects a page of one user's documents.
type ListFilter struct {
	UserID         uuid.UUID
	Status         Status  // "" for any
	Classification string  // "" for any
	After          *Cursor // the last document of the previous page
	Limit          int
}

// Objects is the object store holding documents' bytes. Implementations
// translate a missing object into UploadMissing and an unreachable server
// into Unavailable.
type Objects interface {
	// PresignPut returns a URL that accepts one PUT of the object, and the
	// headers the client must send with it. A size > 0, the content type
	// and a checksum (unless zero) are signed into the URL, so another
	// size, type or body is refused.
	PresignPut(ctx context.Context, key, contentType string, size int64, checksum Checksum, ttl time.Duration) (url string, headers map[string]string, err error)
	// PresignGet returns a URL that downloads the object as filename.
	PresignGet(ctx context.Context, key, filename string, ttl time.Duration) (string, error)
	// Stat returns the stored object's size, etag and checksums.
	Stat(ctx context.Context, key string) (ObjectInfo, error)
	// ReadPrefix returns up to the first n bytes of the object.
	ReadPrefix(ctx context.Context, key string, n int64) ([]byte, error)
	// Open streams the object, if its etag is still etag (Conflict if
	// not: it was replaced). The reader ends with ctx.
	Open(ctx context.Context, key, etag string) (io.ReadCloser, error)
	// Remove deletes the object; removing a missing object is not an error.
	Remove(ctx context.Context, key string) error
	// CreateMultipart starts a multipart upload of key and returns its id;
	// with checksummed true every part must come with its SHA-256.
	CreateMultipart(ctx context.Context, key, contentType string, checksummed bool) (uploadID string, err error)
	// PresignPart returns a URL that accepts a PUT of part p.Number of the
	// upload, of exactly size bytes (signed) and, when p.ChecksumSHA256 is
	// set, of exactly that SHA-256 (signed), and nothing else.
	PresignPart(ctx context.Context, key, uploadID string, p Part, size int64, ttl time.Duration) (string, error)
	// ListParts returns the parts the upload holds, by number. An upload
	// that is not there (completed or aborted) is UploadMissing.
	ListParts(ctx context.Context, key, uploadID string) ([]Part, error)
	// CompleteMultipart makes the object of key from parts (with their
	// checksums, when the upload takes them), only if no object has the
	// key yet: Conflict when one has; UploadMissing when the upload is not
	// there.
	CompleteMultipart(ctx context.Context, key, uploadID string, parts []Part) error
	// AbortMultipart drops the upload and its parts; an upload that is not
	// there is not an error.
	AbortMultipart(ctx context.Context, key, uploadID string) error
	// AbortUploads drops every incomplete multipart upload of exactly key,
	// whatever its id (one whose id was never heard of: a lost answer).
	AbortUploads(ctx context.Context, key string) error
	// ListAfter returns up to limit stored objects whose keys sort after
	// after, in key order: a page of the bucket, never the whole of it.
	ListAfter(ctx context.Context, after string, limit int) ([]ListedObject, error)
}

// Part is one part of a multipart upload.
type Part struct {
	Number int
	Size   int64
	ETag   string // without quotes
	// ChecksumSHA256 is the part's SHA-256 in base64: signed into its URL
	// when the document's parts are checksummed, and as the object store
	// took it.
	ChecksumSHA256 string
}

// ListedObject is a stored object as a listing shows it. Size and ETag
// are what Stat would answer (the ETag in the same form, without quotes).
type ListedObject struct {
	Key          string
	Size         int64
	ETag         string
	LastModified time.Time
}

// ObjectInfo is what the object store knows of a stored object.
type ObjectInfo struct {
	Size         int64
	ETag         string
	ContentType  string
	LastModified time.Time
	// Checksums are the checksums MinIO stores for the object, by
	// algorithm, when a stat read them (empty: it stores none); nil when
	// they were not read (a notification, a listing).
	Checksums map[ChecksumAlgorithm]string
}
