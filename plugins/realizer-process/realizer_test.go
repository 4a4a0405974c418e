package process

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ebbscale/ebb/sdk"
)

func TestAddInventoryAndRetry(t *testing.T) {
	r, c, _ := newRealizer(t, graceful, nil)
	add := sdk.Decision{Add: []sdk.UnitAdd{{UnitID: "u-1", Size: 2}, {UnitID: "u-2", Size: 1}}}
	summary := realize(t, r, "req-1", add)
	if !strings.Contains(summary, "u-1: started 2 threads") || !strings.Contains(summary, "u-2: started 1 thread") {
		t.Errorf("summary %q does not report both starts", summary)
	}
	units := inventory(t, r, target)
	if len(units) != 2 {
		t.Fatalf("inventory has %d units, want 2: %v", len(units), units)
	}
	for id, size := range map[string]int64{"u-1": 2, "u-2": 1} {
		u := units[id]
		if u.Size != size || u.Phase != sdk.PhaseRunning || !u.CreatedAt.Equal(c.Now()) {
			t.Errorf("unit %s = size %d, phase %v, created %v; want size %d, running, created %v", id, u.Size, u.Phase, u.CreatedAt, size, c.Now())
		}
		if !running(pidOf(t, u)) {
			t.Errorf("unit %s: pid %d is not running", id, pidOf(t, u))
		}
		eventually(t, "unit "+id+" prints its arguments", logHas(t, u, "started "+id+" "+map[string]string{"u-1": "2", "u-2": "1"}[id]+" group-a"))
	}

	// A retry, with the same request id or a new one, starts nothing.
	for _, req := range []string{"req-1", "req-2"} {
		summary = realize(t, r, req, add)
		if strings.Contains(summary, "started") {
			t.Errorf("retry %s started a unit: %s", req, summary)
		}
		again := inventory(t, r, target)
		for id, u := range units {
			if pidOf(t, again[id]) != pidOf(t, u) || len(again) != len(units) {
				t.Errorf("retry %s changed unit %s: %v -> %v", req, id, u, again[id])
			}
		}
	}

	// Units belong to their target: the same id elsewhere is another unit.
	other := sdk.Target{Chain: "amoro", Name: "group-b"}
	if got := inventory(t, r, other); len(got) != 0 {
		t.Errorf("target %v sees units of %v: %v", other, target, got)
	}
	if _, err := r.Realize(ctxT(t), sdk.RealizeRequest{Target: other, Decision: sdk.Decision{Add: []sdk.UnitAdd{{UnitID: "u-1", Size: 3}}}, RequestID: "b"}); err != nil {
		t.Fatal(err)
	}
	b := inventory(t, r, other)["u-1"]
	if b.Size != 3 || pidOf(t, b) == pidOf(t, units["u-1"]) {
		t.Errorf("u-1 of %v = %+v, want a separate unit of size 3", other, b)
	}
	if len(inventory(t, r, target)) != 2 {
		t.Errorf("adding to %v changed %v", other, target)
	}
}

func TestBootTime(t *testing.T) {
	r, c, _ := newRealizer(t, graceful, map[string]any{"boot-time": "1m"})
	realize(t, r, "req", sdk.Decision{Add: []sdk.UnitAdd{{UnitID: "u-1", Size: 1}}})
	if p := inventory(t, r, target)["u-1"].Phase; p != sdk.PhaseBooting {
		t.Errorf("phase at start = %v, want booting", p)
	}
	c.Advance(time.Minute)
	if p := inventory(t, r, target)["u-1"].Phase; p != sdk.PhaseRunning {
		t.Errorf("phase after the boot time = %v, want running", p)
	}
}

func TestDrainEndsWithTheUnit(t *testing.T) {
	r, c, dir := newRealizer(t, graceful, nil)
	realize(t, r, "add", sdk.Decision{Add: []sdk.UnitAdd{{UnitID: "u-1", Size: 1}}})
	u := inventory(t, r, target)["u-1"]
	eventually(t, "unit started", logHas(t, u, "started u-1"))
	drainAt := c.Now().Add(time.Second)
	c.Advance(time.Second)
	if s := realize(t, r, "drain", sdk.Decision{Drain: []string{"u-1"}}); !strings.Contains(s, "u-1: draining (SIGTERM") {
		t.Errorf("summary %q does not report the drain", s)
	}
	eventually(t, "unit handles SIGTERM", logHas(t, u, "draining u-1"))
	eventually(t, "drained unit leaves the inventory", func() bool {
		got, ok := inventory(t, r, target)["u-1"]
		if ok && (got.Phase != sdk.PhaseDraining || !got.DrainStartedAt.Equal(drainAt)) {
			t.Fatalf("unit while draining = %+v, want draining since %v", got, drainAt)
		}
		return !ok
	})
	if running(pidOf(t, u)) {
		t.Errorf("pid %d still running", pidOf(t, u))
	}
	if files, _ := os.ReadDir(filepath.Join(dir, unitsDir)); len(files) != 0 {
		t.Errorf("pid files left after the unit exited: %v", files)
	}
	if s := realize(t, r, "drain", sdk.Decision{Drain: []string{"u-1"}}); !strings.Contains(s, "not running") {
		t.Errorf("draining a gone unit: %q", s)
	}
}

func TestDrainTimeoutKills(t *testing.T) {
	r, c, _ := newRealizer(t, stubborn, map[string]any{"drain-timeout": "10m"})
	realize(t, r, "add", sdk.Decision{Add: []sdk.UnitAdd{{UnitID: "u-1", Size: 1}}})
	u := inventory(t, r, target)["u-1"]
	eventually(t, "unit started", logHas(t, u, "started u-1"))
	start := c.Now()
	realize(t, r, "drain", sdk.Decision{Drain: []string{"u-1"}})

	// A second drain neither re-signals nor moves the drain start.
	c.Advance(9 * time.Minute)
	if s := realize(t, r, "drain-2", sdk.Decision{Drain: []string{"u-1"}}); !strings.Contains(s, "already draining") {
		t.Errorf("second drain: %q", s)
	}
	got, ok := inventory(t, r, target)["u-1"]
	if !ok || got.Phase != sdk.PhaseDraining || !got.DrainStartedAt.Equal(start) || !running(pidOf(t, u)) {
		t.Fatalf("before the drain timeout: unit %+v present %v, want draining since %v and alive; log:\n%s", got, ok, start, logOf(t, u))
	}

	c.Advance(time.Minute)
	if _, ok := inventory(t, r, target)["u-1"]; ok {
		t.Errorf("unit still listed after the drain timeout")
	}
	eventually(t, "killed unit exits", func() bool { return !running(pidOf(t, u)) })
}

func TestRemove(t *testing.T) {
	tests := []struct {
		name      string
		script    string
		remove    sdk.UnitRemove
		want      string
		wantPhase sdk.Phase // PhaseUnknown: gone
	}{
		{"force kills a unit that ignores SIGTERM", stubborn, sdk.UnitRemove{UnitID: "u-1", Force: true}, "u-1: ", sdk.PhaseUnknown},
		{"graceful is a drain", stubborn, sdk.UnitRemove{UnitID: "u-1"}, "u-1: draining", sdk.PhaseDraining},
		{"unknown unit is nothing to do", graceful, sdk.UnitRemove{UnitID: "u-9", Force: true}, "u-9: not running", sdk.PhaseRunning},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, _, _ := newRealizer(t, tc.script, nil)
			realize(t, r, "add", sdk.Decision{Add: []sdk.UnitAdd{{UnitID: "u-1", Size: 1}}})
			u := inventory(t, r, target)["u-1"]
			eventually(t, "unit started", logHas(t, u, "started u-1"))
			if s := realize(t, r, "rm", sdk.Decision{Remove: []sdk.UnitRemove{tc.remove}}); !strings.Contains(s, tc.want) {
				t.Errorf("summary %q, want it to contain %q", s, tc.want)
			}
			if tc.wantPhase == sdk.PhaseUnknown {
				eventually(t, "removed unit exits", func() bool { return !running(pidOf(t, u)) })
				if got, ok := inventory(t, r, target)["u-1"]; ok {
					t.Errorf("removed unit still listed: %+v", got)
				}
				return
			}
			if got := inventory(t, r, target)["u-1"]; got.Phase != tc.wantPhase || !running(pidOf(t, u)) {
				t.Errorf("unit = %+v (running %v), want phase %v and alive", got, running(pidOf(t, u)), tc.wantPhase)
			}
		})
	}
}

// Signals go to the unit's process group: a force removal also ends the
// children the unit started.
func TestForceRemoveKillsChildren(t *testing.T) {
	r, _, _ := newRealizer(t, parent, nil)
	realize(t, r, "add", sdk.Decision{Add: []sdk.UnitAdd{{UnitID: "u-1", Size: 1}}})
	u := inventory(t, r, target)["u-1"]
	var child int
	eventually(t, "unit reports its child", func() bool {
		for _, line := range strings.Split(logOf(t, u), "\n") {
			if n, ok := strings.CutPrefix(line, "child "); ok {
				child, _ = strconv.Atoi(strings.TrimSpace(n))
			}
		}
		return child > 1
	})
	if !running(child) {
		t.Fatalf("child %d not running", child)
	}
	realize(t, r, "rm", sdk.Decision{Remove: []sdk.UnitRemove{{UnitID: "u-1", Force: true}}})
	eventually(t, "the unit's child is killed too", func() bool { return !running(child) })
}

func TestRestartKeepsID(t *testing.T) {
	tests := []struct{ name, script string }{
		{"exits on SIGTERM", graceful},
		{"needs SIGKILL", stubborn},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, _, _ := newRealizer(t, tc.script, nil)
			realize(t, r, "add", sdk.Decision{Add: []sdk.UnitAdd{{UnitID: "u-1", Size: 3}}})
			before := inventory(t, r, target)["u-1"]
			eventually(t, "unit started", logHas(t, before, "started u-1"))
			if s := realize(t, r, "restart-1", sdk.Decision{Restart: []string{"u-1"}}); !strings.Contains(s, "u-1: restarted") {
				t.Errorf("summary %q does not report the restart", s)
			}
			after := inventory(t, r, target)
			u, ok := after["u-1"]
			if len(after) != 1 || !ok || u.Size != 3 || u.Labels["restarts"] != "1" || pidOf(t, u) == pidOf(t, before) {
				t.Fatalf("after restart: %+v, want u-1 alone, size 3, restarted once, new pid", after)
			}
			if running(pidOf(t, before)) || !running(pidOf(t, u)) {
				t.Errorf("old pid running %v, new pid running %v", running(pidOf(t, before)), running(pidOf(t, u)))
			}
			// The same request again restarts nothing.
			if s := realize(t, r, "restart-1", sdk.Decision{Restart: []string{"u-1"}}); !strings.Contains(s, "already restarted") {
				t.Errorf("retried restart: %q", s)
			}
			if again := inventory(t, r, target)["u-1"]; pidOf(t, again) != pidOf(t, u) {
				t.Errorf("retried restart changed pid %d -> %d", pidOf(t, u), pidOf(t, again))
			}
		})
	}
}

// Pid files whose process is not the unit any more are dropped, and the
// process now holding the pid is left alone.
func TestStalePidFiles(t *testing.T) {
	sleeper := foreign(t, nil, "sleep", "1000")
	st, err := readStat(sleeper.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	exited := exitedPid(t)
	zombie := foreign(t, nil, "sh", "-c", "exit 0")
	eventually(t, "zombie", func() bool {
		s, err := readStat(zombie.Process.Pid)
		return err == nil && s.State == 'Z'
	})
	zst, _ := readStat(zombie.Process.Pid)

	tests := []struct {
		name string
		rec  record
	}{
		{"pid gone", record{Pid: exited, Argv: []string{"true"}}},
		{"pid reused by another command", record{Pid: sleeper.Process.Pid, ProcStart: st.StartTicks, Argv: []string{"sh", "-c", "optimizer"}, Token: "t"}},
		{"pid reused later", record{Pid: sleeper.Process.Pid, ProcStart: st.StartTicks + 1, Argv: []string{"sleep", "1000"}}},
		{"zombie", record{Pid: zombie.Process.Pid, ProcStart: zst.StartTicks, Argv: []string{"sh", "-c", "exit 0"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, c, _ := newRealizer(t, graceful, nil)
			rec := tc.rec
			rec.Unit, rec.Chain, rec.Target, rec.Size, rec.StartedAt = "u-1", target.Chain, target.Name, 1, c.Now()
			if err := r.st.save(&rec); err != nil {
				t.Fatal(err)
			}
			if got := inventory(t, r, target); len(got) != 0 {
				t.Errorf("stale pid file listed: %v", got)
			}
			if _, err := os.Stat(r.st.unitPath(target, "u-1")); !os.IsNotExist(err) {
				t.Errorf("stale pid file not removed (stat: %v)", err)
			}
			// The unit can be added again, and the pid's holder lives on.
			realize(t, r, "add", sdk.Decision{Add: []sdk.UnitAdd{{UnitID: "u-1", Size: 1}}})
			if u := inventory(t, r, target)["u-1"]; pidOf(t, u) == rec.Pid {
				t.Errorf("unit reports the stale pid %d", rec.Pid)
			}
			if !running(sleeper.Process.Pid) {
				t.Fatalf("the process holding a stale pid was killed")
			}
		})
	}
}

// A unit started by another plugin instance is recognized from its pid file,
// also after a wrapper script exec'd its program (the command line changed,
// the environment token did not).
func TestAdoptsRecordedProcesses(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		token   string
		running string // the command line once started
	}{
		{"same command", []string{"sleep", "1000"}, "", "sleep\x001000"},
		{"wrapper exec'd", []string{"sh", "-c", "exec sleep 1001"}, "tok-1", "sleep\x001001"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, c, _ := newRealizer(t, graceful, nil)
			p := foreign(t, append(os.Environ(), tokenEnv+"="+tc.token), tc.args...)
			pid := p.Process.Pid
			eventually(t, "command line settles", func() bool {
				l, _ := readNulList(pid, "cmdline")
				return strings.Join(l, "\x00") == tc.running
			})
			st, err := readStat(pid)
			if err != nil {
				t.Fatal(err)
			}
			rec := record{Unit: "u-1", Chain: target.Chain, Target: target.Name, Size: 2, Pid: pid, ProcStart: st.StartTicks,
				Argv: tc.args, Token: tc.token, StartedAt: c.Now()}
			if err := r.st.save(&rec); err != nil {
				t.Fatal(err)
			}
			u, ok := inventory(t, r, target)["u-1"]
			if !ok || pidOf(t, u) != pid || u.Size != 2 {
				t.Fatalf("recorded unit not adopted: %+v", u)
			}
			if s := realize(t, r, "add", sdk.Decision{Add: []sdk.UnitAdd{{UnitID: "u-1", Size: 2}}}); !strings.Contains(s, "already running") {
				t.Errorf("adding an adopted unit: %q", s)
			}
			realize(t, r, "rm", sdk.Decision{Remove: []sdk.UnitRemove{{UnitID: "u-1", Force: true}}})
			eventually(t, "adopted unit killed", func() bool { return !running(pid) })
		})
	}
}

func TestRealizeBadInput(t *testing.T) {
	r, _, _ := newRealizer(t, graceful, nil)
	tests := []struct {
		name string
		add  sdk.UnitAdd
		want string
	}{
		{"empty id", sdk.UnitAdd{Size: 1}, `cannot add unit ""`},
		{"zero size", sdk.UnitAdd{UnitID: "u-1"}, "size of at least 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.Realize(ctxT(t), sdk.RealizeRequest{Target: target, Decision: sdk.Decision{Add: []sdk.UnitAdd{tc.add}}})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to mention %q", err, tc.want)
			}
		})
	}
	if got := inventory(t, r, target); len(got) != 0 {
		t.Errorf("bad adds created units: %v", got)
	}
	if _, err := New().Inventory(ctxT(t), target); err == nil || !strings.Contains(err.Error(), "not configured") {
		t.Errorf("unconfigured Inventory: %v", err)
	}
}

func TestOverrides(t *testing.T) {
	script := `echo started {unit} ams={ams-url}; while :; do sleep 1; done`
	r, _, dir := newRealizer(t, script, map[string]any{"vars": map[string]string{"ams-url": "thrift://a:1261"}})
	ctx := ctxT(t)
	if _, err := r.RealizeParallelismOverrides(ctx, sdk.OverridesRequest[int64]{Target: target, Overrides: map[string]int64{"v1": 2}}); err == nil ||
		!strings.Contains(err.Error(), "not supported") {
		t.Errorf("parallelism overrides: %v, want a refusal", err)
	}
	_, err := r.RealizeConfigOverrides(ctx, sdk.OverridesRequest[string]{Target: target, Overrides: map[string]string{"ams-url": "x", "heap": "1g", "unit": "u"}})
	if err == nil || !strings.Contains(err.Error(), "heap, unit are not vars") {
		t.Errorf("unknown config overrides: %v, want them named", err)
	}
	s, err := r.RealizeConfigOverrides(ctx, sdk.OverridesRequest[string]{Target: target, Overrides: map[string]string{"ams-url": "thrift://b:1261"}})
	if err != nil || !strings.Contains(s, "ams-url=thrift://b:1261") {
		t.Fatalf("config override: %q, %v", s, err)
	}
	if s, _ := r.RealizeConfigOverrides(ctx, sdk.OverridesRequest[string]{Target: target, Overrides: map[string]string{"ams-url": "thrift://b:1261"}}); s != "config overrides unchanged" {
		t.Errorf("repeated override: %q", s)
	}

	// Units started later use the override, also by a new plugin instance;
	// other targets keep the configured value.
	r2, _ := configured(t, config(t, dir, script, map[string]any{"vars": map[string]string{"ams-url": "thrift://a:1261"}}))
	other := sdk.Target{Chain: "amoro", Name: "group-b"}
	for _, tc := range []struct {
		r    *Realizer
		tg   sdk.Target
		want string
	}{
		{r, target, "ams=thrift://b:1261"},
		{r2, target, "ams=thrift://b:1261"},
		{r2, other, "ams=thrift://a:1261"},
	} {
		id := "u-" + tc.tg.Name
		if tc.r == r2 {
			id += "-again"
		}
		if _, err := tc.r.Realize(ctx, sdk.RealizeRequest{Target: tc.tg, Decision: sdk.Decision{Add: []sdk.UnitAdd{{UnitID: id, Size: 1}}}}); err != nil {
			t.Fatal(err)
		}
		u := inventory(t, tc.r, tc.tg)[id]
		eventually(t, id+" prints "+tc.want, logHas(t, u, "started "+id+" "+tc.want))
	}
}

func exitedPid(t *testing.T) int {
	t.Helper()
	p := foreign(t, nil, "true")
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	return p.Process.Pid
}
