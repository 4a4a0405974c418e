package spark

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/ebbscale/ebb/sdk"
)

// createApp makes a user's SparkApplication for workload mode.
func (w *world) createApp(t *testing.T, name string, spec map[string]any) {
	t.Helper()
	base := map[string]any{"type": "Scala", "sparkVersion": "3.5.7", "mainClass": "com.example.Etl",
		"mainApplicationFile": "local:///opt/etl.jar", "driver": map[string]any{}, "executor": map[string]any{"cores": int64(2)}}
	for k, v := range spec {
		base[k] = v
	}
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": GVR.GroupVersion().String(), "kind": "SparkApplication",
		"metadata": map[string]any{"name": name, "namespace": w.ns}, "spec": base}}
	if _, err := w.dyn.Resource(GVR).Namespace(w.ns).Create(testCtx(t), obj, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
}

func desired(n int64) sdk.Decision { return sdk.Decision{DesiredCapacity: n, Reason: "test"} }

// With Spark's dynamic allocation on, a size within its bounds needs no
// write; beyond them the bounds must move, a restart, refused unless
// allowed.
func TestWorkloadDynamicAllocation(t *testing.T) {
	w := newWorld(t)
	w.createApp(t, "etl", map[string]any{"dynamicAllocation": map[string]any{"enabled": true, "minExecutors": int64(1), "maxExecutors": int64(5)}})
	tgt := sdk.Target{Chain: "etl", Name: "etl"}
	eventually(t, "running", func() bool { return w.state(t, "etl") == StateRunning })
	r := w.realizer(t, map[string]any{"mode": "workload"})

	inv := inventory(t, r, tgt)
	if len(inv) != 1 || inv["etl-exec-1"].Phase != sdk.PhaseRunning || inv["etl-exec-1"].Size != 2 {
		t.Errorf("executors %+v", inv)
	}
	rv := w.app(t, "etl").GetResourceVersion()
	// 8 threads / 2 cores = 4 executors, within [1, 5].
	mustContain(t, realize(t, r, tgt, "req-1", desired(8)), "without a restart; nothing written")
	if w.app(t, "etl").GetResourceVersion() != rv {
		t.Error("within bounds, the spec was written")
	}
	_, err := r.Realize(testCtx(t), sdk.RealizeRequest{Target: tgt, RequestID: "req-2", Decision: desired(20)})
	if err == nil {
		t.Fatal("restart-costing resize accepted")
	}
	mustContain(t, err.Error(), "spec.dynamicAllocation.maxExecutors 5 -> 10")
	mustContain(t, err.Error(), "allow-restart = false")

	ra := w.realizer(t, map[string]any{"mode": "workload", "allow-restart": true})
	mustContain(t, realize(t, ra, tgt, "req-2", desired(20)), "maxExecutors 5 -> 10 (allow-restart")
	eventually(t, "resubmitted", func() bool { return w.op.Submissions("etl") == 2 })
	if max, _, _ := unstructured.NestedInt64(w.app(t, "etl").Object, "spec", "dynamicAllocation", "maxExecutors"); max != 10 {
		t.Errorf("maxExecutors %d", max)
	}
}

// Without dynamic allocation the executor count is spec.executor.instances:
// changing it restarts a live application, but is free before submission.
func TestWorkloadInstances(t *testing.T) {
	w := newWorld(t)
	w.op.Hold(true)
	w.createApp(t, "batch", map[string]any{"executor": map[string]any{"cores": int64(1), "instances": int64(2)}})
	tgt := sdk.Target{Chain: "batch", Name: "batch"}
	r := w.realizer(t, map[string]any{"mode": "workload"})
	mustContain(t, realize(t, r, tgt, "req-1", desired(3)), "spec.executor.instances 2 -> 3")
	mustContain(t, realize(t, r, tgt, "req-1", desired(3)), "already 3 executors")
	w.op.Hold(false)
	eventually(t, "running", func() bool { return w.state(t, "batch") == StateRunning })
	if n := len(inventory(t, r, tgt)); n != 3 {
		t.Errorf("%d executors, want 3", n)
	}
	_, err := r.Realize(testCtx(t), sdk.RealizeRequest{Target: tgt, RequestID: "req-2", Decision: desired(5)})
	if err == nil || !strings.Contains(err.Error(), "batch (RUNNING) to 5 executors") {
		t.Errorf("live resize: %v", err)
	}
	if _, err := r.Realize(testCtx(t), sdk.RealizeRequest{Target: tgt, RequestID: "req-3", Decision: sdk.Decision{Restart: []string{"batch-exec-1"}}}); err == nil {
		t.Error("executor restart accepted")
	}
	if _, err := r.Inventory(testCtx(t), sdk.Target{Chain: "x", Name: "missing"}); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("missing workload: %v", err)
	}
}
