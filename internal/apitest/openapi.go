package apitest

// Contract checking: every exchange the end-to-end tests have with the API
// is checked against services/api/openapi.json, so the document and the code
// cannot drift apart unnoticed.
//
// The document is OpenAPI 3.1 and kin-openapi v0.153.0 validates it
// natively, no conversion: the loader reads 3.1, (*openapi3.T).Validate
// applies the 3.1 rules, and openapi3filter turns on JSON Schema 2020-12
// validation (openapi3.EnableJSONSchema2020) for 3.1 documents. A schema
// that refers to components (Document, Error, ...) and uses no 2020-only
// keyword is checked by kin-openapi's own validator in its 3.1 mode instead;
// either way type arrays such as ["string", "null"], oneOf, enum, required
// and additionalProperties: false are enforced (openapi_test.go checks each).
// Formats are asserted: date-time and int64 by kin-openapi, uuid and uri by
// the validators below.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/docuvault/docuvault/services/api"
)

var (
	contractOnce sync.Once
	contract     *openAPIContract
	contractErr  error
)

// ValidateExchange fails the test when req (whose body was reqBody) or resp
// (whose body was respBody) does not match the API's OpenAPI document.
// A nil reqBody is read again through req.GetBody when the request has one
// (http.NewRequest sets it for bytes and strings readers). Call it for
// exchanges with the API only, not with presigned MinIO URLs.
//
//   - The response must be documented for the operation, status included,
//     with a documented Content-Type, the documented required headers, and a
//     body that matches its schema (bodies of text/event-stream responses are
//     not checked; an operation documented without content must answer none).
//   - A request that does not match the document must be refused (a 4xx or
//     5xx answer): the tests send malformed requests on purpose, but the API
//     must never accept what its document forbids.
//   - A path or method the document does not have must be answered with an
//     Error body and a 4xx status (404 from the router, 401 first under /api,
//     405 for a wrong method).
func ValidateExchange(tb testing.TB, req *http.Request, reqBody []byte, resp *http.Response, respBody []byte) {
	tb.Helper()
	c, err := loadContract()
	if err != nil {
		tb.Errorf("OpenAPI document: %v", err)
		return
	}
	if reqBody == nil && req.GetBody != nil {
		if body, err := req.GetBody(); err == nil {
			reqBody, _ = io.ReadAll(body)
			body.Close()
		}
	}
	if err := c.check(req, reqBody, resp.StatusCode, resp.Header, respBody); err != nil {
		tb.Errorf("OpenAPI contract: %s %s answered %d: %v", req.Method, req.URL.RequestURI(), resp.StatusCode, err)
	}
}

// loadContract builds the validator once per test binary.
func loadContract() (*openAPIContract, error) {
	contractOnce.Do(func() {
		var data []byte
		data, contractErr = readOpenAPI()
		if contractErr == nil {
			contract, contractErr = newOpenAPIContract(data)
		}
	})
	return contract, contractErr
}

// readOpenAPI returns the document the API serves on /openapi.json.
func readOpenAPI() ([]byte, error) { return api.OpenAPI, nil }

// openAPIContract checks exchanges against one loaded document.
type openAPIContract struct {
	doc         *openapi3.T
	router      routers.Router
	errorSchema *openapi3.Schema
	formats     []openapi3.SchemaValidationOption
}

var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// newOpenAPIContract loads and validates the document data.
func newOpenAPIContract(data []byte) (*openAPIContract, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(data)
	if err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("invalid: %w", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		return nil, fmt.Errorf("openapi %q: want 3.1", doc.OpenAPI)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("router: %w", err)
	}
	errRef := doc.Components.Schemas["Error"]
	if errRef == nil || errRef.Value == nil {
		return nil, errors.New("no components.schemas.Error")
	}
	return &openAPIContract{
		doc:         doc,
		router:      router,
		errorSchema: errRef.Value,
		formats: []openapi3.SchemaValidationOption{
			// kin-openapi asserts only date, date-time and the integer
			// formats by default. A uuid is what uuid.UUID marshals to.
			openapi3.WithStringFormatValidator("uuid", openapi3.NewRegexpFormatValidator(uuidPattern.String())),
			openapi3.WithStringFormatValidator("uri", openapi3.NewCallbackValidator(func(s string) error {
				u, err := url.Parse(s)
				if err != nil {
					return err
				}
				if !u.IsAbs() || u.Host == "" {
					return fmt.Errorf("%q is not an absolute URL", s)
				}
				return nil
			})),
		},
	}, nil
}

// check returns why the exchange does not match the document, or nil.
func (c *openAPIContract) check(req *http.Request, reqBody []byte, status int, header http.Header, respBody []byte) error {
	ctx := context.Background()
	r := req.Clone(ctx)
	r.Body, r.GetBody, r.ContentLength = http.NoBody, nil, 0
	if len(reqBody) > 0 {
		r.Body = io.NopCloser(bytes.NewReader(reqBody))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(reqBody)), nil }
		r.ContentLength = int64(len(reqBody))
	}

	route, params, err := c.router.FindRoute(r)
	switch {
	case errors.Is(err, routers.ErrPathNotFound), errors.Is(err, routers.ErrMethodNotAllowed):
		return c.checkUndocumented(err, status, header, respBody)
	case err != nil:
		return fmt.Errorf("find route: %w", err)
	}

	reqIn := &openapi3filter.RequestValidationInput{
		Request:    r,
		PathParams: params,
		Route:      route,
		Options: &openapi3filter.Options{
			MultiError:              true,
			SkipSettingDefaults:     true,
			AuthenticationFunc:      bearerPresent,
			SchemaValidationOptions: c.formats,
		},
	}
	if err := openapi3filter.ValidateRequest(ctx, reqIn); err != nil && status < 400 {
		return fmt.Errorf("the request does not match the document, yet it was accepted: %w", err)
	}

	mediaType := ""
	if ct := header.Get("Content-Type"); ct != "" {
		if mediaType, _, err = mime.ParseMediaType(ct); err != nil {
			return fmt.Errorf("response Content-Type %q: %w", ct, err)
		}
	}
	stream := mediaType == "text/event-stream"
	respIn := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: reqIn,
		Status:                 status,
		Header:                 header,
		Options: &openapi3filter.Options{
			MultiError:              true,
			IncludeResponseStatus:   true,
			ExcludeResponseBody:     stream,
			SchemaValidationOptions: c.formats,
		},
	}
	respIn.SetBodyBytes(respBody)
	if err := openapi3filter.ValidateResponse(ctx, respIn); err != nil {
		return fmt.Errorf("the response does not match the document: %w", err)
	}

	// What ValidateResponse leaves out: a body where none is documented, and
	// the Content-Type when the body is not checked.
	ref := route.Operation.Responses.Status(status)
	if ref == nil || ref.Value == nil {
		return nil // the default response; ValidateResponse checked it
	}
	content := ref.Value.Content
	switch {
	case len(content) == 0 && len(bytes.TrimSpace(respBody)) > 0:
		return fmt.Errorf("the document gives status %d no body, yet one came: %.200q", status, respBody)
	case len(content) > 0 && stream && content.Get(header.Get("Content-Type")) == nil:
		return fmt.Errorf("response Content-Type %q is not documented for status %d", header.Get("Content-Type"), status)
	}
	return nil
}

// checkUndocumented checks the answer to a path or method the document does
// not have: a client error with an Error body.
func (c *openAPIContract) checkUndocumented(why error, status int, header http.Header, respBody []byte) error {
	if status < 400 || status >= 500 {
		return fmt.Errorf("%v in the document, yet the API answered it", why)
	}
	if mt, _, _ := mime.ParseMediaType(header.Get("Content-Type")); mt != "application/json" {
		return fmt.Errorf("%v in the document; the answer's Content-Type %q is not application/json", why, header.Get("Content-Type"))
	}
	var body any
	if err := json.Unmarshal(respBody, &body); err != nil {
		return fmt.Errorf("%v in the document; the answer is not JSON: %w", why, err)
	}
	opts := append([]openapi3.SchemaValidationOption{openapi3.EnableJSONSchema2020(), openapi3.VisitAsResponse()}, c.formats...)
	if err := c.errorSchema.VisitJSON(body, opts...); err != nil {
		return fmt.Errorf("%v in the document; the answer is not an Error: %w", why, err)
	}
	return nil
}

// bearerPresent passes a request that carries a bearer token, whatever it
// is: whether the token is valid is the API's business, and its tests check
// that a bad one is answered 401.
func bearerPresent(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	s := in.SecurityScheme
	if s == nil || s.Type != "http" || !strings.EqualFold(s.Scheme, "bearer") {
		return in.NewError(fmt.Errorf("security scheme %q is not an HTTP bearer scheme", in.SecuritySchemeName))
	}
	scheme, token, ok := strings.Cut(in.RequestValidationInput.Request.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "bearer") || strings.TrimSpace(token) == "" {
		return in.NewError(errors.New("no bearer token"))
	}
	return nil
}
