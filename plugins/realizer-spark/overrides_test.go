package spark

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/ebbscale/ebb/sdk"
)

func overrides(m map[string]string) sdk.OverridesRequest[string] {
	return sdk.OverridesRequest[string]{Target: target, Overrides: m, RequestID: "ov-1"}
}

// A restart-costing override is held back from a running application, the
// error (the decision log's entry) names it and why, and nothing is
// written; a dead application and units added later get it.
func TestOverrideHeldBackFromRunning(t *testing.T) {
	w := newWorld(t)
	r := w.realizer(t, nil)
	realize(t, r, target, "req-1", addDecision("u-1", "u-2"))
	eventually(t, "running", func() bool { return len(w.op.Running()) == 2 })
	w.op.Crash("ebb-optimizer-u-2")
	eventually(t, "u-2 FAILED", func() bool { return w.state(t, "ebb-optimizer-u-2") == StateFailed })
	before := w.app(t, "ebb-optimizer-u-1").GetResourceVersion()

	s, err := r.RealizeConfigOverrides(testCtx(t), overrides(map[string]string{
		"spark.dynamicAllocation.maxExecutors": "8", "spark.executor.memoryOverhead": "512m"}))
	if err == nil {
		t.Fatalf("override of a running application accepted: %q", s)
	}
	for _, want := range []string{`chain "amoro"`, "held back spark.dynamicAllocation.maxExecutors=\"8\", spark.executor.memoryOverhead=\"512m\"",
		"ebb-optimizer-u-1 (RUNNING)", "resubmits", "allow-restart = true", "ebb-optimizer-u-2: set"} {
		mustContain(t, err.Error(), want)
	}
	if got := w.app(t, "ebb-optimizer-u-1").GetResourceVersion(); got != before {
		t.Errorf("running application written: resourceVersion %s -> %s", before, got)
	}
	if max, _, _ := unstructured.NestedInt64(w.app(t, "ebb-optimizer-u-2").Object, "spec", "dynamicAllocation", "maxExecutors"); max != 8 {
		t.Errorf("dead application's maxExecutors %d, want 8", max)
	}
	realize(t, r, target, "req-2", addDecision("u-3"))
	obj := w.app(t, "ebb-optimizer-u-3")
	max, _, _ := unstructured.NestedInt64(obj.Object, "spec", "dynamicAllocation", "maxExecutors")
	conf, _, _ := unstructured.NestedStringMap(obj.Object, "spec", "sparkConf")
	if max != 8 || conf["spark.executor.memoryOverhead"] != "512m" {
		t.Errorf("new unit: maxExecutors %d, sparkConf %v", max, conf)
	}
	time.Sleep(200 * time.Millisecond)
	if n := w.op.Submissions("ebb-optimizer-u-1"); n != 1 {
		t.Errorf("running unit submitted %d times", n)
	}
}

// With allow-restart the override is written, merged with what the user
// set, and the operator resubmits; repeating it writes nothing.
func TestOverrideAllowedRestart(t *testing.T) {
	w := newWorld(t)
	r := w.realizer(t, map[string]any{"allow-restart": true, "spark-conf": map[string]string{"spark.sql.shuffle.partitions": "8"}})
	realize(t, r, target, "req-1", addDecision("u-1"))
	name := "ebb-optimizer-u-1"
	eventually(t, "running", func() bool { return w.state(t, name) == StateRunning })

	req := overrides(map[string]string{"spark.dynamicAllocation.maxExecutors": "6", "spark.executor.memoryOverhead": "1g"})
	s, err := r.RealizeConfigOverrides(testCtx(t), req)
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, s, name+": set spark.dynamicAllocation.maxExecutors=\"6\"")
	obj := w.app(t, name)
	conf, _, _ := unstructured.NestedStringMap(obj.Object, "spec", "sparkConf")
	if conf["spark.sql.shuffle.partitions"] != "8" || conf["spark.executor.memoryOverhead"] != "1g" || len(conf) != 2 {
		t.Errorf("sparkConf %v: the user's key lost or the override missing", conf)
	}
	if en, _, _ := unstructured.NestedBool(obj.Object, "spec", "dynamicAllocation", "enabled"); !en {
		t.Error("dynamicAllocation.enabled lost")
	}
	eventually(t, "resubmitted and running", func() bool {
		return w.op.Submissions(name) == 2 && w.state(t, name) == StateRunning
	})
	rv := w.app(t, name).GetResourceVersion()
	s, err = r.RealizeConfigOverrides(testCtx(t), req)
	if err != nil || !strings.Contains(s, name+" unchanged") {
		t.Errorf("repeated override: %q, %v", s, err)
	}
	if got := w.app(t, name).GetResourceVersion(); got != rv {
		t.Errorf("unchanged spec written: %s -> %s", rv, got)
	}
	// An empty value removes the key.
	if _, err := r.RealizeConfigOverrides(testCtx(t), overrides(map[string]string{"spark.executor.memoryOverhead": ""})); err != nil {
		t.Fatal(err)
	}
	conf, _, _ = unstructured.NestedStringMap(w.app(t, name).Object, "spec", "sparkConf")
	if _, ok := conf["spark.executor.memoryOverhead"]; ok || conf["spark.sql.shuffle.partitions"] != "8" {
		t.Errorf("after removing the key: %v", conf)
	}
}

// Another writer between the realizer's read and write makes the API server
// refuse the write (resourceVersion conflict); the realizer reads again and
// judges the new object.
func TestOverrideConflictRetried(t *testing.T) {
	w := newWorld(t)
	w.op.Hold(true) // not live: overrides are free to write
	r := w.realizer(t, nil)
	realize(t, r, target, "req-1", addDecision("u-1"))
	name := "ebb-optimizer-u-1"
	bumps := 0
	r.beforeWrite = func(string) {
		if bumps > 0 {
			return
		}
		bumps++
		obj := w.app(t, name)
		conf, _, _ := unstructured.NestedStringMap(obj.Object, "spec", "sparkConf")
		if conf == nil {
			conf = map[string]string{}
		}
		conf["spark.user.edit"] = "yes"
		_ = unstructured.SetNestedStringMap(obj.Object, conf, "spec", "sparkConf")
		if _, err := w.dyn.Resource(GVR).Namespace(w.ns).Update(testCtx(t), obj, metav1.UpdateOptions{}); err != nil {
			t.Errorf("the other writer: %v", err)
		}
	}
	if _, err := r.RealizeConfigOverrides(testCtx(t), overrides(map[string]string{"spark.dynamicAllocation.minExecutors": "1"})); err != nil {
		t.Fatal(err)
	}
	obj := w.app(t, name)
	conf, _, _ := unstructured.NestedStringMap(obj.Object, "spec", "sparkConf")
	min, _, _ := unstructured.NestedInt64(obj.Object, "spec", "dynamicAllocation", "minExecutors")
	if bumps != 1 || conf["spark.user.edit"] != "yes" || min != 1 {
		t.Errorf("after the conflict: bumps %d, sparkConf %v, minExecutors %d", bumps, conf, min)
	}
}

func TestOverrideBadKeys(t *testing.T) {
	w := newWorld(t)
	r := w.realizer(t, nil)
	for _, ov := range []map[string]string{
		{"executor-memory": "2g"},
		{"spark.dynamicAllocation.maxExecutors": "many"},
		{"spark.dynamicAllocation.enabled": "yes please"},
	} {
		_, err := r.RealizeConfigOverrides(testCtx(t), overrides(ov))
		if err == nil || !strings.Contains(err.Error(), `chain "amoro"`) {
			t.Errorf("%v: %v", ov, err)
		}
	}
}
