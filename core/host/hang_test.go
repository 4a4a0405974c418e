package host

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ebbscale/ebb/sdk"
)

// hangingPlugins are plugin binaries that never finish their start: a shell
// script whose child sleeps (and holds the output pipes after the script is
// killed), and one that prints a 4 MB line instead of the handshake.
// Each records its sleeping child's pid in the file named by $CHILD_PID.
var hangingPlugins = map[string]string{
	"sleeper": "#!/bin/sh\nsleep 100000 &\necho $! > \"$CHILD_PID\"\nwait\n",
	"shouter": "#!/bin/sh\nsleep 100000 &\necho $! > \"$CHILD_PID\"\nhead -c 4000000 /dev/zero | tr '\\000' x\necho\nwait\n",
}

// writeScript puts an executable script into dir.
func writeScript(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o700); err != nil {
		t.Fatal(err)
	}
	return p
}

// bounded fails the test if f does not return in a minute: the bug it
// guards against is a wait that never ends, not a slow one.
func bounded(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatalf("%s never returned", what)
	}
}

func TestPluginThatNeverStartsIsKilledWithItsChildren(t *testing.T) {
	for name, body := range hangingPlugins {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			t.Setenv("CHILD_PID", filepath.Join(dir, "child.pid"))
			writeScript(t, dir, name, body)
			h := New(Options{PluginDir: dir, StartTimeout: 300 * time.Millisecond, Backoff: time.Hour})
			defer h.Close()
			bounded(t, "Info", func() {
				_, err := h.Info(sdk.KindUnknown, name, "")
				if err == nil {
					t.Error("Info of a plugin that never starts succeeded")
				}
			})
			inst := h.Instance(Spec{Block: "c", Kind: sdk.KindCollector, Plugin: name})
			bounded(t, "Collect", func() {
				_, err := inst.Collect(context.Background(), sdk.Target{})
				var se *StartError
				if !errors.As(err, &se) {
					t.Errorf("Collect: want a StartError, got %v", err)
				}
				if len(err.Error()) > 2000 {
					t.Errorf("the error carries %d bytes of the plugin's output", len(err.Error()))
				}
			})
			// Nothing of the plugin is left: no sleeping child under init.
			if !gone(t, filepath.Join(dir, "child.pid")) {
				t.Fatal("the plugin's child survived it")
			}
		})
	}
}

// gone reports whether the process whose pid is in file has ended (a
// zombie waiting for its reaper counts as ended).
func gone(t *testing.T, file string) bool {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("the plugin never recorded its child: %v", err)
	}
	pid := strings.TrimSpace(string(b))
	for i := 0; i < 250; i++ {
		stat, err := os.ReadFile(filepath.Join("/proc", pid, "stat"))
		if err != nil {
			return true
		}
		if f := strings.Fields(string(stat)); len(f) > 2 && f[2] == "Z" {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	if n, err := strconv.Atoi(pid); err == nil {
		syscall.Kill(n, syscall.SIGKILL)
	} // do not leave it behind
	return false
}
