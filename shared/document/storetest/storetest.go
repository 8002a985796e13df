// Package storetest is the contract suite of document.Store: the behaviour
// the domain relies on from a store, run against every implementation (the
// PostgreSQL store and the test fake) so that the fake cannot say something
// PostgreSQL does not.
package storetest

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/docuvault/docuvault/shared/document"
)

// Limit is the default quota limit, in bytes, every Subject's users get.
const Limit = 100

// Subject is one store under test, with what the suite reads beside the
// Store interface.
type Subject struct {
	Store document.Store
	// Outbox returns the ids of the events recorded in the outbox (and not
	// yet relayed), in any order.
	Outbox func(t *testing.T) []uuid.UUID
}

// Run runs the contract suite; open returns a fresh, empty store whose
// users get Limit bytes on first use, for one test.
func Run(t *testing.T, open func(t *testing.T) Subject) {
	tests := []struct {
		name string
		run  func(t *testing.T, s Subject)
	}{
		{"CreateReservesWhatFits", createReservesWhatFits},
		{"CreateRefusesAFirstUploadOverTheLimit", createRefusesAFirstUploadOverTheLimit},
		{"CreateCountsRequestsInTheWindow", createCountsRequestsInTheWindow},
		{"CreateBoundsPendingDocuments", createBoundsPendingDocuments},
		{"ARefusedCreateReservesNothing", refusedCreateReservesNothing},
		{"CreateKeepsTheChecksumThroughTheConfirm", createKeepsTheChecksum},
		{"ConfirmChargesOnceAndReleasesTheReservation", confirmChargesOnce},
		{"ConfirmCountsOtherReservationsNotItsOwn", confirmCountsOtherReservations},
		{"ConfirmRejectsOverQuotaWithoutCharging", confirmRejectsOverQuota},
		{"ConfirmRejectsWithTheUseCasesReason", confirmRejectsWithReason},
		{"ConfirmReportsWhatTheReleaseAbsorbed", confirmReportsClamp},
		{"ConfirmOfAMissingDocumentIsNotFound", confirmMissing},
		{"ConcurrentConfirmsChargeOnceAndNeverPastTheLimit", concurrentConfirms},
		{"SettleChargesOnlyWhatFitsAndLeavesAChangedRowAlone", settleChargesOnlyWhatFits},
		{"QuotaFitsUpToTheLimitInEveryStatement", quotaFitsAtTheLimit},
		{"ReleaseNeverGoesBelowZero", releaseNeverBelowZero},
		{"ATransactionThatFailsChangesNothing", rollbackChangesNothing},
		{"SaveWritesTheDomainsValues", saveWritesValues},
		{"DeleteWithItsReservationAndRemovalRecord", deleteWithReservation},
		{"PurgeDeletesOnlyStaleDocumentsAndReleasesTheirReservations", purgeReleases},
		{"PurgeClampsOncePerUser", purgeClampsPerUser},
		{"LedgerCheckFindsAndRepairsDrift", ledgerFindsAndRepairs},
		{"LedgerCheckFollowsTheRuleItIsGiven", ledgerFollowsTheRule},
		{"RemovalsComeOldestFirst", removalsOldestFirst},
		{"CursorsAreKept", cursorsAreKept},
		{"TakeRateCountsInFixedWindows", takeRateWindows},
		{"QuotaIsMadeOnFirstUseAndLimitCanBeSet", quotaFirstUse},
		{"DocumentsListsNewestFirstByPages", documentsPages},
		{"StaleDocumentsWalksInUpdateOrder", staleDocumentsWalk},
		{"SetUploadAndTouchPendingOnlyWhilePending", pendingOnly},
		{"KnownKeysAreThoseThatMayHoldBytes", knownKeys},
		{"ClaimWaitingTakesUsersInTurns", claimInTurns},
		{"ClaimWaitingTakesEachStageItsOwn", claimEachStage},
		{"ConfirmStoresTheScanStateAndSaveMovesIt", scanStateKept},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, open(t))
		})
	}
}

var ctx = context.Background()

// now is the suite's clock: a time PostgreSQL stores exactly.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

func newDoc(user uuid.UUID, at time.Time) *document.Document {
	d := &document.Document{ID: uuid.New(), UserID: user, Filename: "a.txt", ContentType: "text/plain",
		Status: document.StatusPending, CreatedAt: at, UpdatedAt: at}
	d.ObjectKey = document.ObjectKey(user, d.ID, d.Filename)
	return d
}

// create creates a pending document of user reserving reserve bytes.
func create(t *testing.T, s document.Store, user uuid.UUID, reserve int64) *document.Document {
	t.Helper()
	d := newDoc(user, now())
	if reserve > 0 {
		d.DeclaredSize = &reserve
	}
	if _, created, err := s.CreateDocument(ctx, d, document.UploadLimits{Now: d.CreatedAt, Window: time.Minute, Reserve: reserve}); err != nil || !created {
		t.Fatalf("create document: created %v, %v", created, err)
	}
	if d.ReservedBytes != reserve {
		t.Fatalf("created document holds %d reserved bytes, want %d", d.ReservedBytes, reserve)
	}
	return d
}

// Confirmation is a settlement of a pending document as the Confirm use
// case makes it, with what the tests check it wrote.
type Confirmation struct {
	document.Settlement
	ETag               string
	At                 time.Time
	Uploaded, Rejected document.Event
}

// change is ChangeAt now.
func change(d *document.Document, size int64, reason string) Confirmation {
	return ChangeAt(d, size, reason, now())
}

// ChangeAt is the Confirmation of pending d with size bytes at at: charged
// (its reservation becomes the charge), or, with reason != "", rejected
// with reason without trying. The stores' own tests build theirs with it.
func ChangeAt(d *document.Document, size int64, reason string, at time.Time) Confirmation {
	c := Confirmation{ETag: "etag-" + d.ID.String()[:8], At: at}
	up, rej := *d, *d
	for _, x := range []*document.Document{&up, &rej} {
		x.SizeBytes, x.ETag, x.UpdatedAt, x.ReservedBytes = size, c.ETag, at, 0
	}
	up.Status, up.ConfirmedAt = document.StatusUploaded, &at
	rej.Status, rej.RejectReason = document.StatusRejected, cmp.Or(reason, document.ReasonOverQuota)
	c.Uploaded = document.NewEvent(document.EventUploaded, &up, at)
	c.Rejected = document.NewEvent(document.EventRejected, &rej, at)
	c.From = d
	c.Refused = document.Target{Document: &rej, Event: &c.Rejected, Reserved: -d.ReservedBytes}
	if reason == "" {
		c.Charged = &document.Target{Document: &up, Event: &c.Uploaded, Used: size, Reserved: -d.ReservedBytes}
	}
	return c
}

func settle(s document.Store, c Confirmation) (document.Settled, error) {
	return s.Settle(ctx, c.Settlement)
}

func confirm(t *testing.T, s document.Store, c Confirmation) document.Settled {
	t.Helper()
	r, err := settle(s, c)
	if err != nil {
		t.Fatalf("settle: %v", err)
	}
	return r
}

// uploaded creates a document of user and confirms it, charged, at size.
func uploaded(t *testing.T, s document.Store, user uuid.UUID, size int64) *document.Document {
	t.Helper()
	d := create(t, s, user, 0)
	if r := confirm(t, s, change(d, size, "")); !r.Charged {
		t.Fatalf("confirm of %d bytes not charged: %+v", size, r)
	}
	return get(t, s, d.ID)
}

func get(t *testing.T, s document.Store, id uuid.UUID) *document.Document {
	t.Helper()
	d, err := s.Document(ctx, id)
	if err != nil {
		t.Fatalf("read document: %v", err)
	}
	return d
}

func wantQuota(t *testing.T, s document.Store, user uuid.UUID, used, reserved, limit int64) {
	t.Helper()
	q, err := s.Quota(ctx, user)
	if err != nil {
		t.Fatal(err)
	}
	if q.UserID != user || q.UsedBytes != used || q.ReservedBytes != reserved || q.LimitBytes != limit {
		t.Fatalf("quota %+v, want used %d, reserved %d, limit %d", q, used, reserved, limit)
	}
}

func wantCode(t *testing.T, what string, err error, code document.Code) {
	t.Helper()
	if document.ErrorCode(err) != code {
		t.Fatalf("%s: %v, want code %v", what, err, code)
	}
}

func wantOutbox(t *testing.T, s Subject, ids ...uuid.UUID) {
	t.Helper()
	got := s.Outbox(t)
	sortIDs(got)
	want := slices.Clone(ids)
	sortIDs(want)
	if !slices.Equal(got, want) {
		t.Fatalf("outbox holds %v, want %v", got, want)
	}
}

func sortIDs(ids []uuid.UUID) {
	slices.SortFunc(ids, func(a, b uuid.UUID) int { return compareIDs(a, b) })
}

func compareIDs(a, b uuid.UUID) int {
	for i := range a {
		if a[i] != b[i] {
			return int(a[i]) - int(b[i])
		}
	}
	return 0
}

func inTx(t *testing.T, s document.Store, fn func(document.Tx) error) {
	t.Helper()
	if err := s.InTx(ctx, fn); err != nil {
		t.Fatalf("transaction: %v", err)
	}
}

func createReservesWhatFits(t *testing.T, s Subject) {
	user := uuid.New()
	create(t, s.Store, user, 60)
	wantQuota(t, s.Store, user, 0, 60, Limit)

	// used + reserved + size <= limit: 60 + 41 does not fit, 60 + 40 does.
	d := newDoc(user, now())
	u, created, err := s.Store.CreateDocument(ctx, d, document.UploadLimits{Now: d.CreatedAt, Window: time.Minute, Reserve: 41})
	if err != nil || created {
		t.Fatalf("a reservation past the limit: created %v, %v", created, err)
	}
	if u.Quota.UsedBytes != 0 || u.Quota.ReservedBytes != 60 || u.Quota.LimitBytes != Limit {
		t.Fatalf("refused create saw quota %+v, want reserved 60 of %d", u.Quota, Limit)
	}
	if _, err := s.Store.Document(ctx, d.ID); document.ErrorCode(err) != document.NotFound {
		t.Fatalf("a refused document was stored: %v", err)
	}
	create(t, s.Store, user, 40)
	wantQuota(t, s.Store, user, 0, 100, Limit)

	// Used bytes count too.
	other := uuid.New()
	uploaded(t, s.Store, other, 70)
	d = newDoc(other, now())
	if _, created, err := s.Store.CreateDocument(ctx, d, document.UploadLimits{Now: d.CreatedAt, Window: time.Minute, Reserve: 31}); err != nil || created {
		t.Fatalf("70 used + 31: created %v, %v", created, err)
	}
	create(t, s.Store, other, 30)
	wantQuota(t, s.Store, other, 70, 30, Limit)
}

func createRefusesAFirstUploadOverTheLimit(t *testing.T, s Subject) {
	user := uuid.New()
	d := newDoc(user, now())
	u, created, err := s.Store.CreateDocument(ctx, d, document.UploadLimits{Now: d.CreatedAt, Window: time.Minute, Reserve: Limit + 1})
	if err != nil || created {
		t.Fatalf("a first upload past the limit: created %v, %v", created, err)
	}
	if u.Quota.LimitBytes != Limit || u.Quota.ReservedBytes != 0 {
		t.Fatalf("refused first upload saw %+v", u.Quota)
	}
	wantQuota(t, s.Store, user, 0, 0, Limit)
}

func createCountsRequestsInTheWindow(t *testing.T, s Subject) {
	user := uuid.New()
	start := now()
	for i, want := range []bool{true, true, false} {
		d := newDoc(user, start.Add(time.Duration(i)*time.Second))
		u, created, err := s.Store.CreateDocument(ctx, d, document.UploadLimits{Now: d.CreatedAt, Window: time.Minute, MaxRequests: 2})
		if err != nil || created != want {
			t.Fatalf("request %d: created %v, %v; want %v", i+1, created, err, want)
		}
		if u.Requests.Count != i+1 || !u.Requests.Start.Equal(start) {
			t.Fatalf("request %d saw window %+v, want count %d from %v", i+1, u.Requests, i+1, start)
		}
	}
	// A new window starts once the last one is over.
	d := newDoc(user, start.Add(time.Minute))
	u, created, err := s.Store.CreateDocument(ctx, d, document.UploadLimits{Now: d.CreatedAt, Window: time.Minute, MaxRequests: 2})
	if err != nil || !created || u.Requests.Count != 1 || !u.Requests.Start.Equal(d.CreatedAt) {
		t.Fatalf("first request of a new window: created %v, %v, window %+v", created, err, u.Requests)
	}
}

func createBoundsPendingDocuments(t *testing.T, s Subject) {
	user := uuid.New()
	limits := func(d *document.Document) document.UploadLimits {
		return document.UploadLimits{Now: d.CreatedAt, Window: time.Minute, MaxPending: 2}
	}
	var docs []*document.Document
	for i, want := range []bool{true, true, false} {
		d := newDoc(user, now())
		u, created, err := s.Store.CreateDocument(ctx, d, limits(d))
		if err != nil || created != want || u.Pending != min(i, 2) {
			t.Fatalf("create %d: created %v, pending %d, %v; want %v", i+1, created, u.Pending, err, want)
		}
		docs = append(docs, d)
	}
	// A document that leaves pending frees its place.
	confirm(t, s.Store, change(docs[0], 1, ""))
	d := newDoc(user, now())
	if u, created, err := s.Store.CreateDocument(ctx, d, limits(d)); err != nil || !created || u.Pending != 1 {
		t.Fatalf("after a confirm: created %v, pending %d, %v", created, u.Pending, err)
	}
}

// createKeepsTheChecksum: a document's declared checksum is stored with it,
// read back, kept by its confirm and listed; one without has none.
func createKeepsTheChecksum(t *testing.T, s Subject) {
	user := uuid.New()
	sum := document.Checksum{Algorithm: document.ChecksumSHA256, Value: "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="}
	d := newDoc(user, now())
	d.Checksum = sum
	if _, created, err := s.Store.CreateDocument(ctx, d, document.UploadLimits{Now: d.CreatedAt, Window: time.Minute}); err != nil || !created {
		t.Fatalf("create document: created %v, %v", created, err)
	}
	plain := create(t, s.Store, user, 0)
	if got := get(t, s.Store, d.ID).Checksum; got != sum {
		t.Fatalf("created document's checksum %+v, want %+v", got, sum)
	}
	confirm(t, s.Store, change(get(t, s.Store, d.ID), 0, ""))
	if got := get(t, s.Store, d.ID); got.Status != document.StatusUploaded || got.Checksum != sum {
		t.Fatalf("confirmed document %+v, want uploaded with checksum %+v", got, sum)
	}
	page, err := s.Store.Documents(ctx, document.ListFilter{UserID: user, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	for _, listed := range page {
		want := document.Checksum{}
		if listed.ID == d.ID {
			want = sum
		}
		if listed.Checksum != want {
			t.Errorf("listed %s with checksum %+v, want %+v", listed.ID, listed.Checksum, want)
		}
	}
	if len(page) != 2 || get(t, s.Store, plain.ID).Checksum != (document.Checksum{}) {
		t.Errorf("listed %d documents, want 2; the one without a checksum reads %+v", len(page), get(t, s.Store, plain.ID).Checksum)
	}

	// Found by its checksum among its owner's documents in the statuses
	// asked for only.
	charged := document.Ledger().Used
	if got, err := s.Store.DocumentWithChecksum(ctx, user, sum, charged); err != nil || got.ID != d.ID {
		t.Errorf("DocumentWithChecksum(owner) = %v, %v; want %s", got, err, d.ID)
	}
	_, err = s.Store.DocumentWithChecksum(ctx, uuid.New(), sum, charged)
	wantCode(t, "another user's DocumentWithChecksum", err, document.NotFound)
	_, err = s.Store.DocumentWithChecksum(ctx, user, sum, []document.Status{document.StatusPending})
	wantCode(t, "DocumentWithChecksum of pending documents", err, document.NotFound)
	_, err = s.Store.DocumentWithChecksum(ctx, user, document.Checksum{Algorithm: document.ChecksumSHA256, Value: "x" + sum.Value[1:]}, charged)
	wantCode(t, "DocumentWithChecksum of another checksum", err, document.NotFound)
}

func confirmChargesOnce(t *testing.T, s Subject) {
	user := uuid.New()
	d := create(t, s.Store, user, 60)
	c := change(d, 50, "")
	r := confirm(t, s.Store, c)
	if !r.Applied || !r.Charged || r.Quota != (document.Quota{UserID: user, UsedBytes: 50, LimitBytes: Limit}) ||
		r.Clamp != (document.Clamp{}) || r.Document.Status != document.StatusUploaded || r.Document.SizeBytes != 50 {
		t.Fatalf("first confirm: %+v (document %+v)", r, r.Document)
	}
	wantQuota(t, s.Store, user, 50, 0, Limit)
	got := get(t, s.Store, d.ID)
	if got.Status != document.StatusUploaded || got.SizeBytes != 50 || got.ETag != c.ETag || got.RejectReason != "" ||
		got.ConfirmedAt == nil || !got.ConfirmedAt.Equal(c.At) || !got.UpdatedAt.Equal(c.At) || got.ReservedBytes != 0 {
		t.Fatalf("confirmed document %+v", got)
	}
	wantOutbox(t, s, c.Uploaded.ID)

	// A second confirm changes nothing and answers the document as stored.
	again := change(d, 50, "")
	r = confirm(t, s.Store, again)
	if r.Applied || r.Charged || r.Quota.UsedBytes != 50 || r.Document == nil ||
		r.Document.Status != document.StatusUploaded || r.Document.ReservedBytes != 0 || !r.Document.ConfirmedAt.Equal(c.At) {
		t.Fatalf("second confirm: %+v (document %+v)", r, r.Document)
	}
	wantQuota(t, s.Store, user, 50, 0, Limit)
	wantOutbox(t, s, c.Uploaded.ID)
}

func confirmCountsOtherReservations(t *testing.T, s Subject) {
	user := uuid.New()
	held := create(t, s.Store, user, 50)
	// Another's reservation counts: 0 + 60 + 50 > 100.
	d := create(t, s.Store, user, 0)
	if r := confirm(t, s.Store, change(d, 60, "")); r.Charged || !r.Applied {
		t.Fatalf("a charge past another's reservation: %+v", r)
	}
	wantQuota(t, s.Store, user, 0, 50, Limit)
	confirm(t, s.Store, change(held, 0, document.ReasonSizeMismatch)) // releases its 50
	wantQuota(t, s.Store, user, 0, 0, Limit)

	// Its own leaves as it is charged: 0 + 100 + (60 - 60) <= 100.
	d = create(t, s.Store, user, 60)
	if r := confirm(t, s.Store, change(d, Limit, "")); !r.Charged || r.Quota.UsedBytes != Limit {
		t.Fatalf("a charge that fits once its own reservation leaves: %+v", r)
	}
	wantQuota(t, s.Store, user, Limit, 0, Limit)
}

func confirmRejectsOverQuota(t *testing.T, s Subject) {
	user := uuid.New()
	uploaded(t, s.Store, user, 80)
	d := create(t, s.Store, user, 10)
	c := change(d, 30, "")
	r := confirm(t, s.Store, c)
	if !r.Applied || r.Charged || r.Quota.UsedBytes != 80 {
		t.Fatalf("an over-quota confirm: %+v", r)
	}
	wantQuota(t, s.Store, user, 80, 0, Limit)
	got := get(t, s.Store, d.ID)
	if got.Status != document.StatusRejected || got.RejectReason != document.ReasonOverQuota || got.ConfirmedAt != nil ||
		got.SizeBytes != 30 || got.ETag != c.ETag || !got.UpdatedAt.Equal(c.At) || got.ReservedBytes != 0 {
		t.Fatalf("rejected document %+v", got)
	}
	if !slices.Contains(s.Outbox(t), c.Rejected.ID) || slices.Contains(s.Outbox(t), c.Uploaded.ID) {
		t.Fatalf("outbox %v, want the rejection %v and not the upload", s.Outbox(t), c.Rejected.ID)
	}
	// A rejected document stays rejected.
	if r := confirm(t, s.Store, change(d, 1, "")); r.Applied || r.Charged || r.Document.Status != document.StatusRejected {
		t.Fatalf("confirm of a rejected document: %+v", r)
	}
	wantQuota(t, s.Store, user, 80, 0, Limit)
}

func confirmRejectsWithReason(t *testing.T, s Subject) {
	user := uuid.New()
	d := create(t, s.Store, user, 20)
	c := change(d, 10, document.ReasonTooLarge)
	if r := confirm(t, s.Store, c); !r.Applied || r.Charged || r.Quota.UsedBytes != 0 {
		t.Fatalf("a confirm without charge: %+v", r)
	}
	got := get(t, s.Store, d.ID)
	if got.Status != document.StatusRejected || got.RejectReason != document.ReasonTooLarge || got.ConfirmedAt != nil {
		t.Fatalf("rejected document %+v", got)
	}
	wantQuota(t, s.Store, user, 0, 0, Limit)
	wantOutbox(t, s, c.Rejected.ID)
}

func confirmReportsClamp(t *testing.T, s Subject) {
	user := uuid.New()
	d := create(t, s.Store, user, 60)
	inTx(t, s.Store, func(tx document.Tx) error { return tx.Release(ctx, user, 0, 50) })
	r := confirm(t, s.Store, change(d, 5, ""))
	if !r.Charged || r.Clamp != (document.Clamp{UserID: user, Reserved: 50}) {
		t.Fatalf("confirm after its reservation was taken: %+v, want a clamp of 50 reserved", r)
	}
	wantQuota(t, s.Store, user, 5, 0, Limit)
}

func confirmMissing(t *testing.T, s Subject) {
	_, err := settle(s.Store, change(newDoc(uuid.New(), now()), 1, ""))
	wantCode(t, "confirm of a missing document", err, document.NotFound)
	wantOutbox(t, s)
}

// replace is a settlement of charged document d whose object became
// size bytes, as the reconcile use case makes it: charged the difference,
// or rejected with its charge released.
func replace(d *document.Document, size int64) document.Settlement {
	at := now()
	stored := *d
	stored.SizeBytes, stored.ETag, stored.UpdatedAt = size, "replaced", at
	rejected := stored
	rejected.Status, rejected.RejectReason = document.StatusRejected, document.ReasonOverQuota
	e := document.NewEvent(document.EventRejected, &rejected, at)
	return document.Settlement{From: d,
		Charged: &document.Target{Document: &stored, Used: size - d.SizeBytes},
		Refused: document.Target{Document: &rejected, Event: &e, Used: -d.SizeBytes}}
}

func settleChargesOnlyWhatFits(t *testing.T, s Subject) {
	user := uuid.New()
	d := uploaded(t, s.Store, user, 30)
	create(t, s.Store, user, 20)
	// 30 + 20 + 50 <= 100: the difference is charged, and no event recorded.
	before := s.Outbox(t)
	r, err := s.Store.Settle(ctx, replace(d, 80))
	if err != nil || !r.Applied || !r.Charged || r.Quota != (document.Quota{UserID: user, UsedBytes: 80, ReservedBytes: 20, LimitBytes: Limit}) {
		t.Fatalf("a charge that fits: %+v, %v", r, err)
	}
	wantOutbox(t, s, before...)
	grown := get(t, s.Store, d.ID)
	if grown.Status != document.StatusUploaded || grown.SizeBytes != 80 || grown.ETag != "replaced" {
		t.Fatalf("charged document %+v", grown)
	}
	// The settlement read before that charge finds the row changed:
	// nothing is written, and the row comes back as it is.
	if r, err := s.Store.Settle(ctx, replace(d, 10)); err != nil || r.Applied || r.Document.SizeBytes != 80 || r.Quota.UsedBytes != 80 {
		t.Fatalf("a settlement of a changed row: %+v, %v", r, err)
	}
	// 80 + 20 + 1 > 100: refused, the charge released, the rejection recorded.
	r, err = s.Store.Settle(ctx, replace(grown, 81))
	if err != nil || !r.Applied || r.Charged || r.Quota.UsedBytes != 0 || r.Document.Status != document.StatusRejected {
		t.Fatalf("a charge past the limit: %+v, %v", r, err)
	}
	wantQuota(t, s.Store, user, 0, 20, Limit)
	if out := s.Outbox(t); len(out) != len(before)+1 {
		t.Fatalf("outbox %v, want the rejection after %v", out, before)
	}

	// A release below zero is absorbed and reported.
	d = uploaded(t, s.Store, user, 30)
	inTx(t, s.Store, func(tx document.Tx) error { return tx.Release(ctx, user, 10, 0) })
	r, err = s.Store.Settle(ctx, replace(d, 0))
	if err != nil || !r.Charged || r.Quota.UsedBytes != 0 || r.Clamp != (document.Clamp{UserID: user, Used: 10}) {
		t.Fatalf("a shrink below zero: %+v, %v", r, err)
	}
	if _, err := s.Store.Settle(ctx, replace(newDoc(user, now()), 1)); document.ErrorCode(err) != document.NotFound {
		t.Fatalf("a settlement of a missing document: %v, want NotFound", err)
	}
}

// quotaFitsAtTheLimit holds the quota's arithmetic at its edges: a
// reservation and a charge fit up to the limit exactly, and a byte more
// does not, in every statement that checks it.
func quotaFitsAtTheLimit(t *testing.T, s Subject) {
	for _, tc := range []struct {
		used, reserve, size int64
		fits                bool
	}{
		{0, 0, Limit, true}, {0, 0, Limit + 1, false}, {40, 0, 60, true}, {40, 0, 61, false},
		{40, 30, 30, true}, {40, 30, 31, false},
	} {
		user := uuid.New()
		if tc.used > 0 {
			uploaded(t, s.Store, user, tc.used)
		}
		if tc.reserve > 0 {
			create(t, s.Store, user, tc.reserve)
		}
		q := document.Quota{UserID: user, UsedBytes: tc.used, ReservedBytes: tc.reserve, LimitBytes: Limit}
		if q.Fits(tc.size) != tc.fits {
			t.Errorf("Quota%+v.Fits(%d) = %v, want %v", q, tc.size, !tc.fits, tc.fits)
		}
		// A reservation of the size, at create.
		d := newDoc(user, now())
		_, created, err := s.Store.CreateDocument(ctx, d, document.UploadLimits{Now: d.CreatedAt, Window: time.Minute, Reserve: tc.size})
		if err != nil || created != tc.fits {
			t.Errorf("%+v: a reservation of %d: created %v, %v; want %v", q, tc.size, created, err, tc.fits)
		}
		if created {
			confirm(t, s.Store, change(d, 0, document.ReasonSizeMismatch)) // gives it back
		}
		// A charge of the size, at confirm.
		d = create(t, s.Store, user, 0)
		if r := confirm(t, s.Store, change(d, tc.size, "")); r.Charged != tc.fits {
			t.Errorf("%+v: a charge of %d: charged %v, want %v", q, tc.size, r.Charged, tc.fits)
		}
	}
}

func releaseNeverBelowZero(t *testing.T, s Subject) {
	user := uuid.New()
	uploaded(t, s.Store, user, 30)
	create(t, s.Store, user, 20)
	var clamps []document.Clamp
	inTx(t, s.Store, func(tx document.Tx) error {
		if err := tx.Release(ctx, user, 10, 0); err != nil {
			t.Errorf("release of 10: %v", err)
		}
		if err := tx.Release(ctx, user, 25, 28); err != nil {
			t.Errorf("release of 25 of 20 used, 28 of 20 reserved: %v", err)
		}
		// A user without a quota row holds nothing to release.
		if err := tx.Release(ctx, uuid.New(), 5, 5); err != nil {
			t.Errorf("release of a user without a quota: %v", err)
		}
		clamps = tx.Clamps()
		return nil
	})
	if !slices.Equal(clamps, []document.Clamp{{UserID: user, Used: 5, Reserved: 8}}) {
		t.Fatalf("clamps %+v, want 5 used and 8 reserved absorbed", clamps)
	}
	wantQuota(t, s.Store, user, 0, 0, Limit)
}

func rollbackChangesNothing(t *testing.T, s Subject) {
	user := uuid.New()
	d := uploaded(t, s.Store, user, 30)
	before := s.Outbox(t)
	at := now()
	err := s.Store.InTx(ctx, func(tx document.Tx) error {
		if err := tx.Release(ctx, user, 10, 0); err != nil {
			return err
		}
		if err := tx.AppendEvent(ctx, document.NewEvent(document.EventDeleted, d, at)); err != nil {
			return err
		}
		if err := tx.RecordRemoval(ctx, d.ObjectKey, at); err != nil {
			return err
		}
		if err := tx.DeleteDocument(ctx, d.ID); err != nil {
			return err
		}
		return document.Errorf(document.Conflict, "changed my mind")
	})
	wantCode(t, "a transaction that fails", err, document.Conflict)
	wantQuota(t, s.Store, user, 30, 0, Limit)
	get(t, s.Store, d.ID)
	wantOutbox(t, s, before...)
	if keys, err := s.Store.PendingRemovals(ctx, at.Add(time.Hour), 10); err != nil || len(keys) != 0 {
		t.Fatalf("removals after a rollback: %v, %v", keys, err)
	}
}

func saveWritesValues(t *testing.T, s Subject) {
	user := uuid.New()
	d := uploaded(t, s.Store, user, 30)
	before := s.Outbox(t)
	at := now().Add(time.Second)
	e := document.NewEvent(document.EventClassified, d, at)
	inTx(t, s.Store, func(tx document.Tx) error {
		cur, err := tx.LockDocument(ctx, d.ID)
		if err != nil {
			return err
		}
		cur.Status, cur.Classification, cur.DetectedType, cur.Confidence = document.StatusClassified, "invoice", "application/pdf", 0.75
		cur.UpdatedAt = at
		return tx.Save(ctx, cur, e)
	})
	got := get(t, s.Store, d.ID)
	if got.Status != document.StatusClassified || got.Classification != "invoice" || got.DetectedType != "application/pdf" ||
		got.Confidence != 0.75 || got.SizeBytes != 30 || !got.UpdatedAt.Equal(at) ||
		!got.ConfirmedAt.Equal(*d.ConfirmedAt) || got.ObjectKey != d.ObjectKey {
		t.Fatalf("saved document %+v", got)
	}
	wantOutbox(t, s, append(before, e.ID)...)
	// Save moves no quota: the use case charges apart.
	wantQuota(t, s.Store, user, 30, 0, Limit)

	err := s.Store.InTx(ctx, func(tx document.Tx) error {
		_, err := tx.LockDocument(ctx, uuid.New())
		return err
	})
	wantCode(t, "lock of a missing document", err, document.NotFound)
}

// deleteWithReservation removes a pending document as Delete does: lock,
// delete the row, release its reservation, record its object's removal.
func deleteWithReservation(t *testing.T, s Subject) {
	user := uuid.New()
	d := create(t, s.Store, user, 40)
	keep := create(t, s.Store, user, 10)
	at := now()
	e := document.NewEvent(document.EventDeleted, d, at)
	inTx(t, s.Store, func(tx document.Tx) error {
		cur, err := tx.LockDocument(ctx, d.ID)
		if err != nil {
			return err
		}
		if cur.ReservedBytes != 40 {
			t.Errorf("locked document holds %d reserved bytes, want 40", cur.ReservedBytes)
		}
		if err := tx.DeleteDocument(ctx, cur.ID); err != nil {
			return err
		}
		if err := tx.Release(ctx, cur.UserID, 0, cur.ReservedBytes); err != nil {
			return err
		}
		if err := tx.RecordRemoval(ctx, cur.ObjectKey, at); err != nil {
			return err
		}
		return tx.AppendEvent(ctx, e)
	})
	if _, err := s.Store.Document(ctx, d.ID); document.ErrorCode(err) != document.NotFound {
		t.Fatalf("read of a deleted document: %v", err)
	}
	get(t, s.Store, keep.ID)
	wantQuota(t, s.Store, user, 0, 10, Limit)
	wantOutbox(t, s, e.ID)

	// The removal is recorded as of at, kept at its first time, until forgotten.
	inTx(t, s.Store, func(tx document.Tx) error { return tx.RecordRemoval(ctx, d.ObjectKey, at.Add(time.Hour)) })
	if keys, err := s.Store.PendingRemovals(ctx, at, 10); err != nil || len(keys) != 0 {
		t.Fatalf("removals recorded before %v: %v, %v", at, keys, err)
	}
	if keys, err := s.Store.PendingRemovals(ctx, at.Add(time.Minute), 10); err != nil || !slices.Equal(keys, []string{d.ObjectKey}) {
		t.Fatalf("removals recorded before %v: %v, %v; want %s", at.Add(time.Minute), keys, err, d.ObjectKey)
	}
	if err := s.Store.ForgetRemovals(ctx, []string{d.ObjectKey}); err != nil {
		t.Fatal(err)
	}
	if keys, err := s.Store.PendingRemovals(ctx, at.Add(2*time.Hour), 10); err != nil || len(keys) != 0 {
		t.Fatalf("removals after forgetting: %v, %v", keys, err)
	}
}

func purgeReleases(t *testing.T, s Subject) {
	user := uuid.New()
	stale := create(t, s.Store, user, 30)
	multipart := create(t, s.Store, user, 20)
	if err := s.Store.SetUpload(ctx, multipart.ID, "upload-1"); err != nil {
		t.Fatal(err)
	}
	up := uploaded(t, s.Store, user, 10)
	cutoff := now().Add(time.Millisecond)
	time.Sleep(2 * time.Millisecond)
	fresh := create(t, s.Store, user, 5)
	wantQuota(t, s.Store, user, 10, 55, Limit)

	at := now()
	deleted, clamps, err := s.Store.PurgeDocuments(ctx, document.Purge{IDs: []uuid.UUID{stale.ID, multipart.ID, up.ID, fresh.ID},
		Status: document.StatusPending, Before: cutoff, At: at, Rule: document.Ledger()})
	if err != nil {
		t.Fatal(err)
	}
	sortIDs(deleted)
	want := []uuid.UUID{stale.ID, multipart.ID}
	sortIDs(want)
	if !slices.Equal(deleted, want) || len(clamps) != 0 {
		t.Fatalf("purge deleted %v with clamps %v, want %v and none", deleted, clamps, want)
	}
	get(t, s.Store, up.ID)
	get(t, s.Store, fresh.ID)
	for _, id := range want {
		if _, err := s.Store.Document(ctx, id); document.ErrorCode(err) != document.NotFound {
			t.Fatalf("read of a purged document: %v", err)
		}
	}
	wantQuota(t, s.Store, user, 10, 5, Limit)
	// Only the multipart document's key is recorded for removal, as of
	// the purge's time.
	if keys, err := s.Store.PendingRemovals(ctx, at, 10); err != nil || len(keys) != 0 {
		t.Fatalf("removals recorded before the purge's time: %v, %v", keys, err)
	}
	if keys, err := s.Store.PendingRemovals(ctx, at.Add(time.Microsecond), 10); err != nil || !slices.Equal(keys, []string{multipart.ObjectKey}) {
		t.Fatalf("removals after the purge: %v, %v; want %s", keys, err, multipart.ObjectKey)
	}
	// A charged document purged gives back its size, under the rule.
	deleted, _, err = s.Store.PurgeDocuments(ctx, document.Purge{IDs: []uuid.UUID{up.ID},
		Status: document.StatusUploaded, Before: time.Now().Add(time.Minute), At: at, Rule: document.Ledger()})
	if err != nil || !slices.Equal(deleted, []uuid.UUID{up.ID}) {
		t.Fatalf("purge of a charged document: %v, %v", deleted, err)
	}
	wantQuota(t, s.Store, user, 0, 5, Limit)

	// What the release absorbed below zero comes back.
	gone := create(t, s.Store, user, 25)
	inTx(t, s.Store, func(tx document.Tx) error { return tx.Release(ctx, user, 0, 30) }) // 30 - 30: 0 left
	deleted, clamps, err = s.Store.PurgeDocuments(ctx, document.Purge{IDs: []uuid.UUID{gone.ID},
		Status: document.StatusPending, Before: time.Now().Add(time.Minute), At: at, Rule: document.Ledger()})
	if err != nil || !slices.Equal(deleted, []uuid.UUID{gone.ID}) || !slices.Equal(clamps, []document.Clamp{{UserID: user, Reserved: 25}}) {
		t.Fatalf("purge of a document whose reservation is gone: %v, %+v, %v", deleted, clamps, err)
	}
	wantQuota(t, s.Store, user, 0, 0, Limit)
}

func ledgerFindsAndRepairs(t *testing.T, s Subject) {
	users := []uuid.UUID{uuid.New(), uuid.New(), uuid.New()}
	sortIDs(users)
	for _, u := range users {
		uploaded(t, s.Store, u, 30)
		create(t, s.Store, u, 15)
	}
	rejected := create(t, s.Store, users[0], 0)
	confirm(t, s.Store, change(rejected, 5, document.ReasonTooLarge))
	// users[1] drifts: 7 used and 5 reserved bytes missing.
	inTx(t, s.Store, func(tx document.Tx) error { return tx.Release(ctx, users[1], 7, 5) })

	var entries []document.LedgerEntry
	inTx(t, s.Store, func(tx document.Tx) error {
		var err error
		entries, err = tx.CheckLedger(ctx, users[0], 10, document.Ledger())
		return err
	})
	if len(entries) != 2 || entries[0].Stored.UserID != users[1] || entries[1].Stored.UserID != users[2] {
		t.Fatalf("ledger entries after %v: %+v, want users %v", users[0], entries, users[1:])
	}
	for i, e := range entries {
		if e.UsedBytes != 30 || e.ReservedBytes != 15 || e.Stored.LimitBytes != Limit {
			t.Fatalf("entry %d holds %+v, want 30 used and 15 reserved", i, e)
		}
	}
	if u, r := entries[0].Drift(); u != -7 || r != -5 {
		t.Fatalf("drift of %v: used %d, reserved %d; want -7, -5", users[1], u, r)
	}
	if u, r := entries[1].Drift(); u != 0 || r != 0 {
		t.Fatalf("drift of %v: used %d, reserved %d; want none", users[2], u, r)
	}
	inTx(t, s.Store, func(tx document.Tx) error {
		e, err := tx.CheckLedger(ctx, uuid.Nil, 1, document.Ledger())
		if err != nil || len(e) != 1 || e[0].Stored.UserID != users[0] || e[0].UsedBytes != 30 || e[0].ReservedBytes != 15 {
			t.Errorf("first ledger entry: %+v, %v; want %v holding 30 used, 15 reserved (its rejected document nothing)", e, err, users[0])
		}
		return tx.RepairLedger(ctx, entries[:1])
	})
	wantQuota(t, s.Store, users[1], 30, 15, Limit)
}

func cursorsAreKept(t *testing.T, s Subject) {
	c, err := s.Store.ReconcileCursor(ctx)
	if err != nil || c.After != "" || !c.PassStarted.IsZero() {
		t.Fatalf("reconcile cursor before the first pass: %+v, %v", c, err)
	}
	want := document.ReconcileCursor{After: "a/b/c", PassStarted: now()}
	if err := s.Store.SaveReconcileCursor(ctx, want); err != nil {
		t.Fatal(err)
	}
	if c, err = s.Store.ReconcileCursor(ctx); err != nil || c.After != want.After || !c.PassStarted.Equal(want.PassStarted) {
		t.Fatalf("reconcile cursor %+v, %v; want %+v", c, err, want)
	}
	want.After = ""
	if err := s.Store.SaveReconcileCursor(ctx, want); err != nil {
		t.Fatal(err)
	}
	if c, err = s.Store.ReconcileCursor(ctx); err != nil || c.After != "" || !c.PassStarted.Equal(want.PassStarted) {
		t.Fatalf("reconcile cursor between passes %+v, %v", c, err)
	}

	l, err := s.Store.LedgerCursor(ctx)
	if err != nil || l != uuid.Nil {
		t.Fatalf("ledger cursor before the first pass: %v, %v", l, err)
	}
	user := uuid.New()
	for _, after := range []uuid.UUID{user, uuid.Nil} {
		if err := s.Store.SaveLedgerCursor(ctx, after); err != nil {
			t.Fatal(err)
		}
		if l, err = s.Store.LedgerCursor(ctx); err != nil || l != after {
			t.Fatalf("ledger cursor %v, %v; want %v", l, err, after)
		}
	}
}

func takeRateWindows(t *testing.T, s Subject) {
	user := uuid.New()
	start := now()
	for i, want := range []bool{true, true, false, false} {
		at := start.Add(time.Duration(i) * 10 * time.Second)
		w, ok, err := s.Store.TakeRate(ctx, user, "download", at, time.Minute, 2)
		if err != nil || ok != want || w.Count != i+1 || !w.Start.Equal(start) {
			t.Fatalf("request %d: %+v, within %v, %v; want count %d from %v, within %v", i+1, w, ok, err, i+1, start, want)
		}
	}
	// Another action and another user count apart.
	if w, ok, err := s.Store.TakeRate(ctx, user, "list", start, time.Minute, 2); err != nil || !ok || w.Count != 1 {
		t.Fatalf("another action: %+v, %v, %v", w, ok, err)
	}
	if w, ok, err := s.Store.TakeRate(ctx, uuid.New(), "download", start, time.Minute, 2); err != nil || !ok || w.Count != 1 {
		t.Fatalf("another user: %+v, %v, %v", w, ok, err)
	}
	// A window is over at its start plus its length.
	at := start.Add(time.Minute)
	if w, ok, err := s.Store.TakeRate(ctx, user, "download", at, time.Minute, 2); err != nil || !ok || w.Count != 1 || !w.Start.Equal(at) {
		t.Fatalf("first request of a new window: %+v, %v, %v", w, ok, err)
	}
}

func quotaFirstUse(t *testing.T, s Subject) {
	user := uuid.New()
	wantQuota(t, s.Store, user, 0, 0, Limit)
	if q, err := s.Store.SetQuotaLimit(ctx, user, 500); err != nil || q.LimitBytes != 500 || q.UserID != user {
		t.Fatalf("set limit: %+v, %v", q, err)
	}
	wantQuota(t, s.Store, user, 0, 0, 500)
	other := uuid.New()
	if q, err := s.Store.SetQuotaLimit(ctx, other, 7); err != nil || q.LimitBytes != 7 {
		t.Fatalf("set limit of a new user: %+v, %v", q, err)
	}
	wantQuota(t, s.Store, other, 0, 0, 7)

	d := uploaded(t, s.Store, user, 40)
	got, q, err := s.Store.DocumentAndQuota(ctx, d.ID)
	if err != nil || got.ID != d.ID || q.UserID != user || q.UsedBytes != 40 || q.LimitBytes != 500 {
		t.Fatalf("document and quota: %+v, %+v, %v", got, q, err)
	}
	if _, _, err := s.Store.DocumentAndQuota(ctx, uuid.New()); document.ErrorCode(err) != document.NotFound {
		t.Fatalf("document and quota of a missing document: %v", err)
	}
}

func documentsPages(t *testing.T, s Subject) {
	user := uuid.New()
	start := now()
	var docs []*document.Document
	for i := range 3 {
		d := newDoc(user, start.Add(time.Duration(i)*time.Second))
		if _, created, err := s.Store.CreateDocument(ctx, d, document.UploadLimits{Now: d.CreatedAt, Window: time.Minute}); err != nil || !created {
			t.Fatal(created, err)
		}
		docs = append(docs, d)
	}
	confirm(t, s.Store, change(docs[1], 1, ""))
	create(t, s.Store, uuid.New(), 0) // another user's

	ids := func(ds []*document.Document) []uuid.UUID {
		var out []uuid.UUID
		for _, d := range ds {
			out = append(out, d.ID)
		}
		return out
	}
	page, err := s.Store.Documents(ctx, document.ListFilter{UserID: user, Limit: 2})
	if err != nil || !slices.Equal(ids(page), []uuid.UUID{docs[2].ID, docs[1].ID}) {
		t.Fatalf("first page: %v, %v", ids(page), err)
	}
	page, err = s.Store.Documents(ctx, document.ListFilter{UserID: user, Limit: 2,
		After: &document.Cursor{CreatedAt: page[1].CreatedAt, ID: page[1].ID}})
	if err != nil || !slices.Equal(ids(page), []uuid.UUID{docs[0].ID}) {
		t.Fatalf("second page: %v, %v", ids(page), err)
	}
	page, err = s.Store.Documents(ctx, document.ListFilter{UserID: user, Status: document.StatusPending, Limit: 10})
	if err != nil || !slices.Equal(ids(page), []uuid.UUID{docs[2].ID, docs[0].ID}) {
		t.Fatalf("pending documents: %v, %v", ids(page), err)
	}
	inTx(t, s.Store, func(tx document.Tx) error {
		cur, err := tx.LockDocument(ctx, docs[1].ID)
		if err != nil {
			return err
		}
		cur.Status, cur.Classification = document.StatusClassified, "invoice"
		return tx.Save(ctx, cur, document.NewEvent(document.EventClassified, cur, now()))
	})
	page, err = s.Store.Documents(ctx, document.ListFilter{UserID: user, Classification: "invoice", Limit: 10})
	if err != nil || !slices.Equal(ids(page), []uuid.UUID{docs[1].ID}) {
		t.Fatalf("invoices: %v, %v", ids(page), err)
	}
}

func staleDocumentsWalk(t *testing.T, s Subject) {
	user := uuid.New()
	var pending []*document.Document
	for range 3 {
		pending = append(pending, create(t, s.Store, user, 0))
		time.Sleep(time.Millisecond)
	}
	rejected := create(t, s.Store, user, 0)
	confirm(t, s.Store, change(rejected, 1, document.ReasonTooLarge))
	before := now().Add(time.Minute)

	got, err := s.Store.StaleDocuments(ctx, document.StatusPending, before, nil, 2)
	if err != nil || len(got) != 2 || got[0].ID != pending[0].ID || got[1].ID != pending[1].ID {
		t.Fatalf("first stale page: %+v, %v", got, err)
	}
	got, err = s.Store.StaleDocuments(ctx, document.StatusPending, before,
		&document.StaleCursor{UpdatedAt: got[1].UpdatedAt, ID: got[1].ID}, 2)
	if err != nil || len(got) != 1 || got[0].ID != pending[2].ID {
		t.Fatalf("second stale page: %+v, %v", got, err)
	}
	got, err = s.Store.StaleDocuments(ctx, document.StatusPending, pending[1].UpdatedAt, nil, 10)
	if err != nil || len(got) != 1 || got[0].ID != pending[0].ID {
		t.Fatalf("documents stale before the second: %+v, %v", got, err)
	}
	got, err = s.Store.StaleDocuments(ctx, document.StatusRejected, before, nil, 10)
	if err != nil || len(got) != 1 || got[0].ID != rejected.ID {
		t.Fatalf("stale rejected documents: %+v, %v", got, err)
	}
}

func pendingOnly(t *testing.T, s Subject) {
	user := uuid.New()
	d := create(t, s.Store, user, 0)
	if err := s.Store.SetUpload(ctx, d.ID, "upload-1"); err != nil {
		t.Fatal(err)
	}
	if got := get(t, s.Store, d.ID); got.UploadID != "upload-1" {
		t.Fatalf("upload id %q", got.UploadID)
	}
	at := d.UpdatedAt.Add(time.Minute)
	if pending, err := s.Store.TouchPending(ctx, d.ID, at); err != nil || !pending {
		t.Fatalf("touch of a pending document: %v, %v", pending, err)
	}
	if got := get(t, s.Store, d.ID); !got.UpdatedAt.Equal(at) {
		t.Fatalf("touched document updated at %v, want %v", got.UpdatedAt, at)
	}
	// It never moves back.
	if pending, err := s.Store.TouchPending(ctx, d.ID, d.UpdatedAt); err != nil || !pending {
		t.Fatalf("touch with an earlier time: %v, %v", pending, err)
	}
	if got := get(t, s.Store, d.ID); !got.UpdatedAt.Equal(at) {
		t.Fatalf("touched document updated at %v after an earlier touch, want %v", got.UpdatedAt, at)
	}
	missing := uuid.New()
	if pending, err := s.Store.TouchPending(ctx, missing, at); err != nil || pending {
		t.Fatalf("touch of a missing document: %v, %v", pending, err)
	}
	wantCode(t, "set upload of a missing document", s.Store.SetUpload(ctx, missing, "upload-3"), document.Conflict)
	c := change(d, 1, "")
	confirm(t, s.Store, c)
	wantCode(t, "set upload of a confirmed document", s.Store.SetUpload(ctx, d.ID, "upload-2"), document.Conflict)
	if pending, err := s.Store.TouchPending(ctx, d.ID, at.Add(time.Hour)); err != nil || pending {
		t.Fatalf("touch of a confirmed document: %v, %v", pending, err)
	}
	if got := get(t, s.Store, d.ID); !got.UpdatedAt.Equal(c.At) || got.UploadID != "upload-1" {
		t.Fatalf("confirmed document after touch and set upload: %+v", got)
	}
}

func knownKeys(t *testing.T, s Subject) {
	user := uuid.New()
	pending := create(t, s.Store, user, 0)
	up := uploaded(t, s.Store, user, 1)
	rejected := create(t, s.Store, user, 0)
	confirm(t, s.Store, change(rejected, 1, document.ReasonTooLarge))
	stray := document.ObjectKey(user, uuid.New(), "x.pdf")
	known, err := s.Store.KnownKeys(ctx, []string{pending.ObjectKey, up.ObjectKey, rejected.ObjectKey, stray})
	if err != nil {
		t.Fatal(err)
	}
	if len(known) != 2 || !known[pending.ObjectKey] || !known[up.ObjectKey] {
		t.Fatalf("known keys %v, want the pending and the uploaded document's only", known)
	}
}

// purgeClampsPerUser: what the release of one user's purged reservations
// absorbed below zero comes back as one Clamp of that user.
func purgeClampsPerUser(t *testing.T, s Subject) {
	a, b := uuid.New(), uuid.New()
	var ids []uuid.UUID
	for _, u := range []uuid.UUID{a, a, b} {
		ids = append(ids, create(t, s.Store, u, 10).ID)
	}
	create(t, s.Store, a, 5) // kept: not purged
	inTx(t, s.Store, func(tx document.Tx) error {
		if err := tx.Release(ctx, a, 0, 20); err != nil { // 25 - 20: 5 left for 20 purged
			return err
		}
		return tx.Release(ctx, b, 0, 10) // none left for 10 purged
	})
	deleted, clamps, err := s.Store.PurgeDocuments(ctx, document.Purge{IDs: ids, Status: document.StatusPending,
		Before: time.Now().Add(time.Minute), At: now(), Rule: document.Ledger()})
	if err != nil || len(deleted) != 3 {
		t.Fatalf("purge: %v, %v", deleted, err)
	}
	slices.SortFunc(clamps, func(x, y document.Clamp) int { return compareIDs(x.UserID, y.UserID) })
	want := []document.Clamp{{UserID: a, Reserved: 15}, {UserID: b, Reserved: 10}}
	slices.SortFunc(want, func(x, y document.Clamp) int { return compareIDs(x.UserID, y.UserID) })
	if !slices.Equal(clamps, want) {
		t.Fatalf("purge clamps %+v, want %+v", clamps, want)
	}
	wantQuota(t, s.Store, a, 0, 0, Limit)
	wantQuota(t, s.Store, b, 0, 0, Limit)
}

// uploadedAt creates a document of user confirmed, uploaded, at at.
func uploadedAt(t *testing.T, s document.Store, user uuid.UUID, at time.Time) uuid.UUID {
	t.Helper()
	d := create(t, s, user, 0)
	c := ChangeAt(d, 1, "", at)
	if r := confirm(t, s, c); !r.Charged {
		t.Fatalf("confirm: %+v", r)
	}
	return d.ID
}

func claimInTurns(t *testing.T, s Subject) {
	t0 := now().Add(-time.Hour)
	a, b := uuid.New(), uuid.New()
	var as []uuid.UUID
	for i := range 3 {
		as = append(as, uploadedAt(t, s.Store, a, t0.Add(time.Duration(i)*time.Second)))
	}
	b0 := uploadedAt(t, s.Store, b, t0.Add(10*time.Second))
	late := uploadedAt(t, s.Store, b, t0.Add(time.Hour)) // has not waited long enough
	create(t, s.Store, b, 0)                             // pending: never claimed
	q := document.ClaimQuery{Stage: document.StageClassify, WaitedSince: t0.Add(time.Minute), Now: t0.Add(time.Minute), Until: t0.Add(2 * time.Minute), PerUser: 2, Limit: 10}
	claim := func(q document.ClaimQuery) []uuid.UUID {
		t.Helper()
		got, err := s.Store.ClaimWaiting(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var ids []uuid.UUID
		for _, w := range got {
			ids = append(ids, w.ID)
		}
		return ids
	}
	// Every user's oldest first (the oldest of those first), then the second; at most PerUser of one.
	if got, want := claim(q), []uuid.UUID{as[0], b0, as[1]}; !slices.Equal(got, want) {
		t.Fatalf("first claim %v, want %v", got, want)
	}
	// Claimed documents are not claimed again until their claim ended.
	if got, want := claim(q), []uuid.UUID{as[2]}; !slices.Equal(got, want) {
		t.Fatalf("second claim %v, want %v", got, want)
	}
	if err := s.Store.Postpone(ctx, as[2], t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	q.Now, q.Until = t0.Add(2*time.Minute), t0.Add(3*time.Minute)
	if got, want := claim(q), []uuid.UUID{as[0], b0, as[1]}; !slices.Equal(got, want) {
		t.Fatalf("claim once the first claims ended %v, want %v (the postponed one kept off)", got, want)
	}
	// Later, the late one has waited too; turns are by age within a user.
	q.Now, q.WaitedSince, q.Until = t0.Add(2*time.Hour), t0.Add(2*time.Hour), t0.Add(3*time.Hour)
	if got, want := claim(q), []uuid.UUID{as[0], b0, as[1], late}; !slices.Equal(got, want) {
		t.Fatalf("claim after every wait %v, want %v", got, want)
	}
	q.Now, q.Limit = t0.Add(4*time.Hour), 1
	if got, want := claim(q), []uuid.UUID{as[0]}; !slices.Equal(got, want) {
		t.Fatalf("claim of one %v, want %v", got, want)
	}
}

func refusedCreateReservesNothing(t *testing.T, s Subject) {
	user := uuid.New()
	create(t, s.Store, user, 10)
	for _, l := range []document.UploadLimits{
		{Window: time.Minute, MaxPending: 1, Reserve: 20},  // refused: one pending already
		{Window: time.Minute, MaxRequests: 1, Reserve: 20}, // refused: the second request of the window
	} {
		d := newDoc(user, now())
		l.Now = d.CreatedAt
		if _, created, err := s.Store.CreateDocument(ctx, d, l); err != nil || created {
			t.Fatalf("create with %+v: created %v, %v", l, created, err)
		}
		if d.ReservedBytes != 0 {
			t.Fatalf("a refused document holds %d reserved bytes", d.ReservedBytes)
		}
	}
	wantQuota(t, s.Store, user, 0, 10, Limit)
}

// concurrentConfirms: doors confirming one document at once charge it
// once; charges of many documents at once never pass the limit.
func concurrentConfirms(t *testing.T, s Subject) {
	user := uuid.New()
	d := create(t, s.Store, user, 0)
	const doors = 4
	results := make(chan document.Settled, doors)
	errs := make(chan error, doors)
	var wg sync.WaitGroup
	for range doors {
		wg.Go(func() {
			r, err := settle(s.Store, change(d, 30, ""))
			results <- r
			errs <- err
		})
	}
	wg.Wait()
	close(results)
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	changed := 0
	for r := range results {
		if r.Applied {
			changed++
		}
		if r.Quota.UsedBytes != 30 {
			t.Fatalf("a door answered used %d, want 30 (the one charge, committed)", r.Quota.UsedBytes)
		}
	}
	if changed != 1 {
		t.Fatalf("%d doors changed the document, want 1", changed)
	}
	wantQuota(t, s.Store, user, 30, 0, Limit)
	if n := len(s.Outbox(t)); n != 1 {
		t.Fatalf("%d events recorded, want 1", n)
	}

	// 7 more documents of 20 bytes: 3 fit in the 70 left.
	var charged atomic.Int64
	for range 7 {
		d := create(t, s.Store, user, 0)
		wg.Go(func() {
			r, err := settle(s.Store, change(d, 20, ""))
			if err != nil {
				t.Error(err)
			}
			if r.Charged {
				charged.Add(1)
			}
		})
	}
	wg.Wait()
	if charged.Load() != 3 {
		t.Fatalf("%d charges of 20 bytes fit in 70, want 3", charged.Load())
	}
	wantQuota(t, s.Store, user, 90, 0, Limit)
}

// ledgerFollowsTheRule: the stores are given the ledger's rule, never
// spell it; another rule sums other documents.
func ledgerFollowsTheRule(t *testing.T, s Subject) {
	user := uuid.New()
	uploaded(t, s.Store, user, 30)
	create(t, s.Store, user, 15)
	rejected := create(t, s.Store, user, 0)
	confirm(t, s.Store, change(rejected, 5, document.ReasonTooLarge))
	rule := document.LedgerRule{Used: []document.Status{document.StatusRejected}, Reserved: []document.Status{document.StatusUploaded}}
	inTx(t, s.Store, func(tx document.Tx) error {
		e, err := tx.CheckLedger(ctx, uuid.Nil, 10, rule)
		if err != nil || len(e) != 1 || e[0].UsedBytes != 5 || e[0].ReservedBytes != 0 ||
			e[0].Stored.UsedBytes != 30 || e[0].Stored.ReservedBytes != 15 {
			t.Errorf("ledger under a rule counting rejected documents as used, uploaded as reserved: %+v, %v", e, err)
		}
		return nil
	})
}

func removalsOldestFirst(t *testing.T, s Subject) {
	at := now()
	keys := []string{"c/2", "a/1", "b/3"}
	inTx(t, s.Store, func(tx document.Tx) error {
		for i, k := range keys {
			if err := tx.RecordRemoval(ctx, k, at.Add(time.Duration(i)*time.Second)); err != nil {
				return err
			}
		}
		return nil
	})
	if got, err := s.Store.PendingRemovals(ctx, at.Add(time.Minute), 2); err != nil || !slices.Equal(got, keys[:2]) {
		t.Fatalf("two oldest removals: %v, %v; want %v", got, err, keys[:2])
	}
	if err := s.Store.ForgetRemovals(ctx, keys[:1]); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Store.PendingRemovals(ctx, at.Add(time.Minute), 10); err != nil || !slices.Equal(got, keys[1:]) {
		t.Fatalf("removals after forgetting the oldest: %v, %v; want %v", got, err, keys[1:])
	}
}

// withScan confirms a document of user at at, stored in scan state scan,
// then, if next is set, records it as the scanner would.
func withScan(t *testing.T, s document.Store, user uuid.UUID, at time.Time, scan, next document.ScanState) uuid.UUID {
	t.Helper()
	d := create(t, s, user, 0)
	c := ChangeAt(d, 1, "", at)
	c.Charged.Document.ScanStatus = scan
	if r := confirm(t, s, c); !r.Charged {
		t.Fatalf("confirm: %+v", r)
	}
	if next != "" {
		saveScan(t, s, d.ID, next, "", at)
	}
	return d.ID
}

// saveScan records scan state scan (and detail) on document id with Save.
func saveScan(t *testing.T, s document.Store, id uuid.UUID, scan document.ScanState, detail string, at time.Time) {
	t.Helper()
	err := s.InTx(ctx, func(tx document.Tx) error {
		d, err := tx.LockDocument(ctx, id)
		if err != nil {
			return err
		}
		d.ScanStatus, d.ScanDetail, d.UpdatedAt = scan, detail, at
		return tx.Save(ctx, d, document.NewEvent(document.EventScanned, d, at))
	})
	if err != nil {
		t.Fatalf("save scan state: %v", err)
	}
}

func claimEachStage(t *testing.T, s Subject) {
	t0 := now().Add(-time.Hour)
	user := uuid.New()
	pending := withScan(t, s.Store, user, t0, document.ScanPending, "")
	clean := withScan(t, s.Store, user, t0.Add(time.Second), document.ScanPending, document.ScanClean)
	unscanned := withScan(t, s.Store, user, t0.Add(2*time.Second), "", "")
	withScan(t, s.Store, user, t0.Add(3*time.Second), document.ScanPending, document.ScanFailed) // waits for nothing
	claim := func(stage document.Stage) []uuid.UUID {
		t.Helper()
		got, err := s.Store.ClaimWaiting(ctx, document.ClaimQuery{Stage: stage, WaitedSince: t0.Add(time.Minute),
			Now: t0.Add(time.Minute), Until: t0.Add(2 * time.Minute), PerUser: 10, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		var ids []uuid.UUID
		for _, w := range got {
			ids = append(ids, w.ID)
		}
		return ids
	}
	if got, want := claim(document.StageScan), []uuid.UUID{pending}; !slices.Equal(got, want) {
		t.Fatalf("scan claim %v, want the pending one %v", got, want)
	}
	if got, want := claim(document.StageClassify), []uuid.UUID{clean, unscanned}; !slices.Equal(got, want) {
		t.Fatalf("classify claim %v, want the clean and the unscanned ones %v", got, want)
	}
}

func scanStateKept(t *testing.T, s Subject) {
	at := now()
	user := uuid.New()
	id := withScan(t, s.Store, user, at, document.ScanPending, "")
	if d := get(t, s.Store, id); d.ScanStatus != document.ScanPending || d.Waiting() != document.StageScan {
		t.Fatalf("confirmed while scanning: scan %q waiting %q, want pending, scan", d.ScanStatus, d.Waiting())
	}
	saveScan(t, s.Store, id, document.ScanInfected, "Eicar-Signature", at)
	if d := get(t, s.Store, id); d.ScanStatus != document.ScanInfected || d.ScanDetail != "Eicar-Signature" {
		t.Fatalf("after save: scan %q detail %q", d.ScanStatus, d.ScanDetail)
	}
	off := withScan(t, s.Store, user, at, "", "")
	if d := get(t, s.Store, off); d.ScanStatus != "" || d.Waiting() != document.StageClassify {
		t.Fatalf("confirmed while not scanning: scan %q waiting %q, want none, classify", d.ScanStatus, d.Waiting())
	}
}
