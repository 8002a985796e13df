package classify

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

const (
	docxMIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
	odtMIME  = "application/vnd.oasis.opendocument.text"

	docxEntry = "word/document.xml"
	odtEntry  = "content.xml"
)

// errEntryMissing reports an archive without the part holding the text.
var errEntryMissing = errors.New("the archive has no document body")

// zipKind says which office format the entry names in a ZIP archive point
// to: docxMIME, odtMIME or "". It looks at the raw bytes, so it works on a
// truncated archive whose central directory is missing.
func zipKind(data []byte) string {
	switch {
	case bytes.Contains(data, []byte("[Content_Types].xml")) && bytes.Contains(data, []byte("word/")):
		return docxMIME
	case bytes.Contains(data, []byte("mimetype"+odtMIME)) || (bytes.Contains(data, []byte(odtMIME)) && bytes.Contains(data, []byte(odtEntry))):
		return odtMIME
	}
	return ""
}

// extractOffice returns up to limit bytes of the text of a DOCX (kind
// docxMIME) or ODT (kind odtMIME) document, charging the work to bud.
func extractOffice(data []byte, kind string, limit int, bud *budget) (string, error) {
	name := docxEntry
	if kind == odtMIME {
		name = odtEntry
	}
	rc, err := openZipEntry(data, name, bud)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	g := &xmlGuard{r: rc, bud: bud}
	w := &textWriter{limit: limit}
	if kind == odtMIME {
		err = odtText(g, w, bud)
	} else {
		err = docxText(g, w, bud)
	}
	if bud.err != nil {
		// Whatever the decoder made of the cut input, the budget ran out.
		return "", bud.err
	}
	if err != nil {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	return w.String(), nil
}

// openZipEntry opens the entry name of the archive in data. When the
// archive has no readable central directory (it was truncated), it falls
// back to the entry's local header, which precedes its data.
func openZipEntry(data []byte, name string, bud *budget) (io.ReadCloser, error) {
	// zip.NewReader holds every central-directory entry at once, a few
	// hundred bytes each: count the entries' signatures first. The count
	// may include signatures inside compressed data, never fewer than the
	// real entries.
	if !bud.archiveEntries(bytes.Count(data, []byte("PK\x01\x02"))) {
		return nil, bud.err
	}
	zr, zerr := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if zerr == nil {
		for _, f := range zr.File {
			if f.Name == name {
				return f.Open()
			}
		}
		return nil, errEntryMissing
	}
	rc, err := localZipEntry(data, name, bud)
	if err != nil {
		if bud.err != nil {
			return nil, bud.err
		}
		return nil, fmt.Errorf("%w (%v)", err, zerr)
	}
	return rc, nil
}

// localZipEntry finds entry name by scanning for local file headers, each
// charged to bud as an archive entry.
func localZipEntry(data []byte, name string, bud *budget) (io.ReadCloser, error) {
	sig := []byte("PK\x03\x04")
	for pos := 0; ; {
		i := bytes.Index(data[pos:], sig)
		if i < 0 {
			return nil, errEntryMissing
		}
		if !bud.archiveEntries(1) {
			return nil, bud.err
		}
		h := pos + i
		pos = h + len(sig)
		if h+30 > len(data) {
			return nil, errEntryMissing
		}
		flags := binary.LittleEndian.Uint16(data[h+6:])
		method := binary.LittleEndian.Uint16(data[h+8:])
		compSize := int(binary.LittleEndian.Uint32(data[h+18:]))
		nameLen := int(binary.LittleEndian.Uint16(data[h+26:]))
		extraLen := int(binary.LittleEndian.Uint16(data[h+28:]))
		start := h + 30 + nameLen + extraLen
		if start > len(data) || string(data[h+30:h+30+nameLen]) != name {
			continue
		}
		sizeKnown := flags&0x8 == 0
		body := data[start:]
		if sizeKnown {
			if compSize > len(body) {
				return nil, errors.New("the archive is truncated inside the document body")
			}
			body = body[:compSize]
		}
		switch method {
		case zip.Store:
			if !sizeKnown {
				return nil, errors.New("the document body has no recorded size")
			}
			return io.NopCloser(bytes.NewReader(body)), nil
		case zip.Deflate:
			return &strictFlate{rc: flate.NewReader(bytes.NewReader(body))}, nil
		default:
			return nil, fmt.Errorf("unsupported compression method %d", method)
		}
	}
}

// strictFlate reports a deflate stream that ends early as an error: for an
// entry read through its local header, running out of input means the
// archive was cut inside the entry.
type strictFlate struct{ rc io.ReadCloser }

func (s *strictFlate) Read(p []byte) (int, error) {
	n, err := s.rc.Read(p)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = errors.New("the archive is truncated inside the document body")
	}
	return n, err
}

func (s *strictFlate) Close() error { return s.rc.Close() }

// xmlGuard passes an XML part to the decoder, charging its bytes to bud
// as decompressed data, and stops it (with bud's error) before input that
// would make encoding/xml hold much memory: elements nested deeper than
// maxXMLDepth, one tag longer than maxXMLTagBytes, open tags longer than
// maxXMLOpenTagBytes together, or text, a comment or CDATA longer than
// maxXMLRunBytes. The decoder allocates per token, so a limit on tokens
// alone would come too late: a single start tag of 8 MiB of namespace
// declarations, or nested a million deep, costs hundreds of MiB first.
//
// It follows the markup only as far as the limits need: it does not parse
// comments or CDATA sections, so a '<' or '>' inside one may shift a count
// by a tag, which only a document far beyond the limits would notice.
type xmlGuard struct {
	r   io.Reader
	bud *budget

	state    uint8 // xmlText, xmlTagStart, xmlTag, xmlOther
	quote    byte  // the quote of the attribute value the tag is in, or 0
	closing  bool  // the tag is an end tag (</a>)
	lastByte byte  // the tag's byte before the current one ('/' for <a/>)
	run      int   // bytes of the current text run, tag or declaration
	open     []int // byte lengths of the open elements' start tags
	openSum  int
}

const (
	xmlText     = iota // between tags
	xmlTagStart        // just after '<'
	xmlTag             // in a start or end tag
	xmlOther           // in a comment, CDATA, processing instruction or declaration
)

func (g *xmlGuard) Read(p []byte) (int, error) {
	if g.bud.err != nil {
		return 0, g.bud.err
	}
	n, err := g.r.Read(p)
	if !g.bud.decode(int64(n)) || !g.scan(p[:n]) {
		return 0, g.bud.err
	}
	return n, err
}

// scan follows the markup in b; false means a limit was exceeded.
func (g *xmlGuard) scan(b []byte) bool {
	for _, c := range b {
		g.run++
		switch g.state {
		case xmlText:
			if c == '<' {
				g.state, g.run = xmlTagStart, 1
			} else if g.run > maxXMLRunBytes {
				return g.bud.exceed("bytes of text in one XML run", maxXMLRunBytes)
			}
			continue
		case xmlTagStart:
			switch c {
			case '!', '?':
				g.state = xmlOther
			case '/':
				g.state, g.closing, g.quote = xmlTag, true, 0
			default:
				g.state, g.closing, g.quote = xmlTag, false, 0
			}
		case xmlOther:
			if c == '>' {
				g.state, g.run = xmlText, 0
			} else if g.run > maxXMLRunBytes {
				return g.bud.exceed("bytes in one XML comment or section", maxXMLRunBytes)
			}
			continue
		case xmlTag:
			switch {
			case g.quote != 0:
				if c == g.quote {
					g.quote = 0
				}
			case c == '"' || c == '\'':
				g.quote = c
			case c == '>':
				if !g.endTag() {
					return false
				}
				g.state, g.run = xmlText, 0
				continue
			}
		}
		if g.run > maxXMLTagBytes {
			return g.bud.exceed("bytes in one XML tag", maxXMLTagBytes)
		}
		g.lastByte = c
	}
	return true
}

// endTag accounts for the tag that just ended, of g.run bytes.
func (g *xmlGuard) endTag() bool {
	switch {
	case g.closing:
		if len(g.open) > 0 {
			g.openSum -= g.open[len(g.open)-1]
			g.open = g.open[:len(g.open)-1]
		}
	case g.lastByte == '/':
		// An empty element (<a/>) opens nothing.
	default:
		if len(g.open) >= maxXMLDepth {
			return g.bud.exceed("levels of nested XML elements", maxXMLDepth)
		}
		if g.openSum += g.run; g.openSum > maxXMLOpenTagBytes {
			return g.bud.exceed("bytes of open XML tags", maxXMLOpenTagBytes)
		}
		g.open = append(g.open, g.run)
	}
	return true
}

// xmlTokens returns the tokens of r one by one, charging each to bud; it
// returns bud's error once bud runs out.
func xmlTokens(r io.Reader, bud *budget) func() (xml.Token, error) {
	d := xml.NewDecoder(r)
	return func() (xml.Token, error) {
		if !bud.xmlToken() {
			return nil, bud.err
		}
		return d.Token()
	}
}

// writeText writes the character data b to w in pieces, so that a long run
// of text is not copied whole when w takes only its start.
func writeText(w *textWriter, b []byte) {
	const piece = 4 << 10
	for len(b) > 0 && !w.full() {
		n := min(len(b), piece)
		for n < len(b) && !utf8.RuneStart(b[n]) {
			n++
		}
		w.write(string(b[:n]))
		b = b[n:]
	}
}

// docxText writes the text runs (<w:t>) of a WordprocessingML part to w,
// one line per paragraph.
func docxText(r io.Reader, w *textWriter, bud *budget) error {
	next := xmlTokens(r, bud)
	inText := false
	for !w.full() {
		tok, err := next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "t":
				inText = true
			case "tab":
				w.separate(' ')
			case "br", "cr":
				w.separate('\n')
			}
		case xml.EndElement:
			switch t.Name.Local {
			case "t":
				inText = false
			case "p":
				w.separate('\n')
			}
		case xml.CharData:
			if inText {
				writeText(w, t)
			}
		}
	}
	return nil
}

// odtText writes the text inside <office:body> of an OpenDocument
// content.xml to w, one line per paragraph or heading.
func odtText(r io.Reader, w *textWriter, bud *budget) error {
	next := xmlTokens(r, bud)
	inBody := 0
	for !w.full() {
		tok, err := next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch {
			case t.Name.Local == "body":
				inBody++
			case inBody == 0:
			case t.Name.Local == "s" || t.Name.Local == "tab":
				w.separate(' ')
			case t.Name.Local == "line-break":
				w.separate('\n')
			}
		case xml.EndElement:
			switch t.Name.Local {
			case "body":
				inBody--
			case "p", "h":
				w.separate('\n')
			}
		case xml.CharData:
			if inBody > 0 {
				writeText(w, t)
			}
		}
	}
	return nil
}
