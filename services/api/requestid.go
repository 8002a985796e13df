package api

import (
	"crypto/rand"
	"net/http"
)

// RequestIDHeader carries every answer's request id, the one its log line
// has as req_id: what a client quotes in a support request.
const RequestIDHeader = "X-Request-Id"

// maxClientRequestID bounds the request id a client may send that is
// logged (as client_req_id).
const maxClientRequestID = 64

// newRequestID returns an id of the API's own making for a request: 128
// random bits, 26 characters. A client's own X-Request-Id is never taken
// for it: it would let anyone choose what the logs say and how much of them
// one line fills. It is logged beside it as client_req_id, only if
// clientRequestID accepts it.
func newRequestID() string { return rand.Text() }

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
