// Package admin is the admin HTTP API of the control plane (API.md, "Admin
// API"): declarative PUT, GET and DELETE of backends, namespaces and extproc
// pools, each change answered with a provisioning plan and the push status,
// and a report of every xDS node's ACKed and NACKed versions.
//
// Requests need the admin identity: a bearer token (Authorization: Bearer
// <token>, configured with --admin-token or PRISM_ADMIN_TOKEN). Errors have
// API.md's shape.
package admin

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/prism-gw/prism/xds/admin/ui"
	"github.com/prism-gw/prism/xds/desired"
	"github.com/prism-gw/prism/xds/server"
)

// Controller is the desired state the admin API reads and changes.
type Controller interface {
	State() *desired.State
	Update(ctx context.Context, change func(*desired.State) error) (*desired.State, bool, error)
}

// Fleet reports what is served and to whom.
type Fleet interface {
	Served() server.Served
	Nodes() []server.NodeStatus
}

// Options configure the handler.
type Options struct {
	// Token is the admin bearer token. Empty disables authentication, which
	// the caller must allow only on a loopback listener.
	Token  string
	Logger *slog.Logger
	// MaxBody bounds a request body. Default 1 MiB.
	MaxBody int64
	// Provisioner creates and sizes a namespace's storage on its backend
	// when the namespace is applied (package provision); nil leaves
	// storage to the drivers' first use.
	Provisioner Provisioner
	// Audit reads recent audit records for GET /v1/admin/audit; nil
	// answers 404 (the control plane alone has no audit log).
	Audit AuditReader
	// Metrics is the registry the extproc metrics are in, for
	// GET /v1/admin/namespaces/{ns}/traffic; nil answers 404.
	Metrics prometheus.Gatherer
	// Migrations keeps migration counters and backfill progress (the
	// control plane's report sink); nil keeps them in memory only.
	Migrations Migrations
	// Handover seals and unseals the stores of a TimeSeries migration when
	// it is promoted or aborted, and of a timeseries namespace switched to
	// another SQL backend with ?force=true (backfill.Handover). It is a hook
	// so that this package does not import the drivers; nil refuses the
	// migration steps, since promoting without it would let two stores
	// assign the same event positions, and leaves forced switches as they
	// were.
	Handover Handover
}

// Handler serves the admin API.
type Handler struct {
	ctl   Controller
	fleet Fleet
	opts  Options
	mux   *http.ServeMux
	// rates keeps the metric scrapes that traffic rates are diffs of.
	rates *rateSampler
}

// New makes the admin API handler.
func New(ctl Controller, fleet Fleet, opts Options) *Handler {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = 1 << 20
	}
	h := &Handler{ctl: ctl, fleet: fleet, opts: opts, mux: http.NewServeMux(), rates: newRateSampler(opts.Metrics)}
	for _, k := range kinds {
		h.mux.Handle("/v1/admin/"+k.plural, h.handle(map[string]handlerFunc{http.MethodGet: h.list(k)}))
		h.mux.Handle("/v1/admin/"+k.plural+"/{name}", h.handle(map[string]handlerFunc{
			http.MethodGet:    h.get(k),
			http.MethodPut:    h.put(k),
			http.MethodDelete: h.delete(k),
		}))
	}
	h.mux.Handle("/v1/admin/nodes", h.handle(map[string]handlerFunc{http.MethodGet: h.nodes}))
	h.mux.Handle("/v1/admin/audit", h.handle(map[string]handlerFunc{http.MethodGet: h.audit}))
	h.mux.Handle("/v1/admin/namespaces/{name}/traffic", h.handle(map[string]handlerFunc{http.MethodGet: h.traffic}))
	h.mux.Handle("/v1/admin/policies/{name}/evaluate", h.handle(map[string]handlerFunc{http.MethodPost: h.evaluatePolicy}))
	// The UI is static files that call the API above with the token the
	// operator types in; serving them needs no identity.
	h.mux.Handle("/ui/", http.StripPrefix("/ui", ui.Handler()))
	h.mux.Handle("/ui", http.RedirectHandler("/ui/", http.StatusMovedPermanently))
	h.registerMigrations()
	h.mux.Handle("/", h.handle(nil))
	return h
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// handlerFunc serves one request; an error is rendered by toAPIError.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// handle wraps the methods of one path with request ids, authentication,
// method dispatch and error rendering. Methods are dispatched here rather
// than by ServeMux patterns so that a 405 has the API's JSON shape too.
func (h *Handler) handle(methods map[string]handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requestID := r.Header.Get("x-request-id")
		if requestID == "" || len(requestID) > 128 {
			requestID = newRequestID()
		}
		w.Header().Set("x-request-id", requestID)
		if !h.authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="prism-admin"`)
			writeError(w, &apiError{http.StatusUnauthorized, CodeUnauthenticated, "admin requests need Authorization: Bearer <admin token>"}, requestID)
			return
		}
		if methods == nil {
			writeError(w, notFound("no admin API at %s", r.URL.Path), requestID)
			return
		}
		fn, ok := methods[r.Method]
		if !ok {
			var allow []string
			for m := range methods {
				allow = append(allow, m)
			}
			w.Header().Set("Allow", strings.Join(sortedStrings(allow), ", "))
			writeError(w, &apiError{http.StatusMethodNotAllowed, CodeMethodNotAllowed, "method " + r.Method + " is not allowed on " + r.URL.Path}, requestID)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, h.opts.MaxBody)
		if err := fn(w, r); err != nil {
			ae := toAPIError(err)
			if ae.Status >= 500 {
				h.opts.Logger.Error("admin request failed", "method", r.Method, "path", r.URL.Path, "request_id", requestID, "err", err)
			} else {
				h.opts.Logger.Info("admin request refused", "method", r.Method, "path", r.URL.Path, "request_id", requestID, "code", ae.Code, "reason", ae.Message)
			}
			writeError(w, ae, requestID, errorDetails(err)...)
		}
	})
}

// authorized checks the bearer token in constant time.
func (h *Handler) authorized(r *http.Request) bool {
	if h.opts.Token == "" {
		return true
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), []byte(h.opts.Token)) == 1
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
