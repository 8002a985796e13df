package classify

import (
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// winAnsiHigh maps the Windows-1252 bytes 0x80..0x9F, where it departs from
// Latin-1, to runes; 0 marks an unassigned byte.
var winAnsiHigh = [32]rune{
	0x20AC, 0, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
	0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0, 0x017D, 0,
	0, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
	0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0, 0x017E, 0x0178,
}

// winAnsiRune decodes one Windows-1252 (PDF WinAnsiEncoding) byte; it
// returns 0 for an unassigned byte.
func winAnsiRune(b byte) rune {
	if b >= 0x80 && b < 0xA0 {
		return winAnsiHigh[b-0x80]
	}
	return rune(b)
}

// decodeWindows1252 decodes b as Windows-1252 text.
func decodeWindows1252(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b))
	for _, c := range b {
		if r := winAnsiRune(c); r != 0 {
			sb.WriteRune(r)
		}
	}
	return sb.String()
}

// decodeUTF16 decodes b as UTF-16 in the given byte order, skipping a
// leading byte order mark and an odd trailing byte.
func decodeUTF16(b []byte, bigEndian bool) string {
	units := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		if bigEndian {
			units = append(units, uint16(b[i])<<8|uint16(b[i+1]))
		} else {
			units = append(units, uint16(b[i+1])<<8|uint16(b[i]))
		}
	}
	if len(units) > 0 && units[0] == 0xFEFF {
		units = units[1:]
	}
	return string(utf16.Decode(units))
}

// accents maps the accent suffix of an Adobe glyph name to the letters it
// composes with, base letter first: "adieresis" is 'a' + "dieresis" → ä.
var accents = map[string][2]string{
	"dieresis":   {"aeiouyAEIOUY", "äëïöüÿÄËÏÖÜŸ"},
	"acute":      {"aeiouyAEIOUYcnszCNSZ", "áéíóúýÁÉÍÓÚÝćńśźĆŃŚŹ"},
	"grave":      {"aeiouAEIOU", "àèìòùÀÈÌÒÙ"},
	"circumflex": {"aeiouAEIOU", "âêîôûÂÊÎÔÛ"},
	"tilde":      {"anoANO", "ãñõÃÑÕ"},
	"cedilla":    {"cC", "çÇ"},
	"ring":       {"aAuU", "åÅůŮ"},
	"caron":      {"cszenrCSZENR", "čšžěňřČŠŽĚŇŘ"},
}

// glyphNames maps the Adobe glyph names a font's Differences array
// commonly uses, beyond single letters and accented letters, to text.
var glyphNames = map[string]string{
	"space": " ", "exclam": "!", "quotedbl": "\"", "numbersign": "#", "dollar": "$",
	"percent": "%", "ampersand": "&", "quotesingle": "'", "quoteright": "’", "quoteleft": "‘",
	"parenleft": "(", "parenright": ")", "asterisk": "*", "plus": "+", "comma": ",",
	"hyphen": "-", "minus": "-", "endash": "–", "emdash": "—", "period": ".", "slash": "/",
	"zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
	"six": "6", "seven": "7", "eight": "8", "nine": "9", "colon": ":", "semicolon": ";",
	"less": "<", "equal": "=", "greater": ">", "question": "?", "at": "@",
	"bracketleft": "[", "backslash": "\\", "bracketright": "]", "underscore": "_",
	"braceleft": "{", "bar": "|", "braceright": "}", "asciitilde": "~",
	"Euro": "€", "euro": "€", "sterling": "£", "yen": "¥", "cent": "¢", "section": "§",
	"degree": "°", "ordmasculine": "º", "ordfeminine": "ª", "germandbls": "ß",
	"ae": "æ", "AE": "Æ", "oe": "œ", "OE": "Œ", "oslash": "ø", "Oslash": "Ø",
	"quotedblleft": "“", "quotedblright": "”", "quotedblbase": "„", "quotesinglbase": "‚",
	"guillemotleft": "«", "guillemotright": "»", "bullet": "•", "ellipsis": "…",
	"fi": "fi", "fl": "fl", "ff": "ff", "ffi": "ffi", "ffl": "ffl", "nbspace": " ",
	"multiply": "×", "divide": "÷", "periodcentered": "·", "copyright": "©", "registered": "®",
}

// glyphText returns the text an Adobe glyph name stands for, or "" when the
// name is unknown (subset glyph names such as "g42" carry no meaning).
func glyphText(name string) string {
	if len(name) == 1 {
		return name
	}
	if s, ok := glyphNames[name]; ok {
		return s
	}
	if strings.HasPrefix(name, "uni") && len(name) >= 7 && (len(name)-3)%4 == 0 {
		var units []uint16
		for i := 3; i+4 <= len(name); i += 4 {
			v, err := strconv.ParseUint(name[i:i+4], 16, 16)
			if err != nil {
				return ""
			}
			units = append(units, uint16(v))
		}
		return string(utf16.Decode(units))
	}
	if strings.HasPrefix(name, "u") && len(name) >= 5 && len(name) <= 7 {
		if v, err := strconv.ParseUint(name[1:], 16, 32); err == nil && utf8.ValidRune(rune(v)) {
			return string(rune(v))
		}
	}
	for suffix, pair := range accents {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok || len(base) != 1 {
			continue
		}
		if i := strings.IndexByte(pair[0], base[0]); i >= 0 {
			return string([]rune(pair[1])[i])
		}
	}
	return ""
}
