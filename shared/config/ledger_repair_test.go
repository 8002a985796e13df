package config

import (
	"strings"
	"testing"
)

// LEDGER_REPAIR is on unless set false: the sweeper's ledger check repairs
// what it finds; false makes it report only.
func TestLedgerRepair(t *testing.T) {
	t.Parallel()
	for v, want := range map[string]bool{"": true, "true": true, "1": true, "false": false, "0": false} {
		env := map[string]string{}
		if v != "" {
			env["LEDGER_REPAIR"] = v
		}
		c, err := parse(lookup(env))
		if err != nil || c.LedgerRepair != want {
			t.Errorf("LEDGER_REPAIR=%q: %v, %v; want %v", v, c.LedgerRepair, err, want)
		}
	}
	if _, err := parse(lookup(map[string]string{"LEDGER_REPAIR": "maybe"})); err == nil || !strings.Contains(err.Error(), "LEDGER_REPAIR") {
		t.Errorf("error %v does not name LEDGER_REPAIR", err)
	}
}
