package classify

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestToUnicodeMatchesExpansion checks the compact CMap against the
// expansion it replaces, one map entry per code stored in the order of
// the CMap: later definitions override earlier ones wherever they overlap.
func TestToUnicodeMatchesExpansion(t *testing.T) {
	t.Parallel()
	type key struct {
		n    int
		code uint32
	}
	rng := rand.New(rand.NewPCG(1, 2))
	hex := func(n int, v uint32) string { return fmt.Sprintf("<%0*X>", 2*n, v) }
	for round := range 200 {
		var cmap strings.Builder
		want := map[key]string{}
		for range 1 + rng.IntN(12) {
			n := 1 + rng.IntN(2)
			from := uint32(rng.IntN(200))
			to := min(from+uint32(rng.IntN(60)), 1<<(8*n)-1)
			switch rng.IntN(3) {
			case 0: // bfchar
				dst := 0x41 + uint16(rng.IntN(26))
				fmt.Fprintf(&cmap, "1 beginbfchar %s %s endbfchar\n", hex(n, from), hex(2, uint32(dst)))
				want[key{n, from}] = string(rune(dst))
			case 1: // bfrange with a string
				dst := 0x100 + uint16(rng.IntN(1000))
				fmt.Fprintf(&cmap, "1 beginbfrange %s %s %s endbfrange\n", hex(n, from), hex(n, to), hex(2, uint32(dst)))
				for c := from; c <= to; c++ {
					want[key{n, c}] = string(rune(dst + uint16(c-from)))
				}
			case 2: // bfrange with an array, possibly short
				fmt.Fprintf(&cmap, "1 beginbfrange %s %s [", hex(n, from), hex(n, to))
				for c := from; c <= to && rng.IntN(8) > 0; c++ {
					dst := 0x3000 + uint16(rng.IntN(100))
					fmt.Fprintf(&cmap, " %s", hex(2, uint32(dst)))
					want[key{n, c}] = string(rune(dst))
				}
				cmap.WriteString("] endbfrange\n")
			}
		}
		tu := parseToUnicode([]byte(cmap.String()), newBudget(context.Background()))
		if tu == nil {
			t.Fatalf("round %d: parse failed", round)
		}
		for n := 1; n <= 2; n++ {
			for code := uint32(0); code < 300; code++ {
				got, ok := tu.lookup(n, code)
				w, wok := want[key{n, code}]
				if ok != wok || got != w {
					t.Fatalf("round %d: lookup(%d, %#x) = %q %v, want %q %v\n%s", round, n, code, got, ok, w, wok, cmap.String())
				}
			}
		}
	}
}

// TestToUnicodeFullRangeIsOneEntry checks that a bfrange over every 2-byte
// code costs one character-map entry of the budget, not 65,536.
func TestToUnicodeFullRangeIsOneEntry(t *testing.T) {
	t.Parallel()
	bud := newBudget(context.Background())
	tu := parseToUnicode([]byte("1 beginbfrange <0000> <FFFF> <0000> endbfrange"), bud)
	if tu == nil || len(tu.defs) != 1 || len(tu.spans) != 1 || bud.mappings != maxCharMappings-1 {
		t.Fatalf("parsed %+v, %d entries left", tu, bud.mappings)
	}
	if s, ok := tu.lookup(2, 0x20AC); !ok || s != "€" {
		t.Errorf("lookup(0x20AC) = %q %v, want €", s, ok)
	}
}
