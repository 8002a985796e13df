package classify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/model"
	"github.com/pdfcpu/pdfcpu/pkg/pdfcpu/types"
)

const (
	// maxPDFPages bounds how many pages are read for text.
	maxPDFPages = 1000
	// maxStreamDecode bounds one decoded stream (content, form or CMap), and
	// maxTotalDecode all of them together, against compression bombs.
	maxStreamDecode = 32 << 20
	maxTotalDecode  = 128 << 20
)

// errEncrypted reports a PDF that cannot be opened without a password.
var errEncrypted = errors.New("the PDF is password-protected")

// pdfConfig returns the pdfcpu configuration for reading untrusted input.
// It is built here rather than with model.NewDefaultConfiguration, which
// would create pdfcpu's configuration directory under the user's home.
func pdfConfig() *model.Configuration {
	limits := model.DefaultResourceLimits()
	limits.MaxStreamBytes = 64 << 20
	limits.MaxDecodeBytes = maxStreamDecode
	limits.MaxImageBytes = 64 << 20
	limits.MaxObjectCount = 1 << 20
	limits.MaxObjectStreamCount = 1 << 18
	limits.MaxXRefEntries = 1 << 20
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
// the PDF in data. It returns an error for a PDF pdfcpu cannot read (a
// truncated one, typically, whose cross-reference table is missing); a
// readable PDF without text (a scan) gives "" and no error.
func extractPDF(ctx context.Context, data []byte, limit int) (text string, err error) {
	defer func() {
		// pdfcpu signals some failures by panicking; a damaged file must
		// never take the caller down.
		if r := recover(); r != nil {
			text, err = "", fmt.Errorf("pdf parser failed: %v", r)
		}
	}()
	pctx, err := pdfcpu.ReadWithContext(ctx, bytes.NewReader(data), pdfConfig())
	if err != nil {
		if errors.Is(err, pdfcpu.ErrWrongPassword) {
			return "", errEncrypted
		}
		return "", err
	}
	if err := pctx.EnsurePageCount(); err != nil {
		return "", err
	}
	if pctx.PageCount < 1 {
		return "", errors.New("the PDF has no pages")
	}
	x := &pdfExtractor{
		xref:   pctx.XRefTable,
		fonts:  make(map[int]*fontDecoder),
		budget: maxTotalDecode,
		w:      &textWriter{limit: limit},
	}
	var firstErr error
	for page := 1; page <= min(pctx.PageCount, maxPDFPages) && !x.w.full(); page++ {
		if err := ctx.Err(); err != nil {
			return "", err
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
		content, err := x.contents(d)
		if err != nil && firstErr == nil {
			firstErr = fmt.Errorf("page %d: %w", page, err)
		}
		extractContentText(content, &pdfScope{x: x, res: res, visited: map[int]bool{}}, x.w, 0)
		x.w.separate('\n')
	}
	text = x.w.String()
	if strings.TrimSpace(text) == "" && firstErr != nil {
		return "", firstErr
	}
	return text, nil
}

// pdfExtractor holds what extraction of one document shares across pages.
type pdfExtractor struct {
	xref   *model.XRefTable
	fonts  map[int]*fontDecoder // by object number of the font dictionary
	budget int64                // decoded bytes still allowed
	w      *textWriter
}

// decode returns the decoded bytes of stream o.
func (x *pdfExtractor) decode(o types.Object) ([]byte, types.Dict, error) {
	sd, _, err := x.xref.DereferenceStreamDict(o)
	if err != nil || sd == nil {
		return nil, nil, err
	}
	if x.budget <= 0 {
		return nil, sd.Dict, errors.New("too much compressed data")
	}
	if err := sd.DecodeWithLimit(min(maxStreamDecode, x.budget)); err != nil {
		return nil, sd.Dict, err
	}
	x.budget -= int64(len(sd.Content))
	return sd.Content, sd.Dict, nil
}

// contents returns the concatenated, decoded content streams of page d.
// Streams that fail to decode are skipped; the first failure is returned
// along with whatever could be decoded.
func (x *pdfExtractor) contents(d types.Dict) ([]byte, error) {
	o, found := d.Find("Contents")
	if !found || o == nil {
		return nil, nil
	}
	o, err := x.xref.Dereference(o)
	if err != nil || o == nil {
		return nil, err
	}
	var streams []types.Object
	switch o := o.(type) {
	case types.StreamDict:
		streams = []types.Object{o}
	case types.Array:
		streams = o
	default:
		return nil, errors.New("page content is neither a stream nor an array")
	}
	var out []byte
	var firstErr error
	for _, s := range streams {
		if s == nil {
			continue
		}
		b, _, err := x.decode(s)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		// Content streams of one page may split between tokens only.
		out = append(out, b...)
		out = append(out, '\n')
	}
	return out, firstErr
}

// fontDecoder returns the decoder for font object o, cached by object
// number.
func (x *pdfExtractor) fontDecoder(o types.Object) *fontDecoder {
	objNr := -1
	if ir, ok := o.(types.IndirectRef); ok {
		objNr = ir.ObjectNumber.Value()
		if f, ok := x.fonts[objNr]; ok {
			return f
		}
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
		if b, _, err := x.decode(tu); err == nil && len(b) > 0 {
			if cm := parseToUnicode(b); len(cm.m) > 0 {
				f.cmap = cm
			}
		}
	}
	if f.simple {
		f.table = x.simpleEncoding(d)
	}
	return f
}

// simpleEncoding returns the code table of simple font d when its
// Encoding has a Differences array; nil means plain WinAnsiEncoding, which
// also stands in for StandardEncoding (identical for the letters and
// digits that matter here).
func (x *pdfExtractor) simpleEncoding(d types.Dict) *[256]string {
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
	var table [256]string
	for i := range table {
		if r := winAnsiRune(byte(i)); r != 0 {
			table[i] = string(r)
		}
	}
	code := -1
	for _, e := range diffs {
		switch v := e.(type) {
		case types.Integer:
			code = v.Value()
		case types.Float:
			code = int(v.Value())
		case types.Name:
			if code >= 0 && code < len(table) {
				table[code] = glyphText(v.Value())
			}
			code++
		}
	}
	return &table
}

// pdfScope resolves resource names for one content stream.
type pdfScope struct {
	x       *pdfExtractor
	res     types.Dict
	visited map[int]bool // form XObjects on the current path, by object number
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
	o := s.resource("Font", name)
	if o == nil {
		return nil
	}
	return s.x.fontDecoder(o)
}

func (s *pdfScope) form(name string) ([]byte, contentScope, bool) {
	o := s.resource("XObject", name)
	ir, ok := o.(types.IndirectRef)
	if !ok || s.visited[ir.ObjectNumber.Value()] {
		return nil, nil, false
	}
	sd, _, err := s.x.xref.DereferenceStreamDict(ir)
	if err != nil || sd == nil {
		return nil, nil, false
	}
	if st := sd.Dict.Subtype(); st == nil || *st != "Form" {
		return nil, nil, false
	}
	content, dict, err := s.x.decode(ir)
	if err != nil {
		return nil, nil, false
	}
	res := s.res
	if r, err := s.x.xref.DereferenceDict(dict["Resources"]); err == nil && r != nil {
		res = r
	}
	visited := make(map[int]bool, len(s.visited)+1)
	for k := range s.visited {
		visited[k] = true
	}
	visited[ir.ObjectNumber.Value()] = true
	return content, &pdfScope{x: s.x, res: res, visited: visited}, true
}
