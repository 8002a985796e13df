package document

import (
	"errors"
	"fmt"
	"time"
)

// Code classifies an error for the transport layers: only HTTP maps codes to
// statuses and only consumers map codes to ack / nak / term.
type Code string

// Error codes.
const (
	Invalid       Code = "invalid"
	NotFound      Code = "not_found"
	Conflict      Code = "conflict"
	QuotaExceeded Code = "quota_exceeded"
	RateLimited   Code = "rate_limited"
	TooLarge      Code = "too_large"
	UploadMissing Code = "upload_missing"
	Unavailable   Code = "unavailable"
	Internal      Code = "internal"
)

// Error is an error with a code and a message that is safe to show a client.
type Error struct {
	Code    Code
	Message string
	Err     error // the cause, for logs; never shown to a client
}

// Errorf returns an *Error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error that keeps err as its cause.
func Wrap(code Code, err error, message string) *Error {
	return &Error{Code: code, Message: message, Err: err}
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// ErrorCode returns the code of e.
func (e *Error) ErrorCode() Code { return e.Code }

// QuotaExceededError reports an upload that does not fit in the owner's
// quota, with the figures the client is shown.
type QuotaExceededError struct {
	UsedBytes     int64 `json:"used_bytes"`
	LimitBytes    int64 `json:"limit_bytes"`
	RejectedBytes int64 `json:"rejected_bytes"`
}

func (e *QuotaExceededError) Error() string {
	return fmt.Sprintf("quota exceeded: %d of %d bytes used, upload needs %d", e.UsedBytes, e.LimitBytes, e.RejectedBytes)
}

// ErrorCode returns QuotaExceeded.
func (e *QuotaExceededError) ErrorCode() Code { return QuotaExceeded }

// RateLimitedError reports a client asking too often; it may try again
// after RetryAfter.
type RateLimitedError struct {
	Message    string
	RetryAfter time.Duration
}

func (e *RateLimitedError) Error() string { return e.Message }

// ErrorCode returns RateLimited.
func (e *RateLimitedError) ErrorCode() Code { return RateLimited }

// ErrorCode returns the code of the first error in err's chain that has one,
// Internal for any other non-nil error and "" for nil.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var coded interface{ ErrorCode() Code }
	if errors.As(err, &coded) {
		return coded.ErrorCode()
	}
	return Internal
}

// IsRejection reports whether err, from a confirmation, says the document
// broke a rule — over quota, too large, not the declared size (its
// RejectReason) — and is rejected for good: confirming again answers the
// same. An error of the same code that rejects no document (an invalid
// parts list, a request over the quota) is not a rejection.
func IsRejection(err error) bool {
	var r rejectionError
	return errors.As(err, &r)
}

// rejectionError marks the error a confirm of a rejected document answers
// (see rejection); the error it holds carries the code and the message.
type rejectionError struct{ error }

// Unwrap returns the error with the code and the message.
func (e rejectionError) Unwrap() error { return e.error }

// ErrorMessage returns the client-safe message of err.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	var q *QuotaExceededError
	if errors.As(err, &q) {
		return q.Error()
	}
	var r *RateLimitedError
	if errors.As(err, &r) {
		return r.Message
	}
	return "internal error"
}
