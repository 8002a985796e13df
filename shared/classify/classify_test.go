package classify_test

import (
	"archive/zip"
	"bytes"
	"compress/zlib"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/docuvault/docuvault/shared/classify"
	"github.com/docuvault/docuvault/shared/classify/samples"
	"github.com/docuvault/docuvault/shared/document"
)

const (
	pdfType  = "application/pdf"
	docxType = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
	odtType  = "application/vnd.oasis.opendocument.text"
)

// corpusCase is one generated document and what classifying it must give.
type corpusCase struct {
	name     string
	data     []byte
	declared string
	category string // expected Category; "" when a failure is expected
	failure  string
	detected string // expected DetectedType prefix; "" to skip the check
}

// corpus builds the test corpus in Go: every sample text as plain text,
// PDF, DOCX and ODT, plus images, executables and damaged files.
func corpus(tb testing.TB) []corpusCase {
	tb.Helper()
	var cases []corpusCase
	texts := samples.Texts()
	names := make([]string, 0, len(texts))
	for name := range texts {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, cat := range names {
		text := texts[cat]
		cases = append(cases,
			corpusCase{name: cat + ".txt", data: []byte(text), declared: "text/plain; charset=utf-8", category: cat, detected: "text/plain"},
			corpusCase{name: cat + ".pdf", data: samples.PDF(text), declared: pdfType, category: cat, detected: pdfType},
			corpusCase{name: cat + ".docx", data: samples.DOCX(text), declared: docxType, category: cat, detected: docxType},
			corpusCase{name: cat + ".odt", data: samples.ODT(text), declared: odtType, category: cat, detected: odtType},
		)
	}
	invoice := texts["invoice"]
	invoicePDF := samples.PDF(invoice)
	invoiceDOCX := samples.DOCX(invoice)
	elf := append([]byte("\x7fELF\x02\x01\x01\x00"), bytes.Repeat([]byte{0x90, 0x00, 0x3e, 0x00}, 64)...)
	pe := append([]byte("MZ\x90\x00\x03\x00\x00\x00"), bytes.Repeat([]byte{0}, 120)...)
	macho := append([]byte{0xcf, 0xfa, 0xed, 0xfe, 0x07, 0x00, 0x00, 0x01}, bytes.Repeat([]byte{0}, 120)...)
	cases = append(cases,
		corpusCase{name: "image declared png", data: mustPNG(tb), declared: "image/png", category: classify.CategoryOther, detected: "image/png"},
		corpusCase{name: "ELF renamed .pdf", data: elf, declared: pdfType, failure: classify.FailureTypeMismatch, detected: "application/x-elf"},
		corpusCase{name: "PE renamed .pdf", data: pe, declared: pdfType, failure: classify.FailureTypeMismatch, detected: "application/vnd.microsoft.portable-executable"},
		corpusCase{name: "Mach-O renamed .pdf", data: macho, declared: pdfType, failure: classify.FailureTypeMismatch, detected: "application/x-mach-binary"},
		corpusCase{name: "png declared pdf", data: mustPNG(tb), declared: pdfType, failure: classify.FailureTypeMismatch, detected: "image/png"},
		corpusCase{name: "text declared pdf", data: []byte(invoice), declared: pdfType, failure: classify.FailureTypeMismatch},
		corpusCase{name: "pdf declared docx", data: invoicePDF, declared: docxType, failure: classify.FailureTypeMismatch},
		corpusCase{name: "truncated pdf", data: invoicePDF[:len(invoicePDF)/2], declared: pdfType, failure: classify.FailureUnreadable, detected: pdfType},
		corpusCase{name: "pdf header only", data: []byte("%PDF-1.7\n"), declared: pdfType, failure: classify.FailureUnreadable, detected: pdfType},
		corpusCase{name: "empty", data: []byte{}, declared: pdfType, failure: classify.FailureEmpty},
		corpusCase{name: "empty undeclared", data: nil, declared: "", failure: classify.FailureEmpty},
		corpusCase{name: "pdf declared octet-stream", data: invoicePDF, declared: "application/octet-stream", category: "invoice", detected: pdfType},
		corpusCase{name: "pdf undeclared", data: invoicePDF, declared: "", category: "invoice", detected: pdfType},
		corpusCase{name: "pdf declared in capitals with parameters", data: invoicePDF, declared: "Application/PDF; name=\"rechnung.pdf\"", category: "invoice"},
		corpusCase{name: "pdf declared x-pdf", data: invoicePDF, declared: "application/x-pdf", category: "invoice"},
		corpusCase{name: "ELF declared octet-stream", data: elf, declared: "application/octet-stream", category: classify.CategoryOther, detected: "application/x-elf"},
		corpusCase{name: "text declared csv", data: []byte(invoice), declared: "text/csv", category: "invoice"},
		corpusCase{name: "utf-16 text", data: utf16LE(invoice), declared: "text/plain", category: "invoice", detected: "text/plain"},
		corpusCase{name: "windows-1252 text", data: windows1252(texts["letter"]), declared: "text/plain", category: "letter", detected: "text/plain"},
		corpusCase{name: "docx declared zip", data: invoiceDOCX, declared: "application/zip", category: "invoice", detected: docxType},
		corpusCase{name: "docx detected as zip", data: zipWithPadding(tb, invoice), declared: docxType, category: "invoice", detected: docxType},
		corpusCase{name: "plain zip declared docx", data: plainZip(tb), declared: docxType, failure: classify.FailureTypeMismatch, detected: "application/zip"},
		corpusCase{name: "docx without central directory", data: invoiceDOCX[:bytes.Index(invoiceDOCX, []byte("PK\x01\x02"))], declared: docxType, category: "invoice"},
		corpusCase{name: "docx cut inside the body", data: invoiceDOCX[:len(invoiceDOCX)/2], declared: docxType, failure: classify.FailureUnreadable},
		corpusCase{name: "docx with corrupt body", data: corruptEntry(tb, invoiceDOCX, "word/document.xml"), declared: docxType, failure: classify.FailureUnreadable},
		corpusCase{name: "pdf with a cid font, kerning and flate", data: cidFontPDF(tb), declared: pdfType, category: "invoice"},
		corpusCase{name: "pdf with text in a form xobject", data: formXObjectPDF(tb), declared: pdfType, category: "bank_statement"},
		corpusCase{name: "pdf without text", data: imageOnlyPDF(), declared: pdfType, category: classify.CategoryOther},
	)
	return cases
}

func TestClassify(t *testing.T) {
	t.Parallel()
	c := classify.New(classify.DefaultRules())
	for _, tc := range corpus(t) {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := c.Classify(context.Background(), tc.data, tc.declared)
			checkValid(t, got, len(tc.data))
			if got.Failure != tc.failure || got.Category != tc.category {
				t.Fatalf("Classify = %+v, want category %q failure %q", got, tc.category, tc.failure)
			}
			if tc.detected != "" && !strings.HasPrefix(got.DetectedType, tc.detected) {
				t.Errorf("DetectedType = %q, want %q", got.DetectedType, tc.detected)
			}
			switch {
			case tc.failure != "":
				if got.Confidence != 0 {
					t.Errorf("Confidence = %v for a failure, want 0", got.Confidence)
				}
			case tc.category == classify.CategoryOther:
				if got.Confidence > 0.2 {
					t.Errorf("Confidence = %v for other, want a low value", got.Confidence)
				}
			default:
				if got.Confidence < 0.5 {
					t.Errorf("Confidence = %v for a clear %s, want >= 0.5", got.Confidence, tc.category)
				}
			}
		})
	}
}

// TestSampleTextsCoverDefaultRules checks that the sample corpus has one
// text per default category, so that the end-to-end tests reusing it cover
// them all.
func TestSampleTextsCoverDefaultRules(t *testing.T) {
	t.Parallel()
	texts := samples.Texts()
	for _, cat := range classify.DefaultRules().Categories {
		if _, ok := texts[cat.Name]; !ok {
			t.Errorf("SampleTexts has no text for category %q", cat.Name)
		}
	}
	if len(texts) != len(classify.DefaultRules().Categories) {
		t.Errorf("SampleTexts has %d texts for %d categories", len(texts), len(classify.DefaultRules().Categories))
	}
}

func TestSamplePDFIsWellFormed(t *testing.T) {
	t.Parallel()
	// Long enough for several pages, with characters PDF strings escape.
	text := strings.Repeat("Rechnung (Kopie) \\ Grüße 100 € — ✓\n", 130)
	pdf := samples.PDF(text)
	if !bytes.HasPrefix(pdf, []byte("%PDF-1.4\n")) || !bytes.HasSuffix(pdf, []byte("%%EOF\n")) {
		t.Fatalf("SamplePDF lacks the header or trailer")
	}
	// Every xref entry must point at the object it names.
	xref := bytes.LastIndex(pdf, []byte("\nxref\n")) + 1
	var start, count int
	if _, err := fmt.Sscanf(string(pdf[xref:]), "xref\n%d %d\n", &start, &count); err != nil {
		t.Fatalf("xref header: %v", err)
	}
	entries := strings.Split(string(pdf[xref:]), "\n")[2 : 2+count]
	for i, e := range entries[1:] {
		var off int
		if _, err := fmt.Sscanf(e, "%010d 00000 n", &off); err != nil {
			t.Fatalf("xref entry %d %q: %v", i+1, e, err)
		}
		if want := fmt.Sprintf("%d 0 obj", i+1); !bytes.HasPrefix(pdf[off:], []byte(want)) {
			t.Fatalf("xref entry %d points at %q", i+1, pdf[off:off+10])
		}
	}
	if got := bytes.Count(pdf, []byte("/Type /Page ")); got != 3 {
		t.Errorf("pages = %d, want 3 for 130 lines", got)
	}
	got := classify.New(classify.DefaultRules()).Classify(context.Background(), pdf, pdfType)
	if got.Category != "invoice" {
		t.Errorf("Classify(SamplePDF) = %+v, want invoice", got)
	}
}

func TestScoring(t *testing.T) {
	t.Parallel()
	rules := classify.Rules{
		MinScore: 2,
		Categories: []classify.Category{
			{Name: "alpha", Keywords: []classify.Keyword{{Term: "alpha", Weight: 1}}},
			{Name: "beta", Keywords: []classify.Keyword{{Term: "beta", Weight: 2}, {Term: "Grüße an   alle", Weight: 5}}},
			{Name: "money", Keywords: []classify.Keyword{{Term: "€", Weight: 1}, {Term: "IBAN", Weight: 1}}},
			{Name: "other"},
		},
	}
	c := classify.New(rules)
	tests := []struct {
		name     string
		text     string
		category string
		conf     float64
	}{
		// Five alphas count as three: 3 / (3 + 2 + 1).
		{"occurrences are capped at three", "alpha alpha alpha alpha alpha beta", "alpha", 0.5},
		{"terms match whole words only", "alphabet alphas betamax", "other", 0.1},
		{"phrases match across whitespace, case and diacritics", "GRÜSSE AN\n\t alle", "beta", 5.0 / 6},
		{"symbols match inside words", "100€ 200€ iban: x", "money", 3.0 / 4},
		{"below min_score is other", "alpha", "other", 0.1},
		{"nothing matches", "lorem ipsum", "other", 0.1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := c.Classify(context.Background(), []byte(tc.text), "text/plain")
			if got.Category != tc.category || math.Abs(got.Confidence-tc.conf) > 1e-9 {
				t.Errorf("Classify(%q) = %s %.4f, want %s %.4f", tc.text, got.Category, got.Confidence, tc.category, tc.conf)
			}
		})
	}
}

func TestDefaultRules(t *testing.T) {
	t.Parallel()
	r := classify.DefaultRules()
	if err := r.Validate(); err != nil {
		t.Fatalf("DefaultRules().Validate() = %v", err)
	}
	var names []string
	for _, c := range r.Categories {
		names = append(names, c.Name)
	}
	want := []string{"invoice", "receipt", "contract", "bank_statement", "payslip", "identity_document", "letter", "other"}
	if !slices.Equal(names, want) {
		t.Errorf("categories = %v, want %v", names, want)
	}
	// A caller changing its copy must not change the next one.
	r.Categories[0].Name = "changed"
	if classify.DefaultRules().Categories[0].Name != "invoice" {
		t.Error("DefaultRules returns shared state")
	}
}

func TestLoadRules(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name    string
		json    string
		wantErr string
	}{
		{"valid", `{"min_score": 2, "categories": [{"name": "a", "keywords": [{"term": "x y", "weight": 1.5}]}, {"name": "other", "keywords": []}]}`, ""},
		{"duplicate name", `{"categories": [{"name": "a"}, {"name": "a"}]}`, "appears twice"},
		{"empty name", `{"categories": [{"name": ""}]}`, "no name"},
		{"name too long", `{"categories": [{"name": "` + strings.Repeat("n", 65) + `"}]}`, "longer than 64"},
		{"zero weight", `{"categories": [{"name": "a", "keywords": [{"term": "x", "weight": 0}]}]}`, "weight > 0"},
		{"negative weight", `{"categories": [{"name": "a", "keywords": [{"term": "x", "weight": -1}]}]}`, "weight > 0"},
		{"empty term", `{"categories": [{"name": "a", "keywords": [{"term": "  ", "weight": 1}]}]}`, "empty term"},
		{"duplicate term", `{"categories": [{"name": "a", "keywords": [{"term": "Grüße", "weight": 1}, {"term": "grusse", "weight": 1}]}]}`, "appears twice"},
		{"negative min_score", `{"min_score": -1, "categories": [{"name": "a"}]}`, "min_score"},
		{"no categories", `{"min_score": 1}`, "no categories"},
		{"unknown field", `{"categories": [{"name": "a", "keyword": []}]}`, "unknown field"},
		{"not JSON", `categories:`, "invalid character"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".json")
			if err := os.WriteFile(path, []byte(tc.json), 0o600); err != nil {
				t.Fatal(err)
			}
			r, err := classify.LoadRules(path)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("LoadRules = %v", err)
				}
				if len(r.Categories) != 2 || r.MinScore != 2 || r.Categories[0].Keywords[0].Weight != 1.5 {
					t.Errorf("LoadRules = %+v", r)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("LoadRules error = %v, want one containing %q", err, tc.wantErr)
			}
			if code := document.ErrorCode(err); code != document.Invalid {
				t.Errorf("error code = %q, want %q", code, document.Invalid)
			}
		})
	}
	if _, err := classify.LoadRules(filepath.Join(dir, "missing.json")); err == nil {
		t.Error("LoadRules of a missing file succeeded")
	}
}

func TestResultClassification(t *testing.T) {
	t.Parallel()
	r := classify.Result{DetectedType: pdfType, Category: "invoice", Confidence: 0.8}
	want := document.Classification{DetectedType: pdfType, Category: "invoice", Confidence: 0.8}
	if got := r.Classification(); got != want {
		t.Errorf("Classification() = %+v, want %+v", got, want)
	}
}

// TestConcurrentClassify runs the whole corpus through one Classifier from
// many goroutines; run with -race.
func TestConcurrentClassify(t *testing.T) {
	t.Parallel()
	c := classify.New(classify.DefaultRules())
	cases := corpus(t)
	want := make([]classify.Result, len(cases))
	for i, tc := range cases {
		want[i] = c.Classify(context.Background(), tc.data, tc.declared)
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Go(func() {
			for i, tc := range cases {
				if got := c.Classify(context.Background(), tc.data, tc.declared); got != want[i] {
					t.Errorf("%s: concurrent Classify = %+v, want %+v", tc.name, got, want[i])
				}
			}
		})
	}
	wg.Wait()
}

func FuzzClassify(f *testing.F) {
	texts := samples.Texts()
	pdf := samples.PDF(texts["invoice"])
	docx := samples.DOCX(texts["contract"])
	for _, seed := range [][]byte{
		pdf, pdf[:len(pdf)/2], pdf[:len(pdf)-40],
		docx, docx[:len(docx)-60], samples.ODT(texts["letter"]),
		cidFontPDF(f), formXObjectPDF(f), imageOnlyPDF(),
		mustPNG(f), []byte(texts["payslip"]), utf16LE(texts["receipt"]),
		[]byte("\x7fELF\x02\x01\x01"), []byte("%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF"),
		[]byte("PK\x03\x04\x14\x00\x08\x00\x08\x00"), {},
	} {
		f.Add(seed)
	}
	c := classify.New(classify.DefaultRules())
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, declared := range []string{"", pdfType} {
			checkValid(t, c.Classify(context.Background(), data, declared), len(data))
		}
	})
}

// checkValid fails t unless r is a well-formed Result for an input of n
// bytes.
func checkValid(t *testing.T, r classify.Result, n int) {
	t.Helper()
	if math.IsNaN(r.Confidence) || r.Confidence < 0 || r.Confidence > 1 {
		t.Errorf("Confidence = %v, want 0..1", r.Confidence)
	}
	if (n == 0) != (r.DetectedType == "") {
		t.Errorf("DetectedType = %q for %d bytes", r.DetectedType, n)
	}
	switch r.Failure {
	case "":
		known := r.Category == classify.CategoryOther
		for _, c := range classify.DefaultRules().Categories {
			known = known || c.Name == r.Category
		}
		if !known || r.Detail != "" {
			t.Errorf("success with category %q and detail %q", r.Category, r.Detail)
		}
	case classify.FailureTypeMismatch, classify.FailureUnreadable, classify.FailureEmpty, classify.FailureTooComplex:
		if r.Category != "" || r.Detail == "" || !utf8Valid(r.Detail) {
			t.Errorf("failure %s with category %q and detail %q", r.Failure, r.Category, r.Detail)
		}
	default:
		t.Errorf("unknown failure %q", r.Failure)
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

func mustPNG(tb testing.TB) []byte {
	tb.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	for i := 0; i < 8; i++ {
		img.Set(i, i, color.RGBA{R: 200, A: 255})
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		tb.Fatalf("png.Encode: %v", err)
	}
	return b.Bytes()
}

func utf16LE(s string) []byte {
	b := []byte{0xff, 0xfe}
	for _, r := range s {
		if r > 0xffff {
			r = '?'
		}
		b = append(b, byte(r), byte(r>>8))
	}
	return b
}

// windows1252 encodes the Latin-1 subset of s in one byte per character.
func windows1252(s string) []byte {
	var b []byte
	for _, r := range s {
		if r > 0xff {
			r = '?'
		}
		b = append(b, byte(r))
	}
	return b
}

// zipWithPadding returns a DOCX whose first entry is a large stored
// thumbnail, so that mimetype, which reads only the first few KiB, sees a
// plain ZIP archive.
func zipWithPadding(tb testing.TB, text string) []byte {
	tb.Helper()
	src, err := zip.NewReader(bytes.NewReader(samples.DOCX(text)), int64(len(samples.DOCX(text))))
	if err != nil {
		tb.Fatal(err)
	}
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	fw, err := w.CreateHeader(&zip.FileHeader{Name: "docProps/thumbnail.jpeg", Method: zip.Store})
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := fw.Write(bytes.Repeat([]byte{0xd8}, 8<<10)); err != nil {
		tb.Fatal(err)
	}
	for _, f := range src.File {
		if err := w.Copy(f); err != nil {
			tb.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

func plainZip(tb testing.TB) []byte {
	tb.Helper()
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	fw, err := w.Create("notes.txt")
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := fw.Write([]byte("Rechnung Rechnung Rechnung")); err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return b.Bytes()
}

// corruptEntry overwrites the middle of entry's compressed data in archive.
func corruptEntry(tb testing.TB, archive []byte, entry string) []byte {
	tb.Helper()
	zr, err := zip.NewReader(bytes.NewReader(archive), int64(len(archive)))
	if err != nil {
		tb.Fatal(err)
	}
	for _, f := range zr.File {
		if f.Name != entry {
			continue
		}
		off, err := f.DataOffset()
		if err != nil {
			tb.Fatal(err)
		}
		out := bytes.Clone(archive)
		mid := int(off) + int(f.CompressedSize64)/2
		copy(out[mid-8:mid+8], bytes.Repeat([]byte{0xff}, 16))
		return out
	}
	tb.Fatalf("no entry %s", entry)
	return nil
}

// pdfFile assembles a PDF from object bodies (object i+1 is objs[i]) with
// a correct xref table.
func pdfFile(objs ...string) []byte {
	var b bytes.Buffer
	b.WriteString("%PDF-1.5\n%\xe2\xe3\xcf\xd3\n")
	offsets := make([]int, len(objs))
	for i, o := range objs {
		offsets[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, off := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objs)+1, xref)
	return b.Bytes()
}

// stream returns a stream object with dict entries extra, Flate-compressed
// when compress is set.
func stream(tb testing.TB, extra string, data []byte, compress bool) string {
	tb.Helper()
	if compress {
		var b bytes.Buffer
		zw := zlib.NewWriter(&b)
		if _, err := zw.Write(data); err != nil {
			tb.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			tb.Fatal(err)
		}
		data = b.Bytes()
		extra += " /Filter /FlateDecode"
	}
	return fmt.Sprintf("<< /Length %d %s >>\nstream\n%s\nendstream", len(data), extra, data)
}

// cidHex encodes s for the Identity-H test font of cidFontPDF, whose
// ToUnicode CMap maps glyph 1..26 to a..z, 0x30..0x39 to digits, 0x40 to
// ü and 0x41 to €.
func cidHex(s string) string {
	var b strings.Builder
	b.WriteByte('<')
	for _, r := range s {
		code := 0x20
		switch {
		case r >= 'a' && r <= 'z':
			code = int(r-'a') + 1
		case r >= '0' && r <= '9':
			code = int(r)
		case r == 'ü':
			code = 0x40
		case r == '€':
			code = 0x41
		}
		fmt.Fprintf(&b, "%04X", code)
	}
	b.WriteByte('>')
	return b.String()
}

// cidFontPDF is a PDF as office software writes it: a subset CID font with
// Identity-H encoding and a ToUnicode CMap, a Flate-compressed content
// stream and kerning inside words with TJ. Its only invoice terms are kerned.
func cidFontPDF(tb testing.TB) []byte {
	tb.Helper()
	cmap := `/CIDInit /ProcSet findresource begin
12 dict begin
begincmap
/CMapName /Adobe-Identity-UCS def
1 begincodespacerange
<0000> <FFFF>
endcodespacerange
2 beginbfrange
<0001> <001A> <0061>
<0030> <0039> <0030>
endbfrange
3 beginbfchar
<0020> <0020>
<0040> <00FC>
<0041> <20AC>
endbfchar
endcmap
CMapName currentdict /CMap defineresource pop
end
end`
	content := fmt.Sprintf("BT /F1 12 Tf 72 720 Td [%s -15 %s -400 %s] TJ 0 -14 Td [%s 12 %s] TJ T* [%s -300 %s] TJ ET",
		cidHex("rech"), cidHex("nung"), cidHex("nr"), cidHex("rechnungs"), cidHex("nummer"), cidHex("bitte"), cidHex("überweisen 100€"))
	return pdfFile(
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
		"<< /Type /Font /Subtype /Type0 /BaseFont /ABCDEF+Test /Encoding /Identity-H /DescendantFonts [6 0 R] /ToUnicode 7 0 R >>",
		stream(tb, "", []byte(content), true),
		"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /ABCDEF+Test /CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> >>",
		stream(tb, "", []byte(cmap), true),
	)
}

// formXObjectPDF shows its text from a form XObject with its own
// resources and a font whose Differences array names the glyphs.
func formXObjectPDF(tb testing.TB) []byte {
	tb.Helper()
	// Codes 0x81..0x84 spell "Buch" only through the Differences glyph
	// names; without them the form scores 3, below min_score.
	form := "BT /F2 10 Tf 14 TL 50 50 Td (\\201\\202\\203\\204ungstag) Tj T* (Wertstellung) Tj ET"
	return pdfFile(
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /XObject << /X1 5 0 R >> >> /Contents 4 0 R >>",
		stream(tb, "", []byte("q 1 0 0 1 0 0 cm /X1 Do Q"), false),
		stream(tb, "/Type /XObject /Subtype /Form /BBox [0 0 612 792] /Resources << /Font << /F2 6 0 R >> >>", []byte(form), true),
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding << /Type /Encoding /BaseEncoding /WinAnsiEncoding /Differences [129 /B /u /c /h] >> >>",
	)
}

// imageOnlyPDF is a page that only draws, as a scan without OCR does.
func imageOnlyPDF() []byte {
	content := "q 0.5 g 72 72 200 200 re f Q"
	return pdfFile(
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
		fmt.Sprintf("<< /Length %d >>\nstream\n%s\nendstream", len(content), content),
	)
}
