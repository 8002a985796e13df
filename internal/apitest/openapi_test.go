package apitest

import (
	"fmt"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/docuvault/docuvault/services/api"
)

const base = "http://127.0.0.1:8080"

func mustContract(t *testing.T) *openAPIContract {
	t.Helper()
	c, err := loadContract()
	if err != nil {
		t.Fatalf("load the OpenAPI document: %v", err)
	}
	return c
}

// exchange is one request and its answer, as the tests see them.
type exchange struct {
	method, path, token, reqCT, reqBody string
	status                              int
	header                              http.Header
	respBody                            string
	// bare leaves out the headers every answer (X-Request-Id) or every
	// answer with a presigned URL (Cache-Control: no-store) carries, which
	// check adds to header otherwise.
	bare bool
}

// requestID is an X-Request-Id as the API makes them.
const requestID = "MFRGGZDFMZTWQ2LKNNWG23TPOA"

func (e exchange) check(c *openAPIContract) error {
	req, err := http.NewRequest(e.method, base+e.path, nil)
	if err != nil {
		panic(err)
	}
	if e.token != "" {
		req.Header.Set("Authorization", "Bearer "+e.token)
	}
	if e.reqCT != "" {
		req.Header.Set("Content-Type", e.reqCT)
	}
	h := e.header.Clone()
	if h == nil {
		h = http.Header{}
	}
	if !e.bare && h.Get("X-Request-Id") == "" {
		h.Set("X-Request-Id", requestID)
	}
	if !e.bare && h.Get("Cache-Control") == "" {
		h.Set("Cache-Control", "no-store")
	}
	if h.Get("Content-Type") == "" && e.respBody != "" {
		h.Set("Content-Type", "application/json")
	}
	return c.check(req, []byte(e.reqBody), e.status, h, []byte(e.respBody))
}

func TestOpenAPIDocumentIsNative31(t *testing.T) {
	c := mustContract(t)
	if c.doc.OpenAPI != "3.1.0" || !c.doc.IsOpenAPI31OrLater() {
		t.Fatalf("openapi = %q, want 3.1.0", c.doc.OpenAPI)
	}
}

func TestOpenAPIContract(t *testing.T) {
	c := mustContract(t)
	id := uuid.NewString()
	uploadReq := `{"filename":"a.pdf","content_type":"application/pdf","size_bytes":12}`
	ticket := `{"upload_url":"http://localhost:9000/documents/u/d/k.pdf?X-Amz-Algorithm=AWS4-HMAC-SHA256","document_id":"` + id + `","expires_at":"2026-11-27T10:15:00.123456Z","headers":{"Content-Type":"application/pdf","If-None-Match":"*"}}`
	doc := func(extra string) string {
		return `{"id":"` + id + `","filename":"a.pdf","content_type":"application/pdf","declared_size":null,"size_bytes":0,"status":"pending","created_at":"2026-11-27T10:00:00Z","confirmed_at":null,"updated_at":"2026-11-27T10:00:00Z"` + extra + `}`
	}
	unauthorized := http.Header{"Content-Type": {"application/json"}, "Www-Authenticate": {`Bearer realm="docuvault"`}}
	sse := http.Header{"Content-Type": {"text/event-stream"}, "Cache-Control": {"no-store"}, "X-Accel-Buffering": {"no"}}

	for _, tc := range []struct {
		name string
		ex   exchange
		ok   bool
	}{
		{"upload-url 201", exchange{method: "POST", path: "/api/documents/upload-url", token: "t", reqCT: "application/json", reqBody: uploadReq, status: 201, respBody: ticket}, true},
		{"upload-url 201 without a size", exchange{method: "POST", path: "/api/documents/upload-url", token: "t", reqCT: "application/json", reqBody: `{"filename":"a.pdf","content_type":"application/pdf"}`, status: 201,
			respBody: strings.Replace(ticket, `,"Content-Length":"12"`, "", 1)}, true},
		{"upload-url 201 without If-None-Match", exchange{method: "POST", path: "/api/documents/upload-url", token: "t", reqCT: "application/json", reqBody: uploadReq, status: 201,
			respBody: strings.Replace(ticket, `,"If-None-Match":"*"`, "", 1)}, false},
		{"upload-url 201 with an extra field", exchange{method: "POST", path: "/api/documents/upload-url", token: "t", reqCT: "application/json", reqBody: uploadReq, status: 201,
			respBody: strings.Replace(ticket, `{"upload_url"`, `{"owner":"me","upload_url"`, 1)}, false},
		{"upload-url 201 without document_id", exchange{method: "POST", path: "/api/documents/upload-url", token: "t", reqCT: "application/json", reqBody: uploadReq, status: 201,
			respBody: strings.Replace(ticket, `"document_id":"`+id+`",`, "", 1)}, false},
		{"upload-url 201 with a document_id that is no uuid", exchange{method: "POST", path: "/api/documents/upload-url", token: "t", reqCT: "application/json", reqBody: uploadReq, status: 201,
			respBody: strings.Replace(ticket, id, "42", 1)}, false},
		{"upload-url 201 with a bad expires_at", exchange{method: "POST", path: "/api/documents/upload-url", token: "t", reqCT: "application/json", reqBody: uploadReq, status: 201,
			respBody: strings.Replace(ticket, "2026-11-27T10:15:00.123456Z", "tomorrow", 1)}, false},
		{"upload-url with an unknown field refused 400", exchange{method: "POST", path: "/api/documents/upload-url", token: "t", reqCT: "application/json", reqBody: `{"filename":"a.pdf","content_type":"application/pdf","owner":"me"}`, status: 400,
			respBody: `{"detail":"unknown field \"owner\""}`}, true},
		{"upload-url with an unknown field accepted", exchange{method: "POST", path: "/api/documents/upload-url", token: "t", reqCT: "application/json", reqBody: `{"filename":"a.pdf","content_type":"application/pdf","owner":"me"}`, status: 201,
			respBody: ticket}, false},
		{"upload-url without a token accepted", exchange{method: "POST", path: "/api/documents/upload-url", reqCT: "application/json", reqBody: uploadReq, status: 201, respBody: ticket}, false},
		{"upload-url 413 over quota", exchange{method: "POST", path: "/api/documents/upload-url", token: "t", reqCT: "application/json", reqBody: uploadReq, status: 413,
			respBody: `{"detail":{"used_bytes":100,"limit_bytes":105,"rejected_bytes":12}}`}, true},
		{"upload-url 413 with a half quota object", exchange{method: "POST", path: "/api/documents/upload-url", token: "t", reqCT: "application/json", reqBody: uploadReq, status: 413,
			respBody: `{"detail":{"used_bytes":100}}`}, false},
		{"upload-url 409 is not documented", exchange{method: "POST", path: "/api/documents/upload-url", token: "t", reqCT: "application/json", reqBody: uploadReq, status: 409,
			respBody: `{"detail":"conflict"}`}, false},
		{"401 with WWW-Authenticate", exchange{method: "GET", path: "/api/auth/me", status: 401, header: unauthorized, respBody: `{"detail":"auth: no token"}`}, true},
		{"401 without WWW-Authenticate", exchange{method: "GET", path: "/api/auth/me", status: 401, respBody: `{"detail":"auth: no token"}`}, false},
		{"me", exchange{method: "GET", path: "/api/auth/me", token: "t", status: 200, respBody: `{"id":"` + id + `","role":"user"}`}, true},
		{"me with an unknown role", exchange{method: "GET", path: "/api/auth/me", token: "t", status: 200, respBody: `{"id":"` + id + `","role":"root"}`}, false},
		{"get a pending document", exchange{method: "GET", path: "/api/documents/" + id, token: "t", status: 200, respBody: doc("")}, true},
		{"get an uploaded document", exchange{method: "GET", path: "/api/documents/" + id, token: "t", status: 200,
			respBody: strings.NewReplacer(`"declared_size":null`, `"declared_size":5`, `"confirmed_at":null`, `"confirmed_at":"2026-11-27T10:00:01.5Z"`, `"pending"`, `"uploaded"`).Replace(doc(`,"download_url":"http://localhost:9000/documents/k?X-Amz-Signature=abc"`))}, true},
		{"get a rejected document", exchange{method: "GET", path: "/api/documents/" + id, token: "t", status: 200,
			respBody: strings.Replace(doc(`,"reject_reason":"over_quota"`), `"pending"`, `"rejected"`, 1)}, true},
		{"get a classified document", exchange{method: "GET", path: "/api/documents/" + id, token: "t", status: 200,
			respBody: strings.Replace(doc(`,"classification":"invoice","detected_type":"application/pdf","confidence":0.93`), `"pending"`, `"classified"`, 1)}, true},
		{"get a document whose classification failed", exchange{method: "GET", path: "/api/documents/" + id, token: "t", status: 200,
			respBody: strings.Replace(doc(`,"detected_type":"application/x-msdownload","classification_reason":"type_mismatch"`), `"pending"`, `"classification_failed"`, 1)}, true},
		{"get a document with a confidence over 1", exchange{method: "GET", path: "/api/documents/" + id, token: "t", status: 200,
			respBody: strings.Replace(doc(`,"classification":"invoice","confidence":93`), `"pending"`, `"classified"`, 1)}, false},
		{"classify", exchange{method: "POST", path: "/api/documents/" + id + "/classify", token: "t", status: 202, respBody: `{"id":"` + id + `","status":"uploaded"}`}, true},
		{"classify a pending document", exchange{method: "POST", path: "/api/documents/" + id + "/classify", token: "t", status: 409, respBody: `{"detail":"document is pending: only an uploaded document can be classified"}`}, true},
		{"list by classification", exchange{method: "GET", path: "/api/documents?classification=invoice", token: "t", status: 200, respBody: `{"items":[],"next_cursor":null}`}, true},
		{"get a document with an unknown status", exchange{method: "GET", path: "/api/documents/" + id, token: "t", status: 200, respBody: strings.Replace(doc(""), `"pending"`, `"done"`, 1)}, false},
		{"get a document without confirmed_at", exchange{method: "GET", path: "/api/documents/" + id, token: "t", status: 200, respBody: strings.Replace(doc(""), `,"confirmed_at":null`, "", 1)}, false},
		{"get a document with a fractional size", exchange{method: "GET", path: "/api/documents/" + id, token: "t", status: 200, respBody: strings.Replace(doc(""), `"size_bytes":0`, `"size_bytes":0.5`, 1)}, false},
		{"get a document whose id is no uuid", exchange{method: "GET", path: "/api/documents/" + id, token: "t", status: 200, respBody: strings.Replace(doc(""), `"id":"`+id+`"`, `"id":"42"`, 1)}, false},
		{"get a document with a bad created_at", exchange{method: "GET", path: "/api/documents/" + id, token: "t", status: 200, respBody: strings.Replace(doc(""), `"created_at":"2026-11-27T10:00:00Z"`, `"created_at":"yesterday"`, 1)}, false},
		{"get a document with a bad confirmed_at", exchange{method: "GET", path: "/api/documents/" + id, token: "t", status: 200, respBody: strings.Replace(doc(""), `"confirmed_at":null`, `"confirmed_at":"soon"`, 1)}, false},
		{"get a document with a string declared_size", exchange{method: "GET", path: "/api/documents/" + id, token: "t", status: 200, respBody: strings.Replace(doc(""), `"declared_size":null`, `"declared_size":"5"`, 1)}, false},
		{"get a document with an extra field", exchange{method: "GET", path: "/api/documents/" + id, token: "t", status: 200, respBody: doc(`,"object_key":"k"`)}, false},
		{"get a document with an unknown reject_reason", exchange{method: "GET", path: "/api/documents/" + id, token: "t", status: 200, respBody: doc(`,"reject_reason":"spite"`)}, false},
		{"get a document with a relative download_url", exchange{method: "GET", path: "/api/documents/" + id, token: "t", status: 200, respBody: doc(`,"download_url":"/k"`)}, false},
		{"list with an extra field in an item", exchange{method: "GET", path: "/api/documents", token: "t", status: 200, respBody: `{"items":[` + doc(`,"object_key":"k"`) + `],"next_cursor":null}`}, false},
		{"list without next_cursor", exchange{method: "GET", path: "/api/documents", token: "t", status: 200, respBody: `{"items":[]}`}, false},
		{"404 with a quota object", exchange{method: "GET", path: "/api/documents/" + id, token: "t", status: 404, respBody: `{"detail":{"used_bytes":1,"limit_bytes":1,"rejected_bytes":1,"extra":1}}`}, false},
		{"get a malformed id 404", exchange{method: "GET", path: "/api/documents/nope", token: "t", status: 404, respBody: `{"detail":"document not found"}`}, true},
		{"list", exchange{method: "GET", path: "/api/documents?status=pending&limit=2", token: "t", status: 200, respBody: `{"items":[` + doc("") + `],"next_cursor":"abc"}`}, true},
		{"list with empty parameters", exchange{method: "GET", path: "/api/documents?status=&limit=&cursor=", token: "t", status: 200, respBody: `{"items":[],"next_cursor":null}`}, true},
		{"list with a bad status accepted", exchange{method: "GET", path: "/api/documents?status=done", token: "t", status: 200, respBody: `{"items":[],"next_cursor":null}`}, false},
		{"list with a bad status refused", exchange{method: "GET", path: "/api/documents?status=done", token: "t", status: 422, respBody: `{"detail":"status \"done\" is not one of pending, uploaded, classified, classification_failed, rejected"}`}, true},
		{"list with a bad limit refused", exchange{method: "GET", path: "/api/documents?limit=abc", token: "t", status: 422, respBody: `{"detail":"limit must be a positive integer"}`}, true},
		{"delete 204", exchange{method: "DELETE", path: "/api/documents/" + id, token: "t", status: 204}, true},
		{"delete 204 with a body", exchange{method: "DELETE", path: "/api/documents/" + id, token: "t", status: 204, respBody: `{}`}, false},
		{"confirm", exchange{method: "POST", path: "/api/documents/" + id + "/confirm", token: "t", status: 200, respBody: `{"id":"` + id + `","size_bytes":3,"used_bytes":3,"status":"uploaded"}`}, true},
		{"confirm answering pending", exchange{method: "POST", path: "/api/documents/" + id + "/confirm", token: "t", status: 200, respBody: `{"id":"` + id + `","size_bytes":3,"used_bytes":3,"status":"pending"}`}, false},
		{"confirm 422", exchange{method: "POST", path: "/api/documents/" + id + "/confirm", token: "t", status: 422, respBody: `{"detail":"Upload not found — presigned URL may have expired"}`}, true},
		{"set quota", exchange{method: "PUT", path: "/api/admin/users/" + id + "/quota", token: "t", reqCT: "application/json", reqBody: `{"limit_bytes":5000}`, status: 200,
			respBody: `{"user_id":"` + id + `","used_bytes":0,"limit_bytes":5000}`}, true},
		{"set a negative quota refused", exchange{method: "PUT", path: "/api/admin/users/" + id + "/quota", token: "t", reqCT: "application/json", reqBody: `{"limit_bytes":-1}`, status: 422,
			respBody: `{"detail":"limit_bytes must not be negative"}`}, true},
		{"set quota as a user", exchange{method: "PUT", path: "/api/admin/users/" + id + "/quota", token: "t", reqCT: "application/json", reqBody: `{"limit_bytes":5}`, status: 403,
			respBody: `{"detail":"admin role required"}`}, true},
		{"sweep", exchange{method: "POST", path: "/api/admin/sweep", token: "t", status: 202, respBody: `{"run_id":"` + id + `"}`}, true},
		{"sweep answering 200", exchange{method: "POST", path: "/api/admin/sweep", token: "t", status: 200, respBody: `{"run_id":"` + id + `"}`}, false},
		{"events", exchange{method: "GET", path: "/api/events", token: "t", status: 200, header: sse, respBody: ": connected\n\nid: x\nevent: document.uploaded\ndata: {}\n\n"}, true},
		{"events as JSON", exchange{method: "GET", path: "/api/events", token: "t", status: 200, header: http.Header{"Content-Type": {"application/json"}, "Cache-Control": {"no-store"}, "X-Accel-Buffering": {"no"}}, respBody: `{}`}, false},
		{"events without Cache-Control", exchange{method: "GET", path: "/api/events", token: "t", status: 200, header: http.Header{"Content-Type": {"text/event-stream"}, "X-Accel-Buffering": {"no"}, "X-Request-Id": {requestID}}, respBody: ": connected\n\n", bare: true}, false},
		{"upload-url 201 without no-store", exchange{method: "POST", path: "/api/documents/upload-url", token: "t", reqCT: "application/json", reqBody: uploadReq, status: 201, respBody: ticket,
			header: http.Header{"X-Request-Id": {requestID}}, bare: true}, false},
		{"get a document without no-store", exchange{method: "GET", path: "/api/documents/" + id, token: "t", status: 200, respBody: doc(""), header: http.Header{"X-Request-Id": {requestID}}, bare: true}, false},
		{"dev token without no-store", exchange{method: "POST", path: "/api/dev/token", status: 200, respBody: `{"token":"a.b.c","user_id":"` + id + `"}`, header: http.Header{"X-Request-Id": {requestID}}, bare: true}, false},
		{"an answer without X-Request-Id", exchange{method: "GET", path: "/api/auth/me", token: "t", status: 200, respBody: `{"id":"` + id + `","role":"user"}`, bare: true}, false},
		{"an error without X-Request-Id", exchange{method: "GET", path: "/api/documents/nope", token: "t", status: 404, respBody: `{"detail":"document not found"}`, bare: true}, false},
		{"a client's X-Request-Id returned", exchange{method: "GET", path: "/api/auth/me", token: "t", status: 200, respBody: `{"id":"` + id + `","role":"user"}`, header: http.Header{"X-Request-Id": {"my id\r\nlevel: fatal"}}}, false},
		{"dev token refused for another Host", exchange{method: "POST", path: "/api/dev/token", status: 403, respBody: `{"detail":"dev tokens are minted only for the dev server's own loopback host names"}`}, true},
		{"upload-url 415 without a Content-Type", exchange{method: "POST", path: "/api/documents/upload-url", token: "t", reqBody: uploadReq, status: 415, respBody: `{"detail":"Content-Type must be application/json"}`}, true},
		{"upload-url without a Content-Type accepted", exchange{method: "POST", path: "/api/documents/upload-url", token: "t", reqBody: uploadReq, status: 201, respBody: ticket}, false},
		{"healthz", exchange{method: "GET", path: "/healthz", status: 200, respBody: `{"status":"ok"}`}, true},
		{"readyz 503", exchange{method: "GET", path: "/readyz", status: 503, respBody: `{"detail":"not ready: minio unavailable","checks":{"minio":"unavailable","nats":"ok","postgres":"ok"}}`}, true},
		{"readyz 200", exchange{method: "GET", path: "/readyz", status: 200, respBody: `{"status":"ready","checks":{"minio":"ok","nats":"ok","postgres":"ok"}}`}, true},
		{"dev token", exchange{method: "POST", path: "/api/dev/token", status: 200, respBody: `{"token":"a.b.c","user_id":"` + id + `"}`}, true},
		{"dev token outside dev mode", exchange{method: "POST", path: "/api/dev/token", status: 401, header: unauthorized, respBody: `{"detail":"auth: no token"}`}, true},
		{"metrics", exchange{method: "GET", path: "/metrics", status: 200, header: http.Header{"Content-Type": {"text/plain; version=0.0.4; charset=utf-8"}}, respBody: "# HELP x y\nx 1\n"}, true},
		{"openapi.json", exchange{method: "GET", path: "/openapi.json", status: 200, respBody: `{"openapi":"3.1.0","info":{},"paths":{}}`}, true},
		{"page", exchange{method: "GET", path: "/", status: 200, header: pageHeader("text/html; charset=utf-8"), respBody: "<!doctype html>"}, true},
		{"page file", exchange{method: "GET", path: "/app.js", status: 200, header: pageHeader("text/javascript; charset=utf-8"), respBody: "'use strict';"}, true},
		{"page file without its CSP", exchange{method: "GET", path: "/app.js", status: 200, header: http.Header{"Content-Type": {"text/javascript; charset=utf-8"}}, respBody: "'use strict';"}, false},
		{"unknown page file", exchange{method: "GET", path: "/nope", status: 404, respBody: `{"detail":"not found"}`}, true},
		{"unknown path 404", exchange{method: "GET", path: "/a/b", status: 404, respBody: `{"detail":"not found"}`}, true},
		{"unknown path under /api 401", exchange{method: "GET", path: "/api/nope", status: 401, header: unauthorized, respBody: `{"detail":"auth: no token"}`}, true},
		{"unknown path answered 200", exchange{method: "GET", path: "/api/nope", token: "t", status: 200, respBody: `{"detail":"not found"}`}, false},
		{"unknown path with a non-Error body", exchange{method: "GET", path: "/api/nope", token: "t", status: 404, respBody: `{"error":"not found"}`}, false},
		{"wrong method 405", exchange{method: "PATCH", path: "/api/documents/" + id, token: "t", status: 405, respBody: `{"detail":"method not allowed"}`}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.ex.check(c)
			switch {
			case tc.ok && err != nil:
				t.Fatalf("want it to match the document: %v", err)
			case !tc.ok && err == nil:
				t.Fatal("want a contract violation, got none")
			case err != nil:
				t.Logf("violation, as wanted: %v", err)
			}
		})
	}
}

func pageHeader(ct string) http.Header {
	return http.Header{
		"Content-Type":            {ct},
		"Content-Security-Policy": {"default-src 'self'; connect-src 'self' http://127.0.0.1:9000; img-src 'self' data:"},
		"X-Content-Type-Options":  {"nosniff"},
		"Referrer-Policy":         {"no-referrer"},
		"X-Frame-Options":         {"DENY"},
		"Cache-Control":           {"no-cache"},
	}
}

// recorder is a testing.TB that records failures instead of failing.
type recorder struct {
	testing.TB
	errors []string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func TestValidateExchangeReports(t *testing.T) {
	id := uuid.NewString()
	req, _ := http.NewRequest(http.MethodGet, base+"/api/auth/me", nil)
	req.Header.Set("Authorization", "Bearer t")
	resp := &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}, "X-Request-Id": {requestID}}}

	rec := &recorder{TB: t}
	ValidateExchange(rec, req, nil, resp, []byte(`{"id":"`+id+`","role":"user"}`))
	if len(rec.errors) != 0 {
		t.Fatalf("a matching exchange failed: %v", rec.errors)
	}
	ValidateExchange(rec, req, nil, resp, []byte(`{"id":"`+id+`","role":"user","admin":true}`))
	if len(rec.errors) != 1 || !strings.Contains(rec.errors[0], "GET /api/auth/me answered 200") {
		t.Fatalf("errors = %q, want one naming the method, path and status", rec.errors)
	}
	t.Logf("reported: %s", rec.errors[0])
}

// TestOpenAPIDocumentsEveryRoute walks the API's router: every route it
// serves must be in the document, and every operation in the document must
// be served.
func TestOpenAPIDocumentsEveryRoute(t *testing.T) {
	c := mustContract(t)
	routes, err := apiRoutes()
	if err != nil {
		t.Fatalf("cannot build the API's router without its dependencies: %v", err)
	}
	documented := map[string]bool{}
	for path, item := range c.doc.Paths.Map() {
		for method := range item.Operations() {
			documented[method+" "+path] = true
		}
	}
	for _, r := range routes {
		if !documented[r] {
			t.Errorf("%s is served but not in the OpenAPI document", r)
		}
		delete(documented, r)
	}
	var missing []string
	for r := range documented {
		missing = append(missing, r)
	}
	sort.Strings(missing)
	for _, r := range missing {
		if notServedYet[r] {
			t.Logf("%s is in the OpenAPI document but not served yet", r)
			continue
		}
		t.Errorf("%s is in the OpenAPI document but not served", r)
	}
}

// notServedYet are documented routes being implemented; take each out once
// the router serves it.
var notServedYet = map[string]bool{}

// apiRoutes returns "METHOD /pattern" for every route of api.Handler in dev
// mode. Its dependencies are zero values: building the router uses none.
func apiRoutes() (routes []string, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("api.Handler panicked: %v", p)
		}
	}()
	var d api.Deps
	v := reflect.ValueOf(&d).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		if f.Kind() == reflect.Pointer && f.IsNil() && f.CanSet() && f.Type().Elem().Kind() == reflect.Struct {
			f.Set(reflect.New(f.Type().Elem()))
		}
	}
	d.DevToken = func() (string, uuid.UUID, error) { return "", uuid.Nil, nil }
	r, ok := api.Handler(d).(chi.Routes)
	if !ok {
		return nil, fmt.Errorf("api.Handler is a %T, not a chi router", api.Handler(d))
	}
	err = chi.Walk(r, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		routes = append(routes, method+" "+strings.TrimSuffix(strings.ReplaceAll(route, "/*/", "/"), "/*"))
		return nil
	})
	return routes, err
}
