package classify

import (
	"bytes"
	"cmp"
	"container/heap"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file reads text out of decoded PDF content streams and ToUnicode
// CMaps. pdfcpu parses the document structure and decodes the streams; it
// offers no text extraction, so the few operators that show text are
// interpreted here.

// psKind is the kind of a token of PDF content-stream (or CMap) syntax.
type psKind uint8

const (
	psEOF psKind = iota
	psNumber
	psString
	psName
	psOp
	psArray
	psArrayEnd
	psDictStart
	psDictEnd
)

// psObj is one token or, for psArray, one array of tokens.
type psObj struct {
	kind psKind
	num  float64
	str  []byte // string bytes, name or operator
	arr  []psObj
}

// psLexer tokenises PDF content-stream syntax. It never fails: garbage
// becomes operators that nothing interprets. Each token is charged to bud;
// when bud runs out the lexer reports the end of the input.
type psLexer struct {
	b   []byte
	pos int
	bud *budget
	// more, when set, returns the input that follows b, ok false at the
	// end: the content streams of a page, which may split between tokens
	// only, are lexed one after the other as one.
	more func() (b []byte, ok bool)
}

const (
	maxArrayDepth = 8
	maxArrayLen   = 1 << 16
)

func isPSSpace(c byte) bool {
	return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\f' || c == 0
}

func isPSDelim(c byte) bool {
	switch c {
	case '(', ')', '<', '>', '[', ']', '{', '}', '/', '%':
		return true
	}
	return false
}

func (l *psLexer) next() psObj {
	return l.nextDepth(0)
}

func (l *psLexer) nextDepth(depth int) psObj {
	for {
		l.skipSpace()
		if l.pos >= len(l.b) {
			if l.nextInput() {
				continue
			}
			return psObj{kind: psEOF}
		}
		if !l.bud.token() {
			l.pos, l.more = len(l.b), nil
			return psObj{kind: psEOF}
		}
		c := l.b[l.pos]
		switch c {
		case '(':
			l.pos++
			return psObj{kind: psString, str: l.literalString()}
		case '<':
			if l.pos+1 < len(l.b) && l.b[l.pos+1] == '<' {
				l.pos += 2
				return psObj{kind: psDictStart}
			}
			l.pos++
			return psObj{kind: psString, str: l.hexString()}
		case '>':
			if l.pos+1 < len(l.b) && l.b[l.pos+1] == '>' {
				l.pos += 2
				return psObj{kind: psDictEnd}
			}
			l.pos++
			continue
		case '[':
			l.pos++
			return l.array(depth)
		case ']':
			l.pos++
			return psObj{kind: psArrayEnd}
		case '{', '}', ')':
			l.pos++
			continue
		case '/':
			l.pos++
			return psObj{kind: psName, str: l.name()}
		}
		start := l.pos
		for l.pos < len(l.b) && !isPSSpace(l.b[l.pos]) && !isPSDelim(l.b[l.pos]) {
			l.pos++
		}
		word := l.b[start:l.pos]
		if c == '+' || c == '-' || c == '.' || (c >= '0' && c <= '9') {
			if f, err := strconv.ParseFloat(string(word), 64); err == nil {
				return psObj{kind: psNumber, num: f}
			}
		}
		return psObj{kind: psOp, str: word}
	}
}

// nextInput moves on to the input l.more returns; false at the end.
func (l *psLexer) nextInput() bool {
	if l.more == nil {
		return false
	}
	b, ok := l.more()
	if !ok {
		l.more = nil
		return false
	}
	l.b, l.pos = b, 0
	return true
}

func (l *psLexer) skipSpace() {
	for l.pos < len(l.b) {
		c := l.b[l.pos]
		if c == '%' {
			for l.pos < len(l.b) && l.b[l.pos] != '\n' && l.b[l.pos] != '\r' {
				l.pos++
			}
			continue
		}
		if !isPSSpace(c) {
			return
		}
		l.pos++
	}
}

func (l *psLexer) array(depth int) psObj {
	arr := psObj{kind: psArray}
	for {
		o := l.nextDepth(depth + 1)
		switch o.kind {
		case psEOF, psArrayEnd:
			return arr
		case psArray:
			if depth >= maxArrayDepth {
				continue
			}
		}
		if len(arr.arr) < maxArrayLen {
			arr.arr = append(arr.arr, o)
		}
	}
}

func (l *psLexer) literalString() []byte {
	var out []byte
	depth := 1
	for l.pos < len(l.b) {
		c := l.b[l.pos]
		l.pos++
		switch c {
		case '(':
			depth++
		case ')':
			depth--
			if depth == 0 {
				return out
			}
		case '\\':
			if l.pos >= len(l.b) {
				return out
			}
			e := l.b[l.pos]
			l.pos++
			switch e {
			case 'n':
				c = '\n'
			case 'r':
				c = '\r'
			case 't':
				c = '\t'
			case 'b':
				c = '\b'
			case 'f':
				c = '\f'
			case '\r':
				// A backslash at the end of a line continues the string.
				if l.pos < len(l.b) && l.b[l.pos] == '\n' {
					l.pos++
				}
				continue
			case '\n':
				continue
			default:
				if e >= '0' && e <= '7' {
					v := int(e - '0')
					for i := 0; i < 2 && l.pos < len(l.b) && l.b[l.pos] >= '0' && l.b[l.pos] <= '7'; i++ {
						v = v*8 + int(l.b[l.pos]-'0')
						l.pos++
					}
					c = byte(v)
				} else {
					c = e
				}
			}
		}
		out = append(out, c)
	}
	return out
}

func hexVal(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

func (l *psLexer) hexString() []byte {
	var out []byte
	var hi byte
	odd := false
	for l.pos < len(l.b) {
		c := l.b[l.pos]
		l.pos++
		if c == '>' {
			break
		}
		v, ok := hexVal(c)
		if !ok {
			continue
		}
		if odd {
			out = append(out, hi<<4|v)
		} else {
			hi = v
		}
		odd = !odd
	}
	if odd {
		out = append(out, hi<<4)
	}
	return out
}

func (l *psLexer) name() []byte {
	var out []byte
	for l.pos < len(l.b) && !isPSSpace(l.b[l.pos]) && !isPSDelim(l.b[l.pos]) {
		c := l.b[l.pos]
		l.pos++
		if c == '#' && l.pos+1 < len(l.b) {
			h, ok1 := hexVal(l.b[l.pos])
			lo, ok2 := hexVal(l.b[l.pos+1])
			if ok1 && ok2 {
				c = h<<4 | lo
				l.pos += 2
			}
		}
		out = append(out, c)
	}
	return out
}

// skipInlineImage moves past the binary data of an inline image, which
// follows the ID operator and ends with whitespace, "EI" and whitespace.
func (l *psLexer) skipInlineImage() {
	l.pos++ // the single whitespace after ID
	for l.pos < len(l.b) {
		i := bytes.Index(l.b[l.pos:], []byte("EI"))
		if i < 0 {
			l.pos = len(l.b)
			return
		}
		at := l.pos + i
		l.pos = at + 2
		if at > 0 && isPSSpace(l.b[at-1]) && (l.pos >= len(l.b) || isPSSpace(l.b[l.pos])) {
			return
		}
	}
}

// textWriter collects extracted text up to a byte limit, turning the
// positioning operators into single spaces and newlines.
type textWriter struct {
	sb      strings.Builder
	limit   int
	pending byte // ' ' or '\n' to write before the next text, or 0
}

func (w *textWriter) full() bool { return w.sb.Len() >= w.limit }

func (w *textWriter) separate(c byte) {
	if w.sb.Len() == 0 || w.pending == '\n' {
		return
	}
	w.pending = c
}

func (w *textWriter) write(s string) {
	if s == "" || w.full() {
		return
	}
	if w.pending != 0 {
		w.sb.WriteByte(w.pending)
		w.pending = 0
	}
	for _, r := range s {
		if w.full() {
			return
		}
		switch {
		case r == utf8.RuneError || r == 0xFEFF:
			continue
		case r == '\n' || r == '\r' || r == '\t':
			w.sb.WriteByte(' ')
		case unicode.IsControl(r):
			continue
		default:
			w.sb.WriteRune(r)
		}
	}
}

func (w *textWriter) String() string { return w.sb.String() }

// contentScope resolves the resource names a content stream refers to.
type contentScope interface {
	// font returns the decoder of the font resource name; nil when unknown.
	font(name string) *fontDecoder
	// form returns the decoded content and scope of the form XObject
	// resource name, run at nesting depth depth; ok is false when it is not
	// a form or is on the current path already, and scope nil when it is
	// known to show no text. done is to be called once the form has run,
	// with what extractContentText reported.
	form(name string, depth int) (content []byte, scope contentScope, done func(mayShowText bool), ok bool)
}

const (
	maxOperands = 64
	// tjWordGap is the TJ displacement, in thousandths of a text space
	// unit, from which a gap between two strings is taken as a space.
	tjWordGap = 200
)

// defaultFont decodes text shown before any Tf or with an unknown font.
var defaultFont = &fontDecoder{simple: true}

// extractContentText appends the text shown by the content l lexes, at
// form nesting depth depth (0 for a page), to w; l charges the tokens to
// bud. It reports whether the content has an operator that shows text or
// runs an XObject: a form without one (a logo drawn with paths, say) shows
// nothing however often it is run, so it need not be decoded and lexed
// again.
func extractContentText(l *psLexer, scope contentScope, w *textWriter, bud *budget, depth int) (mayShowText bool) {
	var ops []psObj
	font := defaultFont
	lastY, haveY := 0.0, false
	for !w.full() {
		o := l.next()
		if o.kind == psEOF {
			return mayShowText
		}
		if o.kind != psOp {
			if len(ops) == maxOperands {
				ops = ops[1:]
			}
			ops = append(ops, o)
			continue
		}
		switch string(o.str) {
		case "Tf":
			if len(ops) >= 2 && ops[len(ops)-2].kind == psName {
				font = defaultFont
				if f := scope.font(string(ops[len(ops)-2].str)); f != nil {
					font = f
				}
			}
		case "Tj":
			mayShowText = true
			if s, ok := lastString(ops); ok {
				w.write(font.decode(s))
			}
		case "'", "\"":
			mayShowText = true
			w.separate('\n')
			if s, ok := lastString(ops); ok {
				w.write(font.decode(s))
			}
		case "TJ":
			mayShowText = true
			if len(ops) > 0 && ops[len(ops)-1].kind == psArray {
				for _, e := range ops[len(ops)-1].arr {
					switch e.kind {
					case psString:
						w.write(font.decode(e.str))
					case psNumber:
						if e.num < -tjWordGap {
							w.separate(' ')
						}
					}
				}
			}
		case "Td", "TD":
			if len(ops) >= 2 && ops[len(ops)-1].kind == psNumber && ops[len(ops)-1].num != 0 {
				w.separate('\n')
			} else {
				w.separate(' ')
			}
		case "Tm":
			y := 0.0
			if len(ops) >= 1 && ops[len(ops)-1].kind == psNumber {
				y = ops[len(ops)-1].num
			}
			if haveY && y == lastY {
				w.separate(' ')
			} else {
				w.separate('\n')
			}
			lastY, haveY = y, true
		case "T*", "ET":
			w.separate('\n')
		case "ID":
			l.skipInlineImage()
		case "Do":
			mayShowText = true
			if len(ops) >= 1 && ops[len(ops)-1].kind == psName {
				if c, s, done, ok := scope.form(string(ops[len(ops)-1].str), depth+1); ok {
					w.separate('\n')
					if s != nil {
						done(extractContentText(&psLexer{b: c, bud: bud}, s, w, bud, depth+1))
					}
					w.separate('\n')
				}
			}
		}
		ops = ops[:0]
	}
	return mayShowText
}

func lastString(ops []psObj) ([]byte, bool) {
	if len(ops) == 0 || ops[len(ops)-1].kind != psString {
		return nil, false
	}
	return ops[len(ops)-1].str, true
}

// fontDecoder turns the bytes of a shown string into text.
type fontDecoder struct {
	simple bool            // one byte per code (not a Type0 font)
	diffs  map[byte]string // simple fonts: the codes a Differences array names, → text; others are WinAnsiEncoding
	cmap   *toUnicode      // the font's ToUnicode CMap, if any
	ucs2   bool            // Type0 font whose codes are UTF-16BE
}

func (f *fontDecoder) decode(b []byte) string {
	if f.cmap == nil && f.ucs2 {
		return decodeUTF16(b, true)
	}
	if f.cmap == nil && !f.simple {
		// A CID font without ToUnicode (usually Identity-H): its codes are
		// glyph ids, which say nothing about the characters.
		return ""
	}
	var sb strings.Builder
	for i := 0; i < len(b); {
		n := 1
		if f.cmap != nil {
			n = f.cmap.codeLen(b[i:], f.simple)
			if s, ok := f.cmap.lookup(n, codeValue(b[i:i+n])); ok {
				sb.WriteString(s)
				i += n
				continue
			}
		}
		if f.simple {
			sb.WriteString(f.simpleText(b[i]))
		}
		i += n
	}
	return sb.String()
}

func (f *fontDecoder) simpleText(c byte) string {
	if s, ok := f.diffs[c]; ok {
		return s
	}
	if r := winAnsiRune(c); r != 0 {
		return string(r)
	}
	return ""
}

func codeValue(b []byte) uint32 {
	var v uint32
	for _, c := range b {
		v = v<<8 | uint32(c)
	}
	return v
}

// codespace is one codespacerange of a CMap: codes of n bytes whose every
// byte lies between lo and hi.
type codespace struct {
	n      int
	lo, hi [4]byte
}

// cmapDef is one mapping of a ToUnicode CMap, for the codes of n bytes
// from..to. A bfrange with a string destination keeps that string's
// UTF-16BE bytes in dst, the text of code from; the last UTF-16 unit grows
// with the code (ranged). A bfchar, or one element of a bfrange array,
// maps its one code to the text dst.
type cmapDef struct {
	n        uint8
	ranged   bool
	from, to uint32
	dst      string
}

// text returns the text def maps code to.
func (d *cmapDef) text(code uint32) string {
	if !d.ranged {
		return d.dst
	}
	u := []byte(d.dst)
	last := uint16(u[len(u)-2])<<8 | uint16(u[len(u)-1])
	last += uint16(code - d.from)
	u[len(u)-2], u[len(u)-1] = byte(last>>8), byte(last)
	return decodeUTF16(u, true)
}

// cmapSpan is a run of codes of n bytes, from..to, that the definition def
// (an index into toUnicode.defs) maps.
type cmapSpan struct {
	n        uint8
	from, to uint32
	def      int32
}

// toUnicode is a parsed ToUnicode CMap. Its mappings are kept as the
// definitions of the CMap, not expanded to one entry per code: a bfrange
// <0000> <FFFF> costs one definition, not 65,536 map entries.
type toUnicode struct {
	spaces []codespace
	defs   []cmapDef
	spans  []cmapSpan // sorted by n, then code; disjoint
}

// maxCMapOperands bounds the operands kept between two CMap operators; a
// CMap section has at most 100 entries of 2 or 3 operands.
const maxCMapOperands = 1 << 16

// codeLen returns the byte length of the code at the start of b (at least
// 1, at most len(b)).
func (t *toUnicode) codeLen(b []byte, simple bool) int {
	for _, s := range t.spaces {
		if s.n > len(b) {
			continue
		}
		match := true
		for j := 0; j < s.n; j++ {
			if b[j] < s.lo[j] || b[j] > s.hi[j] {
				match = false
				break
			}
		}
		if match {
			return s.n
		}
	}
	n := 2
	if simple {
		n = 1
	}
	if len(t.spaces) > 0 {
		n = t.spaces[0].n
	}
	return min(n, len(b))
}

// lookup returns the text the code of n bytes maps to, ok false when the
// CMap does not map it.
func (t *toUnicode) lookup(n int, code uint32) (text string, ok bool) {
	i := sort.Search(len(t.spans), func(i int) bool {
		s := &t.spans[i]
		return int(s.n) > n || int(s.n) == n && s.to >= code
	})
	if i == len(t.spans) || int(t.spans[i].n) != n || t.spans[i].from > code {
		return "", false
	}
	return t.defs[t.spans[i].def].text(code), true
}

// parseToUnicode reads the codespace ranges and bfchar/bfrange mappings of
// a ToUnicode CMap; what it cannot read it leaves out. Its tokens and
// definitions are charged to bud; when bud runs out it returns nil.
func parseToUnicode(data []byte, bud *budget) *toUnicode {
	t := &toUnicode{}
	l := &psLexer{b: data, bud: bud}
	var ops []psObj
	for {
		o := l.next()
		if o.kind == psEOF {
			break
		}
		if o.kind != psOp {
			if len(ops) < maxCMapOperands {
				ops = append(ops, o)
			}
			continue
		}
		switch string(o.str) {
		case "endcodespacerange":
			for i := 0; i+1 < len(ops); i += 2 {
				lo, hi := ops[i].str, ops[i+1].str
				if len(lo) == 0 || len(lo) > 4 || len(lo) != len(hi) {
					continue
				}
				s := codespace{n: len(lo)}
				copy(s.lo[:], lo)
				copy(s.hi[:], hi)
				t.spaces = append(t.spaces, s)
			}
		case "endbfchar":
			for i := 0; i+1 < len(ops); i += 2 {
				src := ops[i].str
				if len(src) == 0 || len(src) > 4 {
					continue
				}
				var dst string
				switch ops[i+1].kind {
				case psString:
					dst = decodeUTF16(ops[i+1].str, true)
				case psName:
					dst = glyphText(string(ops[i+1].str))
				}
				c := codeValue(src)
				t.add(cmapDef{n: uint8(len(src)), from: c, to: c, dst: dst}, bud)
			}
		case "endbfrange":
			for i := 0; i+2 < len(ops); i += 3 {
				t.addRange(ops[i].str, ops[i+1].str, ops[i+2], bud)
			}
		}
		ops = ops[:0]
	}
	if bud.err != nil {
		return nil
	}
	// Try short codes first so that mixed-length codespaces match the
	// shortest code that fits, as the CMap rules require.
	for i := 1; i < len(t.spaces); i++ {
		for j := i; j > 0 && t.spaces[j].n < t.spaces[j-1].n; j-- {
			t.spaces[j], t.spaces[j-1] = t.spaces[j-1], t.spaces[j]
		}
	}
	t.index()
	return t
}

// add appends def, charging it to bud.
func (t *toUnicode) add(def cmapDef, bud *budget) {
	if bud.mapping(1) {
		t.defs = append(t.defs, def)
	}
}

func (t *toUnicode) addRange(lo, hi []byte, dst psObj, bud *budget) {
	if len(lo) == 0 || len(lo) > 4 || len(lo) != len(hi) {
		return
	}
	from, to := codeValue(lo), codeValue(hi)
	if to < from || to-from > 0xFFFF {
		return
	}
	n := uint8(len(lo))
	switch dst.kind {
	case psString:
		// Whole UTF-16 units only; a trailing odd byte is dropped.
		if units := dst.str[:len(dst.str)&^1]; len(units) > 0 {
			t.add(cmapDef{n: n, ranged: true, from: from, to: to, dst: string(units)}, bud)
		}
	case psArray:
		for off := uint32(0); off <= to-from && int(off) < len(dst.arr) && bud.err == nil; off++ {
			if e := dst.arr[off]; e.kind == psString {
				t.add(cmapDef{n: n, from: from + off, to: from + off, dst: decodeUTF16(e.str, true)}, bud)
			}
		}
	}
}

// index builds t.spans from t.defs. Where definitions overlap, the later
// one wins, as it would if every code were stored in a map in turn: a
// sweep over the codes in order keeps the definitions covering the
// current code in a heap by definition order.
func (t *toUnicode) index() {
	order := make([]int32, len(t.defs))
	for i := range order {
		order[i] = int32(i)
	}
	slices.SortFunc(order, func(a, b int32) int {
		da, db := &t.defs[a], &t.defs[b]
		return cmp.Or(cmp.Compare(da.n, db.n), cmp.Compare(da.from, db.from))
	})
	for start := 0; start < len(order); {
		n := t.defs[order[start]].n
		end := start
		for end < len(order) && t.defs[order[end]].n == n {
			end++
		}
		t.indexWidth(order[start:end])
		start = end
	}
}

// indexWidth appends the spans of the definitions order, all for codes of
// one width, sorted by their first code.
func (t *toUnicode) indexWidth(order []int32) {
	// The codes where the covering definitions change: every start and
	// every end + 1 (in 64 bits, as a 4-byte range may end at 0xFFFFFFFF).
	bounds := make([]uint64, 0, 2*len(order))
	for _, i := range order {
		bounds = append(bounds, uint64(t.defs[i].from), uint64(t.defs[i].to)+1)
	}
	slices.Sort(bounds)
	bounds = slices.Compact(bounds)
	active := &defHeap{}
	next := 0
	for k, at := range bounds[:len(bounds)-1] {
		for next < len(order) && uint64(t.defs[order[next]].from) == at {
			heap.Push(active, order[next])
			next++
		}
		for active.Len() > 0 && uint64(t.defs[(*active)[0]].to) < at {
			heap.Pop(active)
		}
		if active.Len() == 0 {
			continue
		}
		def, from, to := (*active)[0], uint32(at), uint32(bounds[k+1]-1)
		if last := len(t.spans) - 1; last >= 0 && t.spans[last].def == def && t.spans[last].n == t.defs[def].n && uint64(t.spans[last].to)+1 == at {
			t.spans[last].to = to
			continue
		}
		t.spans = append(t.spans, cmapSpan{n: t.defs[def].n, from: from, to: to, def: def})
	}
}

// defHeap is a max-heap of definition indexes: the latest definition on
// top.
type defHeap []int32

func (h defHeap) Len() int           { return len(h) }
func (h defHeap) Less(i, j int) bool { return h[i] > h[j] }
func (h defHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *defHeap) Push(x any)        { *h = append(*h, x.(int32)) }
func (h *defHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
