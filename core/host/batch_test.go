package host

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ebbscale/ebb/sdk"
	"github.com/ebbscale/ebb/sdk/sdktest"
)

// batchHost is a host over the test plugins, v2 and v1, with a realizer
// directory holding one unit.
func batchHost(t *testing.T) (*Host, string, string) {
	t.Helper()
	dir, _ := pluginDir(t)
	units := t.TempDir()
	if err := os.WriteFile(filepath.Join(units, "u-1"), []byte(`{"size": 2, "phase": "running"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	snap := filepath.Join(t.TempDir(), "s.json")
	if err := os.WriteFile(snap, []byte(`{"tasks": 7}`), 0o644); err != nil {
		t.Fatal(err)
	}
	h := New(Options{PluginDir: dir, Backoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	t.Cleanup(h.Close)
	return h, snap, units
}

func targets(names ...string) []sdk.Target {
	out := make([]sdk.Target, len(names))
	for i, n := range names {
		out[i] = sdk.Target{Chain: fmt.Sprintf("c%d", i), Name: n}
	}
	return out
}

// collected is what a batch of collect results says, one word per target:
// the planned tasks, or the error.
func collected(rs []sdk.CollectResult) string {
	var out []string
	for _, r := range rs {
		if r.Err != nil {
			out = append(out, "error("+r.Err.Error()+")")
		} else {
			out = append(out, fmt.Sprint(r.Snapshot.Demand.PlannedTasks))
		}
	}
	return strings.Join(out, " ")
}

func TestCollectBatchThroughPluginProcess(t *testing.T) {
	h, snap, _ := batchHost(t)
	inst := h.Instance(Spec{Block: "c", Kind: sdk.KindCollector, Plugin: "test-collector", Config: json.RawMessage(`{"file":"` + snap + `"}`)})
	ctx := context.Background()
	rs, err := inst.CollectBatch(ctx, targets("tasks:3", "fail:no such group", "plain", "panic", "tasks:5"))
	if err != nil {
		t.Fatal(err)
	}
	// Each target gets its own answer in its place; the failing and the
	// panicking one fail alone.
	want := "3 error(no such group) 7 error(plugin panicked: test-collector: asked to panic) 5"
	if got := collected(rs); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	// A panic in a single Collect kills the process; in a batch the SDK
	// turns it into the target's error, so the process lives on.
	pid := inst.Pid()
	if rs, err = inst.CollectBatch(ctx, targets("tasks:1")); err != nil || collected(rs) != "1" {
		t.Fatalf("after the panic: %s %v", collected(rs), err)
	}
	if inst.Pid() != pid || inst.Restarts() != 0 {
		t.Fatalf("pid %d (was %d), restarts %d", inst.Pid(), pid, inst.Restarts())
	}
	if rs, err := inst.CollectBatch(ctx, nil); err != nil || len(rs) != 0 {
		t.Fatalf("empty batch: %v %v", rs, err)
	}
}

func TestInventoryAndEvaluateBatch(t *testing.T) {
	h, _, units := batchHost(t)
	ctx := context.Background()
	real := h.Instance(Spec{Block: "r", Kind: sdk.KindRealizer, Plugin: "test-realizer", Config: json.RawMessage(`{"dir":"` + units + `"}`)})
	inv, err := real.InventoryBatch(ctx, targets("a", "fail:platform down", "b"))
	if err != nil {
		t.Fatal(err)
	}
	if len(inv) != 3 || inv[0].Err != nil || len(inv[0].Units) != 1 || inv[0].Units[0].ID != "u-1" || inv[0].Units[0].Size != 2 ||
		inv[1].Err == nil || inv[1].Err.Error() != "platform down" || inv[2].Err != nil || len(inv[2].Units) != 1 {
		t.Fatalf("inventory: %+v", inv)
	}

	ev := h.Instance(Spec{Block: "e", Kind: sdk.KindEvaluator, Plugin: "test-evaluator"})
	var reqs []sdk.EvaluateRequest
	for i, tasks := range []int64{1, 2, 3} {
		reqs = append(reqs, sdk.EvaluateRequest{Target: sdk.Target{Chain: fmt.Sprint(i), Name: "t"}, Policy: json.RawMessage(`{"per-unit": 1}`),
			Snapshot: sdk.Snapshot{Complete: true, Demand: sdk.Demand{PlannedTasks: tasks}}, Inventory: inv[0].Units, Now: time.Now()})
	}
	reqs[1].Policy = json.RawMessage(`{"bogus": 1}`)
	res, err := ev.EvaluateBatch(ctx, reqs)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 3 || res[0].Err != nil || res[0].Response.Decision.DesiredCapacity != 1 || len(res[0].Response.State) == 0 ||
		res[1].Err == nil || !strings.Contains(res[1].Err.Error(), "bogus") ||
		res[2].Err != nil || res[2].Response.Decision.DesiredCapacity != 3 || len(res[2].Response.Decision.Add) != 2 {
		t.Fatalf("evaluate: %+v", res)
	}
}

// A plugin built before protocol 2 is accepted and gets one call per target.
func TestBatchFallsBackToSingleCallsForVersion1(t *testing.T) {
	h, _, _ := batchHost(t)
	ctx := context.Background()
	for _, kind := range []sdk.Kind{sdk.KindCollector, sdk.KindEvaluator, sdk.KindRealizer} {
		info, err := h.Info(kind, "test-v1-"+kind.String(), "")
		if err != nil || info.ProtocolVersion != 1 {
			t.Fatalf("%v: info %+v, %v", kind, info, err)
		}
	}
	p := sdktest.Start(t, filepath.Join(h.pluginDir(), "test-v1-collector"), sdk.KindCollector)
	if v := p.Version(); v != 1 {
		t.Fatalf("a version 1 plugin negotiated version %d", v)
	}
	if v := sdktest.Start(t, filepath.Join(h.pluginDir(), "test-collector"), sdk.KindCollector).Version(); v != sdk.ProtocolVersion {
		t.Fatalf("an SDK plugin negotiated version %d", v)
	}

	col := h.Instance(Spec{Block: "c", Kind: sdk.KindCollector, Plugin: "test-v1-collector"})
	rs, err := col.CollectBatch(ctx, targets("tasks:4", "fail:gone", "tasks:6"))
	if err != nil {
		t.Fatal(err)
	}
	if got := collected(rs); !strings.HasPrefix(got, "4 error(") || !strings.Contains(got, "gone") || !strings.HasSuffix(got, ") 6") {
		t.Fatalf("collect: %s", got)
	}
	inv, err := h.Instance(Spec{Block: "r", Kind: sdk.KindRealizer, Plugin: "test-v1-realizer"}).InventoryBatch(ctx, targets("x", "y"))
	if err != nil || len(inv) != 2 || inv[0].Units[0].ID != "x" || inv[1].Units[0].ID != "y" {
		t.Fatalf("inventory: %+v %v", inv, err)
	}
	res, err := h.Instance(Spec{Block: "e", Kind: sdk.KindEvaluator, Plugin: "test-v1-evaluator"}).EvaluateBatch(ctx, []sdk.EvaluateRequest{
		{Target: sdk.Target{Name: "x"}, Snapshot: sdk.Snapshot{Demand: sdk.Demand{PlannedTasks: 2}}},
		{Target: sdk.Target{Name: "y"}, Snapshot: sdk.Snapshot{Demand: sdk.Demand{PlannedTasks: 9}}},
	})
	if err != nil || len(res) != 2 || res[0].Response.Decision.Reason != "v1 x" || res[1].Response.Decision.DesiredCapacity != 9 {
		t.Fatalf("evaluate: %+v %v", res, err)
	}
	// A v1 process that dies in the middle fails the whole call, as one
	// batch RPC would.
	if _, err := col.CollectBatch(ctx, targets("tasks:1", "crash")); err == nil {
		t.Fatal("a crash in the single-call fallback went unnoticed")
	}
}

// A plugin that dies in the middle of a batch fails the whole call; the
// next call restarts it, as after a single call.
func TestBatchCrashRestartsPlugin(t *testing.T) {
	h, snap, _ := batchHost(t)
	inst := h.Instance(Spec{Block: "c", Kind: sdk.KindCollector, Plugin: "test-collector", Config: json.RawMessage(`{"file":"` + snap + `"}`)})
	ctx := context.Background()
	if _, err := inst.CollectBatch(ctx, targets("tasks:1")); err != nil {
		t.Fatal(err)
	}
	first := inst.Pid()
	rs, err := inst.CollectBatch(ctx, targets("tasks:1", "crash", "tasks:2"))
	if err == nil || rs != nil || !strings.Contains(err.Error(), `collector "c": CollectBatch`) {
		t.Fatalf("crash mid-batch: %v %v", rs, err)
	}
	for range 100 {
		if rs, err = inst.CollectBatch(ctx, targets("tasks:1", "tasks:2")); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil || collected(rs) != "1 2" {
		t.Fatalf("after restart: %s %v", collected(rs), err)
	}
	if inst.Pid() == first || inst.Restarts() != 1 {
		t.Fatalf("pid %d (was %d), restarts %d", inst.Pid(), first, inst.Restarts())
	}
}

// More targets than one batch RPC may carry are split; the server refuses
// an oversized batch, so an answer for every target shows the split.
func TestBatchLargerThanLimitIsSplit(t *testing.T) {
	h, snap, _ := batchHost(t)
	inst := h.Instance(Spec{Block: "c", Kind: sdk.KindCollector, Plugin: "test-collector", Config: json.RawMessage(`{"file":"` + snap + `"}`)})
	n := 2*sdk.MaxBatch + 3
	var names []string
	for i := range n {
		names = append(names, fmt.Sprintf("tasks:%d", i))
	}
	rs, err := inst.CollectBatch(context.Background(), targets(names...))
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != n {
		t.Fatalf("%d results for %d targets", len(rs), n)
	}
	for i, r := range rs {
		if r.Err != nil || r.Snapshot.Demand.PlannedTasks != int64(i) {
			t.Fatalf("target %d: %+v", i, r)
		}
	}
}

// A target that does not answer before the deadline fails alone.
func TestBatchSlowTargetFailsAlone(t *testing.T) {
	h, snap, _ := batchHost(t)
	inst := h.Instance(Spec{Block: "c", Kind: sdk.KindCollector, Plugin: "test-collector", Config: json.RawMessage(`{"file":"` + snap + `"}`)})
	if _, err := inst.CollectBatch(context.Background(), targets("tasks:0")); err != nil { // started outside the deadline
		t.Fatal(err)
	}
	// The plugin answers a second before the deadline (a fifth of the
	// time, at most a second): room enough on a loaded machine.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rs, err := inst.CollectBatch(ctx, targets("tasks:1", "hang", "tasks:2"))
	if err != nil {
		t.Fatal(err)
	}
	if got := collected(rs); !strings.HasPrefix(got, "1 error(no answer for this target before the call's deadline") || !strings.HasSuffix(got, " 2") {
		t.Fatalf("got %s", got)
	}
}
