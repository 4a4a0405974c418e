package runner

import (
	_ "embed"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/ebbscale/ebb/core/state"
)

// Handler serves the runner's HTTP API:
//
//	GET /                   a page with each chain's demand and capacity chart
//	GET /v1/health          200 while the process is up
//	GET /v1/ready           200 once every chain has evaluated once, else 503
//	                        (with the failed chains and why, if any; needs
//	                        no token, but without one it names no chain)
//	GET /metrics            Prometheus exposition
//	GET /v1/chains          every chain with its last evaluation
//	GET /v1/chains/{name}   one chain and its recent decisions (?n=50)
func (r *Runner) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(uiPage)
	})
	mux.HandleFunc("GET /v1/health", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /v1/ready", func(w http.ResponseWriter, req *http.Request) {
		ready, failed := r.Ready()
		if failed != nil && !detailAllowed(req) {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "failed"})
			return
		}
		if failed != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "failed", "failed": failed})
			return
		}
		if !ready {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "starting"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	mux.Handle("GET /metrics", r.opts.Metrics.Handler())
	mux.HandleFunc("GET /v1/chains", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"chains": r.Chains()})
	})
	mux.HandleFunc("GET /v1/chains/{name}", func(w http.ResponseWriter, req *http.Request) {
		name := req.PathValue("name")
		n := 50
		if v := req.URL.Query().Get("n"); v != "" {
			parsed, err := strconv.Atoi(v)
			if err != nil || parsed < 1 || parsed > state.DefaultKeep {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "n must be a number from 1 to " + strconv.Itoa(state.DefaultKeep)})
				return
			}
			n = parsed
		}
		for _, c := range r.Chains() {
			if c.Name != name {
				continue
			}
			decisions, err := r.Decisions(name, n)
			if err != nil {
				writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
				return
			}
			if decisions == nil {
				decisions = []state.Record{}
			}
			writeJSON(w, http.StatusOK, map[string]any{"chain": c, "decisions": decisions})
			return
		}
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "no chain " + strconv.Quote(name)})
	})
	return mux
}

//go:embed ui.html
var uiPage []byte

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // reasons say "0 threads < min-parallelism 4"
	_ = enc.Encode(v)
}
