package document

import (
	"errors"
	"fmt"
	"testing"
)

// TestIsRejectionOnlyForRejectedDocuments: the confirm outcomes counted in
// the metrics say "rejected" for a document rejected for one of the
// domain's reasons, keeping the code and message the client is shown, and
// never for another error of the same code.
func TestIsRejectionOnlyForRejectedDocuments(t *testing.T) {
	q := Quota{UsedBytes: 90, LimitBytes: 100}
	for _, c := range []struct {
		reason  string
		code    Code
		message string
	}{
		{ReasonOverQuota, QuotaExceeded, "quota exceeded: 90 of 100 bytes used, upload needs 20"},
		{ReasonTooLarge, TooLarge, "file too large: 20 bytes"},
		{ReasonSizeMismatch, Invalid, "upload rejected: size_mismatch"},
	} {
		d := &Document{SizeBytes: 20}
		d.reject(c.reason)
		err := rejection(d, q)
		for _, e := range []error{err, fmt.Errorf("confirm: %w", err)} {
			if !IsRejection(e) {
				t.Errorf("%s: IsRejection(%v) = false", c.reason, e)
			}
			if got := Outcome(Confirmation{}, e); got != OutcomeRejected {
				t.Errorf("%s: Outcome = %q, want rejected", c.reason, got)
			}
			if got := ErrorCode(e); got != c.code {
				t.Errorf("%s: ErrorCode = %q, want %q", c.reason, got, c.code)
			}
			if got := ErrorMessage(e); got != c.message {
				t.Errorf("%s: ErrorMessage = %q, want %q", c.reason, got, c.message)
			}
		}
	}
	var quota *QuotaExceededError
	if err := rejection(&Document{Status: StatusRejected, RejectReason: ReasonOverQuota, SizeBytes: 20}, q); !errors.As(err, &quota) || quota.RejectedBytes != 20 {
		t.Errorf("an over-quota rejection %v does not carry the client's figures", err)
	}

	for _, err := range []error{
		Errorf(Invalid, "part %d is listed twice", 2),
		Errorf(Invalid, "size_bytes must be positive"),
		Errorf(TooLarge, "file too large: %d bytes, the limit is %d bytes", 20, 10),
		&QuotaExceededError{UsedBytes: 90, LimitBytes: 100, RejectedBytes: 20},
		Errorf(NotFound, "document not found"),
		Errorf(UploadMissing, "upload missing"),
		errors.New("connection refused"),
	} {
		if IsRejection(err) {
			t.Errorf("IsRejection(%v) = true for an error that rejects no document", err)
		}
		if got := Outcome(Confirmation{}, err); got != OutcomeError {
			t.Errorf("Outcome(%v) = %q, want error", err, got)
		}
	}
	if IsRejection(nil) {
		t.Error("IsRejection(nil) = true")
	}
}
