package k8s

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/ebbscale/ebb/sdk"
)

const podTemplateYAML = `
apiVersion: v1
kind: PodTemplate
template:
  metadata:
    labels:
      team: lake
  spec:
    nodeSelector:
      pool: optimizers
    containers:
      - name: main
        env:
          - name: JAVA_OPTS
            value: -XX:+UseG1GC
      - name: sidecar
        image: fluent-bit:3
`

func TestUnitCreate(t *testing.T) {
	kube := adminClient(t)
	tests := []struct {
		name        string
		extra       map[string]any
		threads     int64
		wantCPU     string
		wantMem     string
		wantHeap    string
		wantGrace   int64
		wantST      string // "" when the version has no -st
		wantPodLbl  map[string]string
		wantSidecar bool
		wantSecrets []string
	}{
		// Amoro: grace = ceil(-st ms / 1000) + 30 s.
		{name: "amoro defaults", threads: 4, wantCPU: "4", wantMem: "4Gi", wantHeap: "3276", wantGrace: 15*60 + 30, wantST: "900000"},
		{
			name:    "0.8 has no -st and no graceful shutdown: Kubernetes' default grace",
			extra:   map[string]any{"image": "apache/amoro:0.8.1-incubating"},
			threads: 2, wantCPU: "2", wantMem: "2Gi", wantHeap: "1638", wantGrace: 30,
		},
		{
			name:    "version by key, master-slave, pull secrets, sub-second drain rounded up",
			extra:   map[string]any{"image": "registry.local/amoro:main", "optimizer-version": "0.9", "master-slave-mode": true, "drain-timeout": "90500ms", "image-pull-secrets": []string{"regcred", "other"}},
			threads: 1, wantCPU: "1", wantMem: "1Gi", wantHeap: "819", wantGrace: 91 + 30, wantST: "90500",
			wantSecrets: []string{"regcred", "other"},
		},
		{
			name:    "per-thread settings and template",
			extra:   map[string]any{"memory-per-thread-mb": 2048, "cpu-per-thread": 0.5, "heap-ratio": 0.5, "drain-timeout": "5m", "pod-template": podTemplateYAML},
			threads: 3, wantCPU: "2", wantMem: "6Gi", wantHeap: "3072", wantGrace: 5*60 + 30, wantST: "300000",
			wantPodLbl: map[string]string{"team": "lake"}, wantSidecar: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ns := newNamespace(t, kube)
			r := newRealizer(t, cluster(t).Config, unitConfig(ns, tc.extra))
			target := sdk.Target{Chain: "lake", Name: "group-a"}
			sum := realize(t, r, target, "req-1", sdk.Decision{Add: []sdk.UnitAdd{{UnitID: "u1", Size: tc.threads}}})
			mustContain(t, sum, "created u1")

			d := getDeployment(t, kube, ns, "ebb-optimizer-u1")
			if *d.Spec.Replicas != 1 || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
				t.Errorf("replicas %d strategy %s, want 1 Recreate", *d.Spec.Replicas, d.Spec.Strategy.Type)
			}
			for k, v := range map[string]string{LabelManagedBy: "ebb", LabelChain: "lake", LabelUnit: "u1", LabelAmoroGroup: "group-a"} {
				if d.Labels[k] != v {
					t.Errorf("deployment label %s=%q, want %q", k, d.Labels[k], v)
				}
			}
			podLabels := map[string]string{LabelAmoroGroup: "group-a", LabelAmoroResource: "u1", LabelApp: "ebb-optimizer-u1", LabelUnit: "u1"}
			for k, v := range tc.wantPodLbl {
				podLabels[k] = v
			}
			for k, v := range podLabels {
				if d.Spec.Template.Labels[k] != v {
					t.Errorf("pod label %s=%q, want %q", k, d.Spec.Template.Labels[k], v)
				}
			}
			c := d.Spec.Template.Spec.Containers[0]
			wantArgs := []string{"optimizer", tc.wantHeap, "-a", "thrift://ams:1261", "-p", itoa(tc.threads), "-g", "group-a"}
			if tc.wantST != "" {
				wantArgs = append(wantArgs, "-st", tc.wantST)
			}
			wantArgs = append(wantArgs, "-id", "u1")
			if tc.extra["master-slave-mode"] == true {
				wantArgs = append(wantArgs, "-msm")
			}
			if !slices.Equal(c.Command, []string{"/entrypoint.sh"}) || !slices.Equal(c.Args, wantArgs) {
				t.Errorf("command %v %v, want /entrypoint.sh %v", c.Command, c.Args, wantArgs)
			}
			checkOptimizerArgs(t, d)
			var secrets []string
			for _, s := range d.Spec.Template.Spec.ImagePullSecrets {
				secrets = append(secrets, s.Name)
			}
			if !slices.Equal(secrets, tc.wantSecrets) {
				t.Errorf("imagePullSecrets %v, want %v", secrets, tc.wantSecrets)
			}
			for _, rl := range []corev1.ResourceList{c.Resources.Requests, c.Resources.Limits} {
				if q := rl[corev1.ResourceCPU]; q.Cmp(resource.MustParse(tc.wantCPU)) != 0 {
					t.Errorf("cpu %s, want %s", q.String(), tc.wantCPU)
				}
				if q := rl[corev1.ResourceMemory]; q.Cmp(resource.MustParse(tc.wantMem)) != 0 {
					t.Errorf("memory %s, want %s", q.String(), tc.wantMem)
				}
			}
			if g := *d.Spec.Template.Spec.TerminationGracePeriodSeconds; g != tc.wantGrace {
				t.Errorf("terminationGracePeriodSeconds %d, want %d", g, tc.wantGrace)
			}
			if tc.wantSidecar {
				spec := d.Spec.Template.Spec
				if len(spec.Containers) != 2 || spec.Containers[1].Name != "sidecar" || spec.NodeSelector["pool"] != "optimizers" ||
					len(c.Env) != 1 || c.Name != "main" {
					t.Errorf("user template not kept: %+v", spec)
				}
			}
		})
	}
}

func TestUnitInventoryPhases(t *testing.T) {
	kube := adminClient(t)
	ns := newNamespace(t, kube)
	r := newRealizer(t, cluster(t).Config, unitConfig(ns, nil))
	target := sdk.Target{Chain: "lake", Name: "group-a"}
	realize(t, r, target, "req-1", sdk.Decision{Add: []sdk.UnitAdd{{UnitID: "u1", Size: 2}, {UnitID: "u2", Size: 4}, {UnitID: "u3", Size: 1}}})
	// Units of another chain or group are not this target's.
	realize(t, r, sdk.Target{Chain: "other", Name: "group-a"}, "req-x", sdk.Decision{Add: []sdk.UnitAdd{{UnitID: "x1", Size: 1}}})
	realize(t, r, sdk.Target{Chain: "lake", Name: "group-b"}, "req-y", sdk.Decision{Add: []sdk.UnitAdd{{UnitID: "y1", Size: 1}}})

	// No controller runs here: play the deployment controller's status.
	setStatus := func(name string, st appsv1.DeploymentStatus) {
		d := getDeployment(t, kube, ns, name)
		d.Status = st
		if _, err := kube.AppsV1().Deployments(ns).UpdateStatus(testCtx(t), d, metav1.UpdateOptions{}); err != nil {
			t.Fatalf("update status: %v", err)
		}
	}
	setStatus("ebb-optimizer-u1", appsv1.DeploymentStatus{Replicas: 1, ReadyReplicas: 1})
	setStatus("ebb-optimizer-u2", appsv1.DeploymentStatus{Replicas: 1})
	realize(t, r, target, "req-2", sdk.Decision{Drain: []string{"u3"}})

	got := inventory(t, r, target)
	want := map[string]struct {
		size  int64
		phase sdk.Phase
	}{"u1": {2, sdk.PhaseRunning}, "u2": {4, sdk.PhaseBooting}, "u3": {1, sdk.PhaseDraining}}
	if len(got) != len(want) {
		t.Fatalf("inventory %v, want units %v", got, want)
	}
	for id, w := range want {
		u := got[id]
		if u.Size != w.size || u.Phase != w.phase || u.CreatedAt.IsZero() {
			t.Errorf("unit %s = size %d phase %s created %v, want size %d phase %s", id, u.Size, u.Phase, u.CreatedAt, w.size, w.phase)
		}
	}
	if got["u3"].DrainStartedAt.IsZero() || !got["u1"].DrainStartedAt.IsZero() {
		t.Errorf("DrainStartedAt: u3 %v (want set), u1 %v (want zero)", got["u3"].DrainStartedAt, got["u1"].DrainStartedAt)
	}
	fresh := inventory(t, newRealizer(t, cluster(t).Config, unitConfig(ns, nil)), sdk.Target{Chain: "lake", Name: "group-b"})
	if len(fresh) != 1 || fresh["y1"].Phase != sdk.PhaseRequested {
		t.Errorf("group-b inventory from a new realizer = %v, want y1 requested", fresh)
	}
}

func TestUnitIdempotentRetry(t *testing.T) {
	kube := adminClient(t)
	ns := newNamespace(t, kube)
	r := newRealizer(t, cluster(t).Config, unitConfig(ns, nil))
	target := sdk.Target{Chain: "lake", Name: "group-a"}
	d := sdk.Decision{Add: []sdk.UnitAdd{{UnitID: "u1", Size: 2}, {UnitID: "u2", Size: 2}}}
	mustContain(t, realize(t, r, target, "req-1", d), "created u2")
	// The runner retries the same decision, e.g. after a lost response.
	mustContain(t, realize(t, r, target, "req-1", d), "exists u1; exists u2")
	list, err := kube.AppsV1().Deployments(ns).List(testCtx(t), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 2 {
		t.Fatalf("%d deployments after a retry, want 2", len(list.Items))
	}

	// A same-named object that is not ebb's unit is reported, not adopted.
	foreign := createDeployment(t, kube, ns, "ebb-optimizer-u9", 1)
	_, err = r.Realize(testCtx(t), sdk.RealizeRequest{Target: target, RequestID: "req-2", Decision: sdk.Decision{Add: []sdk.UnitAdd{{UnitID: "u9", Size: 1}}}})
	if err == nil || !strings.Contains(err.Error(), "not ebb's unit") {
		t.Fatalf("adding over a foreign deployment: err %v", err)
	}
	if d := getDeployment(t, kube, ns, foreign.Name); d.ResourceVersion != foreign.ResourceVersion {
		t.Errorf("foreign deployment was modified")
	}
}

func TestUnitDrainAndRelease(t *testing.T) {
	kube := adminClient(t)
	ns := newNamespace(t, kube)
	r := newRealizer(t, cluster(t).Config, unitConfig(ns, map[string]any{"drain-timeout": "10m"}))
	target := sdk.Target{Chain: "lake", Name: "group-a"}
	realize(t, r, target, "req-1", sdk.Decision{Add: []sdk.UnitAdd{{UnitID: "u1", Size: 1}, {UnitID: "u2", Size: 1}, {UnitID: "u3", Size: 1}}})
	for _, u := range []string{"u1", "u2", "u3"} {
		createUnitPod(t, kube, ns, u)
	}

	mustContain(t, realize(t, r, target, "req-2", sdk.Decision{Drain: []string{"u1"}}), "draining u1")
	inv := inventory(t, r, target)
	if inv["u1"].Phase != sdk.PhaseDraining || inv["u1"].DrainStartedAt.IsZero() {
		t.Errorf("u1 = %+v, want draining with a start time", inv["u1"])
	}
	// A graceful drain leaves the pod to finish its work.
	if _, err := kube.CoreV1().Pods(ns).Get(testCtx(t), "ebb-optimizer-u1-pod", metav1.GetOptions{}); err != nil {
		t.Errorf("drained unit's pod is gone: %v", err)
	}
	mustContain(t, realize(t, r, target, "req-2", sdk.Decision{Drain: []string{"u1"}}), "draining u1")

	// Before the drain timeout nothing is forced; after it the unit goes.
	drainStart := inv["u1"].DrainStartedAt
	r.now = func() time.Time { return drainStart.Add(9 * time.Minute) }
	if s := realize(t, r, target, "req-3", sdk.Decision{}); s != "no action" {
		t.Errorf("before the drain timeout: %q, want no action", s)
	}
	r.now = func() time.Time { return drainStart.Add(11 * time.Minute) }
	mustContain(t, realize(t, r, target, "req-4", sdk.Decision{}), "force-removed u1 (drain timeout)")

	// A release without force drains too.
	r.now = time.Now
	mustContain(t, realize(t, r, target, "req-5", sdk.Decision{Remove: []sdk.UnitRemove{{UnitID: "u2"}}}), "draining u2")
	// Force removal of a running unit skips the drain.
	mustContain(t, realize(t, r, target, "req-6", sdk.Decision{Remove: []sdk.UnitRemove{{UnitID: "u3", Force: true}}}), "force-removed u3")
	inv = inventory(t, r, target)
	if len(inv) != 1 || inv["u2"].Phase != sdk.PhaseDraining {
		t.Errorf("inventory %v, want only u2 draining", inv)
	}
	for _, u := range []string{"u1", "u3"} {
		if _, err := kube.AppsV1().Deployments(ns).Get(testCtx(t), "ebb-optimizer-"+u, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("deployment of %s: err %v, want not found", u, err)
		}
		if _, err := kube.CoreV1().Pods(ns).Get(testCtx(t), "ebb-optimizer-"+u+"-pod", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("pod of %s: err %v, want not found", u, err)
		}
	}
	// Releasing what is gone is a no-op, not an error.
	mustContain(t, realize(t, r, target, "req-7", sdk.Decision{Drain: []string{"u3"}}), "already gone u3")
}

func TestUnitRestart(t *testing.T) {
	kube := adminClient(t)
	ns := newNamespace(t, kube)
	r := newRealizer(t, cluster(t).Config, unitConfig(ns, nil))
	target := sdk.Target{Chain: "lake", Name: "group-a"}
	realize(t, r, target, "req-1", sdk.Decision{Add: []sdk.UnitAdd{{UnitID: "u1", Size: 1}}})
	before := getDeployment(t, kube, ns, "ebb-optimizer-u1")

	mustContain(t, realize(t, r, target, "req-2", sdk.Decision{Restart: []string{"u1"}}), "restarted u1")
	after := getDeployment(t, kube, ns, "ebb-optimizer-u1")
	if after.Generation == before.Generation || after.Spec.Template.Annotations[AnnotationRestart] != "req-2" {
		t.Errorf("restart did not roll the pod template: generation %d -> %d, annotations %v", before.Generation, after.Generation, after.Spec.Template.Annotations)
	}
	if after.UID != before.UID || after.Spec.Template.Labels[LabelAmoroResource] != "u1" {
		t.Errorf("restart must keep the unit and its id")
	}
	mustContain(t, realize(t, r, target, "req-2", sdk.Decision{Restart: []string{"u1"}}), "already restarted u1")
	if again := getDeployment(t, kube, ns, "ebb-optimizer-u1"); again.Generation != after.Generation {
		t.Errorf("a retried restart rolled the pod again")
	}
	if _, err := r.Realize(testCtx(t), sdk.RealizeRequest{Target: target, RequestID: "req-3", Decision: sdk.Decision{Restart: []string{"nope"}}}); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("restart of a missing unit: err %v, want not found", err)
	}
}

func TestUnitOverrides(t *testing.T) {
	kube := adminClient(t)
	ns := newNamespace(t, kube)
	r := newRealizer(t, cluster(t).Config, unitConfig(ns, nil))
	target := sdk.Target{Chain: "lake", Name: "group-a"}
	realize(t, r, target, "req-1", sdk.Decision{Add: []sdk.UnitAdd{{UnitID: "u1", Size: 1}}})

	ctx := testCtx(t)
	if _, err := r.RealizeParallelismOverrides(ctx, sdk.OverridesRequest[int64]{Target: target, Overrides: map[string]int64{"v1": 2}}); err == nil || !strings.Contains(err.Error(), "not a Kubernetes concept") {
		t.Errorf("parallelism overrides: err %v", err)
	}
	if _, err := r.Realize(ctx, sdk.RealizeRequest{Target: target, Decision: sdk.Decision{ParallelismOverrides: map[string]int64{"v1": 2}, Add: []sdk.UnitAdd{{UnitID: "u5", Size: 1}}}}); err == nil {
		t.Errorf("a decision with parallelism overrides was accepted")
	}
	bad := []map[string]string{{"replicas": "3"}, {"memory-per-thread-mb": "lots"}, {"heap-ratio": "1.5"}, {"image": ""}}
	for _, ov := range bad {
		if _, err := r.RealizeConfigOverrides(ctx, sdk.OverridesRequest[string]{Target: target, Overrides: ov}); err == nil {
			t.Errorf("config override %v accepted", ov)
		}
	}
	if _, err := r.RealizeConfigOverrides(ctx, sdk.OverridesRequest[string]{Target: target, Overrides: map[string]string{"image": "apache/amoro:0.9.1", "memory-per-thread-mb": "512"}}); err != nil {
		t.Fatalf("config overrides: %v", err)
	}
	realize(t, r, target, "req-2", sdk.Decision{Add: []sdk.UnitAdd{{UnitID: "u2", Size: 2}}})
	old := getDeployment(t, kube, ns, "ebb-optimizer-u1").Spec.Template.Spec.Containers[0]
	nu := getDeployment(t, kube, ns, "ebb-optimizer-u2").Spec.Template.Spec.Containers[0]
	if old.Image != "apache/amoro:0.9.0" {
		t.Errorf("running unit's image changed to %s", old.Image)
	}
	if q := nu.Resources.Limits[corev1.ResourceMemory]; nu.Image != "apache/amoro:0.9.1" || q.Cmp(resource.MustParse("1Gi")) != 0 {
		t.Errorf("new unit: image %s memory %s, want apache/amoro:0.9.1 1Gi", nu.Image, q.String())
	}
}

// Errors the API server returns are reported with the object and the reason,
// and what was done before them stays consistent with the inventory.
func TestUnitReportsAPIErrors(t *testing.T) {
	kube := adminClient(t)
	ns := newNamespace(t, kube)
	quota := &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Name: "q", Namespace: ns},
		Spec:       corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{"count/deployments.apps": resource.MustParse("1")}},
	}
	created, err := kube.CoreV1().ResourceQuotas(ns).Create(testCtx(t), quota, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Quota admission enforces what the quota controller (absent here) would
	// have written into the status: the namespace's quota is used up.
	created.Status = corev1.ResourceQuotaStatus{Hard: quota.Spec.Hard, Used: quota.Spec.Hard}
	if _, err := kube.CoreV1().ResourceQuotas(ns).UpdateStatus(testCtx(t), created, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	// Admission reads quotas from a cache: wait until it sees this one.
	probe := createDeploymentObject(ns, "probe", 1)
	if err := wait.PollUntilContextTimeout(testCtx(t), 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := kube.AppsV1().Deployments(ns).Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return apierrors.IsForbidden(err), nil
	}); err != nil {
		t.Fatalf("quota never enforced: %v", err)
	}
	invalidTmpl := "spec:\n  containers:\n    - name: optimizer\n      volumeMounts:\n        - name: missing\n          mountPath: /data\n"
	tests := []struct {
		name    string
		extra   map[string]any
		add     []sdk.UnitAdd
		want    []string
		wantInv int
	}{
		{name: "quota", add: []sdk.UnitAdd{{UnitID: "q1", Size: 1}}, want: []string{"quota exceeded", "ebb-optimizer-q1"}},
		{name: "invalid object", extra: map[string]any{"pod-template": invalidTmpl}, add: []sdk.UnitAdd{{UnitID: "i1", Size: 1}}, want: []string{"invalid object", "ebb-optimizer-i1"}},
		{name: "bad unit id", add: []sdk.UnitAdd{{UnitID: "Has Spaces", Size: 1}}, want: []string{"unit id"}},
		{name: "bad size", add: []sdk.UnitAdd{{UnitID: "z1", Size: 0}}, want: []string{"size must be at least 1"}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newRealizer(t, cluster(t).Config, unitConfig(ns, tc.extra))
			target := sdk.Target{Chain: "c" + itoa(int64(i)), Name: "group-a"}
			_, err := r.Realize(testCtx(t), sdk.RealizeRequest{Target: target, RequestID: "req", Decision: sdk.Decision{Add: tc.add}})
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range tc.want {
				mustContain(t, err.Error(), w)
			}
			if inv := inventory(t, r, target); len(inv) != tc.wantInv {
				t.Errorf("inventory %v, want %d units", inv, tc.wantInv)
			}
		})
	}
}

func itoa(n int64) string { return resource.NewQuantity(n, resource.DecimalSI).String() }
