package postgres

import (
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/docuvault/docuvault/shared/document"
)

// TestTranslateRestartIsUnavailable checks that what a restarting server
// answers is Unavailable (a 503, retried), and a failed statement Internal.
func TestTranslateRestartIsUnavailable(t *testing.T) {
	for _, tc := range []struct {
		code string
		want document.Code
	}{
		{"57P01", document.Unavailable}, // admin_shutdown
		{"57P02", document.Unavailable}, // crash_shutdown
		{"57P03", document.Unavailable}, // cannot_connect_now: starting up
		{"08006", document.Unavailable}, // connection_failure
		{"23505", document.Internal},    // unique_violation
		{"57014", document.Internal},    // query_canceled
	} {
		err := translate(&pgconn.PgError{Code: tc.code}, "x")
		var derr *document.Error
		if !errors.As(err, &derr) || derr.Code != tc.want {
			t.Errorf("SQLSTATE %s: got %v, want code %s", tc.code, err, tc.want)
		}
	}
}
