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
)

const (
	docxMIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
	odtMIME  = "application/vnd.oasis.opendocument.text"

	docxEntry = "word/document.xml"
	odtEntry  = "content.xml"

	// maxXMLBytes bounds how much of a decompressed XML part is read, against
	// zip bombs; a part cut there still yields the text before the cut.
	maxXMLBytes = 64 << 20
)

var (
	// errCapped ends a read that reached maxXMLBytes.
	errCapped = errors.New("part larger than the read limit")
	// errEntryMissing reports an archive without the part holding the text.
	errEntryMissing = errors.New("the archive has no document body")
)

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
// docxMIME) or ODT (kind odtMIME) document.
func extractOffice(data []byte, kind string, limit int) (string, error) {
	name := docxEntry
	if kind == odtMIME {
		name = odtEntry
	}
	rc, err := openZipEntry(data, name)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	cr := &cappedReader{r: rc, n: maxXMLBytes}
	w := &textWriter{limit: limit}
	if kind == odtMIME {
		err = odtText(cr, w)
	} else {
		err = docxText(cr, w)
	}
	if err != nil && !(cr.capped && w.sb.Len() > 0) {
		return "", fmt.Errorf("%s: %w", name, err)
	}
	return w.String(), nil
}

// openZipEntry opens the entry name of the archive in data. When the
// archive has no readable central directory (it was truncated), it falls
// back to the entry's local header, which precedes its data.
func openZipEntry(data []byte, name string) (io.ReadCloser, error) {
	zr, zerr := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if zerr == nil {
		for _, f := range zr.File {
			if f.Name == name {
				return f.Open()
			}
		}
		return nil, errEntryMissing
	}
	rc, err := localZipEntry(data, name)
	if err != nil {
		return nil, fmt.Errorf("%w (%v)", err, zerr)
	}
	return rc, nil
}

// localZipEntry finds entry name by scanning for local file headers.
func localZipEntry(data []byte, name string) (io.ReadCloser, error) {
	sig := []byte("PK\x03\x04")
	for pos := 0; ; {
		i := bytes.Index(data[pos:], sig)
		if i < 0 {
			return nil, errEntryMissing
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

// cappedReader reads at most n bytes, then fails with errCapped.
type cappedReader struct {
	r      io.Reader
	n      int64
	capped bool
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.n <= 0 {
		c.capped = true
		return 0, errCapped
	}
	if int64(len(p)) > c.n {
		p = p[:c.n]
	}
	n, err := c.r.Read(p)
	c.n -= int64(n)
	return n, err
}

// docxText writes the text runs (<w:t>) of a WordprocessingML part to w,
// one line per paragraph.
func docxText(r io.Reader, w *textWriter) error {
	d := xml.NewDecoder(r)
	inText := false
	for !w.full() {
		tok, err := d.Token()
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
				w.write(string(t))
			}
		}
	}
	return nil
}

// odtText writes the text inside <office:body> of an OpenDocument
// content.xml to w, one line per paragraph or heading.
func odtText(r io.Reader, w *textWriter) error {
	d := xml.NewDecoder(r)
	inBody := 0
	for !w.full() {
		tok, err := d.Token()
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
				w.write(string(t))
			}
		}
	}
	return nil
}
