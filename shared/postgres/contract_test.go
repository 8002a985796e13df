package postgres_test

import (
	"context"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/docuvault/docuvault/shared/document/storetest"
)

// TestStoreContract runs the Store contract suite against PostgreSQL, a
// fresh database per test.
func TestStoreContract(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) storetest.Subject {
		s, pool := openStore(t, storetest.Limit)
		return storetest.Subject{Store: s, Outbox: func(t *testing.T) []uuid.UUID {
			t.Helper()
			rows, err := pool.Query(context.Background(), `SELECT msg_id FROM outbox`)
			if err != nil {
				t.Fatal(err)
			}
			ids, err := pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
			if err != nil {
				t.Fatal(err)
			}
			return ids
		}}
	})
}
