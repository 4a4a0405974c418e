package process

import (
	"strings"
	"syscall"
	"testing"

	"github.com/ebbscale/ebb/sdk"
	"github.com/ebbscale/ebb/sdk/sdktest"
)

const binPkg = "github.com/ebbscale/ebb/plugins/realizer-process/cmd/realizer-process"

func TestConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the plugin binary")
	}
	dir := t.TempDir()
	killUnits(t, dir)
	bin := sdktest.Build(t, binPkg)
	sdktest.Run(t, New(), bin, sdktest.Case{
		Config: config(t, dir, graceful, map[string]any{"boot-time": "1m"}),
		Target: target,
		Decision: &sdk.Decision{
			Add:    []sdk.UnitAdd{{UnitID: "u-1", Size: 2}},
			Reason: "conformance",
		},
	})
}

// The plugin process is killed outright; its units keep running, and the
// next plugin process finds them from the state dir: same units, same
// pids, no duplicate on a retried Add, and it can still drain them.
func TestRecoveryAfterPluginKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the plugin binary")
	}
	dir := t.TempDir()
	killUnits(t, dir)
	bin := sdktest.Build(t, binPkg)
	cfg := config(t, dir, graceful, nil)
	start := func() (*sdk.Process, sdk.Realizer) {
		p := sdktest.Start(t, bin, sdk.KindRealizer)
		r := p.Plugin.(sdk.Realizer)
		if err := r.Configure(ctxT(t), cfg); err != nil {
			t.Fatalf("Configure: %v", err)
		}
		return p, r
	}
	add := sdk.RealizeRequest{Target: target, RequestID: "req-1", Decision: sdk.Decision{
		Add: []sdk.UnitAdd{{UnitID: "u-1", Size: 2}, {UnitID: "u-2", Size: 1}},
	}}

	first, r1 := start()
	if _, err := r1.Realize(ctxT(t), add); err != nil {
		t.Fatal(err)
	}
	before := inventory(t, r1, target)
	if len(before) != 2 {
		t.Fatalf("inventory %v, want 2 units", before)
	}
	for _, u := range before {
		eventually(t, u.ID+" started", logHas(t, u, "started "+u.ID))
	}

	pluginPid := first.Pid()
	if pluginPid <= 1 {
		t.Fatalf("plugin pid %d", pluginPid)
	}
	if err := syscall.Kill(pluginPid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	eventually(t, "plugin process exits", first.Exited)
	for _, u := range before {
		if !running(pidOf(t, u)) {
			t.Fatalf("unit %s (pid %d) died with the plugin", u.ID, pidOf(t, u))
		}
	}

	_, r2 := start()
	after := inventory(t, r2, target)
	if len(after) != len(before) {
		t.Fatalf("after the plugin restart: %v, want %v", after, before)
	}
	for id, u := range before {
		got := after[id]
		if pidOf(t, got) != pidOf(t, u) || got.Size != u.Size || !got.CreatedAt.Equal(u.CreatedAt) || got.Phase != sdk.PhaseRunning {
			t.Errorf("unit %s after restart = %+v, want %+v", id, got, u)
		}
	}
	s, err := r2.Realize(ctxT(t), add)
	if err != nil || strings.Contains(s, "started") {
		t.Errorf("retried Add after the restart: %q, %v; want nothing started", s, err)
	}
	if again := inventory(t, r2, target); len(again) != 2 || pidOf(t, again["u-1"]) != pidOf(t, before["u-1"]) {
		t.Errorf("retried Add changed the inventory: %v", again)
	}

	// The new plugin is not the units' parent; it still drains them and
	// sees them go (gone, or a zombie until init reaps it).
	if _, err := r2.Realize(ctxT(t), sdk.RealizeRequest{Target: target, RequestID: "req-2", Decision: sdk.Decision{Drain: []string{"u-1"}}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "recovered unit drains and leaves the inventory", func() bool {
		_, ok := inventory(t, r2, target)["u-1"]
		return !ok
	})
	if !strings.Contains(logOf(t, before["u-1"]), "draining u-1") {
		t.Errorf("u-1 did not get SIGTERM:\n%s", logOf(t, before["u-1"]))
	}
	if _, ok := inventory(t, r2, target)["u-2"]; !ok {
		t.Errorf("u-2 disappeared")
	}
}
