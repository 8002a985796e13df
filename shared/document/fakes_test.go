package document_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/docuvault/docuvault/shared/document"
)

var (
	_ document.Store             = (*memStore)(nil)
	_ document.Tx                = (*memTx)(nil)
	_ document.Objects           = (*memObjects)(nil)
	_ document.ContentClassifier = (*fakeClassifier)(nil)
)

// memState is what a memStore transaction can change; InTx works on a
// copy and swaps it in on commit.
type memState struct {
	docs     map[uuid.UUID]*document.Document
	quotas   map[uuid.UUID]document.Quota
	outbox   []document.Event
	removals map[string]time.Time // object key → when its removal was recorded
}

func (st *memState) clone() *memState {
	c := &memState{
		docs:     make(map[uuid.UUID]*document.Document, len(st.docs)),
		quotas:   make(map[uuid.UUID]document.Quota, len(st.quotas)),
		outbox:   slices.Clone(st.outbox),
		removals: maps.Clone(st.removals),
	}
	for id, d := range st.docs {
		c.docs[id] = cloneDoc(d)
	}
	for u, q := range st.quotas {
		c.quotas[u] = q
	}
	return c
}

// quota returns user's quota, making it with limit on first use.
func (st *memState) quota(user uuid.UUID, limit int64) document.Quota {
	q, ok := st.quotas[user]
	if !ok {
		q = document.Quota{UserID: user, LimitBytes: limit}
		st.quotas[user] = q
	}
	return q
}

func cloneDoc(d *document.Document) *document.Document {
	c := *d
	if d.DeclaredSize != nil {
		v := *d.DeclaredSize
		c.DeclaredSize = &v
	}
	if d.ConfirmedAt != nil {
		v := *d.ConfirmedAt
		c.ConfirmedAt = &v
	}
	return &c
}

func notFound() error { return document.Errorf(document.NotFound, "document not found") }

type rateKey struct {
	user   uuid.UUID
	action string
}

// memStore is an in-memory document.Store. One mutex serialises every call,
// transactions included.
type memStore struct {
	defaultLimit int64

	mu    sync.Mutex
	st    *memState
	rates map[rateKey]document.RateWindow
	// cursor is the reconciliation's position (not transactional).
	cursor document.ReconcileCursor
	// ledgerCursor is the ledger check's position (not transactional).
	ledgerCursor uuid.UUID
	// classifyAfter is each document's recovery claim end (PostgreSQL's
	// classify_after; not transactional, made on first use).
	classifyAfter map[uuid.UUID]time.Time

	failMu sync.Mutex
	fails  map[string]error // method name ("Document", "InTx", "Tx.Save", …) → error it returns
	calls  map[string]int   // method name → how many times it was called

	// beforeConfirm, when set, runs at the start of Settle, before
	// the lock: a test makes another door act between a read and the lock.
	beforeConfirm func()
}

func newMemStore(defaultLimit int64) *memStore {
	return &memStore{
		defaultLimit: defaultLimit,
		st: &memState{docs: map[uuid.UUID]*document.Document{}, quotas: map[uuid.UUID]document.Quota{},
			removals: map[string]time.Time{}},
		rates: map[rateKey]document.RateWindow{},
		fails: map[string]error{},
		calls: map[string]int{},
	}
}

// failOn makes method return err from now on (nil to stop).
func (s *memStore) failOn(method string, err error) {
	s.failMu.Lock()
	defer s.failMu.Unlock()
	s.fails[method] = err
}

func (s *memStore) failure(method string) error {
	s.failMu.Lock()
	defer s.failMu.Unlock()
	s.calls[method]++
	return s.fails[method]
}

// callCount returns how many times method was called.
func (s *memStore) callCount(method string) int {
	s.failMu.Lock()
	defer s.failMu.Unlock()
	return s.calls[method]
}

// events returns the recorded events of the given types (all when none).
func (s *memStore) events(types ...document.EventType) []document.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []document.Event
	for _, e := range s.st.outbox {
		if len(types) == 0 || slices.Contains(types, e.Type) {
			out = append(out, e)
		}
	}
	return out
}

// count returns how many documents the store holds.
func (s *memStore) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.st.docs)
}

func (s *memStore) CreateDocument(_ context.Context, d *document.Document, l document.UploadLimits) (document.UploadUsage, bool, error) {
	if err := s.failure("CreateDocument"); err != nil {
		return document.UploadUsage{}, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	u := document.UploadUsage{Quota: s.st.quota(d.UserID, s.defaultLimit)}
	if l.MaxRequests > 0 || l.MaxPending > 0 {
		// Counted like PostgreSQL's 'upload' row: every request, refused
		// ones too; the lock makes the pending count exact.
		u.Requests = s.countRate(rateKey{d.UserID, document.RateActionUpload}, l.Now, l.Window)
	}
	if l.MaxPending > 0 {
		for _, o := range s.st.docs {
			if o.UserID == d.UserID && o.Status == document.StatusPending {
				u.Pending++
			}
		}
	}
	switch {
	case l.MaxRequests > 0 && u.Requests.Count > l.MaxRequests,
		l.MaxPending > 0 && u.Pending >= l.MaxPending,
		l.Reserve > 0 && u.Quota.UsedBytes+u.Quota.ReservedBytes+l.Reserve > u.Quota.LimitBytes:
		return u, false, nil
	}
	q := u.Quota
	q.ReservedBytes += l.Reserve
	s.st.quotas[d.UserID] = q
	d.ReservedBytes = l.Reserve
	s.st.docs[d.ID] = cloneDoc(d)
	return u, true, nil
}

// Settle follows document.Store.Settle: a row no longer as set.From was
// read comes back unchanged; otherwise the charged target is written if
// its change fits (Quota.Fits), else the refused one.
func (s *memStore) Settle(_ context.Context, set document.Settlement) (document.Settled, error) {
	if err := s.failure("Settle"); err != nil {
		return document.Settled{}, err
	}
	if s.beforeConfirm != nil {
		s.beforeConfirm()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.st.docs[set.From.ID]
	if !ok {
		return document.Settled{}, notFound()
	}
	q := s.st.quota(d.UserID, s.defaultLimit)
	from := set.From
	if d.Status != from.Status || d.SizeBytes != from.SizeBytes || d.ETag != from.ETag || d.ReservedBytes != from.ReservedBytes {
		return document.Settled{Document: cloneDoc(d), Quota: q}, nil
	}
	t, charged := set.Refused, false
	if c := set.Charged; c != nil {
		q := q
		q.ReservedBytes = max(0, q.ReservedBytes+c.Reserved)
		if q.Fits(c.Used) {
			t, charged = *c, true
		}
	}
	q, clamp := moveQuota(q, t.Used, t.Reserved)
	s.st.quotas[d.UserID] = q
	w := t.Document
	d.Status, d.RejectReason, d.SizeBytes, d.ETag, d.ReservedBytes, d.ConfirmedAt, d.UpdatedAt, d.ScanStatus =
		w.Status, w.RejectReason, w.SizeBytes, w.ETag, w.ReservedBytes, w.ConfirmedAt, w.UpdatedAt, w.ScanStatus
	if t.Event != nil {
		s.st.outbox = append(s.st.outbox, *t.Event)
	}
	return document.Settled{Document: cloneDoc(w), Quota: q, Applied: true, Charged: charged, Clamp: clamp}, nil
}

// moveQuota adds used and reserved bytes (negative: takes) to q, each never
// below zero as the PostgreSQL store's clamps do, and returns what the
// taking absorbed.
func moveQuota(q document.Quota, used, reserved int64) (document.Quota, document.Clamp) {
	c := document.Clamp{UserID: q.UserID}
	q.UsedBytes, c.Used = takeBytes(q.UsedBytes, -used)
	q.ReservedBytes, c.Reserved = takeBytes(q.ReservedBytes, -reserved)
	if c.Used == 0 && c.Reserved == 0 {
		c.UserID = uuid.Nil
	}
	return q, c
}

// takeBytes takes n bytes from have (adds -n when n < 0), never below zero,
// as the PostgreSQL store's clamps do: rest is what is left, absorbed what
// could not be taken.
func takeBytes(have, n int64) (rest, absorbed int64) {
	return max(0, have-n), max(0, n-have)
}

func (s *memStore) Document(_ context.Context, id uuid.UUID) (*document.Document, error) {
	if err := s.failure("Document"); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.st.docs[id]
	if !ok {
		return nil, notFound()
	}
	return cloneDoc(d), nil
}

// newer reports whether (at, id) sorts after (bt, bid).
func newer(at time.Time, id uuid.UUID, bt time.Time, bid uuid.UUID) bool {
	if !at.Equal(bt) {
		return at.After(bt)
	}
	return bytes.Compare(id[:], bid[:]) > 0
}

func (s *memStore) DocumentWithChecksum(_ context.Context, user uuid.UUID, c document.Checksum, statuses []document.Status) (*document.Document, error) {
	if err := s.failure("DocumentWithChecksum"); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var found *document.Document
	for _, d := range s.st.docs {
		if d.UserID == user && d.Checksum == c && slices.Contains(statuses, d.Status) &&
			(found == nil || newer(d.CreatedAt, d.ID, found.CreatedAt, found.ID)) {
			found = d
		}
	}
	if found == nil {
		return nil, document.Errorf(document.NotFound, "document not found")
	}
	return cloneDoc(found), nil
}

func (s *memStore) Documents(_ context.Context, f document.ListFilter) ([]*document.Document, error) {
	if err := s.failure("Documents"); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*document.Document
	for _, d := range s.st.docs {
		switch {
		case d.UserID != f.UserID,
			f.Status != "" && d.Status != f.Status,
			f.Classification != "" && d.Classification != f.Classification,
			f.After != nil && !newer(f.After.CreatedAt, f.After.ID, d.CreatedAt, d.ID):
			continue
		}
		out = append(out, cloneDoc(d))
	}
	sort.Slice(out, func(i, j int) bool { return newer(out[i].CreatedAt, out[i].ID, out[j].CreatedAt, out[j].ID) })
	if len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

func (s *memStore) Quota(_ context.Context, user uuid.UUID) (document.Quota, error) {
	if err := s.failure("Quota"); err != nil {
		return document.Quota{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.quota(user, s.defaultLimit), nil
}

func (s *memStore) SetQuotaLimit(_ context.Context, user uuid.UUID, limit int64) (document.Quota, error) {
	if err := s.failure("SetQuotaLimit"); err != nil {
		return document.Quota{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.st.quota(user, limit)
	q.LimitBytes = limit
	s.st.quotas[user] = q
	return q, nil
}

func (s *memStore) StaleDocuments(_ context.Context, status document.Status, before time.Time, after *document.StaleCursor, limit int) ([]*document.Document, error) {
	if err := s.failure("StaleDocuments"); err != nil {
		return nil, err
	}
	if status != document.StatusPending && status != document.StatusRejected {
		return nil, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*document.Document
	for _, d := range s.st.docs {
		if d.Status != status || !d.UpdatedAt.Before(before) ||
			after != nil && !newer(d.UpdatedAt, d.ID, after.UpdatedAt, after.ID) {
			continue
		}
		out = append(out, cloneDoc(d))
	}
	sort.Slice(out, func(i, j int) bool { return newer(out[j].UpdatedAt, out[j].ID, out[i].UpdatedAt, out[i].ID) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (s *memStore) SetChecksum(_ context.Context, id uuid.UUID, c document.Checksum) (bool, error) {
	if err := s.failure("SetChecksum"); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.st.docs[id]
	if !ok || d.Status != document.StatusPending || d.Checksum.Algorithm != c.Algorithm {
		return false, nil
	}
	d.Checksum = c
	return true, nil
}

func (s *memStore) SetUpload(_ context.Context, id uuid.UUID, uploadID string) error {
	if err := s.failure("SetUpload"); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.st.docs[id]
	if !ok || d.Status != document.StatusPending {
		return document.Errorf(document.Conflict, "the upload is no longer pending")
	}
	d.UploadID = uploadID
	return nil
}

func (s *memStore) TouchPending(_ context.Context, id uuid.UUID, at time.Time) (bool, error) {
	if err := s.failure("TouchPending"); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.st.docs[id]
	if !ok || d.Status != document.StatusPending {
		return false, nil
	}
	if at.After(d.UpdatedAt) {
		d.UpdatedAt = at
	}
	return true, nil
}

func (s *memStore) PurgeDocuments(_ context.Context, p document.Purge) ([]uuid.UUID, []document.Clamp, error) {
	if err := s.failure("PurgeDocuments"); err != nil {
		return nil, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var (
		deleted  []uuid.UUID
		absorbed = map[uuid.UUID]document.Clamp{} // user → what the releases absorbed
	)
	for _, id := range p.IDs {
		d, ok := s.st.docs[id]
		if !ok || d.Status != p.Status || !d.UpdatedAt.Before(p.Before) {
			continue
		}
		if q, ok := s.st.quotas[d.UserID]; ok {
			used, reserved := p.Rule.Holds(d)
			q, c := moveQuota(q, -used, -reserved)
			s.st.quotas[d.UserID] = q
			a := absorbed[d.UserID]
			a.Used, a.Reserved = a.Used+c.Used, a.Reserved+c.Reserved
			absorbed[d.UserID] = a
		}
		if _, ok := s.st.removals[d.ObjectKey]; d.UploadID != "" && !ok {
			s.st.removals[d.ObjectKey] = p.At
		}
		delete(s.st.docs, id)
		deleted = append(deleted, id)
	}
	// One Clamp per user, as PostgreSQL releases a user's holdings in one
	// write.
	var clamps []document.Clamp
	for _, u := range slices.SortedFunc(maps.Keys(absorbed), func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) }) {
		if c := absorbed[u]; c.Used > 0 || c.Reserved > 0 {
			c.UserID = u
			clamps = append(clamps, c)
		}
	}
	return deleted, clamps, nil
}

// TakeRate counts in fixed windows: a window starting at or before
// now-window is over, and a new one starts at now.
func (s *memStore) TakeRate(_ context.Context, user uuid.UUID, action string, now time.Time, window time.Duration, limit int) (document.RateWindow, bool, error) {
	if err := s.failure("TakeRate"); err != nil {
		return document.RateWindow{}, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.countRate(rateKey{user, action}, now, window)
	return w, w.Count <= limit, nil
}

// countRate counts one request under k in its fixed window; s.mu is held.
func (s *memStore) countRate(k rateKey, now time.Time, window time.Duration) document.RateWindow {
	w, ok := s.rates[k]
	if !ok || !w.Start.After(now.Add(-window)) {
		w = document.RateWindow{Start: now}
	}
	w.Count++
	s.rates[k] = w
	return w
}

func (s *memStore) DocumentAndQuota(ctx context.Context, id uuid.UUID) (*document.Document, document.Quota, error) {
	if err := s.failure("DocumentAndQuota"); err != nil {
		return nil, document.Quota{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.st.docs[id]
	if !ok {
		return nil, document.Quota{}, notFound()
	}
	q, ok := s.st.quotas[d.UserID]
	if !ok {
		q = document.Quota{UserID: d.UserID, LimitBytes: s.defaultLimit}
	}
	return cloneDoc(d), q, nil
}

func (s *memStore) KnownKeys(_ context.Context, keys []string) (map[string]bool, error) {
	if err := s.failure("KnownKeys"); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	known := map[string]bool{}
	for _, d := range s.st.docs {
		if d.Status != document.StatusRejected && slices.Contains(keys, d.ObjectKey) {
			known[d.ObjectKey] = true
		}
	}
	return known, nil
}

func (s *memStore) PendingRemovals(_ context.Context, before time.Time, limit int) ([]string, error) {
	if err := s.failure("PendingRemovals"); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var keys []string
	for k, at := range s.st.removals {
		if at.Before(before) {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b string) int { return s.st.removals[a].Compare(s.st.removals[b]) })
	return keys[:min(limit, len(keys))], nil
}

func (s *memStore) ForgetRemovals(_ context.Context, keys []string) error {
	if err := s.failure("ForgetRemovals"); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		delete(s.st.removals, k)
	}
	return nil
}

// removals returns the object keys recorded for removal.
func (s *memStore) removals() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.st.removals))
}

func (s *memStore) ReconcileCursor(context.Context) (document.ReconcileCursor, error) {
	if err := s.failure("ReconcileCursor"); err != nil {
		return document.ReconcileCursor{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cursor, nil
}

func (s *memStore) LedgerCursor(context.Context) (uuid.UUID, error) {
	if err := s.failure("LedgerCursor"); err != nil {
		return uuid.Nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ledgerCursor, nil
}

func (s *memStore) SaveLedgerCursor(_ context.Context, after uuid.UUID) error {
	if err := s.failure("SaveLedgerCursor"); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ledgerCursor = after
	return nil
}

func (s *memStore) SaveReconcileCursor(_ context.Context, c document.ReconcileCursor) error {
	if err := s.failure("SaveReconcileCursor"); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cursor = c
	return nil
}

// InTx runs fn on a copy of the state, swapped in only if fn returns nil.
func (s *memStore) InTx(_ context.Context, fn func(document.Tx) error) error {
	if err := s.failure("InTx"); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	tx := &memTx{s: s, st: s.st.clone()}
	if err := fn(tx); err != nil {
		return err
	}
	s.st = tx.st
	return nil
}

// memTx is one memStore transaction; the store's mutex is held throughout.
type memTx struct {
	s      *memStore
	st     *memState
	clamps []document.Clamp
}

func (t *memTx) Clamps() []document.Clamp { return t.clamps }

// clamp records what a quota write of user absorbed, if anything.
func (t *memTx) clamp(user uuid.UUID, used, reserved int64) {
	if used > 0 || reserved > 0 {
		t.clamps = append(t.clamps, document.Clamp{UserID: user, Used: used, Reserved: reserved})
	}
}

// CheckLedger recomputes the quota rows after after, in user order, with
// rule (the memStore holds every lock already).
func (t *memTx) CheckLedger(_ context.Context, after uuid.UUID, limit int, rule document.LedgerRule) ([]document.LedgerEntry, error) {
	if err := t.s.failure("Tx.CheckLedger"); err != nil {
		return nil, err
	}
	users := slices.SortedFunc(maps.Keys(t.st.quotas), func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) })
	var out []document.LedgerEntry
	for _, u := range users {
		if u.String() <= after.String() {
			continue
		}
		if len(out) == limit {
			break
		}
		e := document.LedgerEntry{Stored: t.st.quotas[u]}
		for _, d := range t.st.docs {
			if d.UserID == u {
				used, reserved := rule.Holds(d)
				e.UsedBytes += used
				e.ReservedBytes += reserved
			}
		}
		out = append(out, e)
	}
	return out, nil
}

func (t *memTx) RepairLedger(_ context.Context, entries []document.LedgerEntry) error {
	if err := t.s.failure("Tx.RepairLedger"); err != nil {
		return err
	}
	for _, e := range entries {
		q := t.st.quotas[e.Stored.UserID]
		q.UsedBytes, q.ReservedBytes = e.UsedBytes, e.ReservedBytes
		t.st.quotas[e.Stored.UserID] = q
	}
	return nil
}

func (t *memTx) LockDocument(_ context.Context, id uuid.UUID) (*document.Document, error) {
	if err := t.s.failure("Tx.LockDocument"); err != nil {
		return nil, err
	}
	d, ok := t.st.docs[id]
	if !ok {
		return nil, notFound()
	}
	return cloneDoc(d), nil
}

func (t *memTx) Save(_ context.Context, d *document.Document, e document.Event) error {
	if err := t.s.failure("Tx.Save"); err != nil {
		return err
	}
	if cur, ok := t.st.docs[d.ID]; ok {
		n := cloneDoc(d)
		cur.Status, cur.SizeBytes, cur.ETag, cur.RejectReason = n.Status, n.SizeBytes, n.ETag, n.RejectReason
		cur.Classification, cur.DetectedType, cur.Confidence = n.Classification, n.DetectedType, n.Confidence
		cur.ClassificationReason, cur.ConfirmedAt, cur.UpdatedAt = n.ClassificationReason, n.ConfirmedAt, n.UpdatedAt
		cur.ScanStatus, cur.ScanDetail = n.ScanStatus, n.ScanDetail
	}
	t.st.outbox = append(t.st.outbox, e)
	return nil
}

func (t *memTx) DeleteDocument(_ context.Context, id uuid.UUID) error {
	if err := t.s.failure("Tx.DeleteDocument"); err != nil {
		return err
	}
	delete(t.st.docs, id)
	return nil
}

func (t *memTx) RecordRemoval(_ context.Context, key string, at time.Time) error {
	if err := t.s.failure("Tx.RecordRemoval"); err != nil {
		return err
	}
	if _, ok := t.st.removals[key]; !ok {
		t.st.removals[key] = at
	}
	return nil
}

func (t *memTx) Release(_ context.Context, user uuid.UUID, used, reserved int64) error {
	if err := t.s.failure("Tx.Release"); err != nil {
		return err
	}
	if q, ok := t.st.quotas[user]; ok {
		q, c := moveQuota(q, -used, -reserved)
		t.clamp(user, c.Used, c.Reserved)
		t.st.quotas[user] = q
	}
	return nil
}

func (t *memTx) AppendEvent(_ context.Context, e document.Event) error {
	if err := t.s.failure("Tx.AppendEvent"); err != nil {
		return err
	}
	t.st.outbox = append(t.st.outbox, e)
	return nil
}

// memObject is one stored object.
type memObject struct {
	data        []byte
	etag        string
	contentType string
	modified    time.Time
	// composite is the composite SHA-256 of an object made from parts
	// each stored with its SHA-256 ("" otherwise), as MinIO keeps it.
	composite string
}

// info is what a notification of the object's write reports.
func (o memObject) info() document.ObjectInfo {
	return document.ObjectInfo{Size: int64(len(o.data)), ETag: o.etag}
}

// presignCall records a PresignPut or PresignGet.
type presignCall struct {
	method      string // PUT or GET
	key         string
	contentType string            // PUT
	size        int64             // PUT
	checksum    document.Checksum // PUT
	filename    string            // GET
	ttl         time.Duration
}

// memObjects is an in-memory document.Objects. The fail* fields, set
// before the calls they affect, make those calls return the error.
type memObjects struct {
	listed int // ListAfter calls

	failPresign, failStat, failRead, failRemove, failList, failAbort error
	// loseCreate makes CreateMultipart make the upload and answer an
	// error, as when MinIO's answer is lost.
	loseCreate error

	mu       sync.Mutex
	objs     map[string]memObject
	uploads  map[string]*memUpload // by upload id
	presigns []presignCall
	stats    int
	removes  []string // keys Remove was called with, failed calls included
}

func newMemObjects() *memObjects {
	return &memObjects{objs: map[string]memObject{}, uploads: map[string]*memUpload{}}
}

func uploadMissing(key string) error {
	return document.Errorf(document.UploadMissing, "no object %s", key)
}

// put stores data under key, last modified at modified.
func (o *memObjects) put(key string, data []byte, modified time.Time) memObject {
	o.mu.Lock()
	defer o.mu.Unlock()
	obj := memObject{data: slices.Clone(data), etag: fmt.Sprintf("%x", md5.Sum(data)), contentType: "application/octet-stream", modified: modified}
	o.objs[key] = obj
	return obj
}

func (o *memObjects) has(key string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	_, ok := o.objs[key]
	return ok
}

func (o *memObjects) presignCalls() []presignCall {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.presigns)
}

func (o *memObjects) statCount() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.stats
}

func (o *memObjects) removeCalls() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.removes)
}

func (o *memObjects) PresignPut(_ context.Context, key, contentType string, size int64, checksum document.Checksum, ttl time.Duration) (string, map[string]string, error) {
	if o.failPresign != nil {
		return "", nil, o.failPresign
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.presigns = append(o.presigns, presignCall{method: "PUT", key: key, contentType: contentType, size: size, checksum: checksum, ttl: ttl})
	return "https://objects.test/put/" + key, map[string]string{"Content-Type": contentType}, nil
}

func (o *memObjects) PresignGet(_ context.Context, key, filename string, ttl time.Duration) (string, error) {
	if o.failPresign != nil {
		return "", o.failPresign
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.presigns = append(o.presigns, presignCall{method: "GET", key: key, filename: filename, ttl: ttl})
	return "https://objects.test/get/" + key, nil
}

func (o *memObjects) Stat(_ context.Context, key string) (document.ObjectInfo, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.stats++
	if o.failStat != nil {
		return document.ObjectInfo{}, o.failStat
	}
	obj, ok := o.objs[key]
	if !ok {
		return document.ObjectInfo{}, uploadMissing(key)
	}
	// As MinIO answers a stat with checksum mode of an object whose PUT
	// carried its SHA-256, or that was made from parts that each did.
	sum := sha256.Sum256(obj.data)
	checksums := map[document.ChecksumAlgorithm]string{document.ChecksumSHA256: base64.StdEncoding.EncodeToString(sum[:])}
	if obj.composite != "" {
		checksums = map[document.ChecksumAlgorithm]string{document.ChecksumSHA256Composite: obj.composite}
	}
	return document.ObjectInfo{Size: int64(len(obj.data)), ETag: obj.etag, ContentType: obj.contentType, LastModified: obj.modified, Checksums: checksums}, nil
}

func (o *memObjects) Open(_ context.Context, key, etag string) (io.ReadCloser, error) {
	if o.failRead != nil {
		return nil, o.failRead
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	obj, ok := o.objs[key]
	switch {
	case !ok:
		return nil, uploadMissing(key)
	case obj.etag != etag:
		return nil, document.Errorf(document.Conflict, "the object was replaced")
	}
	return io.NopCloser(bytes.NewReader(slices.Clone(obj.data))), nil
}

func (o *memObjects) ReadPrefix(_ context.Context, key string, n int64) ([]byte, error) {
	if o.failRead != nil {
		return nil, o.failRead
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	obj, ok := o.objs[key]
	if !ok {
		return nil, uploadMissing(key)
	}
	return slices.Clone(obj.data[:min(int64(len(obj.data)), n)]), nil
}

func (o *memObjects) Remove(_ context.Context, key string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.removes = append(o.removes, key)
	if o.failRemove != nil {
		return o.failRemove
	}
	delete(o.objs, key)
	return nil
}

// List calls fn, without holding the lock, with batches of the sorted keys
// of objects modified before before.
func (o *memObjects) ListAfter(_ context.Context, after string, limit int) ([]document.ListedObject, error) {
	if o.failList != nil {
		return nil, o.failList
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.listed++
	var out []document.ListedObject
	for k, obj := range o.objs {
		if k > after {
			out = append(out, document.ListedObject{Key: k, Size: int64(len(obj.data)), ETag: obj.etag, LastModified: obj.modified})
		}
	}
	slices.SortFunc(out, func(a, b document.ListedObject) int { return strings.Compare(a.Key, b.Key) })
	return out[:min(limit, len(out))], nil
}

// classifyCall is what the classifier was given.
type classifyCall struct {
	data        []byte
	contentType string
	deadline    bool // its context had a deadline
}

// fakeClassifier answers result to every call and records the calls.
type fakeClassifier struct {
	result document.Classification

	mu    sync.Mutex
	calls []classifyCall
}

func (c *fakeClassifier) Classify(ctx context.Context, data []byte, contentType string) document.Classification {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, deadline := ctx.Deadline()
	c.calls = append(c.calls, classifyCall{data: slices.Clone(data), contentType: contentType, deadline: deadline})
	return c.result
}

func (c *fakeClassifier) seen() []classifyCall {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.calls)
}

// memUpload is one multipart upload in progress.
type memUpload struct {
	key         string
	parts       map[int][]byte
	checksummed bool // each part stored with its SHA-256 (CreateMultipart)
}

func (o *memObjects) CreateMultipart(_ context.Context, key, contentType string, checksummed bool) (string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	id := uuid.NewString()
	o.uploads[id] = &memUpload{key: key, parts: map[int][]byte{}, checksummed: checksummed}
	if o.loseCreate != nil {
		return "", o.loseCreate
	}
	return id, nil
}

func (o *memObjects) PresignPart(_ context.Context, key, uploadID string, p document.Part, size int64, ttl time.Duration) (string, error) {
	if o.failPresign != nil {
		return "", o.failPresign
	}
	return fmt.Sprintf("https://minio.test/%s?uploadId=%s&partNumber=%d&size=%d&sha256=%s", key, uploadID, p.Number, size, p.ChecksumSHA256), nil
}

// putPart stores part number of the upload, as a client's PUT would.
func (o *memObjects) putPart(uploadID string, number int, data []byte) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.uploads[uploadID].parts[number] = slices.Clone(data)
	return fmt.Sprintf("%x", md5.Sum(data))
}

// uploadCount returns the number of uploads in progress.
func (o *memObjects) uploadCount() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.uploads)
}

// openUploads returns the ids of the uploads in progress of key.
func (o *memObjects) openUploads(key string) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var ids []string
	for id, u := range o.uploads {
		if u.key == key {
			ids = append(ids, id)
		}
	}
	return ids
}

func (o *memObjects) ListParts(_ context.Context, key, uploadID string) ([]document.Part, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	u, ok := o.uploads[uploadID]
	if !ok || u.key != key {
		return nil, uploadMissing(key)
	}
	var parts []document.Part
	for n, data := range u.parts {
		p := document.Part{Number: n, Size: int64(len(data)), ETag: fmt.Sprintf("%x", md5.Sum(data))}
		if u.checksummed {
			sum := sha256.Sum256(data)
			p.ChecksumSHA256 = base64.StdEncoding.EncodeToString(sum[:])
		}
		parts = append(parts, p)
	}
	slices.SortFunc(parts, func(a, b document.Part) int { return a.Number - b.Number })
	return parts, nil
}

func (o *memObjects) CompleteMultipart(_ context.Context, key, uploadID string, parts []document.Part) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	u, ok := o.uploads[uploadID]
	if !ok || u.key != key {
		return uploadMissing(key)
	}
	if _, ok := o.objs[key]; ok {
		return document.Errorf(document.Conflict, "an object is stored under the key already")
	}
	var data []byte
	digests := sha256.New()
	for _, p := range parts {
		data = append(data, u.parts[p.Number]...)
		sum := sha256.Sum256(u.parts[p.Number])
		digests.Write(sum[:])
	}
	delete(o.uploads, uploadID)
	obj := memObject{data: data, etag: fmt.Sprintf("%x-%d", md5.Sum(data), len(parts)), contentType: "application/octet-stream"}
	if u.checksummed {
		obj.composite = fmt.Sprintf("%s-%d", base64.StdEncoding.EncodeToString(digests.Sum(nil)), len(parts))
	}
	o.objs[key] = obj
	return nil
}

func (o *memObjects) AbortUploads(_ context.Context, key string) error {
	if o.failAbort != nil {
		return o.failAbort
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for id, u := range o.uploads {
		if u.key == key {
			delete(o.uploads, id)
		}
	}
	return nil
}

func (o *memObjects) AbortMultipart(_ context.Context, key, uploadID string) error {
	if o.failAbort != nil {
		return o.failAbort
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	delete(o.uploads, uploadID)
	return nil
}
