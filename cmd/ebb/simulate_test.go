package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ebb simulate on the example configuration, with the evaluator as a plugin
// process (the default) and in process: both give the same figures, every
// policy is there with every figure, and nobody beats the oracle.
func TestSimulateJSON(t *testing.T) {
	c := newCLI(t)
	trace := filepath.Join(c.dir, "burst.csv")
	if _, errOut, code := c.run("simulate", "generate", "nightly", "-seed", "2", "-span", "3h", "-o", trace); code != 0 {
		t.Fatalf("generate: exit %d: %s", code, errOut)
	}
	plot := filepath.Join(c.dir, "out.svg")
	var runs [2]map[string]any
	for i, extra := range [][]string{nil, {"-in-process"}} {
		args := append([]string{"simulate", "-config", "../../config.hcl", "-chain", "amoro-optimizers", "-trace", trace, "-json", "-plot", plot}, extra...)
		out, errOut, code := c.run(args...)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s", extra, code, errOut)
		}
		if err := json.Unmarshal([]byte(out), &runs[i]); err != nil {
			t.Fatalf("%v: %v\n%s", extra, err, out)
		}
	}
	pols := runs[0]["policies"].([]any)
	if len(pols) != 7 {
		t.Fatalf("%d policies, want 7", len(pols))
	}
	var oracle float64
	for _, p := range pols {
		if m := p.(map[string]any); m["policy"] == "oracle" {
			oracle = m["provisioned_thread_seconds"].(float64)
		}
	}
	for _, p := range pols {
		m := p.(map[string]any)
		for _, k := range []string{"provisioned_thread_seconds", "used_thread_seconds", "cost_vs_oracle", "wait_seconds",
			"makespan_seconds", "scale_actions", "under_provisioning_accuracy_pct", "over_provisioning_accuracy_pct",
			"under_provisioning_timeshare_pct", "over_provisioning_timeshare_pct", "instability_pct"} {
			if _, ok := m[k]; !ok {
				t.Errorf("%s: no %s", m["policy"], k)
			}
		}
		if w := m["wait_seconds"].(map[string]any); len(w) != 4 {
			t.Errorf("%s: wait_seconds %v, want p50 p95 p99 max", m["policy"], w)
		}
		if m["provisioned_thread_seconds"].(float64) < oracle {
			t.Errorf("%s provisions less than the oracle", m["policy"])
		}
	}
	a, _ := json.Marshal(runs[0])
	b, _ := json.Marshal(runs[1])
	if string(a) != string(b) {
		t.Errorf("plugin process and in-process runs differ:\n%s\n%s", a, b)
	}
	svg, err := os.ReadFile(plot)
	if err != nil || !strings.Contains(string(svg), "<svg") || !strings.Contains(string(svg), ">dra ") {
		t.Errorf("plot: %v %.200s", err, svg)
	}

	bad := c.write("bad.csv", "submit,duration\n1,2\n3,oops\n")
	_, errOut, code := c.run("simulate", "-config", "../../config.hcl", "-trace", bad)
	if code != 1 || !strings.Contains(errOut, "bad.csv:3: duration:") {
		t.Errorf("bad trace: exit %d, %s", code, errOut)
	}
	_, errOut, code = c.run("simulate", "-config", "../../config.hcl", "-trace", trace, "-policies", "dra,nope")
	if code != 1 || !strings.Contains(errOut, `unknown policy "nope"`) {
		t.Errorf("bad policy: exit %d, %s", code, errOut)
	}
}
