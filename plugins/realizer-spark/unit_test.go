package spark

import (
	"reflect"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/ebbscale/ebb/sdk"
)

var target = sdk.Target{Chain: "amoro", Name: "group-a"}

func addDecision(ids ...string) sdk.Decision {
	d := sdk.Decision{Reason: "test"}
	for _, id := range ids {
		d.Add = append(d.Add, sdk.UnitAdd{UnitID: id, Size: 4})
	}
	return d
}

// A unit is one SparkApplication shaped as Amoro's Spark container submits
// the optimizer; the inventory follows status.applicationState as the
// operator moves it.
func TestUnitCreateAndInventory(t *testing.T) {
	w := newWorld(t)
	r := w.realizer(t, map[string]any{"executor-cores": 2, "spark-conf": map[string]string{
		"spark.sql.shuffle.partitions": "8", "spark.dynamicAllocation.minExecutors": "1"}})
	mustContain(t, realize(t, r, target, "req-1", addDecision("u-1")), "created u-1")

	obj := w.app(t, "ebb-optimizer-u-1")
	spec := obj.Object["spec"].(map[string]any)
	if spec["mainClass"] != "org.apache.amoro.optimizer.spark.SparkOptimizer" || spec["mainApplicationFile"] != defaultJobURI {
		t.Errorf("main class / file = %v / %v", spec["mainClass"], spec["mainApplicationFile"])
	}
	args, _, _ := unstructured.NestedStringSlice(obj.Object, "spec", "arguments")
	if want := []string{"-a", "thrift://ams:1261", "-p", "4", "-g", "group-a", "-id", "u-1"}; !reflect.DeepEqual(args, want) {
		t.Errorf("arguments %q, want %q", args, want)
	}
	da, _, _ := unstructured.NestedMap(obj.Object, "spec", "dynamicAllocation")
	// 4 threads over 2-core executors: at most 2 executors; the user's
	// spark-conf minExecutors lands in the operator's field.
	if da["enabled"] != true || da["maxExecutors"] != int64(2) || da["minExecutors"] != int64(1) {
		t.Errorf("dynamicAllocation = %v", da)
	}
	conf, _, _ := unstructured.NestedStringMap(obj.Object, "spec", "sparkConf")
	if !reflect.DeepEqual(conf, map[string]string{"spark.sql.shuffle.partitions": "8"}) {
		t.Errorf("sparkConf = %v", conf)
	}
	if rp, _, _ := unstructured.NestedString(obj.Object, "spec", "restartPolicy", "type"); rp != "Never" {
		t.Errorf("restartPolicy %q", rp)
	}
	if g, _, _ := unstructured.NestedInt64(obj.Object, "spec", "driver", "terminationGracePeriodSeconds"); g != 90 {
		t.Errorf("driver grace %d, want drain-timeout 60s + 30s", g)
	}
	pl, _, _ := unstructured.NestedStringMap(obj.Object, "spec", "executor", "labels")
	if pl[LabelGroup] != "group-a" || pl[LabelOptimizerID] != "u-1" || pl[LabelImplementation] != ImplementationValue {
		t.Errorf("executor labels %v", pl)
	}

	eventually(t, "u-1 running", func() bool { return inventory(t, r, target)["u-1"].Phase == sdk.PhaseRunning })
	u := inventory(t, r, target)["u-1"]
	if u.Size != 4 || u.Labels[LabelState] != StateRunning || u.CreatedAt.IsZero() {
		t.Errorf("unit = %+v", u)
	}
	starts := w.drv.Starts()
	if len(starts) != 1 || starts[0].MainClass != optimizerMainClass {
		t.Errorf("driver starts %+v", starts)
	}
	// Another chain's or group's units are not this target's.
	if got := inventory(t, r, sdk.Target{Chain: "other", Name: "group-a"}); len(got) != 0 {
		t.Errorf("other chain sees %v", got)
	}
}

// A retried decision (same request id, same unit ids) creates nothing new;
// neither does a realizer that starts afresh between creating a unit and
// seeing it (a runner restarted): it finds the unit and its phase from the
// API server alone.
func TestUnitRetriesAndRunnerRestart(t *testing.T) {
	w := newWorld(t)
	w.op.Hold(true) // the unit is created but not submitted yet
	r1 := w.realizer(t, nil)
	realize(t, r1, target, "req-1", addDecision("u-1", "u-2"))
	uid := w.app(t, "ebb-optimizer-u-1").GetUID()

	r2 := w.realizer(t, nil) // a new plugin process: no memory of r1
	inv := inventory(t, r2, target)
	if len(inv) != 2 || inv["u-1"].Phase != sdk.PhaseRequested || inv["u-1"].Labels[LabelState] != "NEW" {
		t.Fatalf("restarted realizer sees %+v", inv)
	}
	s := realize(t, r2, target, "req-1", addDecision("u-1", "u-2"))
	if s != "exists u-1; exists u-2" {
		t.Errorf("retried Add: %q", s)
	}
	w.op.Hold(false)
	eventually(t, "both running", func() bool {
		inv := inventory(t, r2, target)
		return inv["u-1"].Phase == sdk.PhaseRunning && inv["u-2"].Phase == sdk.PhaseRunning
	})
	if got := w.app(t, "ebb-optimizer-u-1").GetUID(); got != uid {
		t.Errorf("u-1 was recreated: uid %s -> %s", uid, got)
	}
	if n := w.op.Submissions("ebb-optimizer-u-1"); n != 1 {
		t.Errorf("u-1 submitted %d times", n)
	}
	// A name taken by something that is not ebb's unit is an error.
	foreign := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": GVR.GroupVersion().String(), "kind": "SparkApplication",
		"metadata": map[string]any{"name": "ebb-optimizer-u-9", "namespace": w.ns},
		"spec": map[string]any{"type": "Java", "sparkVersion": "3.5.7", "mainApplicationFile": "local:///x.jar",
			"driver": map[string]any{}, "executor": map[string]any{}},
	}}
	if _, err := w.dyn.Resource(GVR).Namespace(w.ns).Create(testCtx(t), foreign, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := r2.Realize(testCtx(t), sdk.RealizeRequest{Target: target, RequestID: "req-2", Decision: addDecision("u-9")}); err == nil || !strings.Contains(err.Error(), "not ebb's unit") {
		t.Errorf("Add over a foreign application: %v", err)
	}
}

// Release deletes the application with foreground propagation: draining
// while the driver finishes, then gone. Force removal does not wait.
func TestUnitRelease(t *testing.T) {
	w := newWorld(t)
	r := w.realizer(t, nil)
	realize(t, r, target, "req-1", addDecision("u-1", "u-2"))
	eventually(t, "running", func() bool { return len(w.op.Running()) == 2 })

	mustContain(t, realize(t, r, target, "req-2", sdk.Decision{Drain: []string{"u-1"}}), "draining u-1")
	u := inventory(t, r, target)["u-1"]
	// The stand-in may already have stopped the fake driver and lifted the
	// finalizer; if the unit is still listed, it is draining.
	if u.ID != "" && (u.Phase != sdk.PhaseDraining || u.DrainStartedAt.IsZero()) {
		t.Errorf("u-1 after drain = %+v", u)
	}
	eventually(t, "u-1 gone", func() bool { _, ok := inventory(t, r, target)["u-1"]; return !ok })
	mustContain(t, realize(t, r, target, "req-2", sdk.Decision{Drain: []string{"u-1"}}), "already gone u-1")

	if _, err := w.kube.CoreV1().Pods(w.ns).Get(testCtx(t), "ebb-optimizer-u-2-driver", metav1.GetOptions{}); err != nil {
		t.Fatalf("u-2's driver pod: %v", err)
	}
	mustContain(t, realize(t, r, target, "req-3", sdk.Decision{Remove: []sdk.UnitRemove{{UnitID: "u-2", Force: true}}}), "force-removed u-2")
	if _, err := w.kube.CoreV1().Pods(w.ns).Get(testCtx(t), "ebb-optimizer-u-2-driver", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("u-2's driver pod after force removal: %v", err)
	}
	if _, err := w.dyn.Resource(GVR).Namespace(w.ns).Get(testCtx(t), "ebb-optimizer-u-2", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("u-2 after force removal: %v", err)
	}
	eventually(t, "no driver runs", func() bool { return len(w.op.Running()) == 0 })
}

// A unit whose driver dies is FAILED: no capacity (phase unknown), still
// listed for evaluator-dra's auto-restart; Restart resubmits it under the
// same unit id, once per request id.
func TestUnitFailedIsRestarted(t *testing.T) {
	w := newWorld(t)
	r := w.realizer(t, nil)
	realize(t, r, target, "req-1", addDecision("u-1"))
	name := "ebb-optimizer-u-1"
	eventually(t, "running", func() bool { return w.state(t, name) == StateRunning })
	if !w.op.Crash(name) {
		t.Fatal("no driver to crash")
	}
	eventually(t, "FAILED", func() bool { return w.state(t, name) == StateFailed })
	u := inventory(t, r, target)["u-1"]
	if u.Phase != sdk.PhaseUnknown || u.Labels[LabelState] != StateFailed || u.Size != 4 {
		t.Fatalf("failed unit = %+v", u)
	}

	mustContain(t, realize(t, r, target, "req-2", sdk.Decision{Restart: []string{"u-1"}}), "restarted u-1")
	eventually(t, "running again", func() bool { return inventory(t, r, target)["u-1"].Phase == sdk.PhaseRunning })
	mustContain(t, realize(t, r, target, "req-2", sdk.Decision{Restart: []string{"u-1"}}), "already restarted u-1")
	time.Sleep(300 * time.Millisecond) // a pass or more of the operator
	if n := w.op.Submissions(name); n != 2 {
		t.Errorf("submitted %d times, want 2 (create, one restart)", n)
	}
	if _, err := r.Realize(testCtx(t), sdk.RealizeRequest{Target: target, RequestID: "req-3", Decision: sdk.Decision{Restart: []string{"u-7"}}}); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("restart of a missing unit: %v", err)
	}
}

// An application the operator never submits is requested during the boot
// window and dead after it.
func TestUnitNeverSubmitted(t *testing.T) {
	w := newWorld(t)
	w.op.Hold(true)
	r := w.realizer(t, map[string]any{"boot-timeout": "1s"})
	realize(t, r, target, "req-1", addDecision("u-1"))
	if p := inventory(t, r, target)["u-1"].Phase; p != sdk.PhaseRequested {
		t.Fatalf("phase %s, want requested", p)
	}
	eventually(t, "past the boot window", func() bool { return inventory(t, r, target)["u-1"].Phase == sdk.PhaseUnknown })
}

// Spark has no parallelism overrides; the error names the chain.
func TestParallelismRefused(t *testing.T) {
	w := newWorld(t)
	r := w.realizer(t, nil)
	_, err := r.RealizeParallelismOverrides(testCtx(t), sdk.OverridesRequest[int64]{Target: target, Overrides: map[string]int64{"v1": 2}})
	if err == nil || !strings.Contains(err.Error(), `chain "amoro"`) || !strings.Contains(err.Error(), "no meaning for Spark") {
		t.Errorf("parallelism overrides: %v", err)
	}
}
