package flink

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	emu "github.com/ebbscale/ebb/emulator/flink"
	"github.com/ebbscale/ebb/internal/envtest"
	"github.com/ebbscale/ebb/sdk"
	"github.com/ebbscale/ebb/sdk/sdktest"
)

// One control plane serves the test binary, with the Flink operator's CRDs
// from testdata/crds, or from $EBB_TEST_CRDS (e.g. the operator's published
// ones) when set.
var (
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
	testEnv, testEnvErr = envtest.StartEnv(envtest.Options{CRDPaths: []string{crdDir()}})
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
	if testEnvErr != nil {
		envtest.SkipOrFail(t, testEnvErr)
	}
	return testEnv
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newNamespace(t *testing.T) string {
	t.Helper()
	kube, err := kubernetes.NewForConfig(cluster(t).Config)
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("f%d-%s", nsCounter.Add(1), strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())))
	if len(name) > 60 {
		name = strings.TrimRight(name[:60], "-")
	}
	if _, err := kube.CoreV1().Namespaces().Create(testCtx(t), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace: %v", err)
	}
	return name
}

// flinkServer is the JobManager emulator over real HTTP.
type flinkServer struct {
	emu *emu.Emulator
	url string
}

func startFlink(t *testing.T, opts emu.Options) *flinkServer {
	t.Helper()
	e, err := emu.New(opts)
	if err != nil {
		t.Fatalf("flink emulator: %v", err)
	}
	srv := httptest.NewServer(e.Handler())
	t.Cleanup(func() { srv.Close(); e.Close() })
	return &flinkServer{emu: e, url: srv.URL}
}

func configure(t *testing.T, r *Realizer, cfg map[string]any) *Realizer {
	t.Helper()
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Configure(context.Background(), raw); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	return r
}

func realize(t *testing.T, r *Realizer, target sdk.Target, reqID string, d sdk.Decision) string {
	t.Helper()
	return sdktest.Realize(testCtx(t), t, r, target, reqID, d)
}

func inventory(t *testing.T, r *Realizer, target sdk.Target) map[string]sdk.Unit {
	t.Helper()
	return sdktest.Inventory(testCtx(t), t, r, target)
}

func mustContain(t *testing.T, got, want string) {
	t.Helper()
	if !strings.Contains(got, want) {
		t.Fatalf("%q does not contain %q", got, want)
	}
}

func wantErr(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want one containing %q", err, want)
	}
}
