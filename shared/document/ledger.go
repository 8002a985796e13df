package document

import (
	"context"

	"github.com/google/uuid"
	"github.com/rs/zerolog"
)

// LedgerRule says what each document holds of its owner's quota: a
// document in a Used status holds its SizeBytes as used bytes, one in a
// Reserved status holds its ReservedBytes as reserved bytes, any other
// holds nothing. A user's quota row is right when its used_bytes and
// reserved_bytes are the sums of what the user's documents hold. The one
// home of that rule: the stores' ledger statements and the test fake are
// given it, never spell it.
type LedgerRule struct {
	Used     []Status
	Reserved []Status
}

// Ledger returns the rule the quota ledger keeps: charged documents
// (Status.Charged) hold their size, pending ones their reservation.
func Ledger() LedgerRule {
	var used []Status
	for _, s := range []Status{StatusPending, StatusUploaded, StatusClassified, StatusClassificationFailed, StatusRejected} {
		if s.Charged() {
			used = append(used, s)
		}
	}
	return LedgerRule{Used: used, Reserved: []Status{StatusPending}}
}

// Holds returns what d holds of its owner's quota under r.
func (r LedgerRule) Holds(d *Document) (used, reserved int64) {
	for _, s := range r.Used {
		if d.Status == s {
			used = d.SizeBytes
		}
	}
	for _, s := range r.Reserved {
		if d.Status == s {
			reserved = d.ReservedBytes
		}
	}
	return used, reserved
}

// LedgerEntry is one user's quota row as stored (Stored) beside what the
// user's documents hold under the LedgerRule (UsedBytes, ReservedBytes).
type LedgerEntry struct {
	Stored        Quota
	UsedBytes     int64
	ReservedBytes int64
}

// Drift returns how far the stored row is off its documents: stored minus
// held, for used and reserved bytes.
func (e LedgerEntry) Drift() (used, reserved int64) {
	return e.Stored.UsedBytes - e.UsedBytes, e.Stored.ReservedBytes - e.ReservedBytes
}

// Clamp is what a quota write of one user absorbed by not going below
// zero: bytes it was asked to take from the user's used (Used) or reserved
// (Reserved) bytes that the row did not hold. The ledger never needs a
// clamp: anything absorbed is drift, and is logged and counted.
type Clamp struct {
	UserID   uuid.UUID
	Used     int64
	Reserved int64
}

// Defaults of the ledger check.
const (
	// DefaultLedgerUsers is the quota rows one sweep checks.
	DefaultLedgerUsers = 2000
	// ledgerBatch bounds the quota rows one checking transaction locks:
	// confirms and deletes of those users wait for it.
	ledgerBatch = 100
)

// checkLedger checks the next LedgerUsers quota rows, in user order from
// where the last sweep stopped, against what their users' documents hold
// (see LedgerRule), and, unless cfg.LedgerReportOnly, sets each row that
// is off back to its documents' sums in the transaction that read it.
// Each transaction locks its rows before it reads the documents, so the
// sums are exact against concurrent confirms, deletes and purges (see
// Tx.CheckLedger). A pass that reaches the last row starts again from the
// first at the next sweep.
func (s *Service) checkLedger(ctx context.Context, cfg SweepConfig, res *SweepResult) error {
	after, err := s.store.LedgerCursor(ctx)
	if err != nil {
		return err
	}
	rule := Ledger()
	for left := cfg.LedgerUsers; left > 0; {
		n := min(left, ledgerBatch, cfg.BatchSize)
		var entries []LedgerEntry
		err := s.store.InTx(ctx, func(tx Tx) error {
			var err error
			entries, err = tx.CheckLedger(ctx, after, n, rule)
			if err != nil {
				return err
			}
			var off []LedgerEntry
			for _, e := range entries {
				if used, reserved := e.Drift(); used != 0 || reserved != 0 {
					off = append(off, e)
				}
			}
			if len(off) == 0 || cfg.LedgerReportOnly {
				return nil
			}
			return tx.RepairLedger(ctx, off)
		})
		if err != nil {
			return err
		}
		s.reportLedger(ctx, cfg, entries, res)
		left -= len(entries)
		if len(entries) < n {
			after = uuid.Nil // the pass is complete
			break
		}
		after = entries[len(entries)-1].Stored.UserID
	}
	return s.store.SaveLedgerCursor(ctx, after)
}

// reportLedger counts the entries one checking transaction committed in
// res, and logs each row that was off.
func (s *Service) reportLedger(ctx context.Context, cfg SweepConfig, entries []LedgerEntry, res *SweepResult) {
	res.LedgerChecked += len(entries)
	for _, e := range entries {
		used, reserved := e.Drift()
		if used == 0 && reserved == 0 {
			continue
		}
		res.LedgerDrifted++
		res.LedgerDriftUsedBytes += abs(used)
		res.LedgerDriftReservedBytes += abs(reserved)
		if !cfg.LedgerReportOnly {
			res.LedgerRepaired++
		}
		zerolog.Ctx(ctx).Warn().Str("user_id", e.Stored.UserID.String()).
			Int64("used_bytes", e.Stored.UsedBytes).Int64("held_used_bytes", e.UsedBytes).
			Int64("reserved_bytes", e.Stored.ReservedBytes).Int64("held_reserved_bytes", e.ReservedBytes).
			Bool("repaired", !cfg.LedgerReportOnly).
			Msg("ledger: quota row off its documents")
	}
}

func abs(n int64) int64 {
	if n < 0 {
		return -n
	}
	return n
}

// inTx runs fn in one store transaction (Store.InTx) and, once it
// committed, reports what its quota writes' clamps absorbed; where names
// the use case.
func (s *Service) inTx(ctx context.Context, where string, fn func(Tx) error) error {
	var clamps []Clamp
	err := s.store.InTx(ctx, func(tx Tx) error {
		err := fn(tx)
		clamps = tx.Clamps()
		return err
	})
	if err == nil {
		s.clamped(ctx, where, clamps...)
	}
	return err
}

// clamped logs and counts (Config.OnClamp) what quota writes' clamps
// absorbed, as drift; where names the use case. The one place a clamp is
// reported: the stores return them and say nothing.
func (s *Service) clamped(ctx context.Context, where string, clamps ...Clamp) {
	for _, c := range clamps {
		if c.Used == 0 && c.Reserved == 0 {
			continue
		}
		zerolog.Ctx(ctx).Warn().Str("user_id", c.UserID.String()).Str("use_case", where).
			Int64("used_bytes", c.Used).Int64("reserved_bytes", c.Reserved).
			Msg("ledger: a quota write went below zero and was clamped")
		if s.cfg.OnClamp != nil {
			s.cfg.OnClamp(c.Used, c.Reserved)
		}
	}
}
