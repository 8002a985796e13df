package classify_test

import (
	"archive/zip"
	"bytes"
	"context"
	"fmt"
	"maps"
	"runtime"
	"runtime/metrics"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docuvault/docuvault/shared/classify"
	"github.com/docuvault/docuvault/shared/classify/samples"
)

// The goal of the work budget: any input of up to CLASSIFY_MAX_BYTES
// (8 MiB) is classified or failed within these.
const (
	maxHeapGrowth = 64 << 20
	maxCPU        = 2 * time.Second
)

// craftedCase is a small file built to make the parsers do far more work
// than its size suggests, as reported against the classifier.
type craftedCase struct {
	name     string
	data     []byte
	declared string
	// category is the expected category when the budget allows reading
	// the file; "" when it must fail with FailureTooComplex.
	category string
}

func craftedCases(tb testing.TB) []craftedCase {
	tb.Helper()
	return []craftedCase{
		{name: "40 Type0 fonts sharing one ToUnicode CMap", data: sharedCMapPDF(tb), declared: pdfType, category: "invoice"},
		{name: "DOCX nesting <a> 5,000,000 deep", data: deepDOCX(tb, 5_000_000, false), declared: docxType},
		{name: "forms nested 8 deep, each run twice, run 200,000 times", data: formBombPDF(tb), declared: pdfType},
	}
}

// sharedCMapPDF is a page whose 40 Type0 fonts share one ToUnicode CMap
// mapping every 2-byte code to itself (<0000> <FFFF>) and, with a second
// range, every 3-byte code below 0x010000: read once per font and expanded
// to one map entry per code, it cost 131,072 entries per font.
func sharedCMapPDF(tb testing.TB) []byte {
	tb.Helper()
	const fonts = 40
	cmap := `/CIDInit /ProcSet findresource begin
12 dict begin
begincmap
/CMapName /Identity-UCS def
/CMapType 2 def
1 begincodespacerange
<0000> <FFFF>
endcodespacerange
2 beginbfrange
<0000> <FFFF> <0000>
<000000> <00FFFF> <0000>
endbfrange
endcmap
CMapName currentdict /CMap defineresource pop
end
end`
	// Objects: 1 catalog, 2 page tree, 3 page, 4 content, 5 the CMap, 6 the
	// descendant CID font, then the Type0 fonts.
	var res, content strings.Builder
	lines := strings.Split(samples.Texts()["invoice"], "\n")
	for i := range fonts {
		fmt.Fprintf(&res, "/F%d %d 0 R ", i+1, 7+i)
		fmt.Fprintf(&content, "BT /F%d 10 Tf 72 %d Td <", i+1, 760-14*i)
		for _, r := range lines[i%len(lines)] {
			fmt.Fprintf(&content, "%04X", r)
		}
		content.WriteString("> Tj ET\n")
	}
	objs := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << " + res.String() + ">> >> /Contents 4 0 R >>",
		stream(tb, "", []byte(content.String()), true),
		stream(tb, "", []byte(cmap), false),
		"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /Shared /CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> >>",
	}
	for i := range fonts {
		objs = append(objs, fmt.Sprintf("<< /Type /Font /Subtype /Type0 /BaseFont /Shared%d /Encoding /Identity-H /DescendantFonts [6 0 R] /ToUnicode 5 0 R >>", i+1))
	}
	return pdfFile(objs...)
}

// deepDOCX is a DOCX whose word/document.xml opens depth <a> elements, one
// inside the other, and closes them when closed is set; the repetition
// compresses some thousand times.
func deepDOCX(tb testing.TB, depth int, closed bool) []byte {
	tb.Helper()
	end := ""
	if closed {
		end = strings.Repeat("</a>", depth) + "</w:body></w:document>"
	}
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	for _, f := range []struct{ name, body string }{
		{"[Content_Types].xml", `<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">` +
			`<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>`},
		{"word/document.xml", `<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>` +
			strings.Repeat("<a>", depth) + end},
	} {
		fw, err := w.Create(f.name)
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := fw.Write([]byte(f.body)); err != nil {
			tb.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

// formBombPDF is a page that runs form X1 200,000 times; X1 to X7 each run
// the next form twice, and X8 draws a line: 51 million form runs in all.
func formBombPDF(tb testing.TB) []byte {
	tb.Helper()
	const depth = 8
	// Objects: 1 catalog, 2 page tree, 3 page, 4 content, then X1..X8.
	objs := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /XObject << /X1 5 0 R >> >> /Contents 4 0 R >>",
		stream(tb, "", bytes.Repeat([]byte("/X1 Do\n"), 200_000), true),
	}
	for i := 1; i <= depth; i++ {
		dict := "/Type /XObject /Subtype /Form /BBox [0 0 612 792]"
		content := "0 0 m 10 10 l S"
		if i < depth {
			dict += fmt.Sprintf(" /Resources << /XObject << /X%d %d 0 R >> >>", i+1, 5+i)
			content = fmt.Sprintf("/X%d Do /X%d Do", i+1, i+1)
		}
		objs = append(objs, stream(tb, dict, []byte(content), false))
	}
	return pdfFile(objs...)
}

// exhaustingCases are documents that each run one allowance of the budget
// out: the heap and CPU they cost is the most that allowance admits.
func exhaustingCases(tb testing.TB) []craftedCase {
	tb.Helper()
	page := func(resources, contents string, objs ...string) []byte {
		return pdfFile(append([]string{
			"<< /Type /Catalog /Pages 2 0 R >>",
			"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
			"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << " + resources + " >> /Contents " + contents + " >>",
		}, objs...)...)
	}
	refs := func(from, n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "%d 0 R ", from+i)
		}
		return b.String()
	}

	// Content tokens: five streams of 2,000,000 tokens each.
	var tokens []string
	for range 5 {
		tokens = append(tokens, stream(tb, "", bytes.Repeat([]byte("0 "), 2_000_000), true))
	}
	// Decompressed bytes: streams each inflating to one byte more than a
	// stream may (4 MiB).
	var bombs []string
	for range 17 {
		bombs = append(bombs, stream(tb, "", make([]byte, 4<<20+1), true))
	}
	// Character-map entries: one CMap of 140,000 bfchar entries.
	var cmap bytes.Buffer
	for i := range 1400 {
		cmap.WriteString("100 beginbfchar\n")
		for j := range 100 {
			fmt.Fprintf(&cmap, "<%04X> <0041>\n", (i*100+j)&0xFFFF)
		}
		cmap.WriteString("endbfchar\n")
	}
	// Fonts: one more than a document may read, each used once.
	const fonts = 8193
	var fontRes, fontContent strings.Builder
	var fontObjs []string
	for i := range fonts {
		fmt.Fprintf(&fontRes, "/F%d %d 0 R ", i, 5+i)
		fmt.Fprintf(&fontContent, "/F%d 9 Tf ", i)
		// As short as they can be, to stay within the syntax allowance.
		fontObjs = append(fontObjs, "<</Subtype/Type1/Encoding<</Differences[65/B]>>>>")
	}
	// XML tokens: empty elements, two tokens each; XML bytes: runs of text
	// as long as a run may be.
	xmlTokens := strings.Repeat("<w:r/>", maxXMLTokensForTest/2+1)
	xmlBytes := strings.Repeat("<w:p>"+strings.Repeat("x", 4<<20-16)+"</w:p>", 17)

	// PDF objects and their syntax: pdfcpu parses all of them while
	// reading the file; an array just within the syntax allowance, and
	// 8 MiB of small objects beyond the objects allowance.
	var small []string
	for range 8 << 20 / 48 {
		small = append(small, "[1 2 3]")
	}

	return []craftedCase{
		{name: "PDF object syntax within the allowance", data: page("", "4 0 R", stream(tb, "", nil, false), "["+strings.Repeat("1 ", 500_000)+"]"), declared: pdfType, category: classify.CategoryOther},
		{name: "PDF objects", data: page("", "4 0 R", append([]string{stream(tb, "", nil, false)}, small...)...), declared: pdfType},
		{name: "content tokens", data: page("", "["+refs(4, len(tokens))+"]", tokens...), declared: pdfType},
		{name: "decompressed bytes", data: page("", "["+refs(4, len(bombs))+"]", bombs...), declared: pdfType},
		{name: "character-map entries", declared: pdfType, data: page("/Font << /F1 4 0 R >>", "6 0 R",
			"<< /Type /Font /Subtype /Type0 /BaseFont /X /Encoding /Identity-H /DescendantFonts [] /ToUnicode 5 0 R >>",
			stream(tb, "", cmap.Bytes(), true),
			stream(tb, "", []byte("BT /F1 10 Tf <0001> Tj ET"), false))},
		{name: "fonts", declared: pdfType, data: page("/Font << "+fontRes.String()+">>", "4 0 R",
			append([]string{stream(tb, "", []byte("BT "+fontContent.String()+"ET"), true)}, fontObjs...)...)},
		{name: "XML tokens", data: docxBody(tb, xmlTokens), declared: docxType},
		{name: "XML bytes", data: docxBody(tb, xmlBytes), declared: docxType},
		{name: "archive entries", data: manyEntriesDOCX(tb, 8200), declared: docxType},
	}
}

// maxXMLTokensForTest is the XML token allowance of the budget.
const maxXMLTokensForTest = 1 << 21

// docxBody is a DOCX whose body holds body.
func docxBody(tb testing.TB, body string) []byte {
	tb.Helper()
	return zipOf(tb, map[string]string{
		"[Content_Types].xml": `<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>`,
		"word/document.xml": `<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>` +
			body + `</w:body></w:document>`,
	})
}

// manyEntriesDOCX is a small DOCX with n more entries beside its body.
func manyEntriesDOCX(tb testing.TB, n int) []byte {
	tb.Helper()
	files := map[string]string{
		"[Content_Types].xml": `<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>`,
		"word/document.xml":   `<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body/></w:document>`,
	}
	for i := range n {
		files[fmt.Sprintf("word/media/%d", i)] = ""
	}
	return zipOf(tb, files)
}

// zipOf is a ZIP archive of files, [Content_Types].xml first.
func zipOf(tb testing.TB, files map[string]string) []byte {
	tb.Helper()
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	names := slices.Sorted(maps.Keys(files))
	for _, name := range names {
		fw, err := w.Create(name)
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := fw.Write([]byte(files[name])); err != nil {
			tb.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

// cost is what classifying one document took: the peak growth of the heap
// (live and not yet collected objects) over the heap after a collection
// before it, and the CPU time of the process, garbage collection included.
type cost struct {
	heap uint64
	cpu  time.Duration
}

// measure runs f and returns its cost. The heap is sampled every
// millisecond, so a peak shorter than that may be missed.
func measure(f func()) cost {
	read := func(s []metrics.Sample) uint64 {
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
	const heapObjects = "/memory/classes/heap/objects:bytes"
	runtime.GC()
	base := read([]metrics.Sample{{Name: heapObjects}})
	var peak atomic.Uint64
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		s := []metrics.Sample{{Name: heapObjects}}
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if v := read(s); v > peak.Load() {
					peak.Store(v)
				}
			}
		}
	}()
	cpu0 := cpuTime()
	f()
	cpu := cpuTime() - cpu0
	close(stop)
	<-stopped
	p := max(peak.Load(), read([]metrics.Sample{{Name: heapObjects}}))
	return cost{heap: max(p, base) - base, cpu: cpu}
}

// TestCraftedDocumentsStayWithinBudget classifies the files reported to
// exhaust the classifier and checks that each is classified or failed as
// too complex within the heap and CPU goal. Run it with -v for the numbers:
//
//	go test -run TestCraftedDocumentsStayWithinBudget -v ./shared/classify/
//
// It is not parallel: it measures the whole process.
func TestCraftedDocumentsStayWithinBudget(t *testing.T) {
	c := classify.New(classify.DefaultRules())
	cpuLimit := maxCPU
	if raceEnabled {
		// The race detector slows the code down some tenfold.
		cpuLimit *= 10
	}
	cases := craftedCases(t)
	if raceEnabled || testing.Short() {
		t.Log("the documents exhausting single allowances are skipped in -short and -race runs")
	} else {
		cases = append(cases, exhaustingCases(t)...)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got classify.Result
			m := measure(func() { got = c.Classify(context.Background(), tc.data, tc.declared) })
			t.Logf("%d bytes: heap +%.1f MiB, CPU %v: %+v", len(tc.data), float64(m.heap)/(1<<20), m.cpu.Round(time.Millisecond), got)
			checkValid(t, got, len(tc.data))
			if m.heap > maxHeapGrowth {
				t.Errorf("heap grew by %d MiB, want at most %d", m.heap>>20, maxHeapGrowth>>20)
			}
			if m.cpu > cpuLimit {
				t.Errorf("CPU time %v, want at most %v", m.cpu, cpuLimit)
			}
			switch {
			case tc.category != "" && (got.Failure != "" || got.Category != tc.category):
				t.Errorf("Classify = %+v, want category %q", got, tc.category)
			case tc.category == "" && got.Failure != classify.FailureTooComplex:
				t.Errorf("Classify = %+v, want failure %q", got, classify.FailureTooComplex)
			}
		})
	}
}

// TestBudgetLimits checks documents just inside and just outside single
// allowances: ordinary structure must not be mistaken for an attack.
func TestBudgetLimits(t *testing.T) {
	t.Parallel()
	c := classify.New(classify.DefaultRules())
	tests := []struct {
		name    string
		data    []byte
		failure string
	}{
		{"XML nested 200 deep", deepDOCX(t, 200, true), ""},
		{"XML nested 300 deep", deepDOCX(t, 300, true), classify.FailureTooComplex},
		{"forms nested 8 deep", nestedFormsPDF(t, 8), ""},
		{"forms nested 9 deep", nestedFormsPDF(t, 9), classify.FailureTooComplex},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := c.Classify(context.Background(), tc.data, "")
			checkValid(t, got, len(tc.data))
			if got.Failure != tc.failure {
				t.Errorf("Classify = %+v, want failure %q", got, tc.failure)
			}
		})
	}
}

// nestedFormsPDF is a page running form X1, which runs X2 and so on to
// Xdepth, which shows bank-statement text.
func nestedFormsPDF(tb testing.TB, depth int) []byte {
	tb.Helper()
	objs := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /XObject << /X1 5 0 R >> /Font << /F1 4 0 R >> >> /Contents 6 0 R >>",
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
	}
	// Objects 5 and on: X1, the page content, X2, X3, ...
	obj := func(i int) int {
		if i == 1 {
			return 5
		}
		return 5 + i
	}
	forms := make([]string, depth+1)
	for i := 1; i <= depth; i++ {
		dict := "/Type /XObject /Subtype /Form /BBox [0 0 612 792]"
		content := "BT /F1 10 Tf 50 50 Td (Kontoauszug Kontostand Buchungstag Wertstellung IBAN) Tj ET"
		if i < depth {
			dict += fmt.Sprintf(" /Resources << /XObject << /X%d %d 0 R >> /Font << /F1 4 0 R >> >>", i+1, obj(i+1))
			content = fmt.Sprintf("/X%d Do", i+1)
		} else {
			dict += " /Resources << /Font << /F1 4 0 R >> >>"
		}
		forms[i] = stream(tb, dict, []byte(content), false)
	}
	objs = append(objs, forms[1], stream(tb, "", []byte("/X1 Do"), false))
	objs = append(objs, forms[2:]...)
	return pdfFile(objs...)
}

// TestClassifyStopsWithContext checks that a context that ends stops the
// parsers and gives FailureTooComplex.
func TestClassifyStopsWithContext(t *testing.T) {
	t.Parallel()
	c := classify.New(classify.DefaultRules())
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name, declared string
		data           []byte
	}{
		{"pdf", pdfType, samples.PDF(samples.Texts()["invoice"])},
		{"docx", docxType, samples.DOCX(samples.Texts()["invoice"])},
	} {
		if got := c.Classify(cancelled, tc.data, tc.declared); got.Failure != classify.FailureTooComplex || !strings.Contains(got.Detail, "cancelled") {
			t.Errorf("%s with a cancelled context: %+v, want failure %q", tc.name, got, classify.FailureTooComplex)
		}
	}
	// A deadline reached while the parsers work ends them.
	bomb := formBombPDF(t)
	ctx, cancelTimeout := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancelTimeout()
	<-ctx.Done()
	start := time.Now()
	if got := c.Classify(ctx, bomb, pdfType); got.Failure != classify.FailureTooComplex || !strings.Contains(got.Detail, "too long") {
		t.Errorf("form bomb past its deadline: %+v", got)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("form bomb past its deadline took %v", d)
	}
}

// FuzzClassifyBudget checks the work budget on every input: classifying it
// must grow the heap by at most maxHeapGrowth and take at most maxCPU
// (measured as elapsed time, with a wide margin for a machine busy with
// the other fuzzing workers), besides giving a valid Result.
func FuzzClassifyBudget(f *testing.F) {
	for _, tc := range craftedCases(f) {
		f.Add(tc.data)
	}
	f.Add(cidFontPDF(f))
	f.Add(formXObjectPDF(f))
	f.Add(nestedFormsPDF(f, 3))
	f.Add(deepDOCX(f, 40, true))
	f.Add(samples.ODT(samples.Texts()["letter"]))
	c := classify.New(classify.DefaultRules())
	f.Fuzz(func(t *testing.T, data []byte) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		start := time.Now()
		got := c.Classify(context.Background(), data, "")
		elapsed := time.Since(start)
		runtime.ReadMemStats(&after)
		checkValid(t, got, len(data))
		if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > maxHeapGrowth {
			t.Errorf("heap grew by %d MiB, want at most %d: %+v", grew>>20, maxHeapGrowth>>20, got)
		}
		if elapsed > 5*maxCPU {
			t.Errorf("took %v, want at most %v (with slack): %+v", elapsed, maxCPU, got)
		}
	})
}
