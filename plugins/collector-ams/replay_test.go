package collectorams

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ebbscale/ebb/sdk"
)

// replayAt is the Date of the recorded responses: 90 s after the scene began.
var replayAt = time.Date(2026, 9, 1, 12, 1, 30, 0, time.UTC)

// replay answers like AMS from the recorded bodies in testdata/ (see its
// README for which Amoro file each shape comes from). It routes the way
// AMS's controllers do for what the collector asks, and records every
// request.
type replay struct {
	t       *testing.T
	version string // "0.9" or "0.8"
	srv     *httptest.Server
	// routes override a path (after /api/ams/v1, or /metrics) with a file
	// or a handler.
	routes map[string]http.HandlerFunc
	auth   [2]string // basic user and password, when set

	mu   sync.Mutex
	reqs []*http.Request
}

func newReplay(t *testing.T, version string) *replay {
	t.Helper()
	r := &replay{t: t, version: version, routes: map[string]http.HandlerFunc{}}
	r.srv = httptest.NewServer(r)
	t.Cleanup(r.srv.Close)
	return r
}

// body reads a recorded file: the version's own first, then 0.9's.
func (r *replay) body(name string) []byte {
	for _, dir := range []string{"ams-" + r.version, "ams-0.9"} {
		if b, err := os.ReadFile(filepath.Join("testdata", dir, name)); err == nil {
			return b
		}
	}
	r.t.Fatalf("no recorded body %s", name)
	return nil
}

func (r *replay) file(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { w.Write(r.body(name)) }
}

func (r *replay) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req.Clone(context.Background()))
	r.mu.Unlock()
	w.Header().Set("Date", replayAt.Format(http.TimeFormat))
	w.Header().Set("Content-Type", "application/json")
	path := strings.TrimPrefix(req.URL.Path, "/api/ams/v1")
	if h, ok := r.routes[path]; ok {
		h(w, req)
		return
	}
	if path == "/metrics" {
		w.Write(r.body("metrics.txt"))
		return
	}
	// DashboardServer.preHandleRequest runs before routing.
	if r.auth[0] != "" && path != "/health/status" {
		if u, p, ok := req.BasicAuth(); !ok || u != r.auth[0] || p != r.auth[1] {
			w.Write(r.body("error-signature.json"))
			return
		}
	}
	q := req.URL.Query()
	if pg := q.Get("page"); pg != "" && pg != "1" {
		w.Write(r.body("page-empty.json"))
		return
	}
	const orders = "/tables/catalogs/emulator/dbs/db/tables/orders/optimizing-processes"
	switch path {
	case "/health/status":
		w.Write(r.body("health.json"))
	case "/optimize/optimizerGroups":
		w.Write(r.body("optimizer-groups.json"))
	case "/optimize/resourceGroups":
		w.Write(r.body("resource-groups.json"))
	case "/optimize/optimizerGroups/ebb/optimizers":
		w.Write(r.body("optimizers.json"))
	case "/optimize/optimizerGroups/ebb/tables":
		// Only the processing statuses hold the scene's table.
		if slices.Contains(q["actions[]"], "minor") {
			w.Write(r.body("tables-processing.json"))
		} else {
			w.Write(r.body("page-empty.json"))
		}
	case orders:
		switch {
		case q.Get("status") != "" && !slices.Contains([]string{"UNKNOWN", "PENDING", "SUBMITTED", "RUNNING", "CANCELING", "SUCCESS", "CANCELED", "CLOSED", "KILLED", "FAILED"}, q.Get("status")):
			w.Write([]byte(`{"message":"No enum constant org.apache.amoro.process.ProcessStatus.` + q.Get("status") + `","code":500,"requestId":""}`))
		case r.version != "0.8" && q.Get("type") == "" && q.Get("processCategory") == "":
			w.Write(r.body("page-empty.json"))
		default:
			w.Write(r.body("processes-running.json"))
		}
	case orders + "/1/tasks":
		w.Write(r.body("tasks-1.json"))
	default:
		if strings.HasPrefix(path, "/optimize/optimizerGroups/") {
			w.Write(r.body("page-empty.json")) // an unknown group
			return
		}
		w.WriteHeader(http.StatusNotFound)
		w.Write(r.body("not-found.json"))
	}
}

func (r *replay) requests(pathSuffix string) []*http.Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*http.Request
	for _, q := range r.reqs {
		if strings.HasSuffix(q.URL.Path, pathSuffix) {
			out = append(out, q)
		}
	}
	return out
}

func (r *replay) collector(t *testing.T, extra map[string]any) *Collector {
	t.Helper()
	c := NewWithClock(func() time.Time { return replayAt })
	configure(t, c, map[string]any{"url": r.srv.URL, "metrics-url": r.srv.URL + "/metrics", "timeout": "2s", "heartbeat-timeout": "1m"}, extra)
	return c
}

func collectOnce(t *testing.T, c *Collector, group string) sdk.Snapshot {
	t.Helper()
	s, err := c.Collect(context.Background(), sdk.Target{Chain: "c", Name: group})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// view is what a snapshot says, without ids derived from tokens, for
// comparing the recorded and the emulated AMS.
type view struct {
	Complete bool
	Reasons  []string
	Conflict string
	Demand   sdk.Demand
	Workers  map[string]workerView
}

type workerView struct {
	Threads, Busy int64
	BusyKnown     bool
	State         sdk.WorkerState
}

func viewOf(s sdk.Snapshot) view {
	v := view{Complete: s.Complete, Reasons: s.IncompleteReasons, Conflict: s.Conflict, Demand: s.Demand, Workers: map[string]workerView{}}
	for _, w := range s.Workers {
		v.Workers[w.UnitID] = workerView{w.Threads, w.BusyThreads, w.BusyKnown, w.State}
	}
	return v
}

// busySceneView is the scene of testdata/README.md as a snapshot must show it.
var busySceneView = view{
	Complete: true,
	Demand:   sdk.Demand{PlannedTasks: 2, ScheduledTasks: 1, RunningTasks: 1, ServiceablePlannedTasks: 2, ServiceableKnown: true},
	Workers: map[string]workerView{
		"unit-1": {1, 1, true, sdk.WorkerRegistered},
		"unit-2": {2, 1, true, sdk.WorkerRegistered},
		"unit-3": {1, 0, true, sdk.WorkerStale},
	},
}

func checkView(t *testing.T, got sdk.Snapshot, want view) {
	t.Helper()
	g := viewOf(got)
	gj, _ := json.Marshal(g)
	wj, _ := json.Marshal(want)
	if string(gj) != string(wj) {
		t.Fatalf("snapshot\n got %s\nwant %s", gj, wj)
	}
}

// The scene: 2 planned, 1 scheduled and 1 running task, two busy
// optimizers and a stale one, seen as AMS 0.9 and 0.8.1 answer.
func TestReplayBusyScene(t *testing.T) {
	for _, version := range []string{"0.9", "0.8"} {
		t.Run(version, func(t *testing.T) {
			r := newReplay(t, version)
			s := collectOnce(t, r.collector(t, nil), "ebb")
			checkView(t, s, busySceneView)
			if s.Metrics["amoro_optimizer_group_pending_tasks"] != 3 || s.Metrics["amoro_optimizer_group_memory_bytes_allocated"] != 3221225472 {
				t.Fatalf("gauges: %v", s.Metrics)
			}
			// The requests as AMS serves them.
			procs := r.requests("/orders/optimizing-processes")
			if len(procs) != 1 || procs[0].URL.Query().Get("processCategory") != "optimizing" || procs[0].URL.Query().Get("status") != "RUNNING" {
				t.Fatalf("process listing asked as %v", procs)
			}
			tables := r.requests("/ebb/tables")
			if len(tables) == 0 || !slices.Equal(tables[0].URL.Query()["actions[]"], processingActions) {
				t.Fatalf("table listing asked as %v", tables)
			}
		})
	}
}

// Quota-aware demand (DynamicAllocationState.serviceablePlannedCount):
// orders' quota of 2 threads may be a share of the group's 4, so all its
// planned tasks count; events' 5 threads exceed the group, an absolute
// quota, so of its 8 planned tasks 5 can run. The process id 2^53+1 goes
// into the task path as AMS sent it.
func TestReplayQuota(t *testing.T) {
	r := newReplay(t, "0.9")
	r.routes["/optimize/optimizerGroups/ebb/tables"] = r.file("tables-quota.json")
	r.routes["/tables/catalogs/emulator/dbs/db/tables/events/optimizing-processes"] = r.file("processes-events.json")
	r.routes["/tables/catalogs/emulator/dbs/db/tables/events/optimizing-processes/9007199254740993/tasks"] = r.file("tasks-events.json")
	r.routes["/metrics"] = func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte(strings.Replace(string(r.body("metrics.txt")), `pending_tasks{group="ebb",} 3.0`, `pending_tasks{group="ebb",} 11.0`, 1)))
	}
	s := collectOnce(t, r.collector(t, nil), "ebb")
	if !s.Complete {
		t.Fatalf("incomplete: %v", s.IncompleteReasons)
	}
	want := sdk.Demand{PlannedTasks: 10, ScheduledTasks: 1, RunningTasks: 1, ServiceablePlannedTasks: 7, ServiceableKnown: true}
	if s.Demand != want {
		t.Fatalf("demand %+v, want %+v", s.Demand, want)
	}
	// On 0.8.1 the quota is self-optimizing.quota itself: 0.5 is a share.
	r8 := newReplay(t, "0.8")
	if s := collectOnce(t, r8.collector(t, nil), "ebb"); s.Demand.ServiceablePlannedTasks != 2 || !s.Demand.ServiceableKnown {
		t.Fatalf("0.8: %+v", s.Demand)
	}
}

// A group AMS scales itself is refused with the property and the way out;
// a floor on an external group is not AMS's to act on.
func TestReplayConflict(t *testing.T) {
	r := newReplay(t, "0.9")
	c := r.collector(t, nil)
	for group, want := range map[string]string{
		"amoro-dra":      `optimizer group "amoro-dra": dynamic-allocation.enabled=true: AMS's own dynamic allocation scales it`,
		"floor":          `optimizer group "floor": min-parallelism=2 on container "k8s": AMS's floor keeper`,
		"external-floor": "",
		"ebb":            "",
	} {
		s := collectOnce(t, c, group)
		if want == "" && s.Conflict != "" || !strings.Contains(s.Conflict, want) {
			t.Fatalf("%s: conflict %q, want %q", group, s.Conflict, want)
		}
		if want != "" && !strings.Contains(s.Conflict, "dynamic-allocation.enabled=false") {
			t.Fatalf("%s: the conflict does not say how to hand the group over: %q", group, s.Conflict)
		}
	}
	// The listing fails: the last answer still holds; with none, ebb
	// cannot tell and changes nothing.
	r.routes["/optimize/resourceGroups"] = r.file("error-signature.json")
	if s := collectOnce(t, c, "amoro-dra"); !strings.Contains(s.Conflict, "dynamic-allocation.enabled=true") || s.Complete {
		t.Fatalf("remembered: %+v", s)
	}
	if s := collectOnce(t, r.collector(t, nil), "ebb"); !strings.Contains(s.Conflict, "cannot tell whether AMS scales") || !strings.Contains(s.Conflict, "Signature check failed") {
		t.Fatalf("never seen: %q", s.Conflict)
	}
}

// Every error form AMS has is an incomplete snapshot naming it, never zeros.
func TestReplayErrors(t *testing.T) {
	opts := "/optimize/optimizerGroups/ebb/optimizers"
	cases := []struct {
		name   string
		setup  func(r *replay)
		config map[string]any
		group  string
		reason string
	}{
		{"signature check failed", func(r *replay) { r.auth = [2]string{"admin", "right"} },
			map[string]any{"auth-type": "basic", "username": "admin", "password": "wrong"}, "ebb", "AMS error code 403: Signature check failed"},
		{"bad status enum", func(r *replay) {
			r.routes["/tables/catalogs/emulator/dbs/db/tables/orders/optimizing-processes"] = r.file("error-status-enum.json")
		}, nil, "ebb", "AMS error code 500: No enum constant org.apache.amoro.process.ProcessStatus.running"},
		{"JSON 404", func(r *replay) {
			r.routes[opts] = func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(404); w.Write(r.body("not-found.json")) }
		}, nil, "ebb", "optimizers: HTTP 404"},
		{"unknown group answers empty pages", nil, nil, "nope", `optimizer group "nope" not found in AMS`},
		{"walk misses tasks the gauges count", func(r *replay) {
			r.routes["/tables/catalogs/emulator/dbs/db/tables/orders/optimizing-processes"] = r.file("page-empty.json")
		}, nil, "ebb", "task lists show 0 tasks (0 planned, 0 scheduled, 0 running) but AMS's gauges show 4 (pending_tasks 3, executing_tasks 1)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newReplay(t, "0.9")
			if c.setup != nil {
				c.setup(r)
			}
			s := collectOnce(t, r.collector(t, c.config), c.group)
			if s.Complete || !hasReason(s, c.reason) {
				t.Fatalf("want incomplete with %q, got complete=%v %q", c.reason, s.Complete, s.IncompleteReasons)
			}
		})
	}
}

// When the walk misses tasks, demand comes from the gauges, so scale-up
// still sees the work.
func TestReplayCrossCheckDemand(t *testing.T) {
	r := newReplay(t, "0.9")
	r.routes["/tables/catalogs/emulator/dbs/db/tables/orders/optimizing-processes"] = r.file("page-empty.json")
	s := collectOnce(t, r.collector(t, nil), "ebb")
	if s.Demand.PlannedTasks != 3 || s.Demand.RunningTasks != 1 || s.Demand.ServiceableKnown {
		t.Fatalf("demand %+v", s.Demand)
	}
	// Without gauges nothing can tell, and the walk is believed.
	if s := collectOnce(t, r.collector(t, map[string]any{"metrics-url": nil}), "ebb"); s.Demand.Tasks() != 0 || !s.Complete {
		t.Fatalf("no gauges: %+v", s)
	}
}
