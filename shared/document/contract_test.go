package document_test

import (
	"testing"

	"github.com/google/uuid"

	"github.com/docuvault/docuvault/shared/document/storetest"
)

// TestStoreContract runs the Store contract suite against the in-memory
// fake the use case tests run on, so that it says what PostgreSQL says
// (shared/postgres runs the same suite).
func TestStoreContract(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) storetest.Subject {
		s := newMemStore(storetest.Limit)
		return storetest.Subject{Store: s, Outbox: func(*testing.T) []uuid.UUID {
			var ids []uuid.UUID
			for _, e := range s.events() {
				ids = append(ids, e.ID)
			}
			return ids
		}}
	})
}
