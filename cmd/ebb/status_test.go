package main

import (
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// While ebb run holds its state file, ebb plan reads that state (so its
// decision is the one run would make now) and shows each evaluator's
// decision; ebb status shows each chain's last decision, when, capacity and
// health, and still the last decision once run has stopped.
func TestPlanAndStatusReadTheStateRunHolds(t *testing.T) {
	c := newCLI(t)
	cfg := c.write("ebb.hcl", c.config(""))
	db := filepath.Join(c.dir, "ebb.db")
	addr := freeAddr(t)
	cmd := exec.Command(c.ebb, "run", "--config", cfg, "--http", addr, "--state", db)
	var logs syncBuffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
		}
	}
	defer stop()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/v1/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("ebb run never got ready:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}

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

	stop()
	out, _, code = c.run("status", cfg, "--state", db, "--http", addr)
	if code != 0 || !strings.Contains(out, "not reachable") || !strings.Contains(out, "last      #") {
		t.Fatalf("status after run stopped: exit %d\n%s", code, out)
	}
}
