package document

import (
	"cmp"
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"
)

// Confirmation is the state of a confirmed document and its owner's quota.
type Confirmation struct {
	Document  *Document
	UsedBytes int64
	// Changed is true when this call confirmed the document, false when it
	// had been confirmed before.
	Changed bool
	// Stray, when not empty, says what ConfirmObject found wrong with the
	// object and did about it (StrayUnknown, …). With StrayOverQuota the
	// error says why the document was rejected.
	Stray ConfirmOutcome
	// Leftover is set with a rejection whose object could not be removed:
	// the bytes are stored uncharged until a caller tries again (the
	// notification door does, the sweeper does at REJECTED_RETENTION).
	Leftover bool
}

// What ConfirmObject finds when an object does not match its document, and
// does. Stored bytes must equal charged bytes: an object no live document
// owns is removed at once (the sweeper is the backstop), and a charged
// document whose object was replaced (by a tool with other credentials:
// DocuVault's URLs cannot) is charged for what is stored now.
// Each is also the confirmation's Outcome.
const (
	// StrayUnknown: no document has the key (deleted, purged, never made,
	// or another document's key): the object is removed.
	StrayUnknown ConfirmOutcome = "stray_unknown"
	// StrayRejected: the document was rejected, and its upload URL used
	// again: the object is removed.
	StrayRejected ConfirmOutcome = "stray_rejected"
	// StrayReconciled: a charged document's object changed size or ETag;
	// the document and the quota now hold the stored size.
	StrayReconciled ConfirmOutcome = "stray_reconciled"
	// StrayOverQuota: the changed object no longer fits the quota (or
	// MaxUploadBytes): the document is rejected, its charge released and
	// its object removed.
	StrayOverQuota ConfirmOutcome = "stray_reconcile_rejected"
)

// ConfirmOutcome names how a confirmation ended, for metrics and logs: one
// of the Outcome constants or a Stray case.
type ConfirmOutcome string

// How a confirmation ended, besides the Stray cases.
const (
	OutcomeUploaded ConfirmOutcome = "uploaded" // this call confirmed it
	OutcomeAlready  ConfirmOutcome = "already"  // it had been confirmed before
	OutcomeRejected ConfirmOutcome = "rejected" // it broke a rule
	OutcomeError    ConfirmOutcome = "error"    // nothing changed; try again
)

// Outcome names how confirmation c, which ended with err, ended.
func Outcome(c Confirmation, err error) ConfirmOutcome {
	switch {
	case c.Stray != "":
		return c.Stray
	case err == nil && c.Changed:
		return OutcomeUploaded
	case err == nil:
		return OutcomeAlready
	case IsRejection(err):
		return OutcomeRejected
	}
	return OutcomeError
}

// Confirm confirms user's document id: the object store gives the
// authoritative size, and the document becomes uploaded and charged, or
// rejected. Confirming again answers the same result and charges nothing.
// A confirm of a pending document stats its object: it is paced by the
// StorageThrottle.
func (s *Service) Confirm(ctx context.Context, user, id uuid.UUID) (Confirmation, error) {
	return s.confirmOwn(ctx, user, id, true)
}

// Awaiter wakes whoever waits for a document to settle through another
// door. A wake is a hint that it may have (or nothing: a wake can be lost),
// never the answer, which is read from the store.
type Awaiter interface {
	// Await returns a channel closed once document id may have left
	// pending, and stop, called when the waiter no longer waits.
	Await(id uuid.UUID) (settled <-chan struct{}, stop func())
}

// confirmOwn is Confirm; paced says whether the stat takes a token of the
// StorageThrottle (not when the request that asks took one already). A
// pending document is first left to the notification door for up to
// ConfirmWait: MinIO's notification of the same write settles it without
// a stat, and the answer is read from the row that door committed. Only a
// confirm whose wait ends without it (notifications late, or not flowing)
// stats and settles the document itself.
func (s *Service) confirmOwn(ctx context.Context, user, id uuid.UUID, paced bool) (Confirmation, error) {
	var settled <-chan struct{}
	if s.cfg.Settlements != nil && s.cfg.ConfirmWait > 0 {
		// Before the read: a settlement committed after it wakes us.
		var stop func()
		settled, stop = s.cfg.Settlements.Await(id)
		defer stop()
	}
	// One read answers a document confirmed before, the other door's
	// usual win, with no second query.
	d, q, err := s.store.DocumentAndQuota(ctx, id)
	if err != nil {
		return Confirmation{}, err
	}
	if d.UserID != user {
		return Confirmation{}, Errorf(NotFound, "document not found")
	}
	if d.Status != StatusPending {
		return answer(d, q)
	}
	// Paced before the wait: a confirm of a pending upload holds its
	// request up to ConfirmWait, so a client's waiting confirms are
	// bounded by its StorageThrottle too.
	if paced {
		if err := s.paceStorage(user); err != nil {
			return Confirmation{}, err
		}
	}
	if settled != nil {
		if d, q, err = s.awaitOtherDoor(ctx, d, settled); err != nil {
			return Confirmation{}, err
		}
		if d.Status != StatusPending {
			return answer(d, q)
		}
	}
	c, err := s.statAndSettle(ctx, d)
	if ErrorCode(err) == UploadMissing {
		// The other door may have settled it since the read: a rejection
		// removes the object. Then its answer is the answer.
		if cur, q, rerr := s.store.DocumentAndQuota(ctx, id); rerr == nil && cur.Status != StatusPending {
			return answer(cur, q)
		}
	}
	return c, err
}

// awaitOtherDoor waits up to ConfirmWait for pending document d to be
// settled by another door, and returns it (with its owner's quota) as
// stored then: still pending when the wait ended without a wake, or the
// wake was of a settlement not yet visible.
func (s *Service) awaitOtherDoor(ctx context.Context, d *Document, settled <-chan struct{}) (*Document, Quota, error) {
	wait := time.NewTimer(s.cfg.ConfirmWait)
	defer wait.Stop()
	select {
	case <-settled:
		return s.store.DocumentAndQuota(ctx, d.ID)
	case <-wait.C:
		return d, Quota{}, nil
	case <-ctx.Done():
		return nil, Quota{}, ctx.Err()
	}
}

// ConfirmObject handles the object-store notification that key was
// written: it is the door the notifications come through. written is the
// size and etag the notification reports for the write. A pending document
// with a declared size (but an upload in parts under signed checksums, see
// below) is confirmed with them, without asking the object store again:
// its key takes one write only (its URL is signed with
// If-None-Match: *) of exactly the declared size (signed Content-Length),
// so a notification can say nothing else without being rejected for it. A
// pending document without a declared size is charged only what a stat
// finds stored: a notification that names the etag its sender is about to
// PUT and size 1 would otherwise charge 1 byte, and MinIO's own
// notification of that etag would then be skipped as already confirmed (a
// notification is a message on a stream, not proof that MinIO sent it).
// Without an etag the object is stat'ed too. The object of a charged
// document is checked against the row (an unchanged etag spares the
// check); any other object whose key is shaped like a document's is
// removed (Confirmation.Stray says what was done). A key DocuVault did not
// make is NotFound and left alone.
func (s *Service) ConfirmObject(ctx context.Context, key string, written ObjectInfo) (Confirmation, error) {
	user, id, ok := ParseObjectKey(key)
	if !ok {
		return Confirmation{}, Errorf(NotFound, "object key is not a document's")
	}
	d, err := s.store.Document(ctx, id)
	switch {
	case ErrorCode(err) == NotFound:
		return s.removeStray(ctx, key, StrayUnknown)
	case err != nil:
		return Confirmation{}, err
	case d.UserID != user || d.ObjectKey != key:
		return s.removeStray(ctx, key, StrayUnknown)
	case d.Status == StatusRejected:
		return s.removeStray(ctx, key, StrayRejected)
	case d.Status.Charged() && written.ETag != "" && written.ETag == d.ETag:
		// The other door won, or this is MinIO's second copy of the
		// notification. Nobody reads the quota here: skip that query.
		return Confirmation{Document: d}, nil
	case d.Status.Charged():
		return s.reconcile(ctx, d)
	}
	var c Confirmation
	if written.ETag != "" && d.DeclaredSize != nil && !d.partsChecksummed() {
		c, err = s.settleUpload(ctx, d, written)
	} else {
		// An upload in parts under signed checksums is stat'ed too: its
		// object is made by a complete, whose parts may have changed since
		// the checksum was recorded (the owner completing twice at once),
		// and MinIO's composite must be the one recorded.
		c, err = s.statAndSettle(ctx, d)
	}
	if c.Document == nil && IsRejection(err) {
		// The other door rejected it between our read and the store's
		// lock; its removal of the object may have failed: make sure.
		if err := s.objects.Remove(ctx, key); err != nil {
			c.Leftover = true
		}
	}
	return c, err
}

// removeStray removes the object under key, which no live document owns.
func (s *Service) removeStray(ctx context.Context, key string, stray ConfirmOutcome) (Confirmation, error) {
	if err := s.objects.Remove(ctx, key); err != nil {
		return Confirmation{}, err
	}
	return Confirmation{Stray: stray}, nil
}

// reconcile brings charged document d, and its owner's quota, in line with
// the object stored under its key now: charged for the new size when it
// fits, rejected (its charge released, its object removed) when it does
// not or is larger than any document may be. The store's row lock orders
// it with confirms, deletes and other reconciles of the same document.
func (s *Service) reconcile(ctx context.Context, d *Document) (Confirmation, error) {
	info, err := s.objects.Stat(ctx, d.ObjectKey)
	switch {
	case ErrorCode(err) == UploadMissing:
		return Confirmation{Document: d}, nil // removed since, by a delete
	case err != nil:
		return Confirmation{}, err
	}
	now := s.cfg.Now().UTC()
	res, err := s.settle(ctx, "reconcile", d, func(cur *Document) (Settlement, bool) {
		if !cur.Status.Charged() || cur.ETag == info.ETag && cur.SizeBytes == info.Size {
			return Settlement{}, false // the charged object, or another call got here first
		}
		stored := *cur
		stored.SizeBytes, stored.ETag, stored.UpdatedAt = info.Size, info.ETag, now
		var broken string
		switch {
		case info.Size > s.cfg.MaxUploadBytes:
			broken = ReasonTooLarge
		case cur.checksumMismatch(info):
			broken = ReasonChecksumMismatch
		}
		return chargeOrReject(cur, &stored, &stored, "", broken, now), true
	})
	switch {
	case err != nil:
		return Confirmation{}, err
	case !res.Applied:
		return Confirmation{Document: res.Document}, nil
	case res.Charged:
		return Confirmation{Document: res.Document, UsedBytes: res.Quota.UsedBytes, Stray: StrayReconciled}, nil
	}
	// Committed: the charge is released, the bytes must go.
	c := Confirmation{Document: res.Document, Stray: StrayOverQuota}
	c.Leftover = s.removeRejected(ctx, res.Document)
	return c, rejection(res.Document, res.Quota)
}

// statAndSettle confirms d with its object's stat.
func (s *Service) statAndSettle(ctx context.Context, d *Document) (Confirmation, error) {
	if d.Status != StatusPending {
		return s.answerSettled(ctx, d)
	}
	info, err := s.objects.Stat(ctx, d.ObjectKey)
	if err != nil {
		return Confirmation{}, err
	}
	return s.settleUpload(ctx, d, info)
}

// settleUpload confirms pending d, charged (or rejected) for the object
// stored as info says: the whole reject decision, here. A rule the object
// breaks rejects it outright; otherwise it is charged, and rejected over
// quota only if the charge does not fit, which the store checks
// atomically.
func (s *Service) settleUpload(ctx context.Context, d *Document, info ObjectInfo) (Confirmation, error) {
	if d.Status != StatusPending {
		return s.answerSettled(ctx, d)
	}
	now := s.cfg.Now().UTC()
	res, err := s.settle(ctx, "confirm", d, func(cur *Document) (Settlement, bool) {
		if cur.Status != StatusPending {
			return Settlement{}, false // another door settled it
		}
		// Out of pending either way: the reservation is released, or
		// becomes the charge.
		stored := *cur
		stored.SizeBytes, stored.ETag, stored.UpdatedAt, stored.ReservedBytes = info.Size, info.ETag, now, 0
		uploaded := stored
		uploaded.Status, uploaded.ConfirmedAt, uploaded.ScanStatus = StatusUploaded, &now, s.scanOnStore()
		return chargeOrReject(cur, &stored, &uploaded, EventUploaded, brokenRule(cur, info, s.cfg.MaxUploadBytes), now), true
	})
	switch {
	case err != nil:
		return Confirmation{}, err
	case !res.Applied:
		// Another door confirmed it between our read and the store's lock:
		// the store answers the quota with that door's charge.
		return answer(res.Document, res.Quota)
	case res.Charged:
		return Confirmation{Document: res.Document, UsedBytes: res.Quota.UsedBytes, Changed: true}, nil
	}
	// The rejection is committed; the bytes must not stay.
	c := Confirmation{Document: res.Document}
	c.Leftover = s.removeRejected(ctx, res.Document)
	return c, rejection(res.Document, res.Quota)
}

// chargeOrReject is the one charge-or-reject decision, the Settlement of
// from whose object is now as stored says (its size, etag and time set):
// charged, becoming ok and recording an okEvent event ("" for none), if
// that fits the quota and broken is ""; otherwise stored rejected, for
// broken or over quota, recording the rejection.
func chargeOrReject(from, stored, ok *Document, okEvent EventType, broken string, at time.Time) Settlement {
	rejected := *stored
	rejected.reject(cmp.Or(broken, ReasonOverQuota))
	set := Settlement{From: from, Refused: target(from, &rejected, newEvent(EventRejected, &rejected, at))}
	if broken == "" {
		var e *Event
		if okEvent != "" {
			e = newEvent(okEvent, ok, at)
		}
		charged := target(from, ok, e)
		set.Charged = &charged
	}
	return set
}

// settleTries bounds how often settle decides again from a row another
// writer changed between the read and the store's lock.
const settleTries = 3

// settle is the one way a document is charged or rejected: decide makes
// the Settlement of the document as read (false: it needs none), and the
// store applies it if the row is still as read, else decide runs again on
// the row as it is now. where names the use case, for clamps. A
// settlement not applied comes back with Applied false and the document
// (and, when the store read it, the quota) as they are.
func (s *Service) settle(ctx context.Context, where string, d *Document, decide func(*Document) (Settlement, bool)) (Settled, error) {
	last := Settled{Document: d}
	for range settleTries {
		set, ok := decide(last.Document)
		if !ok {
			return last, nil
		}
		res, err := s.store.Settle(ctx, set)
		s.clamped(ctx, where, res.Clamp)
		if err != nil || res.Applied {
			return res, err
		}
		last = res
	}
	return Settled{}, Errorf(Unavailable, "the document keeps changing: try again")
}

// target is the Target that moves document from to to, recording e (a
// nil e records none): its quota change is what to holds under the Ledger
// rule less what from held.
func target(from, to *Document, e *Event) Target {
	rule := Ledger()
	fromUsed, fromReserved := rule.Holds(from)
	toUsed, toReserved := rule.Holds(to)
	return Target{Document: to, Event: e, Used: toUsed - fromUsed, Reserved: toReserved - fromReserved}
}

// newEvent is NewEvent, for a Target.
func newEvent(t EventType, d *Document, at time.Time) *Event {
	e := NewEvent(t, d, at)
	return &e
}

// removeRejected removes rejected document d's object, whose rejection is
// committed, and reports whether it is left over (its removal failed).
func (s *Service) removeRejected(ctx context.Context, d *Document) (leftover bool) {
	if err := s.objects.Remove(ctx, d.ObjectKey); err != nil {
		zerolog.Ctx(ctx).Warn().Err(err).Str("document_id", d.ID.String()).Msg("remove rejected object failed")
		return true
	}
	return false
}

// brokenRule returns the reason the object info describes cannot be d's
// content whatever the quota ("" when none): larger than the largest
// document, not the size the client declared, or not the checksum.
func brokenRule(d *Document, info ObjectInfo, maxSize int64) string {
	switch {
	case info.Size > maxSize:
		return ReasonTooLarge
	case d.DeclaredSize != nil && *d.DeclaredSize != info.Size:
		return ReasonSizeMismatch
	case d.checksumMismatch(info):
		return ReasonChecksumMismatch
	}
	return ""
}

// answerSettled answers a confirm of a document that is no longer pending.
func (s *Service) answerSettled(ctx context.Context, d *Document) (Confirmation, error) {
	q, err := s.store.Quota(ctx, d.UserID)
	if err != nil {
		return Confirmation{}, err
	}
	return answer(d, q)
}

// answer is the answer to a confirm of d, no longer pending, whose owner's
// quota is q.
func answer(d *Document, q Quota) (Confirmation, error) {
	if d.Status == StatusRejected {
		return Confirmation{}, rejection(d, q)
	}
	return Confirmation{Document: d, UsedBytes: q.UsedBytes}, nil
}

func (d *Document) reject(reason string) {
	d.Status = StatusRejected
	d.RejectReason = reason
}

// rejection is the error a confirm of rejected document d answers, marked
// so that IsRejection tells it from other errors of its code.
func rejection(d *Document, q Quota) error {
	switch d.RejectReason {
	case ReasonOverQuota:
		return rejectionError{&QuotaExceededError{UsedBytes: q.UsedBytes, LimitBytes: q.LimitBytes, RejectedBytes: d.SizeBytes}}
	case ReasonTooLarge:
		return rejectionError{Errorf(TooLarge, "file too large: %d bytes", d.SizeBytes)}
	case ReasonInfected:
		return rejectionError{Errorf(Invalid, "upload rejected: malware found (%s); the file was removed", d.ScanDetail)}
	default:
		return rejectionError{Errorf(Invalid, "upload rejected: %s", d.RejectReason)}
	}
}
