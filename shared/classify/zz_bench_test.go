package classify_test

import (
	"strings"
	"testing"
	"time"

	"github.com/docuvault/docuvault/shared/classify"
)

func TestZZBench(t *testing.T) {
	c := classify.New(classify.DefaultRules())
	big := []byte(strings.Repeat("lorem ipsum dolor sit amet eeee aaaa 12345 ", 1<<20/43+1))
	start := time.Now()
	r := c.Classify(big, "text/plain")
	t.Logf("1 MiB text: %v %+v", time.Since(start), r)
	pdf := classify.SamplePDF(strings.Repeat("lorem ipsum dolor sit amet eeee aaaa 12345 ", 60000))
	start = time.Now()
	r = c.Classify(pdf, "application/pdf")
	t.Logf("%d byte pdf: %v %+v", len(pdf), time.Since(start), r)
}
