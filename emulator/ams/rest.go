package ams

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"github.com/ebbscale/ebb/internal/amoro"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// APIPrefix is where the dashboard REST API lives (DashboardServer.java,
// amoro.md §4.2).
const APIPrefix = "/api/ams/v1"

// Wire shapes of the REST API, field for field from amoro.md §4.1/§4.2
// (dashboard/response/*.java and dashboard/model/*.java).

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

type optimizerInstanceInfo struct {
	Token      string  `json:"token"`
	StartTime  int64   `json:"startTime"`
	TouchTime  int64   `json:"touchTime"`
	JobID      *string `json:"jobId"`
	GroupName  string  `json:"groupName"`
	CoreNumber int32   `json:"coreNumber"`
	Memory     int32   `json:"memory"`
	JobStatus  string  `json:"jobStatus"`
	Container  string  `json:"container"`
}

type resourceGroupJSON struct {
	Name       string            `json:"name"`
	Container  string            `json:"container"`
	Properties map[string]string `json:"properties"`
}

type optimizerResourceInfo struct {
	ResourceGroup    *resourceGroupJSON `json:"resourceGroup"`
	OccupationCore   int64              `json:"occupationCore"`
	OccupationMemory int64              `json:"occupationMemory"`
}

type tableIdentifierJSON struct {
	ID        int64  `json:"id"`
	Catalog   string `json:"catalog"`
	Database  string `json:"database"`
	TableName string `json:"tableName"`
	Format    string `json:"format"`
}

type tableOptimizingInfo struct {
	TableIdentifier tableIdentifierJSON `json:"tableIdentifier"`
	TableName       string              `json:"tableName"`
	OptimizeStatus  string              `json:"optimizeStatus"`
	Duration        int64               `json:"duration"`
	FileCount       int64               `json:"fileCount"`
	FileSize        int64               `json:"fileSize"`
	Quota           float64             `json:"quota"`
	QuotaOccupation float64             `json:"quotaOccupation"`
	GroupName       string              `json:"groupName"`
}

type optimizingProcessInfo struct {
	ProcessID      int64  `json:"processId"`
	CatalogName    string `json:"catalogName"`
	DBName         string `json:"dbName"`
	TableName      string `json:"tableName"`
	Status         string `json:"status"`
	OptimizingType string `json:"optimizingType"`
	TotalTasks     int    `json:"totalTasks"`
	SuccessTasks   int    `json:"successTasks"`
	RunningTasks   int    `json:"runningTasks"`
	StartTime      int64  `json:"startTime"`
	FinishTime     int64  `json:"finishTime"`
	Duration       int64  `json:"duration"`
	FailReason     string `json:"failReason,omitempty"`
}

type optimizingTaskInfo struct {
	TaskID         int32  `json:"taskId"`
	ProcessID      int64  `json:"processId"`
	Status         string `json:"status"`
	OptimizerToken string `json:"optimizerToken"`
	ThreadID       int32  `json:"threadId"`
	StartTime      int64  `json:"startTime"`
	EndTime        int64  `json:"endTime"`
	CostTime       int64  `json:"costTime"`
	RetryNum       int    `json:"retryNum"`
	FailReason     string `json:"failReason"`
}

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
	api("GET /health/status", func(*http.Request) (any, error) { return "OK", nil })
	api("GET /versionInfo", func(*http.Request) (any, error) {
		return map[string]string{"version": "emulator", "commitTime": ""}, nil
	})
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
	notEmulated := func(*http.Request) (any, error) {
		return nil, fmt.Errorf("not supported by the AMS emulator: it launches no containers; start optimizers with RunOptimizer or StartOptimizer")
	}
	api("POST /optimize/optimizerGroups/{group}/optimizers", notEmulated)
	api("POST /optimize/optimizers", notEmulated)
	api("DELETE /optimize/optimizers/{jobId}", notEmulated)
	e.optimizerRoutes(mux)
	e.controlRoutes(mux)
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

func errorCode(err error) int {
	if c, ok := err.(*codedError); ok {
		return c.code
	}
	return 500
}

// whitelisted paths need no auth (amoro.md §4.3).
func whitelisted(path string) bool {
	switch path {
	case APIPrefix + "/health/status", APIPrefix + "/versionInfo", APIPrefix + "/login", APIPrefix + "/api/token/calculate/signature":
		return true
	}
	return false
}

// withAuth applies http-server.rest-auth-type to /api/ams paths
// (DashboardServer.preHandleRequest, amoro.md §4.3). A refusal is
// SignatureCheckException/ForbiddenException: code 403 inside HTTP 200.
func (e *Emulator) withAuth(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/api/ams") || whitelisted(r.URL.Path) {
			h.ServeHTTP(w, r)
			return
		}
		a := e.opts.Auth
		deny := func(msg string) {
			writeJSON(w, http.StatusOK, errorResponse{Message: msg, Code: 403})
		}
		switch a.Type {
		case AuthToken:
			q := r.URL.Query()
			key, sig := q.Get("apiKey"), q.Get("signature")
			if key == "" || sig == "" {
				deny("API key or signature is missing")
				return
			}
			if key != a.APIKey {
				deny("Invalid API key")
				return
			}
			want := amoro.Signature(key, a.Secret, q, e.Now(), a.Location)
			if subtle.ConstantTimeCompare([]byte(want), []byte(sig)) != 1 {
				deny("Check signature for url:" + r.URL.Path + " failed")
				return
			}
		case AuthBasic:
			u, p, ok := r.BasicAuth()
			if !ok || subtle.ConstantTimeCompare([]byte(u), []byte(a.Username)) != 1 ||
				subtle.ConstantTimeCompare([]byte(p), []byte(a.Password)) != 1 {
				deny("Authentication failed")
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (e *Emulator) restGroups(*http.Request) (any, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := []map[string]string{}
	for _, g := range e.groupOrder {
		out = append(out, map[string]string{"optimizerGroupName": g.name})
	}
	return out, nil
}

// occupationLocked sums threads and memory of registered optimizers, as
// getOptimizerGroupInfo does over the optimizer table (amoro.md §4.2).
func (e *Emulator) occupationLocked(g *group) (cores, mem int64) {
	for _, o := range e.optimizers {
		if g == nil || o.group == g {
			cores += int64(o.threads)
			mem += int64(o.memoryMB)
		}
	}
	return cores, mem
}

func (e *Emulator) restResourceGroups(*http.Request) (any, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.syncLocked()
	out := []optimizerResourceInfo{}
	for _, g := range e.groupOrder {
		c, m := e.occupationLocked(g)
		props := map[string]string{}
		for k, v := range g.properties {
			props[k] = v
		}
		out = append(out, optimizerResourceInfo{
			ResourceGroup:  &resourceGroupJSON{Name: g.name, Container: g.container, Properties: props},
			OccupationCore: c, OccupationMemory: m,
		})
	}
	return out, nil
}

func (e *Emulator) groupParamLocked(r *http.Request) (*group, error) {
	name := r.PathValue("group")
	if name == "all" {
		return nil, nil
	}
	g, ok := e.groups[name]
	if !ok {
		return nil, fmt.Errorf("optimizer group %s does not exist", name)
	}
	return g, nil
}

func (e *Emulator) restGroupInfo(r *http.Request) (any, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.syncLocked()
	g, err := e.groupParamLocked(r)
	if err != nil {
		return nil, err
	}
	c, m := e.occupationLocked(g)
	return optimizerResourceInfo{OccupationCore: c, OccupationMemory: m}, nil
}

// paging reads `page` (from 1) and `pageSize` (default 20), amoro.md §4.2.
func paging(r *http.Request) (page, size int, err error) {
	page, size = 1, 20
	q := r.URL.Query()
	if v := q.Get("page"); v != "" {
		if page, err = strconv.Atoi(v); err != nil || page < 1 {
			return 0, 0, fmt.Errorf("invalid page %q", v)
		}
	}
	if v := q.Get("pageSize"); v != "" {
		if size, err = strconv.Atoi(v); err != nil || size < 1 {
			return 0, 0, fmt.Errorf("invalid pageSize %q", v)
		}
	}
	return page, size, nil
}

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

func (e *Emulator) restOptimizers(r *http.Request) (any, error) {
	page, size, err := paging(r)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.syncLocked()
	g, err := e.groupParamLocked(r)
	if err != nil {
		return nil, err
	}
	var list []optimizerInstanceInfo
	for i := len(e.optimizers) - 1; i >= 0; i-- {
		o := e.optimizers[i]
		if g != nil && o.group != g {
			continue
		}
		info := optimizerInstanceInfo{
			Token: o.token, StartTime: o.startTime.UnixMilli(), TouchTime: e.lastTouchLocked(o).UnixMilli(),
			GroupName: o.group.name, CoreNumber: o.threads, Memory: o.memoryMB,
			JobStatus: "RUNNING", Container: o.group.container,
		}
		// jobId is the resourceId, null for an optimizer started without -id.
		if o.resourceID != "" {
			id := o.resourceID
			info.JobID = &id
		}
		list = append(list, info)
	}
	// Newest first by start time (amoro.md §4.2); registration order
	// breaks ties.
	sort.SliceStable(list, func(i, j int) bool { return list[i].StartTime > list[j].StartTime })
	if list == nil {
		list = []optimizerInstanceInfo{}
	}
	return pageOf(list, page, size), nil
}

func (e *Emulator) restTables(r *http.Request) (any, error) {
	page, size, err := paging(r)
	if err != nil {
		return nil, err
	}
	q := r.URL.Query()
	actions := map[string]bool{}
	for _, a := range q["actions[]"] {
		for _, s := range strings.Split(a, ",") {
			if s = strings.TrimSpace(s); s != "" {
				actions[s] = true
			}
		}
	}
	dbSearch, tableSearch := q.Get("dbSearchInput"), q.Get("tableSearchInput")
	e.mu.Lock()
	defer e.mu.Unlock()
	e.syncLocked()
	g, err := e.groupParamLocked(r)
	if err != nil {
		return nil, err
	}
	list := []tableOptimizingInfo{}
	for _, gg := range e.groupOrder {
		if g != nil && gg != g {
			continue
		}
		for _, t := range gg.tables {
			if len(actions) > 0 && !actions[string(t.status)] {
				continue
			}
			if dbSearch != "" && !strings.Contains(t.database, dbSearch) || tableSearch != "" && !strings.Contains(t.name, tableSearch) {
				continue
			}
			running := 0
			if t.current != nil {
				for _, tk := range t.current.tasks {
					if tk.status == TaskScheduled || tk.status == TaskAcked {
						running++
					}
				}
			}
			list = append(list, tableOptimizingInfo{
				TableIdentifier: tableIdentifierJSON{ID: t.id, Catalog: t.catalog, Database: t.database, TableName: t.name, Format: "ICEBERG"},
				TableName:       t.fullName(), OptimizeStatus: string(t.status),
				Duration:  e.now.Sub(t.statusSince).Milliseconds(),
				FileCount: int64(len(t.queued)), Quota: 0.1, QuotaOccupation: float64(running),
				GroupName: gg.name,
			})
		}
	}
	return pageOf(list, page, size), nil
}

func (e *Emulator) tableParamLocked(r *http.Request) (*table, error) {
	full := r.PathValue("catalog") + "." + r.PathValue("db") + "." + r.PathValue("table")
	t, ok := e.tables[full]
	if !ok {
		return nil, fmt.Errorf("table %s does not exist", full)
	}
	return t, nil
}

func (e *Emulator) processInfoLocked(p *process) optimizingProcessInfo {
	info := optimizingProcessInfo{
		ProcessID: p.id, CatalogName: p.table.catalog, DBName: p.table.database, TableName: p.table.name,
		Status: string(p.status), OptimizingType: "MINOR", TotalTasks: len(p.tasks),
		StartTime: p.startTime.UnixMilli(), FailReason: p.failure,
	}
	end := e.now
	if !p.endTime.IsZero() {
		end = p.endTime
		info.FinishTime = p.endTime.UnixMilli()
	}
	info.Duration = end.Sub(p.startTime).Milliseconds()
	for _, tk := range p.tasks {
		switch tk.status {
		case TaskSuccess:
			info.SuccessTasks++
		case TaskScheduled, TaskAcked:
			info.RunningTasks++
		}
	}
	return info
}

func (e *Emulator) restProcesses(r *http.Request) (any, error) {
	page, size, err := paging(r)
	if err != nil {
		return nil, err
	}
	status := r.URL.Query().Get("status")
	e.mu.Lock()
	defer e.mu.Unlock()
	e.syncLocked()
	t, err := e.tableParamLocked(r)
	if err != nil {
		return nil, err
	}
	list := []optimizingProcessInfo{}
	for i := len(t.processes) - 1; i >= 0; i-- {
		p := t.processes[i]
		if status != "" && string(p.status) != status {
			continue
		}
		list = append(list, e.processInfoLocked(p))
	}
	return pageOf(list, page, size), nil
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func (e *Emulator) restTasks(r *http.Request) (any, error) {
	page, size, err := paging(r)
	if err != nil {
		return nil, err
	}
	pid, err := strconv.ParseInt(r.PathValue("process"), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("invalid process id %q", r.PathValue("process"))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.syncLocked()
	t, err := e.tableParamLocked(r)
	if err != nil {
		return nil, err
	}
	var p *process
	for _, x := range t.processes {
		if x.id == pid {
			p = x
		}
	}
	if p == nil {
		return nil, fmt.Errorf("optimizing process %d of table %s does not exist", pid, t.fullName())
	}
	list := make([]optimizingTaskInfo, 0, len(p.tasks))
	for _, tk := range p.tasks {
		list = append(list, optimizingTaskInfo{
			TaskID: tk.taskID, ProcessID: p.id, Status: string(tk.status), OptimizerToken: tk.token,
			ThreadID: tk.threadID, StartTime: ms(tk.startTime), EndTime: ms(tk.endTime),
			CostTime: tk.costTime.Milliseconds(), RetryNum: tk.retryNum, FailReason: tk.failReason,
		})
	}
	return pageOf(list, page, size), nil
}
