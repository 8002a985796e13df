package classify

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxOccurrences is how many occurrences of one term count towards a score.
const maxOccurrences = 3

// foldings maps letters with diacritics (after lowercasing) to their base
// letters, and typographic apostrophes to ASCII, so that "Grüße", "GRÜSSE"
// and "Grusse" all match the term "grüße".
var foldings = map[rune]string{
	'à': "a", 'á': "a", 'â': "a", 'ã': "a", 'ä': "a", 'å': "a", 'ā': "a", 'ą': "a",
	'æ': "ae", 'ç': "c", 'ć': "c", 'č': "c", 'ď': "d", 'đ': "d",
	'è': "e", 'é': "e", 'ê': "e", 'ë': "e", 'ē': "e", 'ę': "e", 'ě': "e",
	'ì': "i", 'í': "i", 'î': "i", 'ï': "i", 'ł': "l", 'ñ': "n", 'ń': "n", 'ň': "n",
	'ò': "o", 'ó': "o", 'ô': "o", 'õ': "o", 'ö': "o", 'ø': "o", 'ō': "o", 'ő': "o",
	'œ': "oe", 'ř': "r", 'ß': "ss", 'ś': "s", 'š': "s", 'ť': "t",
	'ù': "u", 'ú': "u", 'û': "u", 'ü': "u", 'ů': "u", 'ű': "u", 'ý': "y", 'ÿ': "y",
	'ź': "z", 'ż': "z", 'ž': "z",
	'’': "'", '‘': "'", 'ʼ': "'", '´': "'", '`': "'",
	'ﬁ': "fi", 'ﬂ': "fl", 'ﬀ': "ff", 'ﬃ': "ffi", 'ﬄ': "ffl",
}

// normalize lowercases s, folds diacritics and collapses every run of
// whitespace into one space. Terms and texts go through the same function,
// so that matching compares like with like.
func normalize(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		if unicode.IsSpace(r) || r == '\u00a0' {
			space = true
			continue
		}
		if space {
			if b.Len() > 0 {
				b.WriteByte(' ')
			}
			space = false
		}
		r = unicode.ToLower(r)
		if f, ok := foldings[r]; ok {
			b.WriteString(f)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r)
}

// term is a keyword ready for matching.
type term struct {
	text      string
	weight    float64
	wordStart bool // the term starts with a letter or digit, so must a word
	wordEnd   bool // the term ends with a letter or digit, so must a word
}

func compileTerm(k Keyword) term {
	t := term{text: normalize(k.Term), weight: k.Weight}
	if t.text == "" {
		return t
	}
	first, _ := utf8.DecodeRuneInString(t.text)
	last, _ := utf8.DecodeLastRuneInString(t.text)
	t.wordStart = isWordRune(first)
	t.wordEnd = isWordRune(last)
	return t
}

// count returns how many times t occurs in text as whole words, up to
// maxOccurrences.
func (t term) count(text string) int {
	if t.text == "" {
		return 0
	}
	n := 0
	for i := 0; n < maxOccurrences && i < len(text); {
		j := strings.Index(text[i:], t.text)
		if j < 0 {
			break
		}
		start, end := i+j, i+j+len(t.text)
		before, _ := utf8.DecodeLastRuneInString(text[:start])
		after, _ := utf8.DecodeRuneInString(text[end:])
		if (!t.wordStart || start == 0 || !isWordRune(before)) &&
			(!t.wordEnd || end == len(text) || !isWordRune(after)) {
			n++
			i = end
			continue
		}
		// A term begins with a rune's first byte, so stepping one byte
		// cannot make it match inside a rune.
		i = start + 1
	}
	return n
}

// category is a rule-set category ready for scoring.
type category struct {
	name  string
	terms []term
}

// score returns the score of c in the normalised text.
func (c category) score(text string) float64 {
	var s float64
	for _, t := range c.terms {
		if n := t.count(text); n > 0 {
			s += t.weight * float64(n)
		}
	}
	return s
}
