package k8s

import (
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	crenvtest "sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/ebbscale/ebb/sdk"
)

func podCosts(t *testing.T, kube kubernetes.Interface, ns string, names ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, n := range names {
		p, err := kube.CoreV1().Pods(ns).Get(testCtx(t), n, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		out[n] = p.Annotations[AnnotationDeletionCost]
	}
	return out
}

func TestWorkloadScaleInWithDeletionCost(t *testing.T) {
	kube := adminClient(t)
	ns := newNamespace(t, kube)
	createDeployment(t, kube, ns, "web", 3)
	for _, p := range []string{"web-a", "web-b", "web-c"} {
		createPod(t, kube, ns, p, map[string]string{"app": "web"})
	}
	createPod(t, kube, ns, "other", map[string]string{"app": "other"})
	r := newRealizer(t, cluster(t).Config, workloadConfig(ns, 2))

	for _, name := range []string{"deployments.apps/web", "deployments.v1.apps/web", "deployments/web", "Deployments.apps/web"} {
		target := sdk.Target{Chain: "web", Name: name}
		inv := inventory(t, r, target)
		if len(inv) != 3 || inv["web-a"].Size != 2 || inv["web-a"].Phase != sdk.PhaseRequested {
			t.Fatalf("%s: inventory %v, want 3 pods of 2 threads", name, inv)
		}
	}
	target := sdk.Target{Chain: "web", Name: "deployments.apps/web"}

	// 2 threads at 2 per replica: one replica; web-b is least busy, then web-a.
	sum := realize(t, r, target, "req-1", sdk.Decision{DesiredCapacity: 2, Drain: []string{"web-b", "web-a"}})
	mustContain(t, sum, "replicas 3 -> 1")
	want := map[string]string{"web-a": "-1", "web-b": "-2", "web-c": ""}
	if got := podCosts(t, kube, ns, "web-a", "web-b", "web-c"); !equalMaps(got, want) {
		t.Errorf("deletion costs %v, want %v", got, want)
	}
	if d := getDeployment(t, kube, ns, "web"); *d.Spec.Replicas != 1 {
		t.Errorf("replicas %d, want 1", *d.Spec.Replicas)
	}
	mustContain(t, realize(t, r, target, "req-1", sdk.Decision{DesiredCapacity: 2, Drain: []string{"web-b", "web-a"}}), "replicas already 1")

	// A later decision picks another pod: the earlier marks are cleared.
	realize(t, r, target, "req-2", sdk.Decision{DesiredCapacity: 0, Drain: []string{"web-c"}})
	want = map[string]string{"web-a": "", "web-b": "", "web-c": "-1"}
	if got := podCosts(t, kube, ns, "web-a", "web-b", "web-c"); !equalMaps(got, want) {
		t.Errorf("deletion costs %v, want %v", got, want)
	}
	if d := getDeployment(t, kube, ns, "web"); *d.Spec.Replicas != 0 {
		t.Errorf("replicas %d, want 0", *d.Spec.Replicas)
	}
	// Scale-out: 5 threads at 2 per replica rounds up.
	mustContain(t, realize(t, r, target, "req-3", sdk.Decision{DesiredCapacity: 5, Add: []sdk.UnitAdd{{UnitID: "x", Size: 5}}}), "replicas 0 -> 3")
	// Nothing asked, nothing done: a zero capacity alone never scales to zero.
	if s := realize(t, r, target, "req-4", sdk.Decision{}); s != "no action" {
		t.Errorf("empty decision: %q", s)
	}

	// Restart and force removal delete the named pods.
	mustContain(t, realize(t, r, target, "req-5", sdk.Decision{DesiredCapacity: 4, Restart: []string{"web-a"}, Remove: []sdk.UnitRemove{{UnitID: "web-b", Force: true}}}), "restarted web-a")
	inv := inventory(t, r, target)
	if _, ok := inv["web-a"]; ok {
		t.Errorf("restarted pod still listed: %v", inv)
	}
	if _, ok := inv["web-b"]; ok {
		t.Errorf("force-removed pod still listed: %v", inv)
	}

	for _, bad := range []struct{ name, want string }{
		{"web", "want <resource>"},
		{"nosuchthings.apps/web", "unknown resource"},
		{"deployments.apps/missing", "not found"},
	} {
		if _, err := r.Inventory(testCtx(t), sdk.Target{Chain: "web", Name: bad.name}); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("target %q: err %v, want %q", bad.name, err, bad.want)
		}
	}
	if _, err := r.Realize(testCtx(t), sdk.RealizeRequest{Target: target, Decision: sdk.Decision{DesiredCapacity: 2, Drain: []string{"not-a-pod"}}}); err == nil {
		t.Errorf("draining a pod that is not the workload's was accepted")
	}
}

func TestWorkloadCustomResource(t *testing.T) {
	env := cluster(t)
	kube := adminClient(t)
	ns := newNamespace(t, kube)
	selectorPath := ".status.selector"
	crd := &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "widgets.test.ebbscale.io"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "test.ebbscale.io",
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "widgets", Singular: "widget", Kind: "Widget", ListKind: "WidgetList"},
			Scope: apiextensionsv1.NamespaceScoped,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object", XPreserveUnknownFields: ptr(true),
				}},
				Subresources: &apiextensionsv1.CustomResourceSubresources{
					Status: &apiextensionsv1.CustomResourceSubresourceStatus{},
					Scale: &apiextensionsv1.CustomResourceSubresourceScale{
						SpecReplicasPath: ".spec.replicas", StatusReplicasPath: ".status.replicas", LabelSelectorPath: &selectorPath,
					},
				},
			}},
		},
	}
	if _, err := crenvtest.InstallCRDs(env.Config, crenvtest.CRDInstallOptions{CRDs: []*apiextensionsv1.CustomResourceDefinition{crd}}); err != nil {
		t.Fatalf("install CRD: %v", err)
	}
	dyn, err := dynamic.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	gvr := schema.GroupVersionResource{Group: "test.ebbscale.io", Version: "v1", Resource: "widgets"}
	w := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "test.ebbscale.io/v1", "kind": "Widget",
		"metadata": map[string]any{"name": "etl", "namespace": ns},
		"spec":     map[string]any{"replicas": int64(2)},
	}}
	if _, err := dyn.Resource(gvr).Namespace(ns).Create(testCtx(t), w, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	status := []byte(`{"status":{"replicas":2,"selector":"widget=etl"}}`)
	if _, err := dyn.Resource(gvr).Namespace(ns).Patch(testCtx(t), "etl", types.MergePatchType, status, metav1.PatchOptions{}, "status"); err != nil {
		t.Fatal(err)
	}
	createPod(t, kube, ns, "etl-0", map[string]string{"widget": "etl"})

	r := newRealizer(t, env.Config, workloadConfig(ns, 4))
	for _, name := range []string{"widgets.test.ebbscale.io/etl", "widgets.v1.test.ebbscale.io/etl"} {
		target := sdk.Target{Chain: "etl", Name: name}
		inv := inventory(t, r, target)
		// One pod exists; the second replica has none yet.
		if len(inv) != 2 || inv["etl-0"].Size != 4 || inv["requested-1"].Phase != sdk.PhaseRequested {
			t.Fatalf("%s: inventory %v", name, inv)
		}
	}
	target := sdk.Target{Chain: "etl", Name: "widgets.test.ebbscale.io/etl"}
	mustContain(t, realize(t, r, target, "req-1", sdk.Decision{DesiredCapacity: 20, Add: []sdk.UnitAdd{{UnitID: "n", Size: 12}}}), "replicas 2 -> 5")
	got, err := dyn.Resource(gvr).Namespace(ns).Get(testCtx(t), "etl", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n, _, _ := unstructured.NestedInt64(got.Object, "spec", "replicas"); n != 5 {
		t.Errorf("spec.replicas %d, want 5", n)
	}
	mustContain(t, realize(t, r, target, "req-2", sdk.Decision{DesiredCapacity: 4, Drain: []string{"etl-0"}}), "replicas 5 -> 1")
	if c := podCosts(t, kube, ns, "etl-0"); c["etl-0"] != "-1" {
		t.Errorf("deletion cost on etl-0 = %q", c["etl-0"])
	}
}

// conflictOnce changes the Deployment behind the realizer's back just before
// its first scale update reaches the API server, which then answers 409.
type conflictOnce struct {
	next      http.RoundTripper
	meddle    func()
	fired     atomic.Bool
	conflicts atomic.Int32
}

func (c *conflictOnce) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPut && strings.HasSuffix(req.URL.Path, "/scale") && c.fired.CompareAndSwap(false, true) {
		c.meddle()
	}
	resp, err := c.next.RoundTrip(req)
	if err == nil && resp.StatusCode == http.StatusConflict {
		c.conflicts.Add(1)
	}
	return resp, err
}

func TestWorkloadConflictRetriedOnFreshRead(t *testing.T) {
	kube := adminClient(t)
	ns := newNamespace(t, kube)
	createDeployment(t, kube, ns, "web", 4)
	ct := &conflictOnce{meddle: func() {
		// Someone else (kubectl, a GitOps tool) edits the Deployment meanwhile.
		patch := []byte(`{"metadata":{"labels":{"edited":"yes"}}}`)
		if _, err := kube.AppsV1().Deployments(ns).Patch(testCtx(t), "web", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Errorf("concurrent edit: %v", err)
		}
	}}
	rc := rest.CopyConfig(cluster(t).Config)
	rc.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { ct.next = rt; return ct }
	r := newRealizer(t, rc, workloadConfig(ns, 1))
	mustContain(t, realize(t, r, sdk.Target{Chain: "web", Name: "deployments.apps/web"}, "req-1", sdk.Decision{DesiredCapacity: 6, Add: []sdk.UnitAdd{{UnitID: "a", Size: 2}}}), "replicas 4 -> 6")
	if ct.conflicts.Load() != 1 {
		t.Fatalf("%d conflicts seen, want exactly 1 (the test must provoke one)", ct.conflicts.Load())
	}
	d := getDeployment(t, kube, ns, "web")
	if *d.Spec.Replicas != 6 || d.Labels["edited"] != "yes" {
		t.Errorf("replicas %d labels %v: want 6 and the concurrent edit kept", *d.Spec.Replicas, d.Labels)
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func ptr[T any](v T) *T { return &v }
