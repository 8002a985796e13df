package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// AccountingVersion is the version of the quota accounting this release's
// statements keep: which of them move quotas.used_bytes and reserved_bytes,
// and what each document holds (document.Ledger). The database keeps its
// own in the accounting table (migration 0012); Migrate refuses to start
// beside another, and every connection declares this one (accountingParam),
// so that a replica of another release still running fails its writes to
// quotas and documents (the accounting_guard trigger) instead of moving
// the ledger by other rules.
//
// The release rule: a release that changes the accounting — a statement
// that charges, releases, reserves or unreserves differently, or a change
// to what a document holds — raises this constant and ships a migration
// that first sets the accounting row to the same number, then converts the
// rows. From that migration on, the previous release's replicas can read
// but not write until they are replaced; their requests fail with 503 and
// their messages are redelivered to the new replicas. A release that does
// not change the accounting keeps the number, and mixes freely with its
// predecessor. Version 2 is the multipart release's (b72a6a8,
// reservations); 1 was the one before it.
const AccountingVersion = 2

// accountingParam is the session setting a connection declares its
// accounting version in, sent in the startup packet: no round trip.
const accountingParam = "docuvault.accounting"

// accountingRefused is the SQLSTATE of accounting_guard's refusal: class
// 57P, which translate (and every earlier release's consumers) treat as
// passing.
const accountingRefused = "57PDV"

// declareAccounting makes every connection of cfg declare AccountingVersion.
func declareAccounting(cfg *pgconn.Config) {
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	cfg.RuntimeParams[accountingParam] = strconv.Itoa(AccountingVersion)
}

// checkAccounting returns an error naming both versions when the
// database's accounting is not this release's.
func checkAccounting(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) error {
	var kept int
	err := q.QueryRow(ctx, `SELECT version FROM accounting`).Scan(&kept)
	if errors.Is(err, pgx.ErrNoRows) {
		return errors.New("the database has no accounting version: migration 0012 did not run")
	}
	if err != nil {
		return fmt.Errorf("read the accounting version: %w", err)
	}
	if kept != AccountingVersion {
		return fmt.Errorf("the database keeps quota accounting version %d, this release knows version %d: "+
			"a replica must not write the ledger beside another accounting; run the release that matches the database "+
			"(see deploy/README.md, Upgrades)", kept, AccountingVersion)
	}
	return nil
}

// IsAccountingRefused reports whether err is the database refusing a write
// from a session of another accounting version.
func IsAccountingRefused(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == accountingRefused
}
