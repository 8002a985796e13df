// Package samples builds small but real documents — plain text, PDF, DOCX
// and ODT, one per category of the classifier's default rules — for tests.
// Only tests import it, so none of it ships in the docuvault binary.
package samples

import (
	"archive/zip"
	"bytes"
	"encoding/xml"
	"fmt"
	"strings"

	"golang.org/x/text/encoding/charmap"
)

// odtMIME is the media type an ODT declares in its mimetype entry.
const odtMIME = "application/vnd.oasis.opendocument.text"

// Texts returns one short sample document text per category of
// classify.DefaultRules (every category except "other", plus an
// "other" text that matches no category). The texts mix the languages the
// default rules cover; each is classified as its key by a classify.Classifier
// built from the default rules, whether it is stored as plain text or wrapped
// by [PDF], [DOCX] or [ODT].
func Texts() map[string]string {
	return map[string]string{
		"invoice": "ACME GmbH\nRechnung Nr. 2024-0117\nInvoice number: 2024-0117\n" +
			"Rechnungsdatum: 12.03.2024   Fälligkeitsdatum: 11.04.2024\n" +
			"Pos. 1  Beratung 10 h à 95,00 €   950,00 €\n" +
			"Nettobetrag 950,00 €  MwSt. 19 % 180,50 €  Gesamtbetrag 1.130,50 €\n" +
			"Amount due: EUR 1,130.50. Payment terms: 30 days.\n" +
			"Bitte überweisen Sie den Rechnungsbetrag auf IBAN DE89 3704 0044 0532 0130 00.\n" +
			"USt-IdNr. DE123456789",
		"receipt": "BÄCKEREI MÜLLER\nKassenbon / Receipt\nBon-Nr. 4711   Kasse 2\n" +
			"2x Brötchen 0,80 €\n1x Kaffee 2,40 €\nSumme EUR 3,20\n" +
			"Bar gegeben 5,00 €  Rückgeld 1,80 €\n" +
			"Thank you for your purchase! Paid by card, Visa ****1234, cashier: Anna\n" +
			"Vielen Dank für Ihren Einkauf",
		"contract": "Mietvertrag / Rental Agreement\n" +
			"This agreement is made between the Landlord and the Tenant (the parties).\n" +
			"§ 1 Vertragsgegenstand  § 2 Laufzeit und Kündigung\n" +
			"The term of this contract is twelve months; either party may terminate with a notice period of three months.\n" +
			"The parties agree to the terms and conditions set out herein. This agreement is governed by German law.\n" +
			"Vertragsparteien: Vermieter und Mieter.\n" +
			"Signature of the landlord ____________  Unterschrift des Mieters ____________",
		"bank_statement": "Sparkasse Musterstadt\nKontoauszug Nr. 3/2024 / Account statement\n" +
			"IBAN DE89 3704 0044 0532 0130 00  BIC COBADEFFXXX\n" +
			"Alter Kontostand / Opening balance 2.345,67 EUR\n" +
			"Buchungstag Wertstellung Verwendungszweck Betrag\n" +
			"01.03. Lastschrift Stadtwerke -84,00   05.03. Gutschrift Gehalt +3.100,00\n" +
			"Neuer Kontostand / Closing balance 5.361,67 EUR\nTransactions: 2",
		"payslip": "Gehaltsabrechnung März 2024 / Payslip\nPersonalnummer 0815  Steuerklasse 1\n" +
			"Bruttolohn 4.200,00 EUR\nLohnsteuer 712,00  Solidaritätszuschlag 0,00  Kirchensteuer 0,00\n" +
			"Rentenversicherung 390,60  Krankenversicherung 342,30  Sozialversicherung\n" +
			"Nettolohn / Net pay 2.633,10 EUR\nGross pay, income tax, national insurance, employee number 0815",
		"identity_document": "BUNDESREPUBLIK DEUTSCHLAND\nPERSONALAUSWEIS / IDENTITY CARD / CARTE D'IDENTITÉ\n" +
			"Name / Surname: MUSTERMANN  Vornamen / Given names: ERIKA\n" +
			"Geburtsdatum / Date of birth: 12.08.1983  Staatsangehörigkeit / Nationality: DEUTSCH\n" +
			"Ausweisnummer / Document number: L01X00T47  Gültig bis / Date of expiry: 01.10.2031\n" +
			"Passport No. place of birth: BERLIN",
		"letter": "Erika Mustermann\nHauptstraße 5\n12345 Berlin\n\nBerlin, 3. März 2024\n\n" +
			"Betreff: Ihr Schreiben vom 28. Februar\n\nSehr geehrte Damen und Herren,\n\n" +
			"vielen Dank für Ihr Schreiben. Gerne bestätige ich den vorgeschlagenen Termin.\n\n" +
			"Mit freundlichen Grüßen\nErika Mustermann\n\nDear Sir or Madam, yours sincerely, kind regards",
		"other": "The quick brown fox jumps over the lazy dog.\n" +
			"Lorem ipsum dolor sit amet, consectetur adipiscing elit.\n" +
			"Shopping list: apples, pears, bread, milk.",
	}
}

// PDF returns a small, valid PDF 1.4 file that shows text in the
// standard Helvetica font (WinAnsiEncoding, uncompressed content streams,
// one page per 48 lines, a correct xref table). It is a test and demo
// helper: characters outside Windows-1252 are written as '?'.
func PDF(text string) []byte {
	const linesPerPage = 48
	lines := wrapLines(text, 90)
	var pages [][]string
	for len(lines) > linesPerPage {
		pages = append(pages, lines[:linesPerPage])
		lines = lines[linesPerPage:]
	}
	pages = append(pages, lines)

	// Objects: 1 catalog, 2 page tree, 3 font, then a page and its
	// content stream for each page.
	var objects []string
	kids := make([]string, len(pages))
	for i := range pages {
		kids[i] = fmt.Sprintf("%d 0 R", 4+2*i)
	}
	objects = append(objects,
		"<< /Type /Catalog /Pages 2 0 R >>",
		fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count %d >>", strings.Join(kids, " "), len(pages)),
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
	)
	for i, page := range pages {
		var content bytes.Buffer
		content.WriteString("BT\n/F1 11 Tf\n14 TL\n72 760 Td\n")
		for _, line := range page {
			content.WriteString("(")
			content.Write(pdfEscape(line))
			content.WriteString(") Tj T*\n")
		}
		content.WriteString("ET\n")
		objects = append(objects,
			fmt.Sprintf("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>", 5+2*i),
			fmt.Sprintf("<< /Length %d >>\nstream\n%sendstream", content.Len(), content.Bytes()),
		)
	}

	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
	offsets := make([]int, len(objects))
	for i, obj := range objects {
		offsets[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, obj)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objects)+1)
	for _, off := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objects)+1, xref)
	return b.Bytes()
}

// DOCX returns a small, valid Word (OOXML) document whose body holds
// one paragraph per line of text. It is a test and demo helper.
func DOCX(text string) []byte {
	var body strings.Builder
	for _, line := range strings.Split(text, "\n") {
		body.WriteString(`<w:p><w:r><w:t xml:space="preserve">`)
		body.WriteString(xmlEscape(line))
		body.WriteString(`</w:t></w:r></w:p>`)
	}
	return buildZip([]zipFile{
		{name: "[Content_Types].xml", body: `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">` +
			`<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>` +
			`<Default Extension="xml" ContentType="application/xml"/>` +
			`<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>` +
			`</Types>`},
		{name: "_rels/.rels", body: `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">` +
			`<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/>` +
			`</Relationships>`},
		{name: "word/document.xml", body: `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>` +
			body.String() + `</w:body></w:document>`},
	})
}

// ODT returns a small, valid OpenDocument text file whose body holds
// one paragraph per line of text. It is a test and demo helper.
func ODT(text string) []byte {
	var body strings.Builder
	for _, line := range strings.Split(text, "\n") {
		body.WriteString(`<text:p text:style-name="Standard"><text:span>`)
		body.WriteString(xmlEscape(line))
		body.WriteString(`</text:span></text:p>`)
	}
	return buildZip([]zipFile{
		// The mimetype entry must come first and be stored uncompressed.
		{name: "mimetype", body: odtMIME, store: true},
		{name: "META-INF/manifest.xml", body: `<?xml version="1.0" encoding="UTF-8"?>
<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">` +
			`<manifest:file-entry manifest:full-path="/" manifest:media-type="` + odtMIME + `"/>` +
			`<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>` +
			`</manifest:manifest>`},
		{name: "content.xml", body: `<?xml version="1.0" encoding="UTF-8"?>
<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" ` +
			`xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2">` +
			`<office:body><office:text>` + body.String() + `</office:text></office:body></office:document-content>`},
	})
}

type zipFile struct {
	name  string
	body  string
	store bool
}

func buildZip(files []zipFile) []byte {
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	for _, f := range files {
		method := zip.Deflate
		if f.store {
			method = zip.Store
		}
		// Writing to a bytes.Buffer cannot fail.
		fw, _ := w.CreateHeader(&zip.FileHeader{Name: f.name, Method: method})
		_, _ = fw.Write([]byte(f.body))
	}
	_ = w.Close()
	return b.Bytes()
}

func xmlEscape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// pdfEscape encodes s as the bytes of a PDF literal string in
// WinAnsiEncoding, escaping the characters the syntax reserves.
func pdfEscape(s string) []byte {
	var out []byte
	for _, r := range s {
		c, ok := charmap.Windows1252.EncodeRune(r)
		if !ok {
			c = '?'
		}
		switch c {
		case '(', ')', '\\':
			out = append(out, '\\', c)
		default:
			out = append(out, c)
		}
	}
	return out
}

// wrapLines splits text into lines no longer than width runes, breaking at
// spaces where it can.
func wrapLines(text string, width int) []string {
	var lines []string
	for _, para := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		r := []rune(strings.ReplaceAll(para, "\t", " "))
		for len(r) > width {
			cut := width
			for i := width; i > width/2; i-- {
				if r[i] == ' ' {
					cut = i
					break
				}
			}
			lines = append(lines, string(r[:cut]))
			r = r[cut:]
			for len(r) > 0 && r[0] == ' ' {
				r = r[1:]
			}
		}
		lines = append(lines, string(r))
	}
	return lines
}
