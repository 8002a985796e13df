package confirmer

import (
	"fmt"
	"testing"
)

func TestKeySetForgetsTheOldestFirst(t *testing.T) {
	s := newKeySet(3)
	for i := range 4 {
		s.add(fmt.Sprint(i))
	}
	s.add("3") // present: no eviction
	if s.has("0") {
		t.Fatal("the oldest key was kept past the bound")
	}
	for _, k := range []string{"1", "2", "3"} {
		if !s.has(k) {
			t.Fatalf("key %s was forgotten too early", k)
		}
	}
	if len(s.keys) != 3 {
		t.Fatalf("set holds %d keys, want 3", len(s.keys))
	}
}
