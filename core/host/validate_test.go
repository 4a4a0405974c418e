package host

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ebbscale/ebb/sdk"
)

// copyPlugin puts a copy of bin into dir as name, plus extra bytes (an ELF
// binary runs the same with trailing bytes, but has another sha256). It
// replaces any file there with a new one, as an upgrade does.
func copyPlugin(t *testing.T, bin, dir, name, extra string) string {
	t.Helper()
	b, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, "."+name+".new")
	if err := os.WriteFile(tmp, append(b, extra...), 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
	return p
}

func alive(pid int) bool { return pid > 0 && syscall.Kill(pid, 0) == nil }

func (h *Host) validatorPids() []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []int
	for _, v := range h.validators {
		if pid := v.pid(); pid != 0 {
			out = append(out, pid)
		}
	}
	return out
}

// Questions about one binary are answered by one process and from the
// cache; a replaced binary is asked again, by a new process, and its pin is
// checked again.
func TestValidationFollowsTheBinary(t *testing.T) {
	_, bin := pluginDir(t)
	dir := t.TempDir()
	path := copyPlugin(t, bin, dir, "test-evaluator", "")
	h := New(Options{PluginDir: dir})
	defer h.Close()

	ask := func(policy string) []sdk.PolicyProblem {
		t.Helper()
		ps, err := h.ValidatePolicy("test-evaluator", json.RawMessage(policy))
		if err != nil {
			t.Fatal(err)
		}
		return ps
	}
	if _, err := h.Info(sdk.KindEvaluator, "test-evaluator", ""); err != nil {
		t.Fatal(err)
	}
	if ps := ask(`{"per-unit": 0}`); len(ps) != 1 || ps[0].Attribute != "per-unit" {
		t.Fatalf("problems %v, want one at per-unit", ps)
	}
	for range 20 {
		ask(`{"per-unit": 0}`)
		ask(`{"per-unit": 2}`)
	}
	if n := h.Launches(); n != 1 {
		t.Fatalf("%d processes answered questions about one binary, want 1", n)
	}
	old := h.validatorPids()

	copyPlugin(t, bin, dir, "test-evaluator", "upgraded")
	if ps := ask(`{"per-unit": 0}`); len(ps) != 1 {
		t.Fatalf("the new binary: problems %v", ps)
	}
	if n := h.Launches(); n != 2 {
		t.Fatalf("after the binary changed %d processes were started in all, want 2 (the new binary asked again)", n)
	}
	for _, pid := range old {
		deadline := time.Now().Add(10 * time.Second)
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if alive(pid) {
			t.Errorf("the old binary's validation process %d still runs", pid)
		}
	}

	// A pin is checked against the binary as it is now.
	pin := sum(t, path)
	if _, err := h.Info(sdk.KindEvaluator, "test-evaluator", pin); err != nil {
		t.Fatalf("the right pin: %v", err)
	}
	copyPlugin(t, bin, dir, "test-evaluator", "tampered")
	if _, err := h.Info(sdk.KindEvaluator, "test-evaluator", pin); err == nil || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Fatalf("a replaced pinned binary: %v, want a checksum mismatch", err)
	}
}

// A validation process that dies is replaced by the next question.
func TestCrashedValidationProcessIsReplaced(t *testing.T) {
	dir, _ := pluginDir(t)
	h := New(Options{PluginDir: dir})
	defer h.Close()
	if _, err := h.ValidatePolicy("test-evaluator", json.RawMessage(`{"per-unit": 1}`)); err != nil {
		t.Fatal(err)
	}
	pids := h.validatorPids()
	if len(pids) != 1 {
		t.Fatalf("validation processes %v, want one", pids)
	}
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	ps, err := h.ValidatePolicy("test-evaluator", json.RawMessage(`{"per-unit": 0}`))
	if err != nil || len(ps) != 1 {
		t.Fatalf("after the crash: problems %v, %v", ps, err)
	}
	if now := h.validatorPids(); len(now) != 1 || now[0] == pids[0] {
		t.Fatalf("validation processes after the crash %v, before %v", now, pids)
	}
	if n := h.Launches(); n != 2 {
		t.Fatalf("%d starts, want 2", n)
	}
}

// An idle validation process is stopped, and started again when needed.
func TestIdleValidationProcessStops(t *testing.T) {
	dir, _ := pluginDir(t)
	h := New(Options{PluginDir: dir, ValidatorIdle: 50 * time.Millisecond})
	defer h.Close()
	if _, err := h.ValidatePolicy("test-evaluator", json.RawMessage(`{"per-unit": 1}`)); err != nil {
		t.Fatal(err)
	}
	pids := h.validatorPids()
	deadline := time.Now().Add(30 * time.Second)
	for (len(h.validatorPids()) > 0 || alive(pids[0])) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if len(h.validatorPids()) > 0 || alive(pids[0]) {
		t.Fatalf("the idle validation process %v still runs", pids)
	}
	if _, err := h.ValidatePolicy("test-evaluator", json.RawMessage(`{"per-unit": 2}`)); err != nil {
		t.Fatal(err)
	}
	if n := h.Launches(); n != 2 {
		t.Fatalf("%d starts, want 2", n)
	}
}
