package classify

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gabriel-vasile/mimetype"

	"github.com/docuvault/docuvault/shared/document"
)

// Failure reason codes of a [Result].
const (
	// FailureTypeMismatch means the bytes are not of the declared content
	// type (a PDF that is really an executable, for instance).
	FailureTypeMismatch = document.ReasonTypeMismatch
	// FailureUnreadable means the document is of a format with text but
	// could not be read (a damaged or truncated PDF or archive, an encrypted
	// PDF).
	FailureUnreadable = "unreadable"
	// FailureEmpty means the document has no bytes.
	FailureEmpty = "empty"
	// FailureTooComplex means reading the document needed more work than
	// the budget of one document allows (a compression bomb, fonts or forms
	// multiplying the work of a small file, XML nested too deeply), or the
	// caller's context ended first. Over budget, trying again gives the
	// same result.
	FailureTooComplex = "too_complex"
)

// CategoryOther is the category of a document no category's keywords
// point to strongly enough, or whose format has no extractable text.
const CategoryOther = "other"

const (
	// MaxTextBytes is how much extracted text is classified; the rest of a
	// long document is ignored.
	MaxTextBytes = 1 << 20

	// confidenceNoText is the confidence of "other" for a document without
	// extractable text (an image, a scan), confidenceOther that of a text
	// no category scored enough on.
	confidenceNoText = 0.05
	confidenceOther  = 0.1
)

// Result is the outcome of classifying one document.
type Result struct {
	// DetectedType is the MIME type found in the bytes (by mimetype, with
	// parameters such as "; charset=utf-8" for text), e.g.
	// "application/pdf". A ZIP archive whose entry names show a DOCX or ODT
	// document is reported as that type. "" for an empty document.
	DetectedType string
	// Category is one of the rule set's categories, "other" when nothing
	// matches, and "" when Failure is set.
	Category string
	// Confidence is how sure the classifier is of Category, 0..1.
	Confidence float64
	// Failure is "" on success, else a reason code: FailureTypeMismatch,
	// FailureUnreadable, FailureEmpty or FailureTooComplex.
	Failure string
	// Detail explains a failure in words that are safe to show a user.
	Detail string
}

// Classification converts r to the domain's view of a classification.
func (r Result) Classification() document.Classification {
	return document.Classification{
		Category:     r.Category,
		DetectedType: r.DetectedType,
		Confidence:   r.Confidence,
		Failure:      r.Failure,
	}
}

// Documents is a Classifier as the document use cases see it.
type Documents struct{ *Classifier }

var _ document.ContentClassifier = Documents{}

// Classify classifies data (see Classifier.Classify) into the domain's
// Classification.
func (d Documents) Classify(ctx context.Context, data []byte, contentType string) document.Classification {
	return d.Classifier.Classify(ctx, data, contentType).Classification()
}

// Classifier classifies documents with a rule set. It is immutable and safe
// for concurrent use.
type Classifier struct {
	categories []category
	minScore   float64
}

// New returns a Classifier for rules, which should have passed
// [Rules.Validate] (LoadRules and DefaultRules guarantee that); keywords
// with an empty term or a weight that is not positive are ignored.
func New(rules Rules) *Classifier {
	c := &Classifier{minScore: rules.MinScore}
	for _, rc := range rules.Categories {
		cat := category{name: rc.Name}
		for _, k := range rc.Keywords {
			if t := compileTerm(k); t.text != "" && k.Weight > 0 {
				cat.terms = append(cat.terms, t)
			}
		}
		c.categories = append(c.categories, cat)
	}
	return c
}

// Classify detects the real type of data, compares it with declaredType
// (the content type the client declared, e.g. "application/pdf"; an empty,
// unparsable or "application/octet-stream" declaration accepts any type),
// extracts the text and classifies it. data may be only the first bytes of
// the document. Classify never panics: damaged input becomes a Result with
// a Failure.
//
// The parsers charge their work to a budget per document and look at ctx
// as they go: a document over budget, or one still being read when ctx
// ends, gives FailureTooComplex (a caller that needs to tell an ended ctx
// apart asks ctx.Err). With a ctx that does not end, any input of up to
// 8 MiB is classified or failed within about 64 MiB of heap and 2 s of CPU.
func (c *Classifier) Classify(ctx context.Context, data []byte, declaredType string) (res Result) {
	defer func() {
		// Extraction guards its parsers already; this is the last line of
		// defence for anything they missed.
		if r := recover(); r != nil {
			res = Result{DetectedType: res.DetectedType, Failure: FailureUnreadable, Detail: "the document could not be read"}
		}
	}()
	if len(data) == 0 {
		return Result{Failure: FailureEmpty, Detail: "the document is empty"}
	}
	detected := mimetype.Detect(data)
	if detected.Is("application/zip") {
		// A truncated or unusual archive is detected as plain ZIP; its entry
		// names still say what it holds.
		if kind := zipKind(data); kind != "" {
			if m := mimetype.Lookup(kind); m != nil {
				detected = m
			}
		}
	}
	res.DetectedType = detected.String()
	if detail := mismatch(detected, declaredType); detail != "" {
		res.Failure, res.Detail = FailureTypeMismatch, detail
		return res
	}
	text, hasText, err := extractText(newBudget(ctx), detected, data)
	switch {
	case errors.Is(err, errTooComplex):
		res.Failure, res.Detail = FailureTooComplex, err.Error()
		return res
	case err != nil && ctx.Err() != nil:
		// The parser failed because ctx ended under it (pdfcpu reports
		// ctx.Err as its own error).
		res.Failure, res.Detail = FailureTooComplex, ctxError(ctx.Err()).Error()
		return res
	case err != nil:
		res.Failure, res.Detail = FailureUnreadable, err.Error()
		return res
	}
	if !hasText {
		res.Category, res.Confidence = CategoryOther, confidenceNoText
		return res
	}
	res.Category, res.Confidence = c.score(text)
	return res
}

// score classifies text.
func (c *Classifier) score(text string) (string, float64) {
	norm := normalize(text)
	best, top, second := -1, 0.0, 0.0
	for i, cat := range c.categories {
		s := cat.score(norm)
		switch {
		case s > top:
			best, top, second = i, s, top
		case s > second:
			second = s
		}
	}
	if best < 0 || top < c.minScore {
		return CategoryOther, confidenceOther
	}
	conf := top / (top + second + 1)
	return c.categories[best].name, max(0, min(1, conf))
}

// extractText returns the text of data, whose type is detected, charging
// the work to bud. hasText is false for formats without extractable text;
// err describes, for a user, why a format with text could not be read, and
// matches errTooComplex when bud ran out.
func extractText(bud *budget, detected *mimetype.MIME, data []byte) (text string, hasText bool, err error) {
	switch {
	case is(detected, "application/pdf"):
		text, err := extractPDF(data, MaxTextBytes, bud)
		if err != nil {
			switch {
			case errors.Is(err, errTooComplex):
				return "", false, err
			case errors.Is(err, errEncrypted):
				return "", false, errors.New("the PDF is password-protected")
			}
			return "", false, fmt.Errorf("the PDF could not be read; it may be damaged or truncated (%s)", shorten(err.Error()))
		}
		return text, true, nil
	case is(detected, docxMIME), is(detected, odtMIME):
		kind := docxMIME
		if is(detected, odtMIME) {
			kind = odtMIME
		}
		text, err := extractOffice(data, kind, MaxTextBytes, bud)
		if err != nil {
			if errors.Is(err, errTooComplex) {
				return "", false, err
			}
			return "", false, fmt.Errorf("the document could not be read; it may be damaged or truncated (%s)", shorten(err.Error()))
		}
		return text, true, nil
	case is(detected, "text/plain"):
		return plainText(detected.String(), data, MaxTextBytes), true, nil
	}
	return "", false, nil
}

// is reports whether m is the MIME type want or descends from it
// ("text/html" is "text/plain", a DOCX is "application/zip").
func is(m *mimetype.MIME, want string) bool {
	for ; m != nil; m = m.Parent() {
		if m.Is(want) {
			return true
		}
	}
	return false
}

// executables are the detected types of programs, which no document
// declaration other than application/octet-stream admits.
var executables = []string{
	"application/x-elf",
	"application/vnd.microsoft.portable-executable",
	"application/x-msdownload",
	"application/x-dosexec",
	"application/x-mach-binary",
}

// declaredAliases maps non-standard content types clients send to the
// standard ones.
var declaredAliases = map[string]string{
	"image/jpg":                    "image/jpeg",
	"image/pjpeg":                  "image/jpeg",
	"image/x-png":                  "image/png",
	"application/x-pdf":            "application/pdf",
	"application/acrobat":          "application/pdf",
	"text/pdf":                     "application/pdf",
	"application/x-zip-compressed": "application/zip",
	"application/x-zip":            "application/zip",
	"text/xml":                     "application/xml",
}

// mismatch returns why detected does not agree with declared, or "" when
// it does. An empty, unparsable or application/octet-stream declaration
// agrees with anything; a textual declaration agrees with any text (CSV,
// Markdown or JSON cut short are often detected as plain text); otherwise
// the detected type or one of its ancestors must be the declared type.
func mismatch(detected *mimetype.MIME, declared string) string {
	base, _, err := mime.ParseMediaType(declared)
	if err != nil || base == "" || base == "application/octet-stream" {
		return ""
	}
	if a, ok := declaredAliases[base]; ok {
		base = a
	}
	for _, e := range executables {
		if is(detected, e) {
			return fmt.Sprintf("the file is an executable program (%s), not %s", baseType(detected), base)
		}
	}
	if is(detected, base) {
		return ""
	}
	if textual(base) && is(detected, "text/plain") {
		return ""
	}
	return fmt.Sprintf("the file content is %s, not %s as declared", baseType(detected), base)
}

// textual reports whether the declared type base is a kind of text.
func textual(base string) bool {
	if strings.HasPrefix(base, "text/") || strings.HasSuffix(base, "+xml") || strings.HasSuffix(base, "+json") {
		return true
	}
	switch base {
	case "application/json", "application/xml", "application/javascript", "application/x-ndjson",
		"application/csv", "application/x-yaml", "application/yaml", "application/rtf", "application/x-sh":
		return true
	}
	return false
}

func baseType(m *mimetype.MIME) string {
	if base, _, err := mime.ParseMediaType(m.String()); err == nil {
		return base
	}
	return m.String()
}

// shorten keeps a parser's error message short and printable enough for a
// user: parsers quote the bytes they choke on.
func shorten(s string) string {
	const limit = 160
	s = strings.Map(func(r rune) rune {
		if r == utf8.RuneError || !unicode.IsPrint(r) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, ""))
	if len(s) <= limit {
		return s
	}
	return truncateUTF8(s, limit) + "…"
}
