package document_test

import (
	"bytes"
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/docuvault/docuvault/shared/document"
)

// ClaimWaiting claims as PostgreSQL's statement does: each user's
// documents waiting for the stage (Document.Waiting) numbered by
// (updated_at, id), taken by turn, then age.
func (s *memStore) ClaimWaiting(_ context.Context, q document.ClaimQuery) ([]document.Waiting, error) {
	if err := s.failure("ClaimWaiting"); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	byUser := map[uuid.UUID][]*document.Document{}
	for _, d := range s.st.docs {
		if d.Waiting() != q.Stage || d.UpdatedAt.After(q.WaitedSince) {
			continue
		}
		if until, ok := s.classifyAfter[d.ID]; ok && until.After(q.Now) {
			continue
		}
		byUser[d.UserID] = append(byUser[d.UserID], d)
	}
	type turned struct {
		d    *document.Document
		turn int
	}
	var all []turned
	for _, docs := range byUser {
		slices.SortFunc(docs, func(a, b *document.Document) int {
			return cmp.Or(a.UpdatedAt.Compare(b.UpdatedAt), bytes.Compare(a.ID[:], b.ID[:]))
		})
		for i, d := range docs[:min(len(docs), q.PerUser)] {
			all = append(all, turned{d, i + 1})
		}
	}
	slices.SortFunc(all, func(a, b turned) int {
		return cmp.Or(cmp.Compare(a.turn, b.turn), a.d.UpdatedAt.Compare(b.d.UpdatedAt), bytes.Compare(a.d.ID[:], b.d.ID[:]))
	})
	all = all[:min(len(all), q.Limit)]
	if s.classifyAfter == nil {
		s.classifyAfter = map[uuid.UUID]time.Time{}
	}
	out := make([]document.Waiting, len(all))
	for i, t := range all {
		s.classifyAfter[t.d.ID] = q.Until
		out[i] = document.Waiting{ID: t.d.ID, UserID: t.d.UserID, Since: t.d.UpdatedAt}
	}
	return out, nil
}

// Postpone sets an uploaded document's claim end.
func (s *memStore) Postpone(_ context.Context, id uuid.UUID, until time.Time) error {
	if err := s.failure("Postpone"); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if d, ok := s.st.docs[id]; ok && d.Status == document.StatusUploaded {
		if s.classifyAfter == nil {
			s.classifyAfter = map[uuid.UUID]time.Time{}
		}
		s.classifyAfter[id] = until
	}
	return nil
}
