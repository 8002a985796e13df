package classify

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/pdfcpu/pdfcpu/pkg/filter"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"
)

// maxPDFPages bounds how many pages are read for text.
const maxPDFPages = 1000

// errEncrypted reports a PDF that cannot be opened without a password.
var errEncrypted = errors.New("the PDF is password-protected")

// pdfConfig returns the pdfcpu configuration for reading untrusted input.
// It is built here rather than with model.NewDefaultConfiguration, which
// would create pdfcpu's configuration directory under the user's home.
func pdfConfig() *model.Configuration {
	limits := model.DefaultResourceLimits()
	limits.MaxStreamBytes = 64 << 20
	// pdfcpu decodes cross-reference and object streams itself, outside
	// the extractor's decode; this bounds each of them (chargeObjectStreams
	// charges the object streams to the budget).
	limits.MaxDecodeBytes = maxObjectStreamDecode
	limits.MaxImageBytes = 64 << 20
	// pdfcpu reads the structure of the document (cross-reference tables
	// and streams, the index at the start of every object stream) before
	// the budget sees anything; these bound it. Writers pack some hundred
	// objects in an object stream, a few KiB of index, and an 8 MiB file
	// holds well under 262,144 objects.
	limits.MaxObjectCount = 1 << 18
	limits.MaxObjectStreamCount = 1 << 14
	limits.MaxObjectStreamFirst = 256 << 10
	limits.MaxXRefEntries = 1 << 18
	return &model.Configuration{
		Reader15:                  true,
		ValidationMode:            model.ValidationRelaxed,
		UnsupportedResourcePolicy: model.UnsupportedResourceSkip,
		Eol:                       types.EolLF,
		Cmd:                       model.EXTRACTCONTENT,
		Offline:                   true,
		Limits:                    limits,
	}
}

// extractPDF returns up to limit bytes of the text shown on the pages of
// the PDF in data, charging the work to bud. It returns an error for a PDF
// pdfcpu cannot read (a truncated one, typically, whose cross-reference
// table is missing) and bud's error (errTooComplex) when bud runs out; a
// readable PDF without text (a scan) gives "" and no error.
func extractPDF(data []byte, limit int, bud *budget) (text string, err error) {
	defer func() {
		// pdfcpu signals some failures by panicking; a damaged file must
		// never take the caller down.
		if r := recover(); r != nil {
			text, err = "", fmt.Errorf("pdf parser failed: %v", r)
		}
	}()
	if err := checkPDFStructure(data, bud); err != nil {
		return "", err
	}
	pctx, err := pdfcpu.ReadWithContext(bud.ctx, bytes.NewReader(data), pdfConfig())
	if err != nil {
		switch {
		case errors.Is(err, pdfcpu.ErrWrongPassword):
			return "", errEncrypted
		case errors.Is(err, filter.ErrDecodeLimitExceeded):
			return "", &budgetError{msg: fmt.Sprintf("%s: a stream of its structure decompresses to more than %d bytes", errTooComplex, maxStreamDecode)}
		}
		return "", err
	}
	if err := chargeObjectStreams(pctx, bud); err != nil {
		return "", err
	}
	if err := pctx.EnsurePageCount(); err != nil {
		return "", err
	}
	if pctx.PageCount < 1 {
		return "", errors.New("the PDF has no pages")
	}
	x := &pdfExtractor{
		xref:     pctx.XRefTable,
		fonts:    make(map[int]*fontDecoder),
		cmaps:    make(map[int]*toUnicode),
		textless: make(map[int]bool),
		bud:      bud,
		w:        &textWriter{limit: limit},
	}
	var firstErr error
	for page := 1; page <= min(pctx.PageCount, maxPDFPages) && !x.w.full(); page++ {
		if !bud.ok() {
			return "", bud.err
		}
		d, _, attrs, err := x.xref.PageDict(page, false)
		if err != nil || d == nil {
			if page == 1 {
				return "", fmt.Errorf("page 1: %w", errors.Join(err, errors.New("page not found")))
			}
			// A /Count larger than the page tree; keep what was read.
			break
		}
		var res types.Dict
		if attrs != nil {
			res = attrs.Resources
		}
		streams, err := x.contents(d)
		pc := &pageContent{x: x, streams: streams, err: err}
		extractContentText(&psLexer{bud: bud, more: pc.next}, x.newScope(res, nil), x.w, bud, 0)
		if pc.err != nil && firstErr == nil {
			firstErr = fmt.Errorf("page %d: %w", page, pc.err)
		}
		x.w.separate('\n')
	}
	if bud.err != nil {
		return "", bud.err
	}
	text = x.w.String()
	if strings.TrimSpace(text) == "" && firstErr != nil {
		return "", firstErr
	}
	return text, nil
}

// pdfSyntaxBytes returns how many bytes of the PDF in data are object
// syntax, outside the data of its streams, giving up once they pass limit.
// Strings and comments are skipped as the parser skips them, so that a
// "stream" keyword inside one does not hide the syntax after it.
func pdfSyntaxBytes(data []byte, limit int) int {
	isDelim := func(c byte) bool { return isPSSpace(c) || isPSDelim(c) }
	syntax := 0
	for i := 0; i < len(data) && syntax <= limit; {
		start, c := i, data[i]
		switch {
		case c == '%':
			for i < len(data) && data[i] != '\n' && data[i] != '\r' {
				i++
			}
		case c == '(':
			i = skipLiteralString(data, i+1)
		case c == '<' && (i+1 >= len(data) || data[i+1] != '<'):
			if j := bytes.IndexByte(data[i:], '>'); j >= 0 {
				i += j + 1
			} else {
				i = len(data)
			}
		case !isDelim(c):
			for i < len(data) && !isDelim(data[i]) {
				i++
			}
			if string(data[start:i]) == "stream" {
				// The data runs to the endstream keyword (or the end of a
				// truncated file); pdfcpu copies it but does not parse it.
				syntax += i - start
				if j := bytes.Index(data[i:], []byte("endstream")); j >= 0 {
					i += j
				} else {
					i = len(data)
				}
				continue
			}
		default:
			i++
		}
		syntax += i - start
	}
	return syntax
}

// checkPDFStructure fails a PDF whose structure alone would cost too much
// to read. pdfcpu parses every object of a file into memory while reading
// it, before the budget sees anything: some thirty bytes of heap for each
// byte of object syntax and several hundred for each object, so that a
// file of 8 MiB of small objects, or of one long array, costs hundreds of
// MiB. Counting first lets such a file fail in a few milliseconds. Object
// streams are read lazily and charged by chargeObjectStreams.
func checkPDFStructure(data []byte, bud *budget) error {
	if !bud.ok() {
		return bud.err
	}
	// Every object pdfcpu parses is written "n g obj ... endobj": two
	// matches each, wherever the object hides.
	if n := bytes.Count(data, []byte("obj")); n > 2*maxPDFObjects {
		bud.exceed("PDF objects", maxPDFObjects)
		return bud.err
	}
	if pdfSyntaxBytes(data, maxPDFSyntaxBytes) > maxPDFSyntaxBytes {
		bud.exceed("bytes of PDF object syntax", maxPDFSyntaxBytes)
		return bud.err
	}
	return nil
}

// skipLiteralString returns the index after the literal string whose
// opening parenthesis precedes data[i].
func skipLiteralString(data []byte, i int) int {
	for depth := 1; i < len(data); i++ {
		switch data[i] {
		case '\\':
			i++
		case '(':
			depth++
		case ')':
			if depth--; depth == 0 {
				return i + 1
			}
		}
	}
	return len(data)
}

// chargeObjectStreams charges the object streams of the document to bud.
// pdfcpu reads the objects packed in one lazily: the first time one of
// them is needed it decodes the whole stream, and it keeps the decoded
// bytes for the rest of the document, all outside pdfExtractor.decode.
// Decoding each once here, into a copy dropped at once, charges what
// pdfcpu may decode and keep: the bytes as decompressed data and as
// object-stream bytes, the allowance for what stays in memory.
func chargeObjectStreams(pctx *model.Context, bud *budget) error {
	for _, objNr := range slices.Sorted(maps.Keys(pctx.Read.ObjectStreams)) {
		entry, ok := pctx.Table[objNr]
		if !ok || entry == nil {
			continue
		}
		osd, ok := entry.Object.(types.ObjectStreamDict)
		if !ok {
			continue
		}
		if !bud.ok() {
			return bud.err
		}
		sd := osd.StreamDict
		sd.Content = nil
		limit := min(maxObjectStreamDecode, bud.decoded)
		n := limit + 1
		if limit > 0 && sd.DecodeWithLimit(limit) == nil {
			n = int64(len(sd.Content))
		}
		// A stream that fails to decode fails when pdfcpu needs it, too;
		// until then it may have cost up to the limit.
		if !bud.decode(n) || !bud.objectStream(n) {
			return bud.err
		}
	}
	return bud.err
}

// pdfExtractor holds what extraction of one document shares across pages.
type pdfExtractor struct {
	xref     *model.XRefTable
	fonts    map[int]*fontDecoder // by object number of the font dictionary
	cmaps    map[int]*toUnicode   // by object number of the ToUnicode stream; nil when unreadable
	textless map[int]bool         // form XObjects that show no text, by object number
	bud      *budget
	w        *textWriter
}

// decode returns the decoded bytes of stream o, charging them to the
// budget. A stream that decodes to more than maxStreamDecode bytes is an
// error (its cost is charged all the same); running out of budget is
// x.bud.err.
func (x *pdfExtractor) decode(o types.Object) ([]byte, types.Dict, error) {
	if !x.bud.ok() {
		return nil, nil, x.bud.err
	}
	sd, _, err := x.xref.DereferenceStreamDict(o)
	if err != nil || sd == nil {
		return nil, nil, err
	}
	if x.bud.decoded <= 0 {
		// pdfcpu reads a limit of 0 as its default of 512 MiB.
		x.bud.decode(1)
		return nil, sd.Dict, x.bud.err
	}
	limit := min(maxStreamDecode, x.bud.decoded)
	if err := sd.DecodeWithLimit(limit); err != nil {
		// The filters ran until the limit or the damage: charge the worst.
		cost := int64(len(sd.Raw))
		if errors.Is(err, filter.ErrDecodeLimitExceeded) {
			cost = limit + 1
		}
		if !x.bud.decode(cost) {
			return nil, sd.Dict, x.bud.err
		}
		return nil, sd.Dict, err
	}
	if !x.bud.decode(int64(len(sd.Content))) {
		return nil, sd.Dict, x.bud.err
	}
	return sd.Content, sd.Dict, nil
}

// contents returns the content streams of page d.
func (x *pdfExtractor) contents(d types.Dict) ([]types.Object, error) {
	o, found := d.Find("Contents")
	if !found || o == nil {
		return nil, nil
	}
	o, err := x.xref.Dereference(o)
	if err != nil || o == nil {
		return nil, err
	}
	switch o := o.(type) {
	case types.StreamDict:
		return []types.Object{o}, nil
	case types.Array:
		return o, nil
	}
	return nil, errors.New("page content is neither a stream nor an array")
}

// pageContent hands the content streams of a page to the lexer one at a
// time, decoding each when the lexer reaches it: only one decoded stream
// is held at once, however many a page has. Streams that fail to decode
// are skipped; err is the first failure.
type pageContent struct {
	x       *pdfExtractor
	streams []types.Object
	err     error
}

// next returns the next decoded stream; ok is false at the end or when the
// budget ran out.
func (p *pageContent) next() (b []byte, ok bool) {
	for len(p.streams) > 0 {
		s := p.streams[0]
		p.streams = p.streams[1:]
		if s == nil {
			continue
		}
		b, _, err := p.x.decode(s)
		if err != nil {
			if p.err == nil {
				p.err = err
			}
			if p.x.bud.err != nil {
				return nil, false
			}
			continue
		}
		return b, true
	}
	return nil, false
}

// fontDecoder returns the decoder for font object o, cached by object
// number; nil when the budget ran out.
func (x *pdfExtractor) fontDecoder(o types.Object) *fontDecoder {
	objNr := -1
	if ir, ok := o.(types.IndirectRef); ok {
		objNr = ir.ObjectNumber.Value()
		if f, ok := x.fonts[objNr]; ok {
			return f
		}
	}
	if !x.bud.font() {
		return nil
	}
	f := x.readFont(o)
	if objNr >= 0 {
		x.fonts[objNr] = f
	}
	return f
}

func (x *pdfExtractor) readFont(o types.Object) *fontDecoder {
	d, err := x.xref.DereferenceDict(o)
	if err != nil || d == nil {
		return nil
	}
	f := &fontDecoder{simple: true}
	if st := d.Subtype(); st != nil && *st == "Type0" {
		f.simple = false
		if enc := d.NameEntry("Encoding"); enc != nil && (strings.Contains(*enc, "UCS2") || strings.Contains(*enc, "UTF16")) {
			f.ucs2 = true
		}
	}
	if tu, found := d.Find("ToUnicode"); found && tu != nil {
		f.cmap = x.toUnicode(tu)
	}
	if f.simple {
		f.diffs = x.simpleEncoding(d)
	}
	return f
}

// toUnicode returns the parsed ToUnicode CMap stream o, or nil. A CMap is
// parsed once per document, however many fonts share it: producers often
// give every font of a document the same identity CMap.
func (x *pdfExtractor) toUnicode(o types.Object) *toUnicode {
	objNr := -1
	if ir, ok := o.(types.IndirectRef); ok {
		objNr = ir.ObjectNumber.Value()
		if cm, ok := x.cmaps[objNr]; ok {
			return cm
		}
	}
	var cm *toUnicode
	if b, _, err := x.decode(o); err == nil && len(b) > 0 {
		if cm = parseToUnicode(b, x.bud); cm != nil && len(cm.defs) == 0 {
			cm = nil
		}
	}
	if objNr >= 0 {
		x.cmaps[objNr] = cm
	}
	return cm
}

// simpleEncoding returns the glyphs a Differences array in the Encoding of
// simple font d names, by code, charging each to the budget; nil means
// plain WinAnsiEncoding, which also stands in for StandardEncoding
// (identical for the letters and digits that matter here).
func (x *pdfExtractor) simpleEncoding(d types.Dict) map[byte]string {
	o, found := d.Find("Encoding")
	if !found || o == nil {
		return nil
	}
	ed, err := x.xref.DereferenceDict(o)
	if err != nil || ed == nil {
		return nil
	}
	diffs, err := x.xref.DereferenceArray(ed["Differences"])
	if err != nil || len(diffs) == 0 {
		return nil
	}
	table := make(map[byte]string)
	code := -1
	for _, e := range diffs {
		switch v := e.(type) {
		case types.Integer:
			code = v.Value()
		case types.Float:
			code = int(v.Value())
		case types.Name:
			if code >= 0 && code <= 0xFF {
				if !x.bud.mapping(1) {
					return nil
				}
				table[byte(code)] = glyphText(v.Value())
			}
			code++
		}
	}
	return table
}

// pdfScope resolves resource names for one content stream.
type pdfScope struct {
	x       *pdfExtractor
	res     types.Dict
	visited map[int]bool            // form XObjects on the current path, by object number
	fonts   map[string]*fontDecoder // by resource name: a font dictionary given directly, not by reference, is read once
}

// newScope returns the scope of a content stream with resources res, run
// from the forms visited.
func (x *pdfExtractor) newScope(res types.Dict, visited map[int]bool) *pdfScope {
	if visited == nil {
		visited = map[int]bool{}
	}
	return &pdfScope{x: x, res: res, visited: visited}
}

func (s *pdfScope) resource(category, name string) types.Object {
	if s.res == nil {
		return nil
	}
	d, err := s.x.xref.DereferenceDict(s.res[category])
	if err != nil || d == nil {
		return nil
	}
	return d[name]
}

func (s *pdfScope) font(name string) *fontDecoder {
	if f, ok := s.fonts[name]; ok {
		return f
	}
	var f *fontDecoder
	if o := s.resource("Font", name); o != nil {
		f = s.x.fontDecoder(o)
	}
	if s.fonts == nil {
		s.fonts = make(map[string]*fontDecoder)
	}
	s.fonts[name] = f
	return f
}

func (s *pdfScope) form(name string, depth int) ([]byte, contentScope, func(bool), bool) {
	o := s.resource("XObject", name)
	ir, ok := o.(types.IndirectRef)
	if !ok {
		return nil, nil, nil, false
	}
	objNr := ir.ObjectNumber.Value()
	if s.visited[objNr] {
		return nil, nil, nil, false
	}
	sd, _, err := s.x.xref.DereferenceStreamDict(ir)
	if err != nil || sd == nil {
		return nil, nil, nil, false
	}
	if st := sd.Dict.Subtype(); st == nil || *st != "Form" {
		return nil, nil, nil, false
	}
	// Every run of a form is charged, even one known to show nothing, so
	// that a page drawing a form 200,000 times ends quickly.
	if !s.x.bud.form(depth) {
		return nil, nil, nil, false
	}
	if s.x.textless[objNr] {
		return nil, nil, nil, true
	}
	content, dict, err := s.x.decode(ir)
	if err != nil {
		return nil, nil, nil, false
	}
	res := s.res
	if r, err := s.x.xref.DereferenceDict(dict["Resources"]); err == nil && r != nil {
		res = r
	}
	visited := make(map[int]bool, len(s.visited)+1)
	for k := range s.visited {
		visited[k] = true
	}
	visited[objNr] = true
	done := func(mayShowText bool) {
		if !mayShowText {
			s.x.textless[objNr] = true
		}
	}
	return content, s.x.newScope(res, visited), done, true
}
