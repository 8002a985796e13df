package classify

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
)

// TestXMLGuard checks that the guard follows the markup as far as its
// limits need: empty elements, end tags, quoted '>' and declarations open
// nothing, and each limit stops the input that exceeds it.
func TestXMLGuard(t *testing.T) {
	t.Parallel()
	deep := func(n int) string { return strings.Repeat("<a>", n) + strings.Repeat("</a>", n) }
	tests := []struct {
		name, xml  string
		tooComplex bool
	}{
		{"siblings", strings.Repeat("<a><b/><c x='1>2'>text</c></a>", 10000), false},
		{"declarations", `<?xml version="1.0"?><!DOCTYPE a><!-- <b> > --><a><![CDATA[x]]></a>`, false},
		{"depth at the limit", deep(maxXMLDepth), false},
		{"depth over the limit", deep(maxXMLDepth + 1), true},
		{"empty elements do not nest", "<r>" + strings.Repeat("<a/>", 2*maxXMLDepth) + "</r>", false},
		{"long tag", "<a b='" + strings.Repeat("x", maxXMLTagBytes) + "'/>", true},
		{"long text", "<a>" + strings.Repeat("x", maxXMLRunBytes+1) + "</a>", true},
		{"long comment", "<!--" + strings.Repeat("x", maxXMLRunBytes+1) + "-->", true},
		{"open tags", strings.Repeat("<a "+strings.Repeat("x", 8<<10)+">", maxXMLOpenTagBytes/(8<<10)+1), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			bud := newBudget(context.Background())
			_, err := io.Copy(io.Discard, &xmlGuard{r: strings.NewReader(tc.xml), bud: bud})
			if got := errors.Is(err, errTooComplex); got != tc.tooComplex {
				t.Errorf("too complex = %v (%v), want %v", got, err, tc.tooComplex)
			}
		})
	}
}
