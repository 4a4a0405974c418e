package spark

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/ebbscale/ebb/sdk"
	"github.com/ebbscale/ebb/sdk/sdktest"
)

// The conformance harness drives the plugin in process and as its own
// binary over gRPC, as the runner does, against the real API server.
func TestConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the plugin binary")
	}
	w := newWorld(t)
	env := cluster(t)
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := env.WriteKubeconfig(path); err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(map[string]any{
		"kubeconfig": path, "namespace": w.ns, "mode": "unit",
		"image": "apache/amoro-spark-optimizer:0.8.1", "ams-thrift-uri": "thrift://ams:1261",
	})
	if err != nil {
		t.Fatal(err)
	}
	bin := sdktest.Build(t, "github.com/ebbscale/ebb/plugins/realizer-spark/cmd/realizer-spark")
	sdktest.Run(t, New(), bin, sdktest.Case{
		Config:   raw,
		Target:   target,
		Decision: &sdk.Decision{Add: []sdk.UnitAdd{{UnitID: "u-1", Size: 2}}, Reason: "conformance"},
	})
	if n := w.op.Submissions("ebb-optimizer-u-1"); n > 1 {
		t.Errorf("u-1 submitted %d times", n)
	}
}
