package api

import (
	"context"
	"crypto/rand"
	"net/http"
)

// RequestIDHeader carries every answer's request id, the one its log line
// has as req_id: what a client quotes in a support request.
const RequestIDHeader = "X-Request-Id"

// maxClientRequestID bounds the request id a client may send that is
// logged (as client_req_id).
const maxClientRequestID = 64

type requestIDKey struct{}

// requestID gives every request an id of the API's own making (128 random
// bits, 26 characters), returned in X-Request-Id and logged as req_id. A
// client's own X-Request-Id is never taken for it: it would let anyone
// choose what the logs say and how much of them one line fills. It is
// logged beside it as client_req_id, only if clientRequestID accepts it.
func requestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := rand.Text()
		w.Header().Set(RequestIDHeader, id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestIDKey{}, id)))
	})
}

// requestIDOf returns the id requestID gave the request of ctx.
func requestIDOf(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// clientRequestID returns the X-Request-Id a client sent, when it is one
// short token (at most maxClientRequestID ASCII letters, digits and
// ".-_:"), and "" otherwise: anything else is not logged at all, neither
// cut nor escaped.
func clientRequestID(r *http.Request) string {
	v := r.Header.Values(RequestIDHeader)
	if len(v) != 1 || v[0] == "" || len(v[0]) > maxClientRequestID {
		return ""
	}
	for _, c := range []byte(v[0]) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '-', c == '_', c == ':':
		default:
			return ""
		}
	}
	return v[0]
}
