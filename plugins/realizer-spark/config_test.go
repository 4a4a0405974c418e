package spark

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestConfigErrors(t *testing.T) {
	unit := `"image":"i","ams-thrift-uri":"thrift://a:1261"`
	for _, tc := range []struct{ name, raw, want string }{
		{"no image", `{"ams-thrift-uri":"thrift://a:1261"}`, "image is required"},
		{"no ams", `{"image":"i"}`, "ams-thrift-uri is required"},
		{"bad mode", `{"mode":"pods",` + unit + `}`, `mode "pods"`},
		{"bad namespace", `{"namespace":"Big_NS",` + unit + `}`, `namespace "Big_NS"`},
		{"bad memory", `{"executor-memory":"lots",` + unit + `}`, "executor-memory"},
		{"zero cores", `{"executor-cores":0,` + unit + `}`, "executor-cores must be at least 1"},
		{"bad spark-conf", `{"spark-conf":{"memory":"1g"},` + unit + `}`, `spark-conf: config override "memory"`},
		{"bad da value", `{"spark-conf":{"spark.dynamicAllocation.maxExecutors":"-1"},` + unit + `}`, "not a count of executors"},
		{"in-cluster and kubeconfig", `{"in-cluster":true,"kubeconfig":"/k",` + unit + `}`, "in-cluster cannot"},
		{"unknown key", `{"imag":"i"}`, "imag"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseConfig([]byte(tc.raw))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("parseConfig(%s) = %v, want an error containing %q", tc.raw, err, tc.want)
			}
		})
	}
	if _, err := parseConfig([]byte(`{"mode":"workload"}`)); err != nil {
		t.Errorf("workload mode needs no image: %v", err)
	}
	if _, err := parseConfig([]byte(`{"executor-memory":"2g","driver-memory":"1500Mi",` + unit + `}`)); err != nil {
		t.Errorf("valid memory sizes: %v", err)
	}
}

// FuzzOverrides: any override map is either refused or applies cleanly,
// and applying it a second time changes nothing (a retry never writes).
func FuzzOverrides(f *testing.F) {
	f.Add("spark.dynamicAllocation.maxExecutors", "8", "spark.executor.memory", "2g")
	f.Add("spark.dynamicAllocation.enabled", "false", "spark.dynamicAllocation.shuffleTracking.timeout", "60000")
	f.Add("spark.sql.shuffle.partitions", "", "spark.", "x")
	f.Add("spark.dynamicAllocation.minExecutors", "99999999999", "executor", "1")
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		ovs, err := parseOverrides(map[string]string{k1: v1, k2: v2})
		if err != nil {
			return
		}
		obj := map[string]any{"spec": map[string]any{"sparkConf": map[string]any{"spark.user": "kept"},
			"dynamicAllocation": map[string]any{"enabled": true, "maxExecutors": int64(4)}}}
		if _, err := applyOverrides(obj, ovs); err != nil {
			t.Fatalf("apply: %v", err)
		}
		changed, err := applyOverrides(obj, ovs)
		if err != nil || len(changed) > 0 {
			t.Fatalf("second apply changed %v (%v)", changed, err)
		}
		if _, err := json.Marshal(obj); err != nil {
			t.Fatalf("not JSON: %v", err)
		}
	})
}
