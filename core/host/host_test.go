package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ebbscale/ebb/sdk"
	"github.com/ebbscale/ebb/sdk/sdktest"
)

// pluginDir holds the test plugin under its names (v2 and v1).
func pluginDir(t testing.TB) (string, string) {
	t.Helper()
	bin := sdktest.Build(t, "github.com/ebbscale/ebb/core/testdata/testplugin")
	dir := t.TempDir()
	for _, n := range []string{"test-collector", "test-evaluator", "test-realizer", "test-v1-collector", "test-v1-evaluator", "test-v1-realizer"} {
		if err := os.Symlink(bin, filepath.Join(dir, n)); err != nil {
			t.Fatal(err)
		}
	}
	return dir, bin
}

func sum(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestInfoFindsChecksAndRefuses(t *testing.T) {
	dir, bin := pluginDir(t)
	os.WriteFile(filepath.Join(dir, "not-executable"), []byte("x"), 0o644)
	h := New(Options{PluginDir: dir})
	defer h.Close()

	info, err := h.Info(sdk.KindCollector, "test-collector", "")
	if err != nil || info.Name != "test-collector" || info.Kind != sdk.KindCollector {
		t.Fatalf("info %+v, %v", info, err)
	}
	if _, err := h.Info(sdk.KindRealizer, "test-collector", sum(t, bin)); err != nil {
		if !strings.Contains(err.Error(), `plugin "test-collector" is a collector, not a realizer`) {
			t.Fatalf("kind mismatch: %v", err)
		}
	} else {
		t.Fatal("a collector was accepted as a realizer")
	}

	for _, tc := range []struct{ name, plugin, pin, want string }{
		{"unknown", "no-such-plugin", "", `unknown plugin "no-such-plugin"`},
		{"not executable", "not-executable", "", `unknown plugin "not-executable"`},
		{"path escape", "../test-collector", "", "must be a plain file name"},
		{"checksum mismatch", "test-evaluator", strings.Repeat("ab", 32), `checksum mismatch for plugin "test-evaluator"`},
		{"bad pin", "test-evaluator", "xyz", "is not 64 hex digits"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := h.Info(sdk.KindUnknown, tc.plugin, tc.pin)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
	if _, err := h.Info(sdk.KindEvaluator, "test-evaluator", sum(t, bin)); err != nil {
		t.Fatalf("a correct pin was refused: %v", err)
	}
}

func TestInstanceReconfiguresAfterKill(t *testing.T) {
	dir, _ := pluginDir(t)
	h := New(Options{PluginDir: dir, Backoff: 10 * time.Millisecond})
	defer h.Close()
	snap := filepath.Join(t.TempDir(), "s.json")
	os.WriteFile(snap, []byte(`{"tasks": 4}`), 0o644)
	inst := h.Instance(Spec{Block: "c", Kind: sdk.KindCollector, Plugin: "test-collector", Config: []byte(`{"file":"` + snap + `"}`)})
	ctx := context.Background()
	if s, err := inst.Collect(ctx, sdk.Target{}); err != nil || s.Demand.PlannedTasks != 4 {
		t.Fatalf("collect: %+v %v", s, err)
	}
	first := inst.Pid()
	if err := killAndWait(first); err != nil {
		t.Fatal(err)
	}
	// The first call after the death may find the process gone mid-call;
	// the instance must come back, configured, within a few calls.
	var s sdk.Snapshot
	var err error
	for i := 0; i < 50; i++ {
		if s, err = inst.Collect(ctx, sdk.Target{}); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil || s.Demand.PlannedTasks != 4 {
		t.Fatalf("after restart: %+v %v", s, err)
	}
	if inst.Pid() == first || inst.Restarts() != 1 {
		t.Fatalf("pid %d (was %d), restarts %d", inst.Pid(), first, inst.Restarts())
	}
}

func TestBadConfigBacksOff(t *testing.T) {
	dir, _ := pluginDir(t)
	h := New(Options{PluginDir: dir, Backoff: time.Hour})
	defer h.Close()
	// The collector refuses a config with an unknown key; every call fails
	// and, after the first, the host waits instead of relaunching in a loop.
	inst := h.Instance(Spec{Block: "c", Kind: sdk.KindCollector, Plugin: "test-collector", Config: []byte(`{"file":"x","bogus":1}`)})
	_, err := inst.Collect(context.Background(), sdk.Target{})
	if err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("first call: %v", err)
	}
	_, err = inst.Collect(context.Background(), sdk.Target{})
	var bo *ErrBackingOff
	if !errors.As(err, &bo) || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("second call should back off and say why: %v", err)
	}
}

func TestListShowsBuiltinsAndExternal(t *testing.T) {
	dir, _ := pluginDir(t)
	h := New(Options{PluginDir: dir, Self: "/usr/bin/ebb", Builtins: []string{"evaluator-dra"}})
	found, err := h.List()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range found {
		names = append(names, f.Name)
	}
	if got := strings.Join(names, ","); got != "evaluator-dra,test-collector,test-evaluator,test-realizer,test-v1-collector,test-v1-evaluator,test-v1-realizer" {
		t.Fatalf("list: %s", got)
	}
	if _, err := checksum(found[0], strings.Repeat("00", 32)); err == nil {
		t.Fatal("a builtin accepted a sha256 pin")
	}
}

// killAndWait SIGKILLs a process and waits until it is gone.
func killAndWait(pid int) error {
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return err
	}
	for i := 0; i < 500; i++ {
		if syscall.Kill(pid, 0) != nil {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}
