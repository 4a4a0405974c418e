package ams

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func call(t *testing.T, h http.Handler, method, target, body string) (int, envelopeT) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, strings.NewReader(body)))
	var env envelopeT
	if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil {
		t.Fatalf("%s %s: %v: %s", method, target, err, rec.Body.String())
	}
	return rec.Code, env
}

func pageTotal(t *testing.T, env envelopeT) int {
	t.Helper()
	var p struct {
		List  []json.RawMessage `json:"list"`
		Total int               `json:"total"`
	}
	must(t, json.Unmarshal(env.Result, &p))
	if len(p.List) > p.Total {
		t.Fatalf("page of %d with total %d", len(p.List), p.Total)
	}
	return p.Total
}

// The rules of AMS's controllers the collector must live with
// (TableController, MixedAndIcebergTableDescriptor, OptimizerGroupController).
func TestRESTFollowsAMS(t *testing.T) {
	e, _ := newVirtual(t, Options{})
	must(t, e.Submit("", "orders", time.Hour, time.Hour, time.Hour))
	must(t, e.Submit("", "events", time.Hour))
	_, err := e.StartOptimizer("", "u1", 1)
	must(t, err)
	h := e.Handler()
	procs := APIPrefix + "/tables/catalogs/emulator/dbs/db/tables/orders/optimizing-processes"
	tables := APIPrefix + "/optimize/optimizerGroups/default/tables"
	cases := []struct {
		name, target string
		code, total  int
	}{
		{"processes without a category: empty", procs + "?status=RUNNING", 200, 0},
		{"processes of the optimizing category", procs + "?processCategory=optimizing&status=RUNNING", 200, 1},
		{"processes by type", procs + "?type=MINOR", 200, 1},
		{"processes of another category", procs + "?processCategory=cleanup", 200, 0},
		{"status is an enum name", procs + "?processCategory=optimizing&status=running", 500, -1},
		{"processes of an unknown table", APIPrefix + "/tables/catalogs/emulator/dbs/db/tables/nope/optimizing-processes?processCategory=optimizing", 200, 0},
		{"actions[] repeated", tables + "?actions[]=minor&actions[]=pending", 200, 2},
		{"actions[] one known", tables + "?actions[]=pending", 200, 1},
		{"actions[] comma-separated is unknown: no filter", tables + "?actions[]=minor,pending", 200, 2},
		{"actions[] all unknown: no filter", tables + "?actions[]=bogus", 200, 2},
		{"unknown group: tables", APIPrefix + "/optimize/optimizerGroups/nope/tables", 200, 0},
		{"unknown group: optimizers", APIPrefix + "/optimize/optimizerGroups/nope/optimizers", 200, 0},
		{"all groups", APIPrefix + "/optimize/optimizerGroups/all/optimizers", 200, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, env := call(t, h, "GET", c.target, "")
			if env.Code != c.code {
				t.Fatalf("code %d (%s), want %d", env.Code, env.Message, c.code)
			}
			if c.total >= 0 && pageTotal(t, env) != c.total {
				t.Fatalf("total %d, want %d", pageTotal(t, env), c.total)
			}
		})
	}
	if status, env := call(t, h, "GET", APIPrefix+"/no/such", ""); status != 404 || env.Code != 404 || env.Message != "page not found!" {
		t.Fatalf("404: HTTP %d %+v", status, env)
	}
	_, env := call(t, h, "GET", APIPrefix+"/health/status", "")
	if string(env.Result) != `{"ams_ha_state":"LEADER"}` {
		t.Fatalf("health: %s", env.Result)
	}
	// A PLANNED task: token null, thread -1, failReason null, id a string.
	_, env = call(t, h, "GET", procs+"/1/tasks", "")
	if !strings.Contains(string(env.Result), `"processId":"1"`) || !strings.Contains(string(env.Result), `"status":"PLANNED","retryNum":0,"optimizerToken":null,"threadId":-1`) || strings.Contains(string(env.Result), `"failReason":""`) {
		t.Fatalf("tasks: %s", env.Result)
	}
}

// quota is in threads, quotaOccupation a ratio (OptimizingUtil).
func TestTableQuota(t *testing.T) {
	e, _ := newVirtual(t, Options{})
	must(t, e.Submit("", "orders", time.Hour, time.Hour))
	must(t, e.SetTableQuota("", "big", 6))
	_, err := e.StartOptimizer("", "u1", 3)
	must(t, err)
	advance(t, e, 30*time.Minute)
	_, env := call(t, e.Handler(), "GET", APIPrefix+"/optimize/optimizerGroups/default/tables", "")
	var p struct {
		List []tableOptimizingInfo `json:"list"`
	}
	must(t, json.Unmarshal(env.Result, &p))
	got := map[string]tableOptimizingInfo{}
	for _, ti := range p.List {
		got[ti.TableIdentifier.TableName] = ti
	}
	// orders: ceil(0.5 × 3) = 2 threads, two tasks busy for 30 of 60 min.
	if o := got["orders"]; o.Quota != 2 || o.QuotaOccupation != 0.5 || o.FileCount != 2 || o.FileSize != 2*emulatedFileSize {
		t.Fatalf("orders: %+v", o)
	}
	if b := got["big"]; b.Quota != 6 || b.QuotaOccupation != 0 {
		t.Fatalf("big: %+v", b)
	}
	if e.SetTableQuota("", "x", 0) == nil {
		t.Fatal("a zero quota was accepted")
	}
}

// Every authentication failure is code 403 "Signature check failed",
// whatever went wrong (DashboardServer.handleException), malformed escapes
// included; unknown paths are refused before routing.
func TestAuthFailuresLookAlike(t *testing.T) {
	e, _ := newVirtual(t, Options{Auth: Auth{Type: AuthToken, APIKey: "key", Secret: "sec"}})
	for _, target := range []string{
		APIPrefix + "/optimize/optimizerGroups",
		APIPrefix + "/optimize/optimizerGroups?apiKey=other&signature=x",
		APIPrefix + "/optimize/optimizerGroups?apiKey=key&signature=x",
		APIPrefix + "/optimize/optimizerGroups?apiKey=key&signature=x&tableSearchInput=50%25",
		APIPrefix + "/no/such/path",
	} {
		status, env := call(t, e.Handler(), "GET", target, "")
		if status != 200 || env.Code != 403 || env.Message != "Signature check failed" {
			t.Errorf("%s: HTTP %d %+v", target, status, env)
		}
	}
}

// POST /optimize/optimizers creates one optimizer of N threads on the
// group's container and returns no id; DELETE releases a launched one by
// its resource id, and refuses one AMS did not launch.
func TestCreateAndReleaseOptimizers(t *testing.T) {
	e, _ := newVirtual(t, Options{Groups: []GroupConfig{{Name: "k"}, {Name: "ext", Container: ExternalContainer}}})
	// The k group needs a launchable container.
	e.groups["k"].container = "k8s"
	h := e.Handler()
	if _, env := call(t, h, "POST", APIPrefix+"/optimize/optimizers", `{"optimizerGroup":"k","parallelism":"3"}`); env.Code != 200 || string(env.Result) != `"success to create optimizer"` {
		t.Fatalf("create: %+v", env)
	}
	if _, env := call(t, h, "POST", APIPrefix+"/optimize/optimizerGroups/k/optimizers", `{"parallelism":2}`); env.Code != 200 {
		t.Fatalf("scale out: %+v", env)
	}
	if _, env := call(t, h, "POST", APIPrefix+"/optimize/optimizers", `{"optimizerGroup":"ext","parallelism":1}`); env.Code != 500 || !strings.Contains(env.Message, "external") {
		t.Fatalf("create on external: %+v", env)
	}
	_, env := call(t, h, "GET", APIPrefix+"/optimize/optimizerGroups/k/optimizers", "")
	var p struct {
		List []optimizerInstanceInfo `json:"list"`
	}
	must(t, json.Unmarshal(env.Result, &p))
	if len(p.List) != 2 || p.List[0].JobID == nil || p.List[0].CoreNumber+p.List[1].CoreNumber != 5 {
		t.Fatalf("listed: %+v", p.List)
	}
	id := *p.List[0].JobID
	if _, env := call(t, h, "DELETE", APIPrefix+"/optimize/optimizers/"+id, ""); env.Code != 200 {
		t.Fatalf("release: %+v", env)
	}
	if _, env := call(t, h, "DELETE", APIPrefix+"/optimize/optimizers/"+id, ""); env.Code != 500 || !strings.Contains(env.Message, "has not been indexed") {
		t.Fatalf("second release: %+v", env)
	}
	// Gone from the listing at once; still in AMS's memory (the gauges)
	// until its heartbeat stops.
	ks, err := e.Stats("k")
	must(t, err)
	_, env = call(t, h, "GET", APIPrefix+"/optimize/optimizerGroups/k/optimizers", "")
	if pageTotal(t, env) != 1 || ks.Optimizers != 2 {
		t.Fatalf("after release: listed %d, in memory %d", pageTotal(t, env), ks.Optimizers)
	}
	// An optimizer started with -id but not by AMS has no resource row.
	_, err = e.Authenticate(RegisterInfo{ResourceID: "mine", ThreadCount: 1, GroupName: "ext"})
	must(t, err)
	if _, env := call(t, h, "DELETE", APIPrefix+"/optimize/optimizers/mine", ""); env.Code != 500 || !strings.Contains(env.Message, "resource") {
		t.Fatalf("release of an external optimizer: %+v", env)
	}
}

// A group with AMS's own allocation on shows it in resourceGroups and in
// the DRA-only gauges; the others have neither.
func TestAMSScaledGroup(t *testing.T) {
	e, _ := newVirtual(t, Options{Groups: []GroupConfig{{Name: "ebb"}, AMSScaledGroup("dra")}})
	_, env := call(t, e.Handler(), "GET", APIPrefix+"/optimize/resourceGroups", "")
	if !strings.Contains(string(env.Result), `{"name":"dra","container":"k8s","properties":{"dynamic-allocation.enabled":"true"`) {
		t.Fatalf("resourceGroups: %s", env.Result)
	}
	rec := httptest.NewRecorder()
	e.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	if !strings.Contains(body, `amoro_optimizer_group_effective_threads{group="dra"} 0`) || strings.Contains(body, `amoro_optimizer_group_effective_threads{group="ebb"}`) {
		t.Fatalf("DRA gauges:\n%s", body)
	}
}
