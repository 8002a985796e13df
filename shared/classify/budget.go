package classify

import (
	"context"
	"errors"
	"fmt"
)

// A document is read under a work budget: every parser here charges what
// it does (bytes decompressed, tokens lexed, character-map entries and
// fonts, form XObject runs and their nesting, a PDF's object syntax and
// object streams, XML tokens, nesting and run lengths, archive entries) to
// the budget of the document, and stops as soon as one allowance runs out
// or the caller's context ends. The budget is what keeps a small crafted file (a
// compression bomb, a CMap shared by dozens of fonts, forms invoking forms,
// XML nested millions deep) from taking the classifier's memory or minutes
// of its CPU: with the values below any input of up to 8 MiB is classified
// or failed with [FailureTooComplex] within about 64 MiB of heap and 2 s of
// CPU (TestCraftedDocumentsStayWithinBudget and FuzzClassifyBudget check
// this). Ordinary documents stay far below every allowance; the text limit
// (MaxTextBytes) ends their reading first.
const (
	// maxDecodedBytes bounds the bytes decompressed for one document: PDF
	// streams and the XML part of an office archive together. Flate inflates
	// at a few hundred MB/s, so this is a fraction of the CPU allowance;
	// decoded streams are dropped once read, so it is not resident memory.
	maxDecodedBytes = 64 << 20
	// maxStreamDecode bounds one decoded PDF stream: pdfcpu decodes a stream
	// into one growing buffer, which briefly holds up to three times as
	// much with the buffer it outgrew. A larger stream is skipped (its cost
	// still charged); streams of text are far smaller.
	maxStreamDecode = 4 << 20
	// maxPDFSyntaxBytes bounds the object syntax of a PDF outside the data
	// of its streams, and maxPDFObjects its objects: pdfcpu parses all of
	// them into memory at once, at some thirty times their size. Real
	// documents have a few hundred KiB of syntax and a few thousand objects;
	// the rest of their bytes are stream data.
	maxPDFSyntaxBytes = 1 << 20
	maxPDFObjects     = 1 << 15
	// maxObjectStreamDecode bounds one decoded PDF object stream (the
	// objects of a PDF 1.5 file, packed some hundred to a stream, a few
	// hundred KiB decoded at most), and maxObjectStreamBytes all of them
	// together: pdfcpu keeps the decoded bytes of every object stream it
	// has opened for the rest of the document.
	maxObjectStreamDecode = 4 << 20
	maxObjectStreamBytes  = 16 << 20
	// maxTokens bounds the PDF content-stream and CMap tokens lexed
	// (operators and operands), the unit of the text extractor's CPU time
	// (tens of nanoseconds each); a page of dense text has a few thousand.
	maxTokens = 1 << 23
	// maxCharMappings bounds the entries of all ToUnicode CMaps and
	// Differences encodings read for one document: a bfchar line, a bfrange
	// line and an element of a bfrange array are one entry each, however
	// many codes they cover. A CMap is parsed once per document however
	// many fonts share it. The value is the old per-font cap, now for all
	// fonts together; each entry costs well under 100 bytes.
	maxCharMappings = 1 << 17
	// maxFonts bounds the font dictionaries read for one document.
	maxFonts = 1 << 13
	// maxFormInvocations bounds how many times form XObjects are run for one
	// document (a form drawn on every page counts once per page), and
	// maxFormDepth how deeply they may nest.
	maxFormInvocations = 1 << 14
	maxFormDepth       = 8
	// maxXMLTokens bounds the tokens the XML decoder returns for an office
	// document (start and end tags, text, comments), the unit of its CPU
	// time (a few hundred nanoseconds each); maxXMLDepth bounds how deeply
	// elements nest: the decoder keeps every open element, and real
	// documents nest a few dozen levels at most.
	maxXMLTokens = 1 << 21
	maxXMLDepth  = 256
	// maxXMLTagBytes bounds one tag (with its attributes),
	// maxXMLOpenTagBytes the tags of all open elements together (namespace
	// declarations stay on the decoder's stack until their element closes)
	// and maxXMLRunBytes a run of text, comment or CDATA between two tags,
	// which the decoder buffers whole.
	maxXMLTagBytes     = 64 << 10
	maxXMLOpenTagBytes = 1 << 20
	maxXMLRunBytes     = 4 << 20
	// maxArchiveEntries bounds the entries of an office archive: the ZIP
	// reader holds every central-directory entry in memory at once.
	maxArchiveEntries = 1 << 13

	// pollEvery is how many charges pass between two checks of the
	// caller's context.
	pollEvery = 1 << 10
)

// errTooComplex is matched (errors.Is) by every error of a budget that ran
// out or of a context that ended; Classify turns it into FailureTooComplex.
var errTooComplex = errors.New("the document is too complex to read")

// budgetError reports which allowance a document exceeded, or that its
// context ended (cause), in words safe to show a user.
type budgetError struct {
	msg   string
	cause error
}

func (e *budgetError) Error() string        { return e.msg }
func (e *budgetError) Unwrap() error        { return e.cause }
func (e *budgetError) Is(target error) bool { return target == errTooComplex }

// budget is the work one document may still cost. It is not safe for
// concurrent use: each Classify call makes its own.
type budget struct {
	ctx      context.Context
	decoded  int64
	objStm   int64
	tokens   int
	mappings int
	fonts    int
	forms    int
	xml      int
	entries  int
	polls    int   // charges until the next look at ctx
	err      error // the first allowance exceeded, or why ctx ended; sticky
}

// newBudget returns the full budget of one document read for ctx.
func newBudget(ctx context.Context) *budget {
	return &budget{
		ctx:      ctx,
		decoded:  maxDecodedBytes,
		objStm:   maxObjectStreamBytes,
		tokens:   maxTokens,
		mappings: maxCharMappings,
		fonts:    maxFonts,
		forms:    maxFormInvocations,
		xml:      maxXMLTokens,
		entries:  maxArchiveEntries,
		polls:    1, // a ctx that has ended already stops the first charge
	}
}

// ok reports whether work may go on: no allowance is exhausted and the
// context has not ended (it is looked at every pollEvery calls, as
// ctx.Err takes a lock).
func (b *budget) ok() bool {
	if b.err != nil {
		return false
	}
	if b.polls--; b.polls <= 0 {
		b.polls = pollEvery
		if err := b.ctx.Err(); err != nil {
			b.err = ctxError(err)
			return false
		}
	}
	return true
}

// ctxError is the error of a read stopped because its context ended with
// err.
func ctxError(err error) error {
	msg := "the document took too long to read"
	if errors.Is(err, context.Canceled) {
		msg = "reading the document was cancelled"
	}
	return &budgetError{msg: msg, cause: err}
}

// exceed records that the allowance for what ran out and returns false.
func (b *budget) exceed(what string, limit int64) bool {
	if b.err == nil {
		b.err = &budgetError{msg: fmt.Sprintf("%s: more than %d %s", errTooComplex, limit, what)}
	}
	return false
}

// take spends n of the allowance *left, limit in all, named what.
func take[T int | int64](b *budget, left *T, n T, limit T, what string) bool {
	if !b.ok() {
		return false
	}
	if n > *left {
		*left = 0
		return b.exceed(what, int64(limit))
	}
	*left -= n
	return true
}

// token charges one lexed PDF token.
func (b *budget) token() bool {
	return take(b, &b.tokens, 1, maxTokens, "content-stream tokens")
}

// decode charges n decompressed bytes.
func (b *budget) decode(n int64) bool {
	return take(b, &b.decoded, n, maxDecodedBytes, "bytes of decompressed data")
}

// objectStream charges n bytes of decoded PDF object streams.
func (b *budget) objectStream(n int64) bool {
	return take(b, &b.objStm, n, maxObjectStreamBytes, "bytes of decompressed object streams")
}

// mapping charges n character-map entries.
func (b *budget) mapping(n int) bool {
	return take(b, &b.mappings, n, maxCharMappings, "character-map entries")
}

// font charges one font dictionary read.
func (b *budget) font() bool {
	return take(b, &b.fonts, 1, maxFonts, "fonts")
}

// form charges one form XObject run at nesting depth depth (1 for a form
// the page itself runs).
func (b *budget) form(depth int) bool {
	if depth > maxFormDepth {
		return b.exceed("levels of nested form XObjects", maxFormDepth)
	}
	return take(b, &b.forms, 1, maxFormInvocations, "form XObject invocations")
}

// xmlToken charges one XML token.
func (b *budget) xmlToken() bool {
	return take(b, &b.xml, 1, maxXMLTokens, "XML tokens")
}

// archiveEntries charges n entries of an archive.
func (b *budget) archiveEntries(n int) bool {
	return take(b, &b.entries, n, maxArchiveEntries, "archive entries")
}
