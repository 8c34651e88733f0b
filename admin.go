package zeroscale

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"slices"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/knative"
	"github.com/zeroscale/zeroscale/revision"
)

// KnativeAPIPrefix is where AdminHandler serves Knative's resources, as a
// Kubernetes API server does: {prefix}{namespace}/services/{name}, and
// revisions and routes likewise.
const KnativeAPIPrefix = "/apis/serving.knative.dev/v1/namespaces/"

// AdminHandler serves the Server's status and its write API:
//
//	GET    /healthz           200 "ok" (no token needed)
//	GET    /status, /         the live status page: services, revisions
//	                          with their traffic and instances, and per
//	                          revision the last 15 minutes of instances and
//	                          requests/s as a chart, refreshed in place
//	                          (plain HTML and SVG; ?fragment=1 is the part
//	                          it refreshes)
//	GET    /metrics           Prometheus metrics (the Server's own registry,
//	                          or Options.Registerer when it is a Gatherer)
//	GET    /services          every ServiceStatus, by name
//	GET    /services/{name}   one ServiceStatus (404 if unknown)
//
// and, under KnativeAPIPrefix + "{namespace}/" (the Server's
// Options.Namespace), Knative's serving.knative.dev/v1 resources in
// Knative's JSON shape, spec and status:
//
//	GET    services                 ServiceList
//	POST   services                 create from a Service manifest (409 if it exists)
//	GET    services/{name}          Service
//	PUT    services/{name}          create or update (apply) from a manifest
//	DELETE services/{name}          delete the service and its revisions
//	GET    revisions                RevisionList (?labelSelector=serving.knative.dev/service=NAME)
//	GET    revisions/{name}         Revision
//	DELETE revisions/{name}         delete a revision no traffic reaches
//	GET    routes, routes/{name}    RouteList, Route
//
// Manifests are YAML or JSON (Content-Type application/json,
// application/yaml or text/yaml), one Service per request, at most
// knative.MaxManifestBytes. Errors are Kubernetes Status objects whose
// reason a client can rely on: Invalid (422, with a cause per field:
// path and Knative's message), NotFound (404), AlreadyExists and
// Conflict (409), BadRequest (400), UnsupportedMediaType (415),
// Unauthorized (401), ServiceUnavailable (503) after Shutdown began,
// InternalError (500).
//
// It tells anyone who can reach it what runs where, and lets them change
// it: serve it on its own listener with ServeAdmin, which refuses a
// listener that is not loopback unless Options.AdminToken is set. With a
// token, every request but /healthz needs "Authorization: Bearer
// <token>"; without one, writes must name a loopback host (no DNS
// rebinding) and carry a content type no browser form can send.
func (s *Server) AdminHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /services", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Status())
	})
	mux.HandleFunc("GET /services/{name}", func(w http.ResponseWriter, r *http.Request) {
		st, err := s.ServiceStatus(r.PathValue("name"))
		if errors.Is(err, ErrServiceNotFound) {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, st)
	})
	mux.HandleFunc("GET /status", s.statusPage)
	mux.HandleFunc("GET /{$}", s.statusPage)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	if g, ok := s.o.Registerer.(prometheus.Gatherer); ok {
		mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	}
	api := KnativeAPIPrefix + "{namespace}/"
	mux.HandleFunc("GET "+api+"services", s.inNamespace(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, knative.ServiceList{TypeMeta: listMeta("ServiceList"), Items: orEmpty(s.knativeServices())})
	}))
	mux.HandleFunc("POST "+api+"services", s.inNamespace(s.applyHandler(true)))
	mux.HandleFunc("PUT "+api+"services/{name}", s.inNamespace(s.applyHandler(false)))
	mux.HandleFunc("GET "+api+"services/{name}", s.inNamespace(func(w http.ResponseWriter, r *http.Request) {
		ks, err := s.KnativeService(r.PathValue("name"))
		if err != nil {
			writeError(w, "services", r.PathValue("name"), err)
			return
		}
		writeJSON(w, http.StatusOK, ks)
	}))
	mux.HandleFunc("DELETE "+api+"services/{name}", s.inNamespace(func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		if err := s.Delete(r.Context(), name); err != nil {
			writeError(w, "services", name, err)
			return
		}
		writeStatus(w, http.StatusOK, metav1.StatusSuccess, "", fmt.Sprintf("service %q deleted", name), name, "services", nil)
	}))
	mux.HandleFunc("GET "+api+"revisions", s.inNamespace(func(w http.ResponseWriter, r *http.Request) {
		service := ""
		if sel := r.URL.Query().Get("labelSelector"); sel != "" {
			key, value, ok := strings.Cut(sel, "=")
			if !ok || key != knative.ServiceLabel {
				writeStatus(w, http.StatusBadRequest, metav1.StatusFailure, metav1.StatusReasonBadRequest,
					fmt.Sprintf("labelSelector %q: only %s=NAME is supported", sel, knative.ServiceLabel), "", "revisions", nil)
				return
			}
			service = value
		}
		writeJSON(w, http.StatusOK, knative.RevisionList{TypeMeta: listMeta("RevisionList"), Items: orEmpty(s.knativeRevisions(service))})
	}))
	mux.HandleFunc("GET "+api+"revisions/{name}", s.inNamespace(func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		for _, kr := range s.knativeRevisions("") {
			if kr.Name == name {
				writeJSON(w, http.StatusOK, kr)
				return
			}
		}
		writeError(w, "revisions", name, fmt.Errorf("zeroscale: no service has revision %q: %w", name, revision.ErrNotFound))
	}))
	mux.HandleFunc("DELETE "+api+"revisions/{name}", s.inNamespace(func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		if err := s.DeleteRevision(r.Context(), name); err != nil {
			writeError(w, "revisions", name, err)
			return
		}
		writeStatus(w, http.StatusOK, metav1.StatusSuccess, "", fmt.Sprintf("revision %q deleted", name), name, "revisions", nil)
	}))
	mux.HandleFunc("GET "+api+"routes", s.inNamespace(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, knative.RouteList{TypeMeta: listMeta("RouteList"), Items: orEmpty(s.knativeRoutes())})
	}))
	mux.HandleFunc("GET "+api+"routes/{name}", s.inNamespace(func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		for _, rt := range s.knativeRoutes() {
			if rt.Name == name {
				writeJSON(w, http.StatusOK, rt)
				return
			}
		}
		writeError(w, "routes", name, fmt.Errorf("%w: %q", ErrServiceNotFound, name))
	}))
	return s.guardAdmin(mux)
}

func listMeta(kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: knative.APIVersion, Kind: kind}
}

// orEmpty makes an empty list encode as [] (clients iterate it).
func orEmpty[T any](items []T) []T {
	if items == nil {
		return []T{}
	}
	return items
}

// inNamespace answers 404 for a namespace other than the Server's.
func (s *Server) inNamespace(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if ns := r.PathValue("namespace"); ns != s.o.Namespace {
			writeStatus(w, http.StatusNotFound, metav1.StatusFailure, metav1.StatusReasonNotFound,
				fmt.Sprintf("namespace %q: this server serves namespace %q only", ns, s.o.Namespace), ns, "namespaces", nil)
			return
		}
		h(w, r)
	}
}

// manifestTypes are the content types a write accepts: none is one a
// cross-site HTML form or a "simple" fetch can send.
var manifestTypes = []string{"application/json", "application/yaml", "application/x-yaml", "text/yaml"}

// applyHandler creates (create: POST, refusing an existing service) or
// applies (PUT, create or update) the Service in the request body.
func (s *Server) applyHandler(create bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || !slices.Contains(manifestTypes, mt) {
			writeStatus(w, http.StatusUnsupportedMediaType, metav1.StatusFailure, metav1.StatusReasonUnsupportedMediaType,
				fmt.Sprintf("Content-Type %q: want one of %s", r.Header.Get("Content-Type"), strings.Join(manifestTypes, ", ")), name, "services", nil)
			return
		}
		svcs, err := knative.Decode(http.MaxBytesReader(w, r.Body, knative.MaxManifestBytes))
		if err == nil && len(svcs) != 1 {
			err = fmt.Errorf("the body holds %d Services: send one per request", len(svcs))
		}
		if err != nil {
			if len(knative.Errors(err)) > 0 {
				writeError(w, "services", name, err)
			} else {
				writeStatus(w, http.StatusBadRequest, metav1.StatusFailure, metav1.StatusReasonBadRequest, err.Error(), name, "services", nil)
			}
			return
		}
		ks := svcs[0]
		switch {
		case name != "" && ks.Name == "":
			ks.Name = name
		case name != "" && ks.Name != name:
			writeStatus(w, http.StatusBadRequest, metav1.StatusFailure, metav1.StatusReasonBadRequest,
				fmt.Sprintf("metadata.name %q does not match the name in the URL, %q", ks.Name, name), name, "services", nil)
			return
		}
		existed := s.hasService(ks.Name)
		if create && existed {
			writeStatus(w, http.StatusConflict, metav1.StatusFailure, metav1.StatusReasonAlreadyExists,
				fmt.Sprintf("services.serving.knative.dev %q already exists", ks.Name), ks.Name, "services", nil)
			return
		}
		out, err := s.ApplyKnative(r.Context(), ks)
		if err != nil {
			writeError(w, "services", ks.Name, err)
			return
		}
		code := http.StatusOK
		if !existed {
			code = http.StatusCreated
		}
		writeJSON(w, code, out)
	}
}

// writeError answers err as a Kubernetes Status, its reason and code by
// the error's kind.
func writeError(w http.ResponseWriter, kind, name string, err error) {
	var causes []metav1.StatusCause
	for _, fe := range knative.Errors(err) {
		msg, details := fe.Message, fe.Allowed
		if msg == "" { // a revision setting's wording, in Knative's
			msg, details = fmt.Sprintf("invalid value: %q", fe.Value), "must be "+fe.Allowed
		}
		if details != "" {
			msg += ": " + details
		}
		for _, p := range fe.Paths() {
			causes = append(causes, metav1.StatusCause{Type: metav1.CauseTypeFieldValueInvalid, Field: p, Message: msg})
		}
	}
	code, reason := http.StatusInternalServerError, metav1.StatusReasonInternalError
	switch {
	case errors.Is(err, ErrServiceNotFound), errors.Is(err, revision.ErrNotFound):
		code, reason = http.StatusNotFound, metav1.StatusReasonNotFound
	case errors.Is(err, ErrRevisionInUse), errors.Is(err, revision.ErrNameInUse):
		code, reason = http.StatusConflict, metav1.StatusReasonConflict
	case errors.Is(err, ErrServerClosed):
		code, reason = http.StatusServiceUnavailable, metav1.StatusReasonServiceUnavailable
	case len(causes) > 0, errors.Is(err, backend.ErrInvalidArgument):
		code, reason = http.StatusUnprocessableEntity, metav1.StatusReasonInvalid
	}
	msg := err.Error()
	if reason == metav1.StatusReasonNotFound && name != "" {
		msg = fmt.Sprintf("%s.serving.knative.dev %q not found", kind, name) // as the Kubernetes API says it
	}
	writeStatus(w, code, metav1.StatusFailure, reason, msg, name, kind, causes)
}

func writeStatus(w http.ResponseWriter, code int, status string, reason metav1.StatusReason, msg, name, kind string, causes []metav1.StatusCause) {
	writeJSON(w, code, metav1.Status{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Status"},
		Status:   status, Message: msg, Reason: reason, Code: int32(code),
		Details: &metav1.StatusDetails{Name: name, Group: "serving.knative.dev", Kind: kind, Causes: causes},
	})
}

// guardAdmin enforces Options.AdminToken, or, without one, a loopback
// Host header on writes (reads were always open to whoever reaches the
// listener).
func (s *Server) guardAdmin(next http.Handler) http.Handler {
	token := s.o.AdminToken
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			next.ServeHTTP(w, r)
			return
		}
		if token != "" {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="zeroscale"`)
				writeStatus(w, http.StatusUnauthorized, metav1.StatusFailure, metav1.StatusReasonUnauthorized,
					"the admin API needs Authorization: Bearer <Options.AdminToken>", "", "", nil)
				return
			}
		} else if r.Method != http.MethodGet && r.Method != http.MethodHead && !loopbackHost(r.Host) {
			writeStatus(w, http.StatusForbidden, metav1.StatusFailure, metav1.StatusReasonForbidden,
				fmt.Sprintf("Host %q is not a loopback name; without Options.AdminToken the admin API answers loopback hosts only", r.Host), "", "", nil)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// loopbackHost reports whether a Host header names this machine:
// localhost, a name under .localhost, or a loopback IP.
func loopbackHost(host string) bool {
	h := hostname(host)
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip := net.ParseIP(strings.Trim(h, "[]"))
	return ip != nil && ip.IsLoopback()
}

// checkAdminListener refuses to serve the admin API on a listener other
// machines can reach unless a token guards it.
func (s *Server) checkAdminListener(ln net.Listener) error {
	if s.o.AdminToken != "" {
		return nil
	}
	if tcp, ok := ln.Addr().(*net.TCPAddr); ok && !tcp.IP.IsLoopback() {
		return fmt.Errorf("zeroscale: admin listener %s is not loopback: set Options.AdminToken (the admin API can change every service)", ln.Addr())
	}
	return nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// hostname returns host without its port or trailing dot, in lower
// case, as routes name it.
func hostname(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return strings.TrimSuffix(strings.ToLower(host), ".")
}
