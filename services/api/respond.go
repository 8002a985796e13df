package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/shared/document"
)

// maxBodyBytes bounds every JSON request body.
const maxBodyBytes = 64 << 10

// writeJSON writes v as the JSON response body with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeSecret writes v, which carries a presigned URL or a token, as the
// JSON response body with status, marked Cache-Control: no-store: no cache
// on the way (nor the browser's) may keep what grants access to a
// document. Every answer carrying a presigned URL goes through it.
func writeSecret(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, v)
}

// errorBody is every error response: {"detail": ...}.
type errorBody struct {
	Detail any `json:"detail"`
}

// writeDetail writes an error response with a text detail.
func writeDetail(w http.ResponseWriter, status int, detail string) {
	writeJSON(w, status, errorBody{Detail: detail})
}

// statusOf maps a document error code to an HTTP status.
var statusOf = map[document.Code]int{
	document.Invalid:       http.StatusUnprocessableEntity,
	document.NotFound:      http.StatusNotFound,
	document.Conflict:      http.StatusConflict,
	document.QuotaExceeded: http.StatusRequestEntityTooLarge,
	document.RateLimited:   http.StatusTooManyRequests,
	document.TooLarge:      http.StatusRequestEntityTooLarge,
	document.UploadMissing: http.StatusUnprocessableEntity,
	document.Unavailable:   http.StatusServiceUnavailable,
	document.Internal:      http.StatusInternalServerError,
}

// writeError answers err; server-side failures are logged here, once.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	var quota *document.QuotaExceededError
	if errors.As(err, &quota) {
		writeJSON(w, http.StatusRequestEntityTooLarge, errorBody{Detail: quota})
		return
	}
	var limited *document.RateLimitedError
	if errors.As(err, &limited) {
		w.Header().Set("Retry-After", strconv.Itoa(int(limited.RetryAfter.Round(time.Second).Seconds())))
	}
	status, ok := statusOf[document.ErrorCode(err)]
	if !ok {
		status = http.StatusInternalServerError
	}
	if status >= 500 {
		zerolog.Ctx(r.Context()).Error().Err(err).Int("status", status).Msg("request failed")
	}
	writeDetail(w, status, document.ErrorMessage(err))
}

// decodeJSON reads one JSON object of at most maxBodyBytes into dst,
// refusing unknown fields and trailing data. Its errors are answered 400,
// or 413 for a body that is too large.
func decodeJSON(w http.ResponseWriter, r *http.Request, dst any) (status int, err error) {
	return decodeJSONUpTo(w, r, dst, maxBodyBytes)
}

// decodeJSONUpTo is decodeJSON with a body of at most limit bytes.
func decodeJSONUpTo(w http.ResponseWriter, r *http.Request, dst any, limit int64) (status int, err error) {
	ct := r.Header.Get("Content-Type")
	// A body without a Content-Type is refused like one of another type:
	// what a client did not declare JSON is not read as JSON. (No body at
	// all is answered below: the body is empty.)
	if (ct != "" || r.ContentLength != 0) && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		return http.StatusUnsupportedMediaType, errors.New("Content-Type must be application/json")
	}
	if r.ContentLength > limit {
		// Announced too large: refuse before reading a byte of it.
		return http.StatusRequestEntityTooLarge, fmt.Errorf("request body is larger than %d bytes", limit)
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, limit))
	dec.DisallowUnknownFields()
	err = dec.Decode(dst)
	if err == nil {
		if _, extra := dec.Token(); extra != io.EOF {
			err = errors.New("body must hold a single JSON object")
		}
	}
	if err == nil {
		return 0, nil
	}
	var tooLarge *http.MaxBytesError
	var syntax *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &tooLarge):
		return http.StatusRequestEntityTooLarge, fmt.Errorf("request body is larger than %d bytes", limit)
	case errors.Is(err, io.EOF):
		return http.StatusBadRequest, errors.New("request body is empty")
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
		return http.StatusBadRequest, errors.New("malformed JSON")
	case errors.As(err, &typeErr):
		return http.StatusBadRequest, fmt.Errorf("field %s has the wrong type", typeErr.Field)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return http.StatusBadRequest, fmt.Errorf("unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return http.StatusBadRequest, err
}

// readJSON decodes the body into dst or answers the error; ok reports which.
func readJSON(w http.ResponseWriter, r *http.Request, dst any) (ok bool) {
	return readJSONUpTo(w, r, dst, maxBodyBytes)
}

// readJSONUpTo is readJSON with a body of at most limit bytes.
func readJSONUpTo(w http.ResponseWriter, r *http.Request, dst any, limit int64) (ok bool) {
	status, err := decodeJSONUpTo(w, r, dst, limit)
	if err != nil {
		writeDetail(w, status, err.Error())
		return false
	}
	return true
}
