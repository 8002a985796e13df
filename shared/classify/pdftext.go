package classify

import (
	"bytes"
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
// becomes operators that nothing interprets.
type psLexer struct {
	b   []byte
	pos int
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
	// resource name, ok false when it is not a form or already visited.
	form(name string) (content []byte, scope contentScope, ok bool)
}

const (
	maxOperands  = 64
	maxFormDepth = 8
	// tjWordGap is the TJ displacement, in thousandths of a text space
	// unit, from which a gap between two strings is taken as a space.
	tjWordGap = 200
)

// defaultFont decodes text shown before any Tf or with an unknown font.
var defaultFont = &fontDecoder{simple: true}

// extractContentText appends the text shown by content to w.
func extractContentText(content []byte, scope contentScope, w *textWriter, depth int) {
	l := &psLexer{b: content}
	var ops []psObj
	font := defaultFont
	lastY, haveY := 0.0, false
	for !w.full() {
		o := l.next()
		if o.kind == psEOF {
			return
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
			if s, ok := lastString(ops); ok {
				w.write(font.decode(s))
			}
		case "'", "\"":
			w.separate('\n')
			if s, ok := lastString(ops); ok {
				w.write(font.decode(s))
			}
		case "TJ":
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
			if depth < maxFormDepth && len(ops) >= 1 && ops[len(ops)-1].kind == psName {
				if c, s, ok := scope.form(string(ops[len(ops)-1].str)); ok {
					w.separate('\n')
					extractContentText(c, s, w, depth+1)
					w.separate('\n')
				}
			}
		}
		ops = ops[:0]
	}
}

func lastString(ops []psObj) ([]byte, bool) {
	if len(ops) == 0 || ops[len(ops)-1].kind != psString {
		return nil, false
	}
	return ops[len(ops)-1].str, true
}

// fontDecoder turns the bytes of a shown string into text.
type fontDecoder struct {
	simple bool         // one byte per code (not a Type0 font)
	table  *[256]string // simple fonts: code → text; nil means WinAnsiEncoding
	cmap   *toUnicode   // the font's ToUnicode CMap, if any
	ucs2   bool         // Type0 font whose codes are UTF-16BE
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
			key := cmapKey{n: uint8(n), code: codeValue(b[i : i+n])}
			if s, ok := f.cmap.m[key]; ok {
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
	if f.table != nil {
		return f.table[c]
	}
	if r := winAnsiRune(c); r != 0 {
		return string(r)
	}
	return ""
}

// cmapKey identifies a character code: its byte length and value.
type cmapKey struct {
	n    uint8
	code uint32
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

// toUnicode is a parsed ToUnicode CMap.
type toUnicode struct {
	spaces []codespace
	m      map[cmapKey]string
}

const maxCMapEntries = 1 << 17

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

// parseToUnicode reads the codespace ranges and bfchar/bfrange mappings of
// a ToUnicode CMap; what it cannot read it leaves out.
func parseToUnicode(data []byte) *toUnicode {
	t := &toUnicode{m: make(map[cmapKey]string)}
	l := &psLexer{b: data}
	var ops []psObj
	for {
		o := l.next()
		if o.kind == psEOF {
			break
		}
		if o.kind != psOp {
			if len(ops) < maxCMapEntries {
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
				if len(src) == 0 || len(src) > 4 || len(t.m) >= maxCMapEntries {
					continue
				}
				var dst string
				switch ops[i+1].kind {
				case psString:
					dst = decodeUTF16(ops[i+1].str, true)
				case psName:
					dst = glyphText(string(ops[i+1].str))
				}
				t.m[cmapKey{n: uint8(len(src)), code: codeValue(src)}] = dst
			}
		case "endbfrange":
			for i := 0; i+2 < len(ops); i += 3 {
				t.addRange(ops[i].str, ops[i+1].str, ops[i+2])
			}
		}
		ops = ops[:0]
	}
	// Try short codes first so that mixed-length codespaces match the
	// shortest code that fits, as the CMap rules require.
	for i := 1; i < len(t.spaces); i++ {
		for j := i; j > 0 && t.spaces[j].n < t.spaces[j-1].n; j-- {
			t.spaces[j], t.spaces[j-1] = t.spaces[j-1], t.spaces[j]
		}
	}
	return t
}

func (t *toUnicode) addRange(lo, hi []byte, dst psObj) {
	if len(lo) == 0 || len(lo) > 4 || len(lo) != len(hi) {
		return
	}
	from, to := codeValue(lo), codeValue(hi)
	if to < from || to-from > 0xFFFF {
		return
	}
	n := uint8(len(lo))
	var units []uint16
	if dst.kind == psString {
		for j := 0; j+1 < len(dst.str); j += 2 {
			units = append(units, uint16(dst.str[j])<<8|uint16(dst.str[j+1]))
		}
		if len(units) == 0 {
			return
		}
	}
	for c := from; c <= to && len(t.m) < maxCMapEntries; c++ {
		off := c - from
		var s string
		switch dst.kind {
		case psString:
			u := append([]uint16(nil), units...)
			u[len(u)-1] += uint16(off)
			s = decodeUTF16(u16bytes(u), true)
		case psArray:
			if int(off) >= len(dst.arr) {
				return
			}
			if dst.arr[off].kind != psString {
				continue
			}
			s = decodeUTF16(dst.arr[off].str, true)
		default:
			return
		}
		t.m[cmapKey{n: n, code: c}] = s
	}
}

func u16bytes(u []uint16) []byte {
	b := make([]byte, 0, 2*len(u))
	for _, v := range u {
		b = append(b, byte(v>>8), byte(v))
	}
	return b
}
