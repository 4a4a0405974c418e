package collectorams

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ebbscale/ebb/emulator/ams"
)

// The emulator is AMS as it is: the recorded scene (testdata/README.md)
// built in it gives the snapshot the recorded bodies give, request for
// request.
func TestEmulatorMatchesRecordedBodies(t *testing.T) {
	start := replayAt.Add(-90 * time.Second)
	clk := ams.NewVirtualClock(start)
	e, err := ams.New(ams.Options{Clock: clk, Groups: []ams.GroupConfig{{Name: "ebb"}},
		HeartbeatTimeout: 5 * time.Minute, TaskAckTimeout: 5 * time.Minute})
	must(t, err)
	must(t, e.Submit("ebb", "orders", time.Hour, time.Hour, time.Hour, time.Hour))
	// unit-3 registers and falls silent.
	_, err = e.Authenticate(ams.RegisterInfo{ResourceID: "unit-3", ThreadCount: 1, MemoryMB: 1024, GroupName: "ebb", StartTime: start.UnixMilli()})
	must(t, err)
	must(t, e.Advance(80*time.Second))
	// unit-2 registers and polls one thread without acking: SCHEDULED.
	tok2, err := e.Authenticate(ams.RegisterInfo{ResourceID: "unit-2", ThreadCount: 2, MemoryMB: 1024, GroupName: "ebb", StartTime: clk.Now().UnixMilli()})
	must(t, err)
	if task, err := e.PollTask(tok2, 0); err != nil || task == nil {
		t.Fatalf("unit-2 got no task: %v", err)
	}
	// unit-1 runs inside the emulator and acks at once: ACKED.
	_, err = e.StartOptimizer("ebb", "unit-1", 1)
	must(t, err)
	must(t, e.Advance(10*time.Second))

	rest, metrics := httptest.NewServer(e.Handler()), httptest.NewServer(e.MetricsHandler())
	defer rest.Close()
	defer metrics.Close()
	r := &replay{srv: rest} // only for its collector config
	got := collectOnce(t, r.collector(t, map[string]any{"metrics-url": metrics.URL + "/metrics"}), "ebb")
	checkView(t, got, busySceneView)

	recorded := newReplay(t, "0.9")
	want := collectOnce(t, recorded.collector(t, nil), "ebb")
	checkView(t, want, viewOf(got))
	for _, k := range []string{"amoro_optimizer_group_pending_tasks", "amoro_optimizer_group_executing_tasks", "amoro_optimizer_group_threads", "amoro_optimizer_group_optimizer_instances", "amoro_optimizer_group_idle_optimizers"} {
		if got.Metrics[k] != want.Metrics[k] {
			t.Errorf("%s: emulator %v, recorded %v", k, got.Metrics[k], want.Metrics[k])
		}
	}

	shapes(t, rest.URL, recorded)
}

// shapes asks the emulator what the recorded bodies answer and compares
// the two field by field: the same keys with the same JSON types (a string
// processId, a null token on a PLANNED task, a number quota), and the same
// error forms.
func shapes(t *testing.T, emulator string, recorded *replay) {
	t.Helper()
	const p = "/api/ams/v1"
	const procs = p + "/tables/catalogs/emulator/dbs/db/tables/orders/optimizing-processes"
	for _, c := range []struct{ path, file string }{
		{p + "/health/status", "health.json"},
		{p + "/optimize/optimizerGroups/ebb/optimizers", "optimizers.json"},
		{p + "/optimize/optimizerGroups/ebb/tables?actions[]=minor&actions[]=major", "tables-processing.json"},
		{p + "/optimize/resourceGroups", "resource-groups.json"},
		{procs + "?processCategory=optimizing&status=RUNNING", "processes-running.json"},
		{procs + "?status=RUNNING", "page-empty.json"},
		{procs + "?processCategory=optimizing&status=running", "error-status-enum.json"},
		{procs + "/1/tasks", "tasks-1.json"},
		{p + "/optimize/optimizerGroups/nope/optimizers", "page-empty.json"},
		{p + "/no/such/path", "not-found.json"},
	} {
		resp, err := http.Get(emulator + c.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var got, want any
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%s: %v: %s", c.path, err, b)
		}
		must(t, json.Unmarshal(recorded.body(c.file), &want))
		if g, w := shapeOf(got), shapeOf(want); g != w {
			t.Errorf("%s: emulator answers\n  %s\nAMS answers (%s)\n  %s", c.path, g, c.file, w)
		}
		if c.file == "not-found.json" && resp.StatusCode != 404 {
			t.Errorf("%s: HTTP %d, want 404", c.path, resp.StatusCode)
		}
	}
}

// shapeOf renders a JSON value's structure: keys, the type of each value,
// the distinct element shapes of lists, and the envelope's code and message.
func shapeOf(v any) string {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b strings.Builder
		b.WriteString("{")
		for _, k := range keys {
			val := shapeOf(x[k])
			if k == "code" || k == "message" && x["code"] != float64(200) {
				val = fmt.Sprint(x[k])
			}
			if k == "properties" || k == "summary" {
				val = "map"
			}
			fmt.Fprintf(&b, "%s:%s,", k, val)
		}
		return b.String() + "}"
	case []any:
		// Every distinct element shape: a PLANNED task (null token,
		// thread -1) differs from an ACKED one.
		seen := map[string]bool{}
		var all []string
		for _, el := range x {
			if s := shapeOf(el); !seen[s] {
				seen[s] = true
				all = append(all, s)
			}
		}
		sort.Strings(all)
		return "[" + strings.Join(all, "|") + "]"
	case nil:
		return "null"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "bool"
	}
	return "?"
}
