package process

import (
	"strings"
	"testing"

	"github.com/ebbscale/ebb/sdk"
)

// Issue 11: a plugin killed between starting a unit and recording its pid
// lost the unit (TestRecoveryAfterPluginKill under load: one unit missing,
// its process left running). The intent record written before the start
// lets the next plugin find the process by its token.
func TestPluginDiesBetweenStartAndPidFile(t *testing.T) {
	r, _, dir := newRealizer(t, graceful, nil)
	r.diesAfterStart = func(unit string) bool { return unit == "u-2" }
	add := sdk.Decision{Add: []sdk.UnitAdd{{UnitID: "u-1", Size: 2}, {UnitID: "u-2", Size: 1}}}
	if _, err := r.Realize(ctxT(t), sdk.RealizeRequest{Target: target, RequestID: "req-1", Decision: add}); err == nil {
		t.Fatal("the simulated death did not happen")
	}

	// The next plugin process, on the same state dir.
	r2, _ := configured(t, config(t, dir, graceful, nil))
	inv := inventory(t, r2, target)
	u2, ok := inv["u-2"]
	if len(inv) != 2 || !ok {
		t.Fatalf("inventory after the plugin died mid-start: %v, want u-1 and u-2", inv)
	}
	eventually(t, "u-2 runs", logHas(t, u2, "started u-2 1 group-a"))
	if !running(pidOf(t, u2)) || u2.Size != 1 || u2.Phase != sdk.PhaseRunning {
		t.Fatalf("u-2 = %+v", u2)
	}
	// The retried decision starts nothing twice.
	if s := realize(t, r2, "req-1", add); strings.Contains(s, "started") {
		t.Errorf("retried Add: %q, want nothing started", s)
	}
	if n := strings.Count(logOf(t, u2), "\nstarted u-2"); n != 1 {
		t.Errorf("u-2 started %d times:\n%s", n, logOf(t, u2))
	}
	// And it is a unit like any other: it drains.
	mustContain(t, realize(t, r2, "req-2", sdk.Decision{Drain: []string{"u-2"}}), "u-2: draining (SIGTERM")
	eventually(t, "u-2 handles SIGTERM", logHas(t, u2, "draining u-2"))
	eventually(t, "u-2 leaves", func() bool { _, ok := inventory(t, r2, target)["u-2"]; return !ok })
}

// An intent record whose process never started (the plugin died before
// the fork) is forgotten, and the unit can be started again.
func TestIntentWithoutProcessIsForgotten(t *testing.T) {
	r, _, _ := newRealizer(t, graceful, nil)
	rec := &record{Unit: "u-3", Chain: target.Chain, Target: target.Name, Size: 1, Token: "no-process-has-this", Starting: true, Argv: []string{"sh"}}
	if err := r.st.save(rec); err != nil {
		t.Fatal(err)
	}
	if inv := inventory(t, r, target); len(inv) != 0 {
		t.Fatalf("inventory %v, want nothing", inv)
	}
	mustContain(t, realize(t, r, "req-1", sdk.Decision{Add: []sdk.UnitAdd{{UnitID: "u-3", Size: 1}}}), "u-3: started 1 thread")
}

func mustContain(t *testing.T, got, want string) {
	t.Helper()
	if !strings.Contains(got, want) {
		t.Fatalf("%q does not contain %q", got, want)
	}
}
