package k8s

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/ebbscale/ebb/internal/envtest"
	"github.com/ebbscale/ebb/internal/kubeapi"
	"github.com/ebbscale/ebb/sdk"
	"github.com/ebbscale/ebb/sdk/sdktest"
)

// One control plane serves the whole test binary (it takes seconds to
// start); each test works in its own namespace.
var (
	testEnv    *envtest.Env
	testEnvErr error
	nsCounter  atomic.Int64
)

func TestMain(m *testing.M) {
	testEnv, testEnvErr = envtest.StartEnv(envtest.Options{})
	code := m.Run()
	if testEnv != nil {
		if err := testEnv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// cluster returns the shared control plane, or skips (fails under CI=true).
func cluster(t *testing.T) *envtest.Env {
	t.Helper()
	if testEnvErr != nil {
		envtest.SkipOrFail(t, testEnvErr)
	}
	return testEnv
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func adminClient(t *testing.T) kubernetes.Interface {
	t.Helper()
	c, err := kubernetes.NewForConfig(cluster(t).Config)
	if err != nil {
		t.Fatalf("admin client: %v", err)
	}
	return c
}

// newNamespace creates a fresh namespace for one test.
func newNamespace(t *testing.T, kube kubernetes.Interface) string {
	t.Helper()
	name := fmt.Sprintf("t%d-%s", nsCounter.Add(1), strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		return '-'
	}, strings.ToLower(t.Name())))
	if len(name) > 60 {
		name = strings.TrimRight(name[:60], "-")
	}
	_, err := kube.CoreV1().Namespaces().Create(testCtx(t), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	return name
}

// newRealizer configures a realizer talking to the test API server through rc.
func newRealizer(t *testing.T, rc *rest.Config, cfg map[string]any) *Realizer {
	t.Helper()
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := New().WithRESTConfig(rc)
	// Short waits keep failing tests quick; the server restart test sets its own.
	r.backoff = kubeapi.Backoff{Initial: 50 * time.Millisecond, Max: time.Second, Attempts: 6}
	if err := r.Configure(context.Background(), raw); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	return r
}

func unitConfig(ns string, extra map[string]any) map[string]any {
	cfg := map[string]any{
		"namespace":      ns,
		"mode":           "unit",
		"image":          "apache/amoro:0.9.0",
		"ams-thrift-uri": "thrift://ams:1261",
	}
	for k, v := range extra {
		cfg[k] = v
	}
	return cfg
}

func workloadConfig(ns string, tpr float64) map[string]any {
	return map[string]any{"namespace": ns, "mode": "workload", "threads-per-replica": tpr}
}

func realize(t *testing.T, r *Realizer, target sdk.Target, reqID string, d sdk.Decision) string {
	t.Helper()
	return sdktest.Realize(testCtx(t), t, r, target, reqID, d)
}

func inventory(t *testing.T, r *Realizer, target sdk.Target) map[string]sdk.Unit {
	t.Helper()
	return sdktest.Inventory(testCtx(t), t, r, target)
}

// createPod makes a pod as a controller would; without a kubelet it stays
// Pending, which is all these tests need.
func createPod(t *testing.T, kube kubernetes.Interface, ns, name string, labels map[string]string) {
	t.Helper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
	if _, err := kube.CoreV1().Pods(ns).Create(testCtx(t), p, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pod %s: %v", name, err)
	}
}

// createUnitPod plays the ReplicaSet controller (none runs here): a pod
// with the labels of the unit Deployment's template.
func createUnitPod(t *testing.T, kube kubernetes.Interface, ns, unit string) string {
	t.Helper()
	d := getDeployment(t, kube, ns, "ebb-optimizer-"+unit)
	name := d.Name + "-pod"
	createPod(t, kube, ns, name, d.Spec.Template.Labels)
	return name
}

func createDeployment(t *testing.T, kube kubernetes.Interface, ns, name string, replicas int32) *appsv1.Deployment {
	t.Helper()
	out, err := kube.AppsV1().Deployments(ns).Create(testCtx(t), createDeploymentObject(ns, name, replicas), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create deployment %s: %v", name, err)
	}
	return out
}

func createDeploymentObject(ns, name string, replicas int32) *appsv1.Deployment {
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
			},
		},
	}
}

func getDeployment(t *testing.T, kube kubernetes.Interface, ns, name string) *appsv1.Deployment {
	t.Helper()
	d, err := kube.AppsV1().Deployments(ns).Get(testCtx(t), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get deployment %s: %v", name, err)
	}
	return d
}

func mustContain(t *testing.T, got, want string) {
	t.Helper()
	if !strings.Contains(got, want) {
		t.Fatalf("%q does not contain %q", got, want)
	}
}
