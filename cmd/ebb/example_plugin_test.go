package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The out-of-tree example plugin (examples/evaluator-guard, its own module)
// builds, and runs in a chain from plugin_dir after evaluator-dra: inside
// its window it keeps the units evaluator-dra would drain.
func TestExampleEvaluatorGuard(t *testing.T) {
	c := newCLI(t)
	build := exec.Command("go", "build", "-o", filepath.Join(c.pluginDir, "evaluator-guard"), "./cmd/evaluator-guard")
	build.Dir = filepath.Join("..", "..", "examples", "evaluator-guard")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the example: %v\n%s", err, out)
	}
	out, errOut, code := c.run("plugins", "--plugin-dir", c.pluginDir, "evaluator-guard")
	if code != 0 || !strings.Contains(out, "no-scale-down-from") {
		t.Fatalf("plugins evaluator-guard: exit %d\n%s%s", code, out, errOut)
	}
	// Four units of one thread above a ceiling of two: evaluator-dra removes
	// two.
	os.MkdirAll(c.units, 0o755)
	for i := 1; i <= 4; i++ {
		c.write(filepath.Join("units", fmt.Sprintf("group-a-%d", i)), `{"size": 1, "phase": "running"}`)
	}
	c.write("snapshot.json", `{"tasks": 0}`)
	now := time.Now().UTC()
	hhmm := func(d time.Duration) string { return now.Add(d).Format("15:04") }
	config := func(from, until string) string {
		cfg := c.config(`
evaluator "guard" {
  plugin = "evaluator-guard"
}`)
		cfg = strings.Replace(cfg, "evaluators = [evaluator.dra]", "evaluators = [evaluator.dra, evaluator.guard]", 1)
		cfg = strings.Replace(cfg, "max-parallelism      = 8", fmt.Sprintf(`max-parallelism      = 2
    no-scale-down-from   = %q
    no-scale-down-until  = %q`, from, until), 1)
		return cfg
	}

	open := c.write("open.hcl", config(hhmm(-time.Hour), hhmm(time.Hour)))
	out, errOut, code = c.run("plan", open)
	if code != 0 || !strings.Contains(out, "decision  no action") || !strings.Contains(out, "evaluator-guard: no scale-down from") {
		t.Fatalf("inside the window: exit %d\n%s%s", code, out, errOut)
	}
	closed := c.write("closed.hcl", config(hhmm(time.Hour), hhmm(2*time.Hour)))
	out, errOut, code = c.run("plan", closed)
	if code != 0 || !strings.Contains(out, "decision  remove group-a-1; remove group-a-2") {
		t.Fatalf("outside the window: exit %d\n%s%s", code, out, errOut)
	}
	bad := c.write("bad.hcl", config("8am", hhmm(time.Hour)))
	_, errOut, code = c.run("validate", bad)
	if code != 1 || !strings.Contains(errOut, bad+":") || !strings.Contains(errOut, `"8am" is not a time of day`) {
		t.Fatalf("a bad window: exit %d\n%s", code, errOut)
	}
}
