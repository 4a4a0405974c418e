package ams

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/ebbscale/ebb/internal/amoro"
)

// APIPrefix is where the dashboard REST API lives (DashboardServer.java,
// amoro.md §4.2).
const APIPrefix = "/api/ams/v1"

// Envelope shapes, field for field from amoro-ams/.../dashboard/response/
// (OkResponse.java, ErrorResponse.java, PageResult.java; amoro.md §4.1).

type okResponse struct {
	Message string `json:"message"`
	Code    int    `json:"code"`
	Result  any    `json:"result"`
}

// errorResponse: AMS answers errors inside HTTP 200 with the code in the body
// (DashboardServer.handleException, amoro.md §4.1).
type errorResponse struct {
	Message   string `json:"message"`
	Code      int    `json:"code"`
	RequestID string `json:"requestId"`
}

type pageResult struct {
	List  any `json:"list"`
	Total int `json:"total"`
}

// signatureCheckFailed is what DashboardServer.handleException answers for
// every SignatureCheckException, whatever its cause (DashboardServer.java
// handleException; ApiTokenController.checkApiToken wraps every failure).
const signatureCheckFailed = "Signature check failed"

// Handler serves the REST API, the emulator-only optimizer API under
// OptimizerAPIPrefix and control endpoints under ControlPrefix. The
// Prometheus exposition is on MetricsHandler, as AMS serves it on its own port.
func (e *Emulator) Handler() http.Handler {
	mux := http.NewServeMux()
	api := func(pattern string, h func(r *http.Request) (any, error)) {
		method, path, _ := strings.Cut(pattern, " ")
		mux.HandleFunc(method+" "+APIPrefix+path, func(w http.ResponseWriter, r *http.Request) {
			result, err := h(r)
			if err != nil {
				writeJSON(w, http.StatusOK, errorResponse{Message: err.Error(), Code: errorCode(err)})
				return
			}
			writeJSON(w, http.StatusOK, okResponse{Message: "success", Code: 200, Result: result})
		})
	}
	// HealthCheckController.healthCheck: the HA state in the envelope.
	api("GET /health/status", func(*http.Request) (any, error) {
		return map[string]string{"ams_ha_state": "LEADER"}, nil
	})
	api("GET /versionInfo", func(*http.Request) (any, error) {
		return map[string]string{"version": "emulator", "commitTime": ""}, nil
	})
	// OptimizerGroupController.getActions: OptimizingStatus display values.
	api("GET /optimize/actions", func(*http.Request) (any, error) {
		out := make([]string, len(tableStatusOrder))
		for i, s := range tableStatusOrder {
			out[i] = string(s)
		}
		return out, nil
	})
	api("GET /optimize/optimizerGroups", e.restGroups)
	api("GET /optimize/resourceGroups", e.restResourceGroups)
	api("GET /optimize/optimizerGroups/{group}/info", e.restGroupInfo)
	api("GET /optimize/optimizerGroups/{group}/optimizers", e.restOptimizers)
	api("GET /optimize/optimizerGroups/{group}/tables", e.restTables)
	api("GET /tables/catalogs/{catalog}/dbs/{db}/tables/{table}/optimizing-processes", e.restProcesses)
	api("GET /tables/catalogs/{catalog}/dbs/{db}/tables/{table}/optimizing-processes/{process}/tasks", e.restTasks)
	api("POST /optimize/optimizerGroups/{group}/optimizers", e.restScaleOut)
	api("POST /optimize/optimizers", e.restCreateOptimizer)
	api("DELETE /optimize/optimizers/{jobId}", e.restReleaseOptimizer)
	e.optimizerRoutes(mux)
	e.controlRoutes(mux)
	// Javalin's 404 goes to the error handler AmoroServiceContainer
	// registers: HTTP 404 with an ErrorResponse body
	// (AmoroServiceContainer.java, httpServer.error(NOT_FOUND, ...)).
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, errorResponse{Message: "page not found!", Code: 404})
	})
	return e.withDate(e.withFaults(e.withAuth(mux)))
}

// withDate stamps responses with the emulator's time, so that a client
// judging heartbeat age against the server's Date sees virtual time too.
func (e *Emulator) withDate(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Date", e.Now().UTC().Format(http.TimeFormat))
		h.ServeHTTP(w, r)
	})
}

type codedError struct {
	code int
	msg  string
}

func (c *codedError) Error() string { return c.msg }

// errorCode: ForbiddenException and SignatureCheckException are 403,
// everything else 500 (DashboardServer.handleException, amoro.md §4.1).
func errorCode(err error) int {
	if c, ok := err.(*codedError); ok {
		return c.code
	}
	return 500
}

// whitelisted paths need no auth (DashboardServer.URL_WHITE_LIST, the API
// paths of it).
func whitelisted(path string) bool {
	switch path {
	case APIPrefix + "/health/status", APIPrefix + "/versionInfo", APIPrefix + "/login", APIPrefix + "/login/current":
		return true
	}
	return false
}

// withAuth applies http-server.rest-auth-type to everything but the
// whitelist, before routing, as Javalin's before-handler
// DashboardServer.preHandleRequest does: an unknown path without
// credentials is a 403, not a 404. Every refusal is code 403 "Signature
// check failed" inside HTTP 200 (amoro.md §0). The emulator-only optimizer
// and control APIs stand for Thrift and for the operator, so they are not
// behind it.
func (e *Emulator) withAuth(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/emulator/") || whitelisted(r.URL.Path) || e.authorized(r) {
			h.ServeHTTP(w, r)
			return
		}
		writeJSON(w, http.StatusOK, errorResponse{Message: signatureCheckFailed, Code: 403})
	})
}

func (e *Emulator) authorized(r *http.Request) bool {
	a := e.opts.Auth
	switch a.Type {
	case AuthToken:
		q := r.URL.Query()
		key, sig := q.Get("apiKey"), q.Get("signature")
		if key == "" || sig == "" || key != a.APIKey {
			return false
		}
		want, err := amoro.Signature(key, a.Secret, q, e.Now(), a.Location)
		return err == nil && subtle.ConstantTimeCompare([]byte(want), []byte(sig)) == 1
	case AuthBasic:
		u, p, ok := r.BasicAuth()
		return ok && subtle.ConstantTimeCompare([]byte(u), []byte(a.Username)) == 1 &&
			subtle.ConstantTimeCompare([]byte(p), []byte(a.Password)) == 1
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// paging reads `page` (default 1) and `pageSize` (default 20) as Javalin's
// queryParamAsClass(Integer) does: a value that is not an integer is an
// error (code 500 through handleException).
func paging(r *http.Request) (page, size int, err error) {
	page, size = 1, 20
	q := r.URL.Query()
	if v := q.Get("page"); v != "" {
		if page, err = strconv.Atoi(v); err != nil {
			return 0, 0, &codedError{500, "Query parameter 'page' with value '" + v + "' is not a valid Integer"}
		}
	}
	if v := q.Get("pageSize"); v != "" {
		if size, err = strconv.Atoi(v); err != nil {
			return 0, 0, &codedError{500, "Query parameter 'pageSize' with value '" + v + "' is not a valid Integer"}
		}
	}
	if page < 1 || size < 0 {
		return 0, 0, &codedError{500, "offset[" + strconv.Itoa((page-1)*size) + "] must >= 0"}
	}
	return page, size, nil
}

// pageOf is PageResult.of(list, offset, limit): total is the whole list's
// size, and an empty list has total 0.
func pageOf[T any](all []T, page, size int) pageResult {
	from := (page - 1) * size
	if from > len(all) {
		from = len(all)
	}
	to := from + size
	if to > len(all) {
		to = len(all)
	}
	return pageResult{List: all[from:to], Total: len(all)}
}
