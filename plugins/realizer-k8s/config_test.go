package k8s

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/ebbscale/ebb/sdk"
)

// The schema's defaults are what the runner fills in; they must decode to
// the same configuration as the built-in defaults.
func TestSchemaDefaultsMatchConfigDefaults(t *testing.T) {
	info, err := New().Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	obj := map[string]any{}
	for _, a := range info.ConfigSchema.Attributes {
		if a.Default != nil {
			obj[a.Name] = a.Default
		}
	}
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	var got Config
	if err := sdk.DecodeConfig(raw, &got); err != nil {
		t.Fatalf("schema defaults do not decode: %v", err)
	}
	if want := defaultConfig(); !reflect.DeepEqual(got, want) {
		t.Errorf("schema defaults %+v\nconfig defaults %+v", got, want)
	}
	if info.Kind != sdk.KindRealizer || info.ProtocolVersion != sdk.ProtocolVersion {
		t.Errorf("info %+v", info)
	}
}

func TestConfigErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "tmpl.yaml")
	if err := os.WriteFile(file, []byte("spec:\n  containers:\n    - name: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	unit := `"image":"apache/amoro:0.9.0","ams-thrift-uri":"thrift://a:1261"`
	unit08 := `"image":"apache/amoro:0.8.1-incubating","ams-thrift-uri":"thrift://a:1261"`
	tests := []struct {
		name, cfg, want string
	}{
		{"ok unit", `{` + unit + `}`, ""},
		{"ok template file", `{` + unit + `,"pod-template":"` + file + `"}`, ""},
		{"ok workload", `{"mode":"workload"}`, ""},
		{"unknown key", `{"imagee":"x"}`, "unknown field"},
		{"bad mode", `{"mode":"pods"}`, `mode "pods"`},
		{"unit needs image", `{"ams-thrift-uri":"thrift://a:1261"}`, "image is required"},
		{"unit needs uri", `{"image":"apache/amoro:0.9.0"}`, "ams-thrift-uri is required"},
		{"ok 0.8", `{` + unit08 + `}`, ""},
		{"ok version key", `{"image":"my/amoro:latest","optimizer-version":"0.9","ams-thrift-uri":"thrift://a:1261"}`, ""},
		{"version unknown", `{"image":"my/amoro:latest","ams-thrift-uri":"thrift://a:1261"}`, `set optimizer-version`},
		{"version unparsable", `{"optimizer-version":"nine",` + unit + `}`, `optimizer-version: optimizer version "nine"`},
		{"-msm needs 0.9", `{"master-slave-mode":true,` + unit08 + `}`, "has no -msm option"},
		{"ok -msm", `{"master-slave-mode":true,` + unit + `}`, ""},
		{"drain too short", `{"drain-timeout":"500ms",` + unit + `}`, "cannot finish in-flight tasks in less than 1s"},
		{"drain not ms", `{"drain-timeout":"1.0000001s",` + unit + `}`, "whole milliseconds"},
		{"pull secret name", `{"image-pull-secrets":["Bad_Name"],` + unit + `}`, `image-pull-secrets: "Bad_Name"`},
		{"bad namespace", `{"namespace":"No_Way",` + unit + `}`, "namespace"},
		{"in-cluster and kubeconfig", `{"in-cluster":true,"kubeconfig":"/k",` + unit + `}`, "in-cluster cannot"},
		{"heap ratio", `{"heap-ratio":1.5,` + unit + `}`, "heap-ratio"},
		{"memory", `{"memory-per-thread-mb":0,` + unit + `}`, "memory-per-thread-mb"},
		{"pull policy", `{"image-pull-policy":"Sometimes",` + unit + `}`, "image-pull-policy"},
		{"bad duration", `{"drain-timeout":"soon",` + unit + `}`, "invalid duration"},
		{"threads per replica", `{"mode":"workload","threads-per-replica":0}`, "threads-per-replica"},
		{"template missing file", `{"pod-template":"/no/such/file.yaml",` + unit + `}`, "reading file"},
		{"template bad yaml", `{"pod-template":"spec:\n  containers: 3\n",` + unit + `}`, "pod-template"},
		{"template unknown field", `{"pod-template":"spec:\n  containerz: []\n",` + unit + `}`, "unknown field"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseConfig(json.RawMessage(tc.cfg))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("err %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestNotConfigured(t *testing.T) {
	r := New()
	if _, err := r.Inventory(context.Background(), sdk.Target{}); err == nil || !strings.Contains(err.Error(), "not configured") {
		t.Errorf("Inventory before Configure: %v", err)
	}
	if _, err := r.Realize(context.Background(), sdk.RealizeRequest{}); err == nil {
		t.Errorf("Realize before Configure succeeded")
	}
}
