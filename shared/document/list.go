package document

import (
	"context"
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Page sizes for listing documents.
const (
	DefaultPageSize = 50
	MaxPageSize     = 200
)

// Cursor marks a position in a newest-first listing: the last document of a page.
type Cursor struct {
	CreatedAt time.Time
	ID        uuid.UUID
}

// String encodes the cursor as an opaque URL-safe token.
func (c Cursor) String() string {
	raw := strconv.FormatInt(c.CreatedAt.UnixMicro(), 10) + "_" + c.ID.String()
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

// ParseCursor decodes a token made by Cursor.String.
func ParseCursor(s string) (Cursor, error) {
	invalid := Errorf(Invalid, "cursor is invalid")
	if len(s) > 128 {
		return Cursor{}, invalid
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Cursor{}, invalid
	}
	micros, id, ok := strings.Cut(string(raw), "_")
	if !ok {
		return Cursor{}, invalid
	}
	us, err := strconv.ParseInt(micros, 10, 64)
	if err != nil {
		return Cursor{}, invalid
	}
	docID, err := uuid.Parse(id)
	if err != nil {
		return Cursor{}, invalid
	}
	return Cursor{CreatedAt: time.UnixMicro(us).UTC(), ID: docID}, nil
}

// ListRequest asks for a page of the caller's documents.
type ListRequest struct {
	Status         Status
	Classification string
	Limit          int    // 0 means DefaultPageSize
	Cursor         string // "" for the first page
}

// Page is one page of documents and the cursor of the next, if any.
type Page struct {
	Documents  []*Document
	NextCursor string
}

// List returns a page of user's documents, newest first.
func (s *Service) List(ctx context.Context, user uuid.UUID, req ListRequest) (Page, error) {
	f := ListFilter{UserID: user, Status: req.Status, Classification: req.Classification, Limit: req.Limit}
	if len(f.Classification) > 64 {
		return Page{}, Errorf(Invalid, "classification is longer than 64 bytes")
	}
	if f.Status != "" && !f.Status.Valid() {
		return Page{}, Errorf(Invalid, "status %q is not one of pending, uploaded, classified, classification_failed, rejected", req.Status)
	}
	switch {
	case f.Limit == 0:
		f.Limit = DefaultPageSize
	case f.Limit < 0 || f.Limit > MaxPageSize:
		return Page{}, Errorf(Invalid, "limit must be between 1 and %d", MaxPageSize)
	}
	if req.Cursor != "" {
		c, err := ParseCursor(req.Cursor)
		if err != nil {
			return Page{}, err
		}
		f.After = &c
	}
	// One extra row tells whether a next page exists.
	f.Limit++
	docs, err := s.store.Documents(ctx, f)
	if err != nil {
		return Page{}, err
	}
	page := Page{Documents: docs}
	if len(docs) == f.Limit {
		page.Documents = docs[:len(docs)-1]
		last := page.Documents[len(page.Documents)-1]
		page.NextCursor = Cursor{CreatedAt: last.CreatedAt, ID: last.ID}.String()
	}
	return page, nil
}
