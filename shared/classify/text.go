package classify

import (
	"bytes"
	"mime"
	"strings"
	"unicode/utf8"
)

// plainText decodes up to limit bytes of text from data, a document that
// was detected as text with the given charset parameter ("" when unknown).
// UTF-16 is decoded when the charset says so; bytes that are not valid
// UTF-8 are read as Windows-1252, the usual legacy encoding.
func plainText(detected string, data []byte, limit int) string {
	charset := ""
	if _, params, err := mime.ParseMediaType(detected); err == nil {
		charset = strings.ToLower(params["charset"])
	}
	switch charset {
	case "utf-16le", "utf-16be":
		return truncateUTF8(decodeUTF16(data[:min(len(data), 2*limit)], charset == "utf-16be"), limit)
	}
	data = bytes.TrimPrefix(data[:min(len(data), limit)], []byte("\xef\xbb\xbf"))
	head := trimPartialRune(data)
	if utf8.Valid(head) {
		return string(head)
	}
	return truncateUTF8(decodeWindows1252(data), limit)
}

// trimPartialRune drops an incomplete UTF-8 sequence at the end of b, left
// there when the input was cut.
func trimPartialRune(b []byte) []byte {
	for i := 1; i <= utf8.UTFMax && i <= len(b); i++ {
		c := b[len(b)-i]
		if c < utf8.RuneSelf {
			return b
		}
		if utf8.RuneStart(c) {
			if !utf8.FullRune(b[len(b)-i:]) {
				return b[:len(b)-i]
			}
			return b
		}
	}
	return b
}

// truncateUTF8 cuts s to at most limit bytes without splitting a rune.
func truncateUTF8(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	for limit > 0 && !utf8.RuneStart(s[limit]) {
		limit--
	}
	return s[:limit]
}
