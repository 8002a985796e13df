package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/docuvault/docuvault/shared/document"
	"github.com/docuvault/docuvault/shared/document/storetest"
	"github.com/docuvault/docuvault/shared/postgres"
)

// The previous accounting (version 1): the statements of the release
// before the multipart one, verbatim from `git show
// b72a6a8^:shared/postgres/store.go` and `…:shared/postgres/sweep.go`
// (its documentColumns written out). They confirm, delete and purge
// without releasing reservations: beside the current schema each of them
// would leave a user's reserved_bytes held for good.
const (
	v1Confirm = `WITH doc AS (
		SELECT id, user_id, filename, content_type, declared_size, size_bytes, etag,
	object_key, status, reject_reason, classification, detected_type, confidence, classification_reason,
	created_at, confirmed_at, updated_at FROM documents WHERE id = $1 FOR UPDATE
	), pending AS (
		SELECT doc.id, doc.user_id FROM doc
		WHERE doc.status = 'pending' AND EXISTS (SELECT 1 FROM quotas WHERE quotas.user_id = doc.user_id)
	), charge AS (
		UPDATE quotas SET used_bytes = quotas.used_bytes + $2
		FROM pending
		WHERE $4 AND quotas.user_id = pending.user_id AND quotas.used_bytes + $2 <= quotas.limit_bytes
		RETURNING quotas.used_bytes, quotas.limit_bytes
	), verdict AS (
		SELECT pending.id, EXISTS (SELECT 1 FROM charge) AS charged FROM pending
	), saved AS (
		UPDATE documents SET
			status = CASE WHEN verdict.charged THEN 'uploaded' ELSE 'rejected' END,
			reject_reason = CASE WHEN verdict.charged THEN '' ELSE $12 END,
			size_bytes = $2, etag = $3, updated_at = $5,
			confirmed_at = CASE WHEN verdict.charged THEN $5::timestamptz END
		FROM verdict WHERE documents.id = verdict.id
		RETURNING documents.id
	), event AS (
		INSERT INTO outbox (msg_id, subject, payload, created_at)
		SELECT CASE WHEN charged THEN $6::uuid ELSE $9::uuid END,
			CASE WHEN charged THEN $7::text ELSE $10::text END,
			CASE WHEN charged THEN $8::jsonb ELSE $11::jsonb END,
			$5
		FROM verdict
	), uncharged AS (
		SELECT used_bytes, limit_bytes FROM quotas
		WHERE user_id = (SELECT user_id FROM doc) AND NOT EXISTS (SELECT 1 FROM charge)
		FOR SHARE
	)
	SELECT doc.*, EXISTS (SELECT 1 FROM saved), EXISTS (SELECT 1 FROM charge), quota.used_bytes, quota.limit_bytes
	FROM doc LEFT JOIN (
		SELECT used_bytes, limit_bytes FROM charge
		UNION ALL
		SELECT used_bytes, limit_bytes FROM uncharged
	) quota ON true`
	// v1Delete is its Delete's transaction: LockDocument, ReleaseQuota
	// (charged documents only), DeleteDocument.
	v1Lock         = `SELECT id FROM documents WHERE id = $1 FOR UPDATE`
	v1ReleaseQuota = `UPDATE quotas SET used_bytes = GREATEST(0, used_bytes - $2) WHERE user_id = $1
		RETURNING used_bytes, limit_bytes`
	v1DeleteDocument = `DELETE FROM documents WHERE id = $1`
	v1Purge          = `DELETE FROM documents WHERE id IN (
			SELECT id FROM documents WHERE id = ANY($1) AND status = $2 AND updated_at < $3
			FOR UPDATE SKIP LOCKED)
		RETURNING id`
)

// v1Role runs the previous accounting's statements on its own pool.
type v1Role struct{ pool *pgxpool.Pool }

func (r v1Role) confirm(ctx context.Context, d *document.Document, size int64) error {
	c := storetest.ChangeAt(d, size, "", time.Now())
	rows, err := r.pool.Query(ctx, v1Confirm, d.ID, size, c.ETag, true, c.At,
		c.Uploaded.ID, c.Uploaded.Subject(), "{}", c.Rejected.ID, c.Rejected.Subject(), "{}", document.ReasonOverQuota)
	if err != nil {
		return err
	}
	rows.Close()
	return rows.Err()
}

func (r v1Role) delete(ctx context.Context, d *document.Document) error {
	return pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, v1Lock, d.ID); err != nil {
			return err
		}
		if d.Status.Charged() {
			if _, err := tx.Exec(ctx, v1ReleaseQuota, d.UserID, d.SizeBytes); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, v1DeleteDocument, d.ID)
		return err
	})
}

func (r v1Role) purge(ctx context.Context, d *document.Document) error {
	rows, err := r.pool.Query(ctx, v1Purge, []uuid.UUID{d.ID}, string(document.StatusPending), time.Now().Add(time.Hour))
	if err != nil {
		return err
	}
	rows.Close()
	return rows.Err()
}

// poolDeclaring opens a pool on migrated's database whose connections
// declare accounting version declared ("" declares nothing, as every
// release before the guard).
func poolDeclaring(t *testing.T, migrated *pgxpool.Pool, declared string) *pgxpool.Pool {
	t.Helper()
	cfg := migrated.Config()
	delete(cfg.ConnConfig.RuntimeParams, "docuvault.accounting")
	if declared != "" {
		cfg.ConnConfig.RuntimeParams["docuvault.accounting"] = declared
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// snapshot is what the accounting tables hold, to compare before and after.
func snapshot(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	var s string
	err := pool.QueryRow(context.Background(), `SELECT
		(SELECT coalesce(string_agg(format('%s:%s/%s', user_id, used_bytes, reserved_bytes), ',' ORDER BY user_id), '') FROM quotas) || ' | ' ||
		(SELECT coalesce(string_agg(format('%s:%s/%s/%s', id, status, size_bytes, reserved_bytes), ',' ORDER BY id), '') FROM documents)`).Scan(&s)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func wantRefused(t *testing.T, what string, err error) {
	t.Helper()
	var pgErr *pgconn.PgError
	if !postgres.IsAccountingRefused(err) || !errors.As(err, &pgErr) || !strings.Contains(pgErr.Message, "accounting version") {
		t.Errorf("%s: %v; want the accounting guard's refusal (SQLSTATE 57PDV)", what, err)
	}
}

// ledgerDrift runs a repairing-free pass of the ledger check over every
// quota row and returns the rows it found off.
func ledgerDrift(t *testing.T, s *postgres.Store) int {
	t.Helper()
	res := sweepLedger(t, ledgerService(s), ledgerSweep(1000, true), countQuotas(t, s))
	return res.LedgerDrifted
}

func countQuotas(t *testing.T, s *postgres.Store) int {
	t.Helper()
	var n int
	err := s.InTx(context.Background(), func(tx document.Tx) error {
		entries, err := tx.CheckLedger(context.Background(), uuid.Nil, 1000, document.Ledger())
		n = len(entries)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A replica of the previous accounting, still running beside the current
// schema, has its confirm, delete and purge refused by the database, and
// the ledger is unchanged; the current release's statements do the same
// work and the ledger stays right. Let through (its session declaring the
// current version), the previous confirm would have left the reservation
// held: the ledger check finds it.
func TestThePreviousAccountingIsRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, migrated := openStore(t, 1<<20)
	user := uuid.New()
	reserving := func(size int64) *document.Document {
		t.Helper()
		d := newDocument(user, &size)
		if _, created, err := s.CreateDocument(ctx, d, document.UploadLimits{Now: d.CreatedAt, Window: time.Minute, Reserve: size}); err != nil || !created {
			t.Fatalf("create: %v, %v", created, err)
		}
		return d
	}
	toConfirm, toDelete, toPurge := reserving(100), reserving(200), reserving(300)
	charged := reserving(50)
	if r, err := s.Settle(ctx, change(charged, 50, "")); err != nil || !r.Charged {
		t.Fatalf("confirm: %+v, %v", r, err)
	}
	charged.Status, charged.SizeBytes = document.StatusUploaded, 50

	var declared string
	if err := migrated.QueryRow(ctx, `SELECT current_setting('docuvault.accounting')`).Scan(&declared); err != nil || declared != fmt.Sprint(postgres.AccountingVersion) {
		t.Fatalf("postgres.Open's sessions declare %q, %v; want %d, sent in the startup packet", declared, err, postgres.AccountingVersion)
	}

	before := snapshot(t, migrated)
	for _, declared := range []string{"", "1"} {
		old := v1Role{poolDeclaring(t, migrated, declared)}
		name := "an earlier release (declaring nothing)"
		if declared != "" {
			name = "a release declaring version " + declared
		}
		wantRefused(t, name+": confirm", old.confirm(ctx, toConfirm, 100))
		wantRefused(t, name+": delete of a pending upload", old.delete(ctx, toDelete))
		wantRefused(t, name+": delete of a charged document", old.delete(ctx, charged))
		wantRefused(t, name+": purge", old.purge(ctx, toPurge))
		// Reads still work: only the ledger's writes are refused.
		var n int
		if err := old.pool.QueryRow(ctx, `SELECT count(*) FROM documents WHERE user_id = $1`, user).Scan(&n); err != nil || n != 4 {
			t.Errorf("%s: read %d documents, %v; want 4", name, n, err)
		}
	}
	if after := snapshot(t, migrated); after != before {
		t.Errorf("the refused statements changed the ledger:\nbefore %s\nafter  %s", before, after)
	}
	if n := ledgerDrift(t, s); n != 0 {
		t.Errorf("the ledger check finds %d rows off after the refused statements; want 0", n)
	}

	// The current release does the same work, and the ledger stays right.
	if r, err := s.Settle(ctx, change(toConfirm, 100, "")); err != nil || !r.Charged {
		t.Errorf("current confirm: %+v, %v", r, err)
	}
	svc := ledgerService(s)
	for _, d := range []*document.Document{toDelete, charged} {
		if err := svc.Delete(ctx, user, d.ID); err != nil {
			t.Errorf("current delete: %v", err)
		}
	}
	if purged, _, err := s.PurgeDocuments(ctx, document.Purge{IDs: []uuid.UUID{toPurge.ID}, Status: document.StatusPending, Before: time.Now().Add(time.Hour), At: time.Now(), Rule: document.Ledger()}); err != nil || len(purged) != 1 {
		t.Errorf("current purge: %v, %v", purged, err)
	}
	q, err := s.Quota(ctx, user)
	if err != nil || q.UsedBytes != 100 || q.ReservedBytes != 0 {
		t.Errorf("quota after the current release's work = %+v, %v; want 100 used, 0 reserved", q, err)
	}
	if n := ledgerDrift(t, s); n != 0 {
		t.Errorf("the ledger check finds %d rows off after the current release's work; want 0", n)
	}

	// What the guard prevents: the previous confirm, let through, leaves
	// the reservation held, and the ledger check finds it.
	leak := reserving(400)
	if err := (v1Role{poolDeclaring(t, migrated, fmt.Sprint(postgres.AccountingVersion))}).confirm(ctx, leak, 400); err != nil {
		t.Fatal(err)
	}
	if n := ledgerDrift(t, s); n != 1 {
		t.Errorf("after the previous confirm was let through the check finds %d rows off; want 1 (400 reserved bytes held for good)", n)
	}
}

// A release refuses to start beside an accounting version it does not
// know: once a later release's migration has moved the version on,
// Migrate answers an error naming both, and the current statements'
// writes are refused as the previous release's are.
func TestAReleaseRefusesAnAccountingItDoesNotKnow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, migrated := openStore(t, 1<<20)
	if err := postgres.Migrate(ctx, migrated); err != nil {
		t.Fatalf("Migrate beside its own accounting: %v", err)
	}
	next := postgres.AccountingVersion + 1
	// A later release's migration moves the version first; its sessions
	// declare the new one.
	later := poolDeclaring(t, migrated, fmt.Sprint(next))
	if _, err := later.Exec(ctx, `UPDATE accounting SET version = $1`, next); err != nil {
		t.Fatal(err)
	}
	err := postgres.Migrate(ctx, migrated)
	if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("version %d, this release knows version %d", next, postgres.AccountingVersion)) {
		t.Errorf("Migrate beside version %d = %v; want a refusal naming both versions", next, err)
	}
	d := newDocument(uuid.New(), nil)
	_, _, err = s.CreateDocument(ctx, d, document.UploadLimits{Now: d.CreatedAt, Window: time.Minute})
	if document.ErrorCode(err) != document.Unavailable || !postgres.IsAccountingRefused(err) {
		t.Errorf("create beside version %d = %v; want Unavailable, the guard's refusal", next, err)
	}
}
