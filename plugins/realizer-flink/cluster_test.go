package flink

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	emu "github.com/ebbscale/ebb/emulator/flink"
	"github.com/ebbscale/ebb/sdk"
)

const (
	vidA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	vidB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

func admin(t *testing.T) dynamic.Interface {
	t.Helper()
	d, err := dynamic.NewForConfig(cluster(t).Config)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func createResource(t *testing.T, gvr schema.GroupVersionResource, ns, kind, name string, spec map[string]any) *unstructured.Unstructured {
	t.Helper()
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "flink.apache.org/v1beta1", "kind": kind,
		"metadata": map[string]any{"name": name, "namespace": ns}, "spec": spec,
	}}
	out, err := admin(t).Resource(gvr).Namespace(ns).Create(testCtx(t), obj, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create %s %s: %v", kind, name, err)
	}
	return out
}

func getResource(t *testing.T, gvr schema.GroupVersionResource, ns, name string) *unstructured.Unstructured {
	t.Helper()
	out, err := admin(t).Resource(gvr).Namespace(ns).Get(testCtx(t), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get %s: %v", name, err)
	}
	return out
}

func fconf(t *testing.T, obj *unstructured.Unstructured) map[string]string {
	t.Helper()
	m, _, err := unstructured.NestedStringMap(obj.Object, "spec", "flinkConfiguration")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func deploymentRealizer(t *testing.T, rc *rest.Config, ns string, extra map[string]any) *Realizer {
	t.Helper()
	cfg := map[string]any{"mode": "deployment", "namespace": ns}
	for k, v := range extra {
		cfg[k] = v
	}
	return configure(t, New().WithRESTConfig(rc), cfg)
}

func etlSpec(version string) map[string]any {
	return map[string]any{
		"image": "flink:1.20", "flinkVersion": version,
		"flinkConfiguration": map[string]any{
			"taskmanager.numberOfTaskSlots": "4", "pipeline.max-parallelism": "120",
			keyOverrides: vidA + ":3", "state.backend.type": "rocksdb",
		},
		"taskManager": map[string]any{"resource": map[string]any{"memory": "2048m", "cpu": 1.0}},
		"job":         map[string]any{"jarURI": "local:///opt/flink/usrlib/etl.jar", "parallelism": 2, "upgradeMode": "savepoint"},
	}
}

func TestOperatorOverridesMerge(t *testing.T) {
	ns := newNamespace(t)
	createResource(t, gvrDeployment, ns, "FlinkDeployment", "etl", etlSpec("v1_20"))
	r := deploymentRealizer(t, cluster(t).Config, ns, nil)
	target := sdk.Target{Chain: "etl", Name: "etl"}

	s, err := r.RealizeParallelismOverrides(testCtx(t), sdk.OverridesRequest[int64]{Target: target, Overrides: map[string]int64{vidB: 4}})
	if err != nil {
		t.Fatal(err)
	}
	obj := getResource(t, gvrDeployment, ns, "etl")
	fc := fconf(t, obj)
	if fc[keyOverrides] != vidA+":3,"+vidB+":4" || fc["state.backend.type"] != "rocksdb" {
		t.Fatalf("after overrides (%s): %v", s, fc)
	}
	// The same map again, and a map equal up to order: no write.
	rv := obj.GetResourceVersion()
	for _, ov := range []map[string]int64{{vidB: 4}, {vidA: 3, vidB: 4}} {
		s, err = r.RealizeParallelismOverrides(testCtx(t), sdk.OverridesRequest[int64]{Target: target, Overrides: ov})
		if err != nil {
			t.Fatal(err)
		}
		mustContain(t, s, "unchanged")
	}
	if got := getResource(t, gvrDeployment, ns, "etl").GetResourceVersion(); got != rv {
		t.Fatalf("an unchanged map was written: resourceVersion %s -> %s", rv, got)
	}
	_, err = r.RealizeParallelismOverrides(testCtx(t), sdk.OverridesRequest[int64]{Target: target, Overrides: map[string]int64{"Map": 2}})
	wantErr(t, err, "vertex names need rest-url")
	_, err = r.RealizeParallelismOverrides(testCtx(t), sdk.OverridesRequest[int64]{Target: target, Overrides: map[string]int64{vidA: 200}})
	wantErr(t, err, "want 1..120")

	// Config overrides: merged, memory also into spec.taskManager.resource.
	_, err = r.RealizeConfigOverrides(testCtx(t), sdk.OverridesRequest[string]{Target: target, Overrides: map[string]string{
		keyTMMemory: "4096m", "execution.checkpointing.interval": "30s", "state.backend.type": ""}})
	if err != nil {
		t.Fatal(err)
	}
	obj = getResource(t, gvrDeployment, ns, "etl")
	fc = fconf(t, obj)
	mem, _, _ := unstructured.NestedString(obj.Object, "spec", "taskManager", "resource", "memory")
	if fc[keyTMMemory] != "4096m" || mem != "4096m" || fc["execution.checkpointing.interval"] != "30s" ||
		fc[keyOverrides] != vidA+":3,"+vidB+":4" || fc["taskmanager.numberOfTaskSlots"] != "4" {
		t.Fatalf("after config overrides: %v, memory %q", fc, mem)
	}
	if _, gone := fc["state.backend.type"]; gone {
		t.Fatalf("an empty value did not remove the key: %v", fc)
	}
	rv = obj.GetResourceVersion()
	s, err = r.RealizeConfigOverrides(testCtx(t), sdk.OverridesRequest[string]{Target: target, Overrides: map[string]string{keyTMMemory: "4096m"}})
	if err != nil || !strings.Contains(s, "unchanged") || getResource(t, gvrDeployment, ns, "etl").GetResourceVersion() != rv {
		t.Fatalf("unchanged config rewritten: %q %v", s, err)
	}

	// A FlinkSessionJob takes overrides in its own flinkConfiguration;
	// memory belongs to its session cluster.
	createResource(t, gvrSessionJob, ns, "FlinkSessionJob", "report", map[string]any{"deploymentName": "etl",
		"job": map[string]any{"jarURI": "https://x/report.jar", "parallelism": 2}})
	sj := sdk.Target{Chain: "report", Name: "flinksessionjob/report"}
	if _, err := r.RealizeParallelismOverrides(testCtx(t), sdk.OverridesRequest[int64]{Target: sj, Overrides: map[string]int64{vidA: 2}}); err != nil {
		t.Fatal(err)
	}
	if fc := fconf(t, getResource(t, gvrSessionJob, ns, "report")); fc[keyOverrides] != vidA+":2" {
		t.Fatalf("session job configuration %v", fc)
	}
	_, err = r.RealizeConfigOverrides(testCtx(t), sdk.OverridesRequest[string]{Target: sj, Overrides: map[string]string{keyTMMemory: "1g"}})
	wantErr(t, err, "change the FlinkDeployment")
	_, err = r.RealizeParallelismOverrides(testCtx(t), sdk.OverridesRequest[int64]{Target: sdk.Target{Chain: "x", Name: "missing"}, Overrides: map[string]int64{vidA: 2}})
	if !apierrors.IsNotFound(err) {
		t.Fatalf("missing FlinkDeployment: %v", err)
	}
}

// racer edits the FlinkDeployment (as its owner would) just before the
// realizer's first update reaches the API server, so that update carries a
// stale resourceVersion.
type racer struct {
	next  http.RoundTripper
	fired atomic.Bool
	edit  func()
}

func (r *racer) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPut && strings.Contains(req.URL.Path, "/flinkdeployments/") && r.fired.CompareAndSwap(false, true) {
		r.edit()
	}
	return r.next.RoundTrip(req)
}

func TestOperatorConflictIsRetried(t *testing.T) {
	ns := newNamespace(t)
	createResource(t, gvrDeployment, ns, "FlinkDeployment", "etl", etlSpec("v1_20"))
	rc := rest.CopyConfig(cluster(t).Config)
	rac := &racer{edit: func() {
		obj := getResource(t, gvrDeployment, ns, "etl")
		fc := fconf(t, obj)
		fc["user.key"] = "set by the user meanwhile"
		anyMap := map[string]any{}
		for k, v := range fc {
			anyMap[k] = v
		}
		_ = unstructured.SetNestedField(obj.Object, anyMap, "spec", "flinkConfiguration")
		if _, err := admin(t).Resource(gvrDeployment).Namespace(ns).Update(context.Background(), obj, metav1.UpdateOptions{}); err != nil {
			t.Errorf("concurrent edit: %v", err)
		}
	}}
	rc.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { rac.next = rt; return rac }
	r := deploymentRealizer(t, rc, ns, nil)
	_, err := r.RealizeParallelismOverrides(testCtx(t), sdk.OverridesRequest[int64]{Target: sdk.Target{Chain: "etl", Name: "etl"}, Overrides: map[string]int64{vidB: 6}})
	if err != nil {
		t.Fatal(err)
	}
	if !rac.fired.Load() {
		t.Fatal("no concurrent edit happened")
	}
	fc := fconf(t, getResource(t, gvrDeployment, ns, "etl"))
	if fc["user.key"] != "set by the user meanwhile" || fc[keyOverrides] != vidA+":3,"+vidB+":6" {
		t.Fatalf("lost an update: %v", fc)
	}
}

func TestOperatorBalanced(t *testing.T) {
	ns := newNamespace(t)
	createResource(t, gvrDeployment, ns, "FlinkDeployment", "old", etlSpec("v1_20"))
	createResource(t, gvrDeployment, ns, "FlinkDeployment", "new", etlSpec("v2_2"))
	r := deploymentRealizer(t, cluster(t).Config, ns, map[string]any{"balanced-tasks": true})
	_, err := r.RealizeParallelismOverrides(testCtx(t), sdk.OverridesRequest[int64]{Target: sdk.Target{Chain: "c", Name: "old"}, Overrides: map[string]int64{vidB: 5}})
	wantErr(t, err, "needs Flink 2.2 or newer")
	if fc := fconf(t, getResource(t, gvrDeployment, ns, "old")); fc[keyLoadBalance] != "" || strings.Contains(fc[keyOverrides], vidB) {
		t.Fatalf("refused change was written: %v", fc)
	}
	if _, err := r.RealizeParallelismOverrides(testCtx(t), sdk.OverridesRequest[int64]{Target: sdk.Target{Chain: "c", Name: "new"}, Overrides: map[string]int64{vidB: 5}}); err != nil {
		t.Fatal(err)
	}
	fc := fconf(t, getResource(t, gvrDeployment, ns, "new"))
	// 5 -> 8: a multiple of the 4 slots that divides the 120 key groups.
	if fc[keyLoadBalance] != "TASKS" || fc[keyOverrides] != vidA+":3,"+vidB+":8" {
		t.Fatalf("balanced configuration %v", fc)
	}
}

func TestTaskManagerScale(t *testing.T) {
	ns := newNamespace(t)
	spec := etlSpec("v1_20")
	spec["flinkConfiguration"].(map[string]any)["taskmanager.numberOfTaskSlots"] = "2"
	createResource(t, gvrDeployment, ns, "FlinkDeployment", "etl", spec)
	// The premise: while spec.taskManager.replicas is unset, the API server
	// cannot read the scale subresource.
	_, err := admin(t).Resource(gvrDeployment).Namespace(ns).Get(testCtx(t), "etl", metav1.GetOptions{}, "scale")
	if !apierrors.IsInternalError(err) {
		t.Fatalf("GET scale with replicas unset: %v, want HTTP 500", err)
	}
	r := deploymentRealizer(t, cluster(t).Config, ns, nil)
	target := sdk.Target{Chain: "etl", Name: "etl"}
	if inv := inventory(t, r, target); len(inv) != 0 {
		t.Fatalf("inventory with replicas unset: %v", inv)
	}
	s := realize(t, r, target, "r1", sdk.Decision{DesiredCapacity: 5, Add: []sdk.UnitAdd{{UnitID: "x", Size: 5}}})
	mustContain(t, s, "taskmanagers set to 3 (spec.taskManager.replicas was unset)")
	obj := getResource(t, gvrDeployment, ns, "etl")
	if n, _, _ := unstructured.NestedInt64(obj.Object, "spec", "taskManager", "replicas"); n != 3 {
		t.Fatalf("spec.taskManager.replicas %d, want 3", n)
	}
	if mem, _, _ := unstructured.NestedString(obj.Object, "spec", "taskManager", "resource", "memory"); mem != "2048m" {
		t.Fatalf("scaling touched the TaskManager resource: %q", mem)
	}
	mustContain(t, realize(t, r, target, "r1", sdk.Decision{DesiredCapacity: 5, Add: []sdk.UnitAdd{{UnitID: "x", Size: 5}}}), "taskmanagers already 3")

	// The operator reports one TaskManager up.
	_ = unstructured.SetNestedField(obj.Object, map[string]any{"replicas": int64(1), "labelSelector": "component=taskmanager,app=etl"}, "status", "taskManager")
	if _, err := admin(t).Resource(gvrDeployment).Namespace(ns).UpdateStatus(testCtx(t), obj, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	inv := inventory(t, r, target)
	if len(inv) != 3 || inv["taskmanager-1"].Phase != sdk.PhaseRunning || inv["requested-2"].Phase != sdk.PhaseRequested || inv["taskmanager-1"].Size != 2 {
		t.Fatalf("inventory %v", inv)
	}
	mustContain(t, realize(t, r, target, "r2", sdk.Decision{DesiredCapacity: 2, Drain: []string{"requested-2", "requested-1"}}), "taskmanagers 3 -> 1")
	_, err = r.Realize(testCtx(t), sdk.RealizeRequest{Target: sdk.Target{Chain: "s", Name: "flinksessionjob/x"}, RequestID: "r3", Decision: sdk.Decision{DesiredCapacity: 2, Add: []sdk.UnitAdd{{UnitID: "y", Size: 2}}}})
	wantErr(t, err, "has no TaskManagers of its own")
}

func TestDeploymentUnits(t *testing.T) {
	ns := newNamespace(t)
	cfg := map[string]any{"mode": "unit", "namespace": ns, "image": "apache/amoro-flink-optimizer:0.8", "ams-thrift-uri": "thrift://ams:1261", "drain-timeout": "10m"}
	r := configure(t, New().WithRESTConfig(cluster(t).Config), cfg)
	target := sdk.Target{Chain: "lake", Name: "group-a"}
	d := sdk.Decision{Add: []sdk.UnitAdd{{UnitID: "u1", Size: 2}, {UnitID: "u2", Size: 4}}}
	mustContain(t, realize(t, r, target, "req-1", d), "created u1; created u2")
	mustContain(t, realize(t, r, target, "req-1", d), "exists u1; exists u2")

	obj := getResource(t, gvrDeployment, ns, "ebb-optimizer-u2")
	args, _, _ := unstructured.NestedStringSlice(obj.Object, "spec", "job", "args")
	entry, _, _ := unstructured.NestedString(obj.Object, "spec", "job", "entryClass")
	par, _, _ := unstructured.NestedInt64(obj.Object, "spec", "job", "parallelism")
	fc := fconf(t, obj)
	if strings.Join(args, " ") != "-a thrift://ams:1261 -p 4 -g group-a -id u2" || entry != optimizerClass || par != 4 ||
		fc["taskmanager.numberOfTaskSlots"] != "4" || fc["task.cancellation.timeout"] != "630000" ||
		!strings.Contains(fc["kubernetes.taskmanager.labels"], "amoro.optimizer-id:u2") || obj.GetLabels()[LabelAmoroGroup] != "group-a" {
		t.Fatalf("unit spec: args %v entry %s parallelism %d config %v labels %v", args, entry, par, fc, obj.GetLabels())
	}

	// A restarted runner finds its units by label.
	fresh := configure(t, New().WithRESTConfig(cluster(t).Config), cfg)
	inv := inventory(t, fresh, target)
	if len(inv) != 2 || inv["u1"].Phase != sdk.PhaseRequested || inv["u2"].Size != 4 {
		t.Fatalf("inventory %v", inv)
	}
	_ = unstructured.SetNestedField(obj.Object, map[string]any{"state": "RUNNING", "jobId": "0123456789abcdef0123456789abcdef"}, "status", "jobStatus")
	if _, err := admin(t).Resource(gvrDeployment).Namespace(ns).UpdateStatus(testCtx(t), obj, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if inv := inventory(t, fresh, target); inv["u2"].Phase != sdk.PhaseRunning {
		t.Fatalf("u2 %v, want running", inv["u2"])
	}

	mustContain(t, realize(t, fresh, target, "req-2", sdk.Decision{Restart: []string{"u1"}}), "restarted u1")
	mustContain(t, realize(t, fresh, target, "req-2", sdk.Decision{Restart: []string{"u1"}}), "already restarted u1")
	if n, _, _ := unstructured.NestedInt64(getResource(t, gvrDeployment, ns, "ebb-optimizer-u1").Object, "spec", "restartNonce"); n != 1 {
		t.Fatalf("restartNonce %d after a retried restart, want 1", n)
	}

	mustContain(t, realize(t, fresh, target, "req-3", sdk.Decision{Drain: []string{"u2"}}), "draining u2")
	inv = inventory(t, fresh, target)
	if inv["u2"].Phase != sdk.PhaseDraining {
		t.Fatalf("u2 %v, want draining", inv["u2"])
	}
	// Past the drain timeout the next decision removes it with force.
	fresh.now = func() time.Time { return time.Now().Add(11 * time.Minute) }
	mustContain(t, realize(t, fresh, target, "req-4", sdk.Decision{}), "force-removed u2 (drain timeout)")
	if inv := inventory(t, fresh, target); len(inv) != 1 {
		t.Fatalf("inventory after forced removal %v", inv)
	}

	cfg["balanced-tasks"] = true
	bal := configure(t, New().WithRESTConfig(cluster(t).Config), cfg)
	_, err := bal.Realize(testCtx(t), sdk.RealizeRequest{Target: target, RequestID: "req-5", Decision: sdk.Decision{Add: []sdk.UnitAdd{{UnitID: "u3", Size: 1}}}})
	wantErr(t, err, "needs Flink 2.2 or newer")
}

// With rest-url, deployment mode reads the running job (named in the
// status) to resolve vertex names and check max parallelism.
func TestOperatorOverridesByVertexName(t *testing.T) {
	f := startFlink(t, emu.Options{Jobs: []emu.JobSpec{demo("adaptive")}})
	ns := newNamespace(t)
	createResource(t, gvrDeployment, ns, "FlinkDeployment", "etl", etlSpec("v1_20"))
	obj := getResource(t, gvrDeployment, ns, "etl")
	_ = unstructured.SetNestedField(obj.Object, map[string]any{"jobId": demoID, "state": "RUNNING"}, "status", "jobStatus")
	if _, err := admin(t).Resource(gvrDeployment).Namespace(ns).UpdateStatus(testCtx(t), obj, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	r := deploymentRealizer(t, cluster(t).Config, ns, map[string]any{"rest-url": f.url})
	target := sdk.Target{Chain: "etl", Name: "etl"}
	if _, err := r.RealizeParallelismOverrides(testCtx(t), sdk.OverridesRequest[int64]{Target: target, Overrides: map[string]int64{keyed: 6}}); err != nil {
		t.Fatal(err)
	}
	vid := f.emu.VertexIDs(demoID)[keyed]
	if fc := fconf(t, getResource(t, gvrDeployment, ns, "etl")); !strings.Contains(fc[keyOverrides], vid+":6") {
		t.Fatalf("overrides %q lack %s:6", fc[keyOverrides], vid)
	}
	_, err := r.RealizeParallelismOverrides(testCtx(t), sdk.OverridesRequest[int64]{Target: target, Overrides: map[string]int64{keyed: 121}})
	wantErr(t, err, "want 1..120")
}
