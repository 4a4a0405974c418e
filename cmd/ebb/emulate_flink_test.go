package main

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"
)

// TestEmulateFlinkAndPlan runs `ebb emulate flink` as a user would and plans
// against it with the builtin realizer-flink: the default job runs, and the
// plan's inventory lists its subtasks.
func TestEmulateFlinkAndPlan(t *testing.T) {
	c := newCLI(t)
	addr := freeAddr(t)
	cmd := exec.Command(c.ebb, "emulate", "flink", "--addr", addr)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitHTTP(t, "http://"+addr+"/v1/overview")

	cfg := c.write("flink.hcl", fmt.Sprintf(`
plugin_dir = %q
collector "demand" {
  plugin = "test-collector"
  config {
    file = %q
  }
}
evaluator "dra" {
  plugin = "evaluator-dra"
}
realizer "flink" {
  plugin = "realizer-flink"
  config {
    mode     = "job"
    rest-url = "http://%s"
  }
}
chain "stream" {
  collectors = [collector.demand]
  evaluators = [evaluator.dra]
  realizer   = realizer.flink
  target     = "ebb-demo"
  policy {
    min-parallelism      = 2
    max-parallelism      = 8
    executor-parallelism = 1
  }
}`, c.pluginDir, c.snap, addr))
	out, errOut, code := c.run("plan", cfg, "--json")
	if code != 0 {
		t.Fatalf("plan: exit %d: %s", code, errOut)
	}
	var got struct {
		Evaluations []struct {
			Inventory []struct {
				ID    string
				Phase int
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	var ids []string
	for _, u := range got.Evaluations[0].Inventory {
		ids = append(ids, u.ID)
	}
	if strings.Join(ids, ",") != "subtask-0,subtask-1" {
		t.Fatalf("inventory %v, want the demo job's two subtasks", ids)
	}
}
