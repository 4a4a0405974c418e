package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readmeCommands returns the commands of the README's "The example,
// locally" block, without their comments, so that this test runs what a
// reader copies.
func readmeCommands(t *testing.T) [][]string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	i := strings.Index(text, "### The example, locally")
	if i < 0 {
		t.Fatal("README has no section \"The example, locally\"")
	}
	block := text[i:]
	block = block[strings.Index(block, "```sh\n")+len("```sh\n"):]
	block = block[:strings.Index(block, "```")]
	var out [][]string
	for _, line := range strings.Split(strings.TrimSpace(block), "\n") {
		line, _, _ = strings.Cut(line, "#")
		out = append(out, strings.Fields(line))
	}
	return out
}

// TestREADMELocalPath runs the README's local path as written, from a
// directory holding ./ebb and config.hcl: the emulated AMS, a plan, then a
// run that starts an emulated optimizer which registers with the emulator,
// and says at info level why a later round does nothing.
func TestREADMELocalPath(t *testing.T) {
	c := newCLI(t)
	cmds := readmeCommands(t)
	if len(cmds) != 3 || strings.Join(cmds[0][:3], " ") != "./ebb emulate ams" || cmds[1][1] != "plan" || cmds[2][1] != "run" {
		t.Fatalf("README's local path changed shape: %q", cmds)
	}
	dir := t.TempDir()
	if err := os.Symlink(c.ebb, filepath.Join(dir, "ebb")); err != nil {
		t.Fatal(err)
	}
	cfg, err := os.ReadFile("../../config.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.hcl"), cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	// Optimizers outlive ebb run by design; this test stops the ones it made.
	t.Cleanup(func() {
		files, _ := filepath.Glob(filepath.Join(dir, "ebb-units", "units", "*.json"))
		for _, f := range files {
			var rec struct{ Pid int }
			if b, err := os.ReadFile(f); err == nil && json.Unmarshal(b, &rec) == nil && rec.Pid > 1 {
				syscall.Kill(-rec.Pid, syscall.SIGKILL)
			}
		}
	})
	start := func(args []string, logs *syncBuffer) *exec.Cmd {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir, cmd.Stdout, cmd.Stderr = dir, logs, logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return cmd
	}
	var amsLog, runLog syncBuffer
	start(cmds[0], &amsLog)
	waitHTTP(t, "http://127.0.0.1:7001/metrics")

	plan := exec.Command(cmds[1][0], cmds[1][1:]...)
	plan.Dir = dir
	out, err := plan.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "chain amoro-optimizers -> target default") ||
		!strings.Contains(string(out), "decision  +1 unit (default-1)") {
		t.Fatalf("%q: %v\n%s", cmds[1], err, out)
	}

	run := start(cmds[2], &runLog)
	wait := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; ebb run:\n%s\nebb emulate ams:\n%s", what, runLog.String(), amsLog.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	unitLog := filepath.Join(dir, "ebb-units", "amoro-optimizers_default_default-1.log")
	wait("the emulated optimizer to register", func() bool {
		b, _ := os.ReadFile(unitLog)
		return strings.Contains(string(b), "registered unit default-1 with 4 threads")
	})
	if !strings.Contains(runLog.String(), `[INFO]  ebb: decision: chain=amoro-optimizers target=default`) ||
		!strings.Contains(runLog.String(), `action="+1 unit (default-1)"`) {
		t.Fatalf("the scale-up is not logged at info:\n%s", runLog.String())
	}
	// The next round (30s later) changes nothing and says why.
	wait("a no-action round at info", func() bool {
		return strings.Contains(runLog.String(), `action="no action" status=skipped reason="steady: capacity 4 threads (4 registered`)
	})
	run.Process.Signal(syscall.SIGTERM)
	if err := run.Wait(); err != nil {
		t.Fatalf("ebb run: %v\n%s", err, runLog.String())
	}
}
