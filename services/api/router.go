package api

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/go-chi/cors"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/docuvault/docuvault/shared/auth"
	"github.com/docuvault/docuvault/shared/document"
	"github.com/docuvault/docuvault/shared/metrics"
	"github.com/docuvault/docuvault/shared/probe"
)

// Check reports whether a dependency is reachable, for /readyz.
type Check struct {
	Name string
	Ping func(context.Context) error
}

// Docs is the document use cases the API is a door of.
type Docs interface {
	RequestUpload(ctx context.Context, user uuid.UUID, req document.UploadRequest) (document.UploadTicket, error)
	Confirm(ctx context.Context, user, id uuid.UUID) (document.Confirmation, error)
	Reclassify(ctx context.Context, user, id uuid.UUID) (*document.Document, error)
	List(ctx context.Context, user uuid.UUID, req document.ListRequest) (document.Page, error)
	Get(ctx context.Context, user, id uuid.UUID) (*document.Document, string, error)
	Delete(ctx context.Context, user, id uuid.UUID) error
	SignParts(ctx context.Context, user, id uuid.UUID, parts []document.Part) ([]document.PartURL, time.Time, error)
	Parts(ctx context.Context, user, id uuid.UUID) (*document.Document, []document.Part, error)
	Complete(ctx context.Context, user, id uuid.UUID, parts []document.Part) (document.Confirmation, error)
	Quota(ctx context.Context, user uuid.UUID) (document.Quota, error)
	SetQuotaLimit(ctx context.Context, user uuid.UUID, limit int64) (document.Quota, error)
	ReleaseScan(ctx context.Context, id uuid.UUID) (*document.Document, error)
}

// EventStream follows a user's document events live, for GET /api/events.
type EventStream interface {
	// FollowUser delivers user's events published after the stream
	// sequence after (0: from now on), in order, until Follow.Stop is
	// called; when the event at after is older than notBefore or gone, from
	// now on, with Follow.Reset set (see events.Bus.FollowUser).
	FollowUser(ctx context.Context, user uuid.UUID, after uint64, notBefore time.Time) (document.Follow, error)
}

// Sweeps asks the sweepers for a run, for POST /api/admin/sweep.
type Sweeps interface {
	TriggerSweep(ctx context.Context) (runID string, err error)
}

// Deps is what the API's routes need.
type Deps struct {
	Docs     Docs
	Verifier *auth.Verifier
	Events   EventStream // for the event stream
	Sweeps   Sweeps
	Checks   []Check // for /readyz
	Log      zerolog.Logger
	// Closing is closed when the server shuts down, to end event streams
	// that would otherwise hold the shutdown open; Server sets it.
	Closing <-chan struct{}
	// MinIOOrigin is the scheme://host:port browsers upload to; the page's
	// Content-Security-Policy allows connections there.
	MinIOOrigin string
	// DevToken, set only in dev mode, mints a token for the page's
	// "dev user" button; without it POST /api/dev/token does not exist.
	DevToken func() (token string, user uuid.UUID, err error)
	// DevHosts are the Host headers (host:port, lower case) POST
	// /api/dev/token answers; any other is refused 403, so that a web page
	// whose name was rebound to the loopback address (DNS rebinding) cannot
	// mint an admin token. None means every Host is refused.
	DevHosts []string
	// Metrics are updated by every request and served on /metrics.
	Metrics *metrics.Metrics
	// MaxStreams bounds the event streams this replica holds open, each
	// with a JetStream consumer; 0 means no bound.
	MaxStreams int
	// EventsResumeWindow is how far back a stream's resume (Last-Event-ID)
	// may reach; older, it starts from now with a reset event.
	EventsResumeWindow time.Duration
	// EventsConnectsPerMinute is how many event streams one user may open
	// per minute on this replica.
	EventsConnectsPerMinute int
	// CORSOrigins are the exact origins allowed to call the API from a page
	// of their own; none means no cross-origin access.
	CORSOrigins []string
}

// Handler returns the API's routes.
func Handler(d Deps) http.Handler {
	h := &handlers{docs: d.Docs, live: d.Events, sweeps: d.Sweeps, closing: d.Closing, metrics: d.Metrics}
	h.streams = newEventStreams(d.MaxStreams, d.EventsResumeWindow, d.EventsConnectsPerMinute)
	verifier, checks, log := d.Verifier, d.Checks, d.Log
	r := chi.NewRouter()
	r.Use(requestLog(log, d.Metrics), middleware.Recoverer)
	if len(d.CORSOrigins) > 0 {
		// Before any route and so before authentication: a preflight
		// carries no token. (An empty list would mean "*" to the
		// middleware, hence no middleware at all.)
		r.Use(cors.Handler(cors.Options{
			AllowedOrigins: d.CORSOrigins,
			AllowedMethods: []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete},
			AllowedHeaders: []string{"Authorization", "Content-Type", "Last-Event-ID"},
			// What a client reads besides the body: when to retry, and the
			// request id to quote in a support request.
			ExposedHeaders: []string{"Retry-After", "Location", "X-Request-Id"},
			MaxAge:         600,
		}))
	}
	r.NotFound(func(w http.ResponseWriter, r *http.Request) { writeDetail(w, http.StatusNotFound, "not found") })
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeDetail(w, http.StatusMethodNotAllowed, "method not allowed")
	})

	r.Get("/healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.Get("/readyz", readiness(checks))
	r.Get("/metrics", d.Metrics.Handler().ServeHTTP)
	r.Get("/openapi.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(OpenAPI)
	})

	unauthorized := func(w http.ResponseWriter, r *http.Request, err error) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="docuvault"`)
		writeDetail(w, http.StatusUnauthorized, err.Error())
	}
	forbidden := func(w http.ResponseWriter, r *http.Request) {
		writeDetail(w, http.StatusForbidden, "admin role required")
	}
	if d.DevToken != nil {
		r.Post("/api/dev/token", func(w http.ResponseWriter, r *http.Request) {
			if !slices.Contains(d.DevHosts, strings.ToLower(r.Host)) {
				writeDetail(w, http.StatusForbidden, "dev tokens are minted only for the dev server's own loopback host names")
				return
			}
			tok, user, err := d.DevToken()
			if err != nil {
				writeError(w, r, err)
				return
			}
			writeSecret(w, http.StatusOK, devTokenResponse{Token: tok, UserID: user})
		})
	}
	mountPage(r, d.MinIOOrigin)
	r.Route("/api", func(r chi.Router) {
		r.Use(verifier.Middleware(unauthorized), logUser)
		r.Post("/documents/upload-url", h.uploadURL)
		r.Get("/documents", h.list)
		r.Get("/documents/{id}", h.get)
		r.Delete("/documents/{id}", h.delete)
		r.Post("/documents/{id}/confirm", h.confirm)
		r.Post("/documents/{id}/parts", h.signParts)
		r.Get("/documents/{id}/parts", h.parts)
		r.Post("/documents/{id}/complete", h.complete)
		r.Post("/documents/{id}/classify", h.classify)
		r.Get("/auth/me", h.me)
		r.Get("/auth/me/quota", h.myQuota)
		r.Get("/events", h.events)
		r.Route("/admin", func(r chi.Router) {
			r.Use(auth.RequireRole(auth.RoleAdmin, forbidden))
			r.Put("/users/{id}/quota", h.setQuota)
			r.Post("/sweep", h.sweep)
			r.Post("/documents/{id}/release", h.releaseScan)
		})
	})
	return r
}

// requestLog gives every request an id (newRequestID), answered in
// X-Request-Id, puts a logger carrying it in the request's context and logs
// each request once it is answered. It logs the path, never the query or
// headers, so no token reaches a log.
func requestLog(log zerolog.Logger, m *metrics.Metrics) func(http.Handler) http.Handler {
	series := newRequestSeries(m)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			id := newRequestID()
			w.Header().Set(RequestIDHeader, id)
			lc := log.With().Str("req_id", id)
			if id := clientRequestID(r); id != "" {
				lc = lc.Str("client_req_id", id)
			}
			l := lc.Logger()
			r = r.WithContext(l.WithContext(r.Context()))
			ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
			next.ServeHTTP(ww, r)
			method := metricMethod(r.Method)
			s := series.of(chi.RouteContext(r.Context()), method, ww.Status())
			s.requests.Inc()
			s.duration.Observe(time.Since(start).Seconds())
			zerolog.Ctx(r.Context()).Info().
				Str("method", method).
				Str("path", r.URL.Path).
				Int("status", ww.Status()).
				Dur("duration", time.Since(start)).
				Msg("request")
		})
	}
}

// requestSeries finds the metrics of a request by its route, method and
// status. Their labels are made once per kind of request, not per request:
// joining the route's patterns and hashing the labels cost more than the
// metrics themselves.
type requestSeries struct {
	m     *metrics.Metrics
	mu    sync.RWMutex
	known map[seriesKey]seriesOf
}

// maxRouteDepth is how many nested route patterns a seriesKey holds; a
// deeper route's labels are made for each request.
const maxRouteDepth = 3

// seriesKey is a kind of request: the patterns of the routers it went
// through, its method label and its status. There are as many as the
// routes' patterns, HTTP's methods and the statuses answered allow.
type seriesKey struct {
	patterns [maxRouteDepth]string
	method   string
	status   int
}

// seriesOf is the metrics of one kind of request.
type seriesOf struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

func newRequestSeries(m *metrics.Metrics) *requestSeries {
	return &requestSeries{m: m, known: map[seriesKey]seriesOf{}}
}

// of returns the metrics of a request answered status for method on the
// route of rctx.
func (s *requestSeries) of(rctx *chi.Context, method string, status int) seriesOf {
	var patterns []string
	if rctx != nil {
		patterns = rctx.RoutePatterns
	}
	if len(patterns) > maxRouteDepth {
		return s.make(rctx, method, status)
	}
	k := seriesKey{method: method, status: status}
	copy(k.patterns[:], patterns)
	s.mu.RLock()
	got, ok := s.known[k]
	s.mu.RUnlock()
	if ok {
		return got
	}
	got = s.make(rctx, method, status)
	s.mu.Lock()
	s.known[k] = got
	s.mu.Unlock()
	return got
}

// make looks the metrics up by their labels.
func (s *requestSeries) make(rctx *chi.Context, method string, status int) seriesOf {
	// The route pattern, not the path: ids would explode the series.
	route := rctx.RoutePattern()
	if route == "" {
		route = "unmatched"
	}
	return seriesOf{
		requests: s.m.HTTPRequests.WithLabelValues(route, method, strconv.Itoa(status)),
		duration: s.m.HTTPDuration.WithLabelValues(route, method),
	}
}

// metricMethod is method as a metric label: one of HTTP's methods, or
// "other". Go's server takes any token as a method, and a label per token
// would let anyone grow the metrics without bound.
func metricMethod(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return method
	}
	return "other"
}

// logUser adds the caller's id to the request's logger.
func logUser(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, ok := auth.FromContext(r.Context()); ok {
			logWith(r, "user_id", p.UserID.String())
		}
		next.ServeHTTP(w, r)
	})
}

// readiness answers 200 when every check passes, else 503 naming the
// failures. The checks run at most once per probe.MaxAge, shared by every
// request meanwhile: /readyz needs no token, so each request must not cost
// PostgreSQL, MinIO and JetStream a call.
func readiness(checks []Check) http.HandlerFunc {
	ready := probe.New(func(ctx context.Context) readyAnswer {
		ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		results := make(map[string]string, len(checks))
		var failed []string
		for _, c := range checks {
			if err := c.Ping(ctx); err != nil {
				results[c.Name] = "unavailable"
				// A document error's message is written for clients (e.g.
				// which NATS stream has no quorum); any other error may tell
				// more than a probe should hear.
				why := c.Name + " unavailable"
				var derr *document.Error
				if errors.As(err, &derr) {
					why += " (" + derr.Message + ")"
				}
				failed = append(failed, why)
				continue
			}
			results[c.Name] = "ok"
		}
		if len(failed) > 0 {
			return readyAnswer{http.StatusServiceUnavailable, map[string]any{"detail": "not ready: " + strings.Join(failed, "; "), "checks": results}}
		}
		return readyAnswer{http.StatusOK, map[string]any{"status": "ready", "checks": results}}
	})
	return func(w http.ResponseWriter, r *http.Request) {
		a, err := ready.Get(r.Context())
		if err != nil {
			// The client left (or the server is stopping) before the
			// checks answered.
			writeDetail(w, http.StatusServiceUnavailable, "not ready: "+err.Error())
			return
		}
		writeJSON(w, a.status, a.body)
	}
}

// readyAnswer is what /readyz answers; requests share it, read only.
type readyAnswer struct {
	status int
	body   map[string]any
}

type devTokenResponse struct {
	Token  string    `json:"token"`
	UserID uuid.UUID `json:"user_id"`
}
