package k8s

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ebbscale/ebb/sdk"
)

// Issue 11: drain, restart and force-remove act only on Deployments that
// carry ebb's labels for this chain and group, never on one that merely has
// the name prefix + unit id; Inventory lists only units ebb created.
func TestUnitActsOnlyOnItsOwn(t *testing.T) {
	kube := adminClient(t)
	ns := newNamespace(t, kube)
	r := newRealizer(t, cluster(t).Config, unitConfig(ns, nil))
	lake := sdk.Target{Chain: "lake", Name: "group-a"}
	other := sdk.Target{Chain: "other", Name: "group-a"}

	// Someone's Deployment that happens to have a unit's name, with a pod.
	createDeployment(t, kube, ns, "ebb-optimizer-u9", 1)
	createPod(t, kube, ns, "ebb-optimizer-u9-pod", map[string]string{LabelApp: "ebb-optimizer-u9", LabelManagedBy: ManagedByValue})
	// Another chain's unit, same group, and its pod.
	realize(t, r, other, "req-o", sdk.Decision{Add: []sdk.UnitAdd{{UnitID: "u8", Size: 1}}})
	createUnitPod(t, kube, ns, "u8")
	// Labelled by hand as if ebb's, but without a unit id.
	hand := createDeploymentObject(ns, "hand-made", 1)
	hand.Labels = map[string]string{LabelManagedBy: ManagedByValue, LabelChain: "lake", LabelAmoroGroup: "group-a"}
	if _, err := kube.AppsV1().Deployments(ns).Create(testCtx(t), hand, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	before := map[string]string{}
	for _, name := range []string{"ebb-optimizer-u9", "ebb-optimizer-u8", "hand-made"} {
		before[name] = getDeployment(t, kube, ns, name).ResourceVersion
	}
	for _, d := range []sdk.Decision{
		{Drain: []string{"u9"}},
		{Drain: []string{"u8"}},
		{Remove: []sdk.UnitRemove{{UnitID: "u9"}}},
		{Remove: []sdk.UnitRemove{{UnitID: "u9", Force: true}}},
		{Remove: []sdk.UnitRemove{{UnitID: "u8", Force: true}}},
		{Restart: []string{"u9"}},
		{Restart: []string{"u8"}},
	} {
		_, err := r.Realize(testCtx(t), sdk.RealizeRequest{Target: lake, RequestID: "req-" + d.Summary(), Decision: d})
		if err == nil || !strings.Contains(err.Error(), "is not ebb's unit of chain \"lake\"") {
			t.Errorf("%s on a Deployment that is not this chain's unit: err %v, want a refusal", d.Summary(), err)
		}
	}
	for name, rv := range before {
		d := getDeployment(t, kube, ns, name)
		if d.ResourceVersion != rv || d.DeletionTimestamp != nil {
			t.Errorf("%s was touched: resourceVersion %s -> %s, deletion %v", name, rv, d.ResourceVersion, d.DeletionTimestamp)
		}
	}
	for _, pod := range []string{"ebb-optimizer-u9-pod", "ebb-optimizer-u8-pod"} {
		if _, err := kube.CoreV1().Pods(ns).Get(testCtx(t), pod, metav1.GetOptions{}); err != nil {
			t.Errorf("pod %s: %v", pod, err)
		}
	}
	if inv := inventory(t, r, lake); len(inv) != 0 {
		t.Errorf("inventory of %s lists %v, want nothing", lake, inv)
	}
	if inv := inventory(t, r, other); len(inv) != 1 || inv["u8"].ID != "u8" {
		t.Errorf("inventory of %s = %v, want u8", other, inv)
	}
}
