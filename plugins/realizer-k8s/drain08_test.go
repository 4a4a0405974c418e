package k8s

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ebbscale/ebb/emulator/ams"
	collectorams "github.com/ebbscale/ebb/plugins/collector-ams"
	dra "github.com/ebbscale/ebb/plugins/evaluator-dra"
	"github.com/ebbscale/ebb/sdk"
)

const image08 = "apache/amoro:0.8.1-incubating"

// An 0.8 unit's drain is a mark: the Deployment stays, the unit is
// draining for every reader (a restarted realizer too), a retried drain
// keeps its start, nothing restarts or re-adds it, and the realizer itself
// removes it at the drain timeout.
func TestUnitDrain08Marks(t *testing.T) {
	kube := adminClient(t)
	ns := newNamespace(t, kube)
	cfg := unitConfig(ns, map[string]any{"image": image08, "drain-timeout": "10m"})
	r := newRealizer(t, cluster(t).Config, cfg)
	target := sdk.Target{Chain: "lake", Name: "group-a"}
	realize(t, r, target, "req-1", sdk.Decision{Add: []sdk.UnitAdd{{UnitID: "u1", Size: 1}}})
	pod := createUnitPod(t, kube, ns, "u1")

	t0 := time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)
	r.now = func() time.Time { return t0 }
	mustContain(t, realize(t, r, target, "req-2", sdk.Decision{Drain: []string{"u1"}}), "draining u1 (optimizer 0.8.1: removed once it holds no task)")
	d := getDeployment(t, kube, ns, "ebb-optimizer-u1")
	if d.DeletionTimestamp != nil || d.Annotations[AnnotationDrainStarted] == "" {
		t.Fatalf("0.8 drain deleted the Deployment or did not mark it: deletion %v annotations %v", d.DeletionTimestamp, d.Annotations)
	}
	if _, err := kube.CoreV1().Pods(ns).Get(testCtx(t), pod, metav1.GetOptions{}); err != nil {
		t.Fatalf("the draining unit's pod: %v", err)
	}
	r.now = func() time.Time { return t0.Add(time.Minute) }
	mustContain(t, realize(t, r, target, "req-2", sdk.Decision{Drain: []string{"u1"}}), "already draining u1")

	// A second realizer instance (a restarted plugin) sees the same.
	r2 := newRealizer(t, cluster(t).Config, cfg)
	r2.now = r.now
	u := inventory(t, r2, target)["u1"]
	if u.Phase != sdk.PhaseDraining || !u.DrainStartedAt.Equal(t0) {
		t.Fatalf("u1 = %+v, want draining since %s", u, t0)
	}
	if _, err := r2.Realize(testCtx(t), sdk.RealizeRequest{Target: target, RequestID: "req-3", Decision: sdk.Decision{Restart: []string{"u1"}}}); err == nil || !strings.Contains(err.Error(), "draining") {
		t.Errorf("restart of a draining unit: %v", err)
	}
	if _, err := r2.Realize(testCtx(t), sdk.RealizeRequest{Target: target, RequestID: "req-4", Decision: sdk.Decision{Add: []sdk.UnitAdd{{UnitID: "u1", Size: 1}}}}); err == nil || !strings.Contains(err.Error(), "still draining") {
		t.Errorf("add over a draining unit: %v", err)
	}

	r2.now = func() time.Time { return t0.Add(9 * time.Minute) }
	if s := realize(t, r2, target, "req-5", sdk.Decision{}); s != "no action" {
		t.Errorf("before the drain timeout: %q", s)
	}
	r2.now = func() time.Time { return t0.Add(10*time.Minute + time.Second) }
	mustContain(t, realize(t, r2, target, "req-6", sdk.Decision{}), "force-removed u1 (drain timeout)")
	if _, err := kube.AppsV1().Deployments(ns).Get(testCtx(t), "ebb-optimizer-u1", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("Deployment after the drain timeout: %v", err)
	}
	if _, err := kube.CoreV1().Pods(ns).Get(testCtx(t), pod, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("pod after the drain timeout: %v", err)
	}
}

// drainWorld is a chain made of the real parts that can run here: the AMS
// emulator on a virtual clock with in-process optimizers, collector-ams over
// HTTP, evaluator-dra, and realizer-k8s against a real API server. The test
// plays the kubelet: an optimizer runs for every unit Deployment.
type drainWorld struct {
	t      *testing.T
	clk    *ams.VirtualClock
	emu    *ams.Emulator
	col    *collectorams.Collector
	ev     *dra.Evaluator
	r      *Realizer
	ns     string
	target sdk.Target
	policy map[string]any
	state  []byte
	// optimizers are the units whose optimizer the test started.
	optimizers []string
}

func newDrainWorld(t *testing.T) *drainWorld {
	t.Helper()
	kube := adminClient(t)
	w := &drainWorld{t: t, ns: newNamespace(t, kube), target: sdk.Target{Chain: "lake", Name: "g"}}
	w.clk = ams.NewVirtualClock(time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC))
	var err error
	w.emu, err = ams.New(ams.Options{Clock: w.clk, HeartbeatTimeout: time.Minute, Groups: []ams.GroupConfig{{Name: "g"}}})
	if err != nil {
		t.Fatal(err)
	}
	rest, metrics := httptest.NewServer(w.emu.Handler()), httptest.NewServer(w.emu.MetricsHandler())
	t.Cleanup(rest.Close)
	t.Cleanup(metrics.Close)
	w.col = collectorams.NewWithClock(w.clk.Now)
	raw, _ := json.Marshal(map[string]any{"url": rest.URL, "metrics-url": metrics.URL + "/metrics", "timeout": "5s", "heartbeat-timeout": "1m"})
	if err := w.col.Configure(context.Background(), raw); err != nil {
		t.Fatal(err)
	}
	w.ev = dra.New()
	if err := w.ev.Configure(context.Background(), json.RawMessage(`{}`)); err != nil {
		t.Fatal(err)
	}
	w.r = newRealizer(t, cluster(t).Config, unitConfig(w.ns, map[string]any{"image": image08, "drain-timeout": "10m"}))
	w.r.now = w.clk.Now
	w.policy = map[string]any{
		"min-parallelism": 2, "max-parallelism": 4, "executor-parallelism": 1,
		"executor-idle-timeout": "1m", "scale-down-cooldown": "1m", "drain-timeout": "10m",
		"auto-restart": map[string]any{"enabled": false},
	}
	return w
}

// round is one evaluation as the runner does it, then the kubelet's part:
// an optimizer for each new unit, none for a unit whose Deployment is gone.
func (w *drainWorld) round() sdk.Decision {
	t := w.t
	t.Helper()
	ctx := testCtx(t)
	snap, err := w.col.Collect(ctx, w.target)
	if err != nil {
		t.Fatalf("collect: %v", err)
	}
	inv, err := w.r.Inventory(ctx, w.target)
	if err != nil {
		t.Fatalf("inventory: %v", err)
	}
	policy, _ := json.Marshal(w.policy)
	resp, err := w.ev.Evaluate(ctx, sdk.EvaluateRequest{Target: w.target, Policy: policy, Snapshot: snap, Inventory: inv, State: w.state, Now: w.clk.Now()})
	if err != nil {
		t.Fatalf("evaluate: %v", err)
	}
	w.state = resp.State
	if resp.Decision.HasActions() {
		t.Logf("%s: %s (%s)", w.clk.Now().Format("15:04:05"), resp.Decision.Summary(), resp.Decision.Reason)
	}
	if _, err := w.r.Realize(ctx, sdk.RealizeRequest{Target: w.target, Decision: resp.Decision, RequestID: fmt.Sprintf("req-%d", w.clk.Now().Unix())}); err != nil {
		t.Fatalf("realize %s: %v", resp.Decision.Summary(), err)
	}
	inv, err = w.r.Inventory(ctx, w.target)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, u := range inv {
		ids = append(ids, u.ID)
		if !slices.Contains(w.optimizers, u.ID) {
			if _, err := w.emu.StartOptimizer("g", u.ID, int(u.Size)); err != nil {
				t.Fatal(err)
			}
			w.optimizers = append(w.optimizers, u.ID)
		}
	}
	for _, id := range w.optimizers {
		if !slices.Contains(ids, id) {
			_ = w.emu.KillOptimizer(id) // its pod is gone; fails when already killed
		}
	}
	return resp.Decision
}

func (w *drainWorld) advance(d time.Duration) {
	w.t.Helper()
	if err := w.emu.Advance(d); err != nil {
		w.t.Fatal(err)
	}
}

// busy is the unit's busy threads as the collector reports them.
func (w *drainWorld) busy(unit string) int64 {
	w.t.Helper()
	snap, err := w.col.Collect(testCtx(w.t), w.target)
	if err != nil {
		w.t.Fatal(err)
	}
	for _, wk := range snap.Workers {
		if wk.UnitID == unit {
			return wk.BusyThreads
		}
	}
	w.t.Fatalf("no worker of %s in %+v", unit, snap.Workers)
	return 0
}

func (w *drainWorld) deployment(unit string) (annotated, exists bool) {
	w.t.Helper()
	d, err := adminClient(w.t).AppsV1().Deployments(w.ns).Get(testCtx(w.t), "ebb-optimizer-"+unit, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return false, false
	}
	if err != nil {
		w.t.Fatal(err)
	}
	return d.Annotations[AnnotationDrainStarted] != "", true
}

// An 0.8 optimizer keeps polling while ebb drains it (it has no drain
// mode), so the drain waits for the collector to show it holding no task:
// the Deployment is deleted on the evaluator's Remove after the task ends,
// not before; one still busy at the drain timeout is force-removed then.
func TestUnitDrain08EndToEnd(t *testing.T) {
	w := newDrainWorld(t)
	if d := w.round(); len(d.Add) != 2 {
		t.Fatalf("floor round: %s, want two units added", d.Summary())
	}
	w.advance(time.Second)
	if len(w.optimizers) != 2 {
		t.Fatalf("optimizers %v", w.optimizers)
	}
	// One unit takes a task longer than the drain timeout.
	if err := w.emu.Submit("g", "long", 30*time.Minute); err != nil {
		t.Fatal(err)
	}
	w.advance(time.Second)
	busy, idle := w.optimizers[0], w.optimizers[1]
	if w.busy(busy) == 0 {
		busy, idle = idle, busy
	}
	if w.busy(busy) != 1 || w.busy(idle) != 0 {
		t.Fatalf("busy %s=%d, idle %s=%d", busy, w.busy(busy), idle, w.busy(idle))
	}

	// Floor lowered: the idle unit is drained once idle long enough.
	w.policy["min-parallelism"] = 0
	var d sdk.Decision
	for i := 0; i < 10 && len(d.Drain) == 0; i++ {
		w.advance(30 * time.Second)
		d = w.round()
	}
	if !slices.Equal(d.Drain, []string{idle}) {
		t.Fatalf("drain %v, want the idle unit %s (%s)", d.Drain, idle, d.Reason)
	}
	if marked, exists := w.deployment(idle); !marked || !exists {
		t.Fatalf("drained 0.8 unit: marked %v exists %v, want a marked Deployment", marked, exists)
	}

	// New work arrives; only the draining unit has a free thread, and an
	// 0.8 optimizer takes it.
	if err := w.emu.Submit("g", "late", 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	w.advance(time.Second)
	if w.busy(idle) != 1 {
		t.Fatalf("the draining 0.8 optimizer did not take the task: busy %d", w.busy(idle))
	}
	for i := 0; i < 4; i++ {
		w.advance(time.Minute)
		d = w.round()
		if len(d.Remove) > 0 {
			t.Fatalf("%s removed while it holds a task: %s (%s)", idle, d.Summary(), d.Reason)
		}
		if _, exists := w.deployment(idle); !exists {
			t.Fatalf("%s deleted while it holds a task", idle)
		}
	}
	w.advance(time.Minute) // the late task ends
	if w.busy(idle) != 0 {
		t.Fatalf("late task still running on %s", idle)
	}
	d = w.round()
	if !slices.Equal(d.Remove, []sdk.UnitRemove{{UnitID: idle}}) {
		t.Fatalf("once idle: %s, want a plain remove of %s (%s)", d.Summary(), idle, d.Reason)
	}
	if _, exists := w.deployment(idle); exists {
		t.Fatalf("%s still exists after its Remove", idle)
	}

	// The busy unit is drained (say, by an operator's decision) while its
	// 30-minute task runs: it stays until the drain timeout, then goes.
	if _, err := w.r.Realize(testCtx(t), sdk.RealizeRequest{Target: w.target, RequestID: "op-drain", Decision: sdk.Decision{Drain: []string{busy}}}); err != nil {
		t.Fatal(err)
	}
	drainedAt := w.clk.Now()
	for w.clk.Now().Sub(drainedAt) < 9*time.Minute {
		w.advance(time.Minute)
		d = w.round()
		if _, exists := w.deployment(busy); !exists || slices.ContainsFunc(d.Remove, func(rm sdk.UnitRemove) bool { return rm.UnitID == busy }) {
			t.Fatalf("%s removed %s after its drain began, before the drain timeout: %s (%s)", busy, w.clk.Now().Sub(drainedAt), d.Summary(), d.Reason)
		}
	}
	w.advance(time.Minute + time.Second)
	d = w.round()
	if _, exists := w.deployment(busy); exists {
		t.Fatalf("%s still exists at the drain timeout: %s (%s)", busy, d.Summary(), d.Reason)
	}
	if !slices.Equal(d.Remove, []sdk.UnitRemove{{UnitID: busy, Force: true}}) {
		t.Errorf("at the drain timeout: %s, want a forced remove of %s (%s)", d.Summary(), busy, d.Reason)
	}
}
