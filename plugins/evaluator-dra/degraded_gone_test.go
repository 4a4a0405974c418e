package dra

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/ebbscale/ebb/sdk"
)

// A collector that fails for one round while a released unit's worker still
// lingers in AMS must not make the evaluator forget that unit: the worker
// would come back as capacity nobody manages, and the last real unit could
// then be drained below the floor. (Found by the e2e fault test.)
func TestGoneUnitRememberedAcrossDegradedSnapshot(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	policy := json.RawMessage(`{"min-parallelism":2,"max-parallelism":8,"executor-parallelism":2,"executor-idle-timeout":"30s","sustained-backlog-timeout":"15s","scale-down-cooldown":"1s"}`)
	worker := func(unit string, busy int64) sdk.Worker {
		return sdk.Worker{ID: "w-" + unit, UnitID: unit, Threads: 2, BusyThreads: busy, BusyKnown: true, State: sdk.WorkerRegistered}
	}
	inventory := func(ids ...string) []sdk.Unit {
		var out []sdk.Unit
		for _, id := range ids {
			out = append(out, sdk.Unit{ID: id, Size: 2, Phase: sdk.PhaseRunning, CreatedAt: t0})
		}
		return out
	}
	var state []byte
	step := func(at time.Duration, complete bool, inv []sdk.Unit, workers ...sdk.Worker) sdk.Decision {
		t.Helper()
		now := t0.Add(at)
		snap := sdk.Snapshot{ObservedAt: now, Complete: complete, Workers: workers, Demand: sdk.Demand{RunningTasks: 1}}
		if !complete {
			snap.IncompleteReasons = []string{"collector down"}
		}
		resp, err := Evaluate(Config{}, sdk.EvaluateRequest{Target: sdk.Target{Chain: "c", Name: "g"}, Policy: policy,
			Snapshot: snap, Inventory: inv, State: state, Now: now, SnapshotDegraded: !complete})
		if err != nil {
			t.Fatal(err)
		}
		state = resp.State
		return resp.Decision
	}
	step(0, true, inventory("a", "b"), worker("a", 1), worker("b", 0))
	if d := step(40*time.Second, true, inventory("a", "b"), worker("a", 1), worker("b", 0)); len(d.Drain) != 1 || d.Drain[0] != "b" {
		t.Fatalf("want b drained, got %s: %s", d.Summary(), d.Reason)
	}
	// b's unit is gone; AMS lists its worker until the heartbeat expires.
	step(41*time.Second, true, inventory("a"), worker("a", 1), worker("b", 0))
	step(42*time.Second, false, inventory("a"))
	d := step(43*time.Second, true, inventory("a"), worker("a", 1), worker("b", 0))
	wantContains(t, d.Reason, "capacity 2 threads (2 registered")
	if d = step(80*time.Second, true, inventory("a"), worker("a", 0), worker("b", 0)); len(d.Drain) > 0 {
		t.Fatalf("drained %v, the floor's only unit: %s", d.Drain, d.Reason)
	}
}

// A round without demand data (the collector is down) must not end the
// backlog: its timers and ramp go on when the data is back, rather than
// waiting scheduler-backlog-timeout again from ramp 1. (Found by the e2e
// fault test.)
func TestBacklogSurvivesDegradedSnapshot(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	policy := json.RawMessage(`{"min-parallelism":2,"max-parallelism":100,"executor-parallelism":2,"scheduler-backlog-timeout":"2s","sustained-backlog-timeout":"2s","scale-up-cooldown":"2s"}`)
	inv := []sdk.Unit{{ID: "a", Size: 2, Phase: sdk.PhaseRunning, CreatedAt: t0}}
	busy := sdk.Snapshot{Complete: true, Demand: sdk.Demand{PlannedTasks: 100, RunningTasks: 2},
		Workers: []sdk.Worker{{ID: "w-a", UnitID: "a", Threads: 2, BusyThreads: 2, BusyKnown: true, State: sdk.WorkerRegistered}}}
	down := sdk.Snapshot{Complete: false, IncompleteReasons: []string{"collector down"}}
	var state []byte
	step := func(at time.Duration, snap sdk.Snapshot) sdk.Decision {
		t.Helper()
		now := t0.Add(at)
		snap.ObservedAt = now
		resp, err := Evaluate(Config{}, sdk.EvaluateRequest{Target: sdk.Target{Chain: "c", Name: "g"}, Policy: policy,
			Snapshot: snap, Inventory: inv, State: state, Now: now, SnapshotDegraded: !snap.Complete})
		if err != nil {
			t.Fatal(err)
		}
		state = resp.State
		return resp.Decision
	}
	step(0, busy)
	if d := step(2*time.Second, busy); len(d.Add) != 1 {
		t.Fatalf("first add: %s (%s)", d.Summary(), d.Reason)
	}
	inv = append(inv, sdk.Unit{ID: "g-1", Size: 2, Phase: sdk.PhaseBooting, CreatedAt: t0.Add(2 * time.Second)})
	d := step(3*time.Second, down)
	wantContains(t, d.Reason, "backlog of 3s not judged on a degraded snapshot")
	// Sustained-backlog-timeout after the first add: the ramp's second
	// round (2 units) comes on time.
	if d = step(4*time.Second, busy); len(d.Add) != 2 {
		t.Fatalf("second add after the collector came back: %s (%s)", d.Summary(), d.Reason)
	}
}
