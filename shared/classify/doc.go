// Package classify identifies and classifies a document from its first
// bytes: it owns type detection (the real MIME type found in the bytes and
// whether it agrees with the content type the client declared), text
// extraction from plain text, PDF, DOCX and ODT, and keyword scoring against
// a [Rules] set whose default, rules.json, is embedded in the package.
//
// The caller usually reads only a prefix of the object (CLASSIFY_MAX_BYTES,
// 8 MiB by default), so the input may be truncated. [Classifier.Classify]
// never panics on hostile or damaged input: a PDF or archive that cannot be
// read becomes a [Result] with Failure [FailureUnreadable], bytes that are not
// of the declared type become [FailureTypeMismatch] and no bytes at all
// become [FailureEmpty]. Formats without extractable text (images, for
// instance) are not failures: they are classified as [CategoryOther] with a
// low confidence.
//
// The parsers run under a work budget per document (bytes decompressed,
// content-stream tokens, character-map entries, form XObject runs and
// nesting, XML tokens and depth, archive entries) and under the caller's
// context: a document that needs more, or is still being read when the
// context ends, becomes [FailureTooComplex]. The budget keeps any input of
// up to 8 MiB within about 64 MiB of heap and 2 s of CPU.
//
// Package samples, beside it, builds small real documents for tests.
//
// The package reads no environment and keeps no mutable global state; a
// [Classifier] is safe for concurrent use.
package classify
