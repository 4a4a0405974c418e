package spark

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	crlog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/ebbscale/ebb/emulator/sparkop"
	"github.com/ebbscale/ebb/internal/envtest"
	"github.com/ebbscale/ebb/internal/kubeapi"
	"github.com/ebbscale/ebb/sdk"
	"github.com/ebbscale/ebb/sdk/sdktest"
)

func init() { crlog.SetLogger(logr.Discard()) }

// One control plane serves the whole test binary; each test works in its
// own namespace. The SparkApplication CRD comes from testdata/crds, or from
// $EBB_TEST_CRDS (e.g. the spark-operator's published CRDs).
// It starts on first use, so a fuzz run (FuzzOverrides) starts none.
var (
	envOnce    sync.Once
	testEnv    *envtest.Env
	testEnvErr error
	nsCounter  atomic.Int64
)

func crdDir() string {
	if d := os.Getenv("EBB_TEST_CRDS"); d != "" {
		return d
	}
	return filepath.Join("testdata", "crds")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if testEnv != nil {
		if err := testEnv.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

func cluster(t *testing.T) *envtest.Env {
	t.Helper()
	envOnce.Do(func() {
		testEnv, testEnvErr = envtest.StartEnv(envtest.Options{CRDPaths: []string{crdDir()}})
	})
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

// world is one test's namespace with an operator stand-in and admin clients.
type world struct {
	ns   string
	kube kubernetes.Interface
	dyn  dynamic.Interface
	op   *sparkop.Operator
	drv  *sparkop.FakeDriver
}

func newWorld(t *testing.T) *world {
	t.Helper()
	env := cluster(t)
	kube := kubernetes.NewForConfigOrDie(env.Config)
	dyn := dynamic.NewForConfigOrDie(env.Config)
	name := fmt.Sprintf("t%d-%s", nsCounter.Add(1), strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())))
	if len(name) > 60 {
		name = strings.TrimRight(name[:60], "-")
	}
	if _, err := kube.CoreV1().Namespaces().Create(testCtx(t), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	w := &world{ns: name, kube: kube, dyn: dyn, drv: &sparkop.FakeDriver{}}
	w.op = sparkop.Start(dyn, name, sparkop.Options{Boot: 300 * time.Millisecond, Driver: w.drv, Interval: 50 * time.Millisecond})
	t.Cleanup(func() {
		w.op.Close()
		if t.Failed() {
			t.Logf("operator journal:\n  %s", strings.Join(w.op.Journal(), "\n  "))
		}
	})
	return w
}

func (w *world) realizer(t *testing.T, extra map[string]any) *Realizer {
	t.Helper()
	cfg := map[string]any{
		"namespace":      w.ns,
		"image":          "apache/amoro-spark-optimizer:0.8.1",
		"ams-thrift-uri": "thrift://ams:1261",
		"drain-timeout":  "1m",
	}
	for k, v := range extra {
		cfg[k] = v
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := New().WithRESTConfig(cluster(t).Config)
	r.backoff = kubeapi.Backoff{Initial: 50 * time.Millisecond, Max: time.Second, Attempts: 6}
	if err := r.Configure(context.Background(), raw); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	return r
}

func (w *world) app(t *testing.T, name string) *unstructured.Unstructured {
	t.Helper()
	obj, err := w.dyn.Resource(GVR).Namespace(w.ns).Get(testCtx(t), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get SparkApplication %s: %v", name, err)
	}
	return obj
}

func (w *world) state(t *testing.T, name string) string {
	t.Helper()
	s, _, _ := unstructured.NestedString(w.app(t, name).Object, "status", "applicationState", "state")
	return s
}

func realize(t *testing.T, r *Realizer, target sdk.Target, reqID string, d sdk.Decision) string {
	t.Helper()
	return sdktest.Realize(testCtx(t), t, r, target, reqID, d)
}

func inventory(t *testing.T, r *Realizer, target sdk.Target) map[string]sdk.Unit {
	t.Helper()
	return sdktest.Inventory(testCtx(t), t, r, target)
}

// eventually polls cond until it holds or 30 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func mustContain(t *testing.T, got, want string) {
	t.Helper()
	if !strings.Contains(got, want) {
		t.Fatalf("%q does not contain %q", got, want)
	}
}
