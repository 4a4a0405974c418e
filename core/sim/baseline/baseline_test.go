package baseline

import (
	"testing"
	"time"

	"github.com/ebbscale/ebb/sdk"
)

// world keeps the units a baseline asked for, all booting (nothing
// registers), so its target can be read from the inventory.
type world struct {
	now   time.Time
	units []sdk.Unit
}

func (w *world) step(f Func, demand sdk.Demand, workers []sdk.Worker) sdk.Decision {
	d := f(sdk.EvaluateRequest{Now: w.now, Inventory: w.units, Snapshot: sdk.Snapshot{Demand: demand, Workers: workers}})
	for _, a := range d.Add {
		w.units = append(w.units, sdk.Unit{ID: a.UnitID, Size: a.Size, Phase: sdk.PhaseBooting, CreatedAt: w.now})
	}
	gone := map[string]bool{}
	for _, r := range d.Remove {
		gone[r.UnitID] = true
	}
	for _, id := range d.Drain {
		gone[id] = true
	}
	kept := w.units[:0]
	for _, u := range w.units {
		if !gone[u.ID] {
			kept = append(kept, u)
		}
	}
	w.units = kept
	return d
}

// spark-keda-hpa.md §1.3's worked example: defaults, one task per executor,
// no executors, 200 tasks pending, maxExecutors 50: targets 1, 3, 7, 15, 31,
// 50 at 1 s … 6 s.
func TestSparkRampMatchesTheWorkedExample(t *testing.T) {
	f := Spark(Params{K: 1, Max: 50})
	w := &world{now: time.Unix(0, 0)}
	var got []int
	for s := 0; s <= 6; s++ {
		w.step(f, sdk.Demand{PlannedTasks: 200}, nil)
		got = append(got, len(w.units))
		w.now = w.now.Add(time.Second)
	}
	want := []int{0, 1, 3, 7, 15, 31, 50}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("targets %v, want %v", got, want)
		}
	}
}

// HPA scales down only to the highest recommendation of the last 300 s.
func TestHPAScaleDownWaitsForTheStabilisationWindow(t *testing.T) {
	f := HPA(Params{K: 1, Min: 1, Max: 20})
	w := &world{now: time.Unix(0, 0)}
	w.units = []sdk.Unit{{ID: "u1", Size: 1, Phase: sdk.PhaseRunning}}
	workers := func() []sdk.Worker {
		var ws []sdk.Worker
		for _, u := range w.units {
			u.Phase = sdk.PhaseRunning
			ws = append(ws, sdk.Worker{ID: "tok-" + u.ID, UnitID: u.ID, Threads: 1, BusyKnown: true})
		}
		return ws
	}
	// 8 threads of demand: 1 -> 5 (max(+4, +100%)) -> 10.
	for range 2 {
		ws := workers()
		for i := range w.units {
			w.units[i].Phase = sdk.PhaseRunning
		}
		w.step(f, sdk.Demand{RunningTasks: 8}, ws)
		w.now = w.now.Add(HPAInterval)
	}
	if n := len(w.units); n != 10 {
		t.Fatalf("%d replicas after two periods of 8 busy threads, want 10 (ceil(8/0.8))", n)
	}
	// Demand gone: nothing for 300 s, then down to minReplicas at once.
	for i := range w.units {
		w.units[i].Phase = sdk.PhaseRunning
	}
	start := w.now
	for len(w.units) == 10 {
		w.step(f, sdk.Demand{}, workers())
		w.now = w.now.Add(HPAInterval)
		if w.now.Sub(start) > 10*time.Minute {
			t.Fatal("never scaled down")
		}
	}
	if waited := w.now.Sub(start) - HPAInterval; waited < HPAStabilisation || len(w.units) != 1 {
		t.Errorf("scaled down to %d after %s, want 1 after at least %s", len(w.units), waited, HPAStabilisation)
	}
}

// Amoro's keeper waits scheduler-backlog-timeout before the first scale-out,
// then ramps 1, 2, 4 instances per round while demand is unmet.
func TestAmoroBacklogGateAndRamp(t *testing.T) {
	p, err := ParseParams([]byte(`{"executor-parallelism":2,"max-parallelism":64}`))
	if err != nil {
		t.Fatal(err)
	}
	f := Amoro(p)
	w := &world{now: time.Unix(0, 0)}
	var adds []int
	for range 6 {
		d := w.step(f, sdk.Demand{PlannedTasks: 100}, nil)
		adds = append(adds, len(d.Add))
		w.now = w.now.Add(p.SustainedTimeout.D())
	}
	// Pending registrations count as capacity, so the need shrinks as
	// instances are requested; 0 s and 30 s are inside the 1 min gate.
	want := []int{0, 0, 1, 2, 4, 8}
	for i := range want {
		if adds[i] != want[i] {
			t.Fatalf("instances added per round %v, want %v", adds, want)
		}
	}
}
