package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// While ebb run holds its state file, ebb plan reads that state (so its
// decision is the one run would make now) and shows each evaluator's
// decision; ebb status shows each chain's last decision, when, capacity and
// health, and still the last decision once run has stopped.
func TestPlanAndStatusReadTheStateRunHolds(t *testing.T) {
	c := newCLI(t)
	cfg := c.write("ebb.hcl", c.config(""))
	db := filepath.Join(c.dir, "ebb.db")
	run := startRun(t, c, cfg, db)
	addr := run.addr

	out, errOut, code := c.run("plan", cfg, "--state", db)
	if code != 0 {
		t.Fatalf("plan while run holds the state: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"saved evaluator state loaded", "evaluator dra: ", "decision  "} {
		if !strings.Contains(out, want) {
			t.Errorf("plan output lacks %q:\n%s", want, out)
		}
	}

	out, errOut, code = c.run("status", cfg, "--state", db, "--http", addr)
	if code != 0 {
		t.Fatalf("status: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"ebb run: up at " + addr, "chain optimizers -> target group-a", "health    ok, ", "last      #", "capacity  "} {
		if !strings.Contains(out, want) {
			t.Errorf("status output lacks %q:\n%s", want, out)
		}
	}

	run.stop()
	out, _, code = c.run("status", cfg, "--state", db, "--http", addr)
	if code != 0 || !strings.Contains(out, "not reachable") || !strings.Contains(out, "last      #") {
		t.Fatalf("status after run stopped: exit %d\n%s", code, out)
	}
}
