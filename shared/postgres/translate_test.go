package postgres

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
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

// TestTranslateMessageIsClientText checks that what a client may be shown
// (the message) is client text for every outcome, and that the operation
// goes only in the error logged.
func TestTranslateMessageIsClientText(t *testing.T) {
	for _, tc := range []struct {
		err     error
		op      string
		code    document.Code
		message string
	}{
		{translate(pgx.ErrNoRows, "read ledger cursor"), "read ledger cursor", document.NotFound, "not found"},
		{translateRow(pgx.ErrNoRows, "lock document", "document"), "lock document", document.NotFound, "document not found"},
		{translateRow(pgx.ErrNoRows, "charge quota", "quota"), "charge quota", document.NotFound, "quota not found"},
		{translate(&pgconn.PgError{Code: "23505"}, "create document"), "create document", document.Internal, "database error"},
		{translateRow(&pgconn.PgError{Code: "23505"}, "lock document", "document"), "lock document", document.Internal, "database error"},
		{translate(&pgconn.PgError{Code: "57P01"}, "ping PostgreSQL"), "ping PostgreSQL", document.Unavailable, "database unavailable"},
		{translate(errors.New("dial tcp: connection refused"), "connect to PostgreSQL"), "connect to PostgreSQL", document.Unavailable, "database unavailable"},
	} {
		var derr *document.Error
		if !errors.As(tc.err, &derr) {
			t.Errorf("%s: %v is not a document error", tc.op, tc.err)
			continue
		}
		if derr.Code != tc.code || derr.Message != tc.message {
			t.Errorf("%s: code %s, message %q; want %s, %q", tc.op, derr.Code, derr.Message, tc.code, tc.message)
		}
		if !strings.Contains(tc.err.Error(), tc.op) {
			t.Errorf("%s: the logged error %q does not name the operation", tc.op, tc.err)
		}
	}
	if err := translate(nil, "read quota"); err != nil {
		t.Errorf("translate(nil) = %v", err)
	}
	if err := translate(context.Canceled, "read quota"); err != context.Canceled {
		t.Errorf("translate(context.Canceled) = %v, want it unchanged", err)
	}
}
