package classify

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strings"

	"github.com/docuvault/docuvault/shared/document"
)

//go:embed rules.json
var defaultRulesJSON []byte

// maxCategoryLen is the longest category name the document store accepts.
const maxCategoryLen = 64

// Rules is a rule set: categories with keywords and weights. A document is
// given the category whose keywords score highest, provided that score
// reaches MinScore; otherwise it is [CategoryOther].
type Rules struct {
	Categories []Category `json:"categories"`
	MinScore   float64    `json:"min_score"`
}

// Category is one category of a rule set and the keywords that point to it.
// A category without keywords (such as "other") is never chosen by score.
type Category struct {
	Name     string    `json:"name"`
	Keywords []Keyword `json:"keywords"`
}

// Keyword is a word or phrase and the weight each occurrence adds to its
// category's score (at most three occurrences count). Terms match
// case-insensitively, ignoring common diacritics and runs of whitespace,
// and only as whole words: "rechnung" does not match "Rechnungen".
type Keyword struct {
	Term   string  `json:"term"`
	Weight float64 `json:"weight"`
}

// DefaultRules returns the rule set shipped with the package (rules.json,
// embedded at build time): invoice, receipt, contract, bank_statement,
// payslip, identity_document, letter and other, with keywords in English,
// German, French, Spanish and Dutch. Each call returns a fresh copy.
func DefaultRules() Rules {
	r, err := parseRules(bytes.NewReader(defaultRulesJSON))
	if err != nil {
		// Unreachable: TestDefaultRules checks the embedded file.
		return Rules{Categories: []Category{{Name: CategoryOther}}, MinScore: 1}
	}
	return r
}

// LoadRules reads a rule set from the JSON file at path (the format of
// rules.json) and validates it with [Rules.Validate]. Unknown fields are
// rejected so that a misspelt key does not go unnoticed. Errors carry the
// code [document.Invalid].
func LoadRules(path string) (Rules, error) {
	f, err := os.Open(path)
	if err != nil {
		return Rules{}, document.Wrap(document.Invalid, err, fmt.Sprintf("classification rules %s cannot be read", path))
	}
	defer f.Close()
	r, err := parseRules(f)
	if err != nil {
		return Rules{}, document.Wrap(document.Invalid, err, fmt.Sprintf("classification rules %s are invalid", path))
	}
	return r, nil
}

func parseRules(rd io.Reader) (Rules, error) {
	dec := json.NewDecoder(rd)
	dec.DisallowUnknownFields()
	var r Rules
	if err := dec.Decode(&r); err != nil {
		return Rules{}, fmt.Errorf("decode JSON: %w", err)
	}
	if dec.More() {
		return Rules{}, fmt.Errorf("decode JSON: data after the rule set")
	}
	if err := r.Validate(); err != nil {
		return Rules{}, err
	}
	return r, nil
}

// Validate checks r: at least one category; category names non-empty,
// without surrounding spaces, at most 64 bytes and unique; every keyword
// term non-empty and unique within its category (after the normalisation
// matching applies); weights positive and finite; MinScore finite and not
// negative. Errors carry the code [document.Invalid].
func (r Rules) Validate() error {
	if len(r.Categories) == 0 {
		return document.Errorf(document.Invalid, "the rule set has no categories")
	}
	if math.IsNaN(r.MinScore) || math.IsInf(r.MinScore, 0) || r.MinScore < 0 {
		return document.Errorf(document.Invalid, "min_score must be a finite number >= 0, not %v", r.MinScore)
	}
	names := make(map[string]bool, len(r.Categories))
	for i, c := range r.Categories {
		switch {
		case c.Name == "":
			return document.Errorf(document.Invalid, "category %d has no name", i+1)
		case strings.TrimSpace(c.Name) != c.Name:
			return document.Errorf(document.Invalid, "category name %q has surrounding spaces", c.Name)
		case len(c.Name) > maxCategoryLen:
			return document.Errorf(document.Invalid, "category name %q is longer than %d bytes", c.Name, maxCategoryLen)
		case names[c.Name]:
			return document.Errorf(document.Invalid, "category %q appears twice", c.Name)
		}
		names[c.Name] = true
		terms := make(map[string]bool, len(c.Keywords))
		for j, k := range c.Keywords {
			norm := normalize(k.Term)
			if norm == "" {
				return document.Errorf(document.Invalid, "category %q: keyword %d has an empty term", c.Name, j+1)
			}
			if terms[norm] {
				return document.Errorf(document.Invalid, "category %q: term %q appears twice", c.Name, k.Term)
			}
			terms[norm] = true
			if math.IsNaN(k.Weight) || math.IsInf(k.Weight, 0) || k.Weight <= 0 {
				return document.Errorf(document.Invalid, "category %q: term %q must have a finite weight > 0, not %v", c.Name, k.Term, k.Weight)
			}
		}
	}
	return nil
}
