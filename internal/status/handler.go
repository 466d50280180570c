package status

import (
	"encoding/json"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// readyJSON is the JSON form of /readyz. Field names are a public interface (scripts parse them).
type readyJSON struct {
	Phase     Phase  `json:"phase"`
	Ready     bool   `json:"ready"`
	Reason    string `json:"reason"`
	Since     string `json:"since"`
	RestartAt string `json:"restart_at,omitempty"`
	Errors    int    `json:"errors,omitempty"`
}

// Handler serves /healthz, /readyz and /metrics for this tracker. Routing is explicit rather than
// through a ServeMux so the status codes are exactly the documented ones: unknown paths 404,
// known paths with a method other than GET or HEAD 405.
func (t *Tracker) Handler() http.Handler {
	metrics := promhttp.HandlerFor(t.metrics.Registry(), promhttp.HandlerOpts{
		ErrorHandling: promhttp.ContinueOnError,
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var h http.Handler
		switch r.URL.Path {
		case "/healthz":
			h = http.HandlerFunc(serveHealthz)
		case "/readyz":
			h = http.HandlerFunc(t.serveReadyz)
		case "/metrics":
			h = metrics
		default:
			http.NotFound(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}

// serveHealthz answers liveness: if this handler runs, the entrypoint's event loop is alive. It
// never depends on Synapse, so an orchestrator does not kill the container during a long migration.
func serveHealthz(w http.ResponseWriter, _ *http.Request) {
	writeText(w, http.StatusOK, "ok")
}

// serveReadyz answers readiness: 200 "ready" only in PhaseReady, otherwise 503 with the reason on
// one line (or as JSON when asked), so `curl` and the HEALTHCHECK log both say what is going on.
func (t *Tracker) serveReadyz(w http.ResponseWriter, r *http.Request) {
	s := t.Snapshot()
	code := http.StatusServiceUnavailable
	if s.Ready {
		code = http.StatusOK
	}
	if wantsJSON(r) {
		body := readyJSON{
			Phase: s.Phase, Ready: s.Ready, Reason: s.Message,
			Since: s.Since.UTC().Format(time.RFC3339Nano), Errors: s.Errors,
		}
		if !s.RestartAt.IsZero() {
			body.RestartAt = s.RestartAt.UTC().Format(time.RFC3339Nano)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(body) // the client went away; nothing to do
		return
	}
	if s.Ready {
		writeText(w, code, "ready")
		return
	}
	writeText(w, code, "not ready: "+s.Message)
}

// wantsJSON reports whether the client asked for the JSON form, by "?verbose" (easy with curl) or
// by an Accept header naming application/json (what tools send).
func wantsJSON(r *http.Request) bool {
	if _, ok := r.URL.Query()["verbose"]; ok {
		return true
	}
	return strings.Contains(r.Header.Get("Accept"), "application/json")
}

// writeText writes one line of plain text with a status code.
func writeText(w http.ResponseWriter, code int, line string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(line + "\n")) // the client went away; nothing to do
}
