package process

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/ebbscale/ebb/sdk"
	"github.com/ebbscale/ebb/sdk/sdktest"
)

// Unit programs. Signals go to the whole process group, so the foreground
// sleep dies with the shell and a trap runs at once.
const (
	// graceful says what it was started with and exits on SIGTERM.
	graceful = `trap 'echo draining {unit}; exit 0' TERM; echo started {unit} {threads} {group}; while :; do sleep 1; done`
	// stubborn ignores SIGTERM: only SIGKILL ends it.
	stubborn = `trap '' TERM; echo started {unit}; while :; do sleep 1; done`
	// parent starts a child in its group and reports the child's pid.
	parent = `sleep 1000 & echo child $!; wait`
)

var target = sdk.Target{Chain: "amoro", Name: "group-a"}

// clock is a virtual clock for the realizer's notion of time (boot time,
// drain timeout); processes still run in real time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// config is a realizer config running script under sh, with extra keys.
func config(t *testing.T, stateDir, script string, extra map[string]any) json.RawMessage {
	t.Helper()
	m := map[string]any{"command": []string{"sh", "-c", script}, "state-dir": stateDir}
	for k, v := range extra {
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// newRealizer configures a realizer on a fresh state dir with a virtual
// clock; every unit it leaves behind is killed when the test ends.
func newRealizer(t *testing.T, script string, extra map[string]any) (*Realizer, *clock, string) {
	t.Helper()
	dir := t.TempDir()
	killUnits(t, dir)
	r, c := configured(t, config(t, dir, script, extra))
	return r, c, dir
}

func configured(t *testing.T, raw json.RawMessage) (*Realizer, *clock) {
	t.Helper()
	c := &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	r := New()
	r.now = c.Now
	r.log = hclog.NewNullLogger()
	if err := r.Configure(ctxT(t), raw); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	return r, c
}

// killUnits registers a cleanup that kills the process group of every unit
// recorded in the state dir, so that no test leaks processes.
func killUnits(t *testing.T, stateDir string) {
	t.Cleanup(func() {
		entries, _ := os.ReadDir(filepath.Join(stateDir, unitsDir))
		for _, e := range entries {
			b, err := os.ReadFile(filepath.Join(stateDir, unitsDir, e.Name()))
			if err != nil {
				continue
			}
			var rec record
			if json.Unmarshal(b, &rec) == nil && rec.Starting {
				if pid, _, ok := findByToken(rec.Token); ok {
					_ = syscall.Kill(-pid, syscall.SIGKILL)
				}
				continue
			}
			if json.Unmarshal(b, &rec) == nil && rec.Pid > 1 {
				if ok, _ := liveness(&rec); ok {
					_ = syscall.Kill(-rec.Pid, syscall.SIGKILL)
				}
			}
		}
	})
}

// foreign starts a process that is not a unit, killed at the end of the test.
func foreign(t *testing.T, env []string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	return cmd
}

// eventually polls cond with a generous deadline; it asserts an outcome,
// not how long it took.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// running is true while pid is a live, non-zombie process.
func running(pid int) bool {
	st, err := readStat(pid)
	return err == nil && st.State != 'Z' && st.State != 'X'
}

func inventory(t *testing.T, r sdk.Realizer, tg sdk.Target) map[string]sdk.Unit {
	t.Helper()
	return sdktest.Inventory(ctxT(t), t, r, tg)
}

func realize(t *testing.T, r sdk.Realizer, id string, d sdk.Decision) string {
	t.Helper()
	return sdktest.Realize(ctxT(t), t, r, target, id, d)
}

func pidOf(t *testing.T, u sdk.Unit) int {
	t.Helper()
	pid, err := strconv.Atoi(u.Labels["pid"])
	if err != nil || pid <= 1 {
		t.Fatalf("unit %s has pid label %q", u.ID, u.Labels["pid"])
	}
	return pid
}

func logOf(t *testing.T, u sdk.Unit) string {
	t.Helper()
	b, err := os.ReadFile(u.Labels["log"])
	if err != nil {
		t.Fatalf("log of %s: %v", u.ID, err)
	}
	return string(b)
}

// logHas is true once a line of the unit's log starts with s (the log's
// header line quotes the command, so plain substrings would match early).
func logHas(t *testing.T, u sdk.Unit, s string) func() bool {
	return func() bool {
		for _, line := range strings.Split(logOf(t, u), "\n") {
			if strings.HasPrefix(line, s) {
				return true
			}
		}
		return false
	}
}
