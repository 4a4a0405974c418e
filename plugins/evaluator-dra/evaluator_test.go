package dra

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ebbscale/ebb/sdk"
)

func wantContains(t *testing.T, reason string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(reason, p) {
			t.Errorf("reason %q does not contain %q", reason, p)
		}
	}
}

func sizesOf(d sdk.Decision) []int64 {
	var s []int64
	for _, a := range d.Add {
		s = append(s, a.Size)
	}
	return s
}

// Spark's worked example (reference/spark-keda-hpa.md §1.3): with 1s timeouts,
// no cooldown and one thread per unit, a backlog needing 50 units grows the
// total 1, 3, 7, 15, 31, 50 round by round.
func TestSparkCrossCheck(t *testing.T) {
	cases := []struct {
		name   string
		policy string
		demand sdk.Demand
		boot   int
	}{
		{name: "200 tasks, max 50", policy: `{"executor-parallelism":1,"max-parallelism":50,"scheduler-backlog-timeout":"1s","sustained-backlog-timeout":"1s","scale-up-cooldown":"1ns"}`,
			demand: sdk.Demand{PlannedTasks: 200}},
		{name: "50 tasks, unbounded, units register at once", policy: `{"executor-parallelism":1,"scheduler-backlog-timeout":"1s","sustained-backlog-timeout":"1s","scale-up-cooldown":"1ns"}`,
			demand: sdk.Demand{PlannedTasks: 50}},
		{name: "50 tasks, units still booting", policy: `{"executor-parallelism":1,"scheduler-backlog-timeout":"1s","sustained-backlog-timeout":"1s","scale-up-cooldown":"1ns"}`,
			demand: sdk.Demand{PlannedTasks: 30, RunningTasks: 20}, boot: 10},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newSim(t, c.policy)
			s.demand, s.bootRounds = c.demand, c.boot
			s.step(0) // the backlog is first seen
			var totals []int64
			for i := 0; i < 8; i++ {
				if d := s.step(time.Second); len(d.Add) > 0 {
					totals = append(totals, s.threads())
				}
			}
			if want := []int64{1, 3, 7, 15, 31, 50}; !reflect.DeepEqual(totals, want) {
				t.Errorf("totals %v, want %v", totals, want)
			}
			if st := s.decodeState(); st.Ramp != 1 {
				t.Errorf("ramp %d after the capped round, want reset to 1", st.Ramp)
			}
		})
	}
}

func TestFloor(t *testing.T) {
	cases := []struct {
		name      string
		policy    string
		running   int
		size      int64
		wantSizes []int64
		reason    string
	}{
		{name: "empty group, whole units", policy: `{"min-parallelism":10,"executor-parallelism":4}`,
			wantSizes: []int64{4, 4, 4}, reason: "below the floor: 0 threads < min-parallelism 10: +3 units of 4 threads, 0 -> 12 threads"},
		{name: "partly filled", policy: `{"min-parallelism":12,"executor-parallelism":4}`, running: 2, size: 4,
			wantSizes: []int64{4}, reason: "8 threads < min-parallelism 12: +1 unit of 4 threads, 8 -> 12 threads"},
		{name: "at the floor", policy: `{"min-parallelism":8,"executor-parallelism":4}`, running: 2, size: 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newSim(t, c.policy)
			s.bootRounds = 3
			s.running(c.running, c.size)
			d := s.step(0)
			if !reflect.DeepEqual(sizesOf(d), c.wantSizes) {
				t.Fatalf("added %v, want %v (%s)", sizesOf(d), c.wantSizes, d.Reason)
			}
			if c.reason != "" {
				wantContains(t, d.Reason, c.reason)
			}
			// While the new units boot, the floor is not provisioned twice.
			for i := 0; i < 6; i++ {
				if d := s.step(10 * time.Second); len(d.Add) > 0 {
					t.Fatalf("round %d added %v again: %s", i, addIDs(d), d.Reason)
				}
			}
		})
	}
}

func TestBacklogTimersAndRamp(t *testing.T) {
	s := newSim(t, `{"executor-parallelism":4}`)
	s.running(4, 4)
	s.demand = sdk.Demand{PlannedTasks: 37, RunningTasks: 16}
	type round struct {
		after time.Duration
		adds  int
		part  string
	}
	rounds := []round{
		{0, 0, "backlog 37 tasks for 0s, waiting for scheduler-backlog-timeout 1m (next add in 1m)"},
		{30 * time.Second, 0, "waiting for scheduler-backlog-timeout"},
		{29 * time.Second, 0, "next add in 1s"},
		{time.Second, 1, "backlog 37 tasks for 1m > 1m: +1 unit of 4 threads (ramp 1), 16 -> 20 threads"},
		{20 * time.Second, 0, "waiting for sustained-backlog-timeout 30s (next add in 10s)"},
		{10 * time.Second, 2, "backlog 33 tasks for 90s, sustained 30s: +2 units of 4 threads (ramp 2), 20 -> 28 threads"},
		{30 * time.Second, 4, "backlog 25 tasks for 2m, sustained 30s: +4 units of 4 threads (ramp 4), 28 -> 44 threads"},
		{30 * time.Second, 3, "backlog 9 tasks for 150s, sustained 30s: +3 units of 4 threads (ramp 8, capped by the backlog), 44 -> 56 threads"},
		{30 * time.Second, 0, "backlog cleared after 3m"},
	}
	for i, r := range rounds {
		d := s.step(r.after)
		if len(d.Add) != r.adds {
			t.Fatalf("round %d: %d adds, want %d: %s", i, len(d.Add), r.adds, d.Reason)
		}
		wantContains(t, d.Reason, r.part)
	}
	// A new backlog waits the full scheduler-backlog-timeout and starts the
	// ramp at one unit again.
	s.demand.PlannedTasks += 40
	if d := s.step(30 * time.Second); len(d.Add) != 0 {
		t.Fatalf("added at once on a new backlog: %s", d.Reason)
	}
	if d := s.step(time.Minute); len(d.Add) != 1 {
		t.Fatalf("want 1 unit after the ramp reset: %s", d.Reason)
	}
}

func TestScaleUpCooldown(t *testing.T) {
	s := newSim(t, `{"executor-parallelism":1,"scheduler-backlog-timeout":"10s","sustained-backlog-timeout":"10s","scale-up-cooldown":"30s"}`)
	s.demand = sdk.Demand{PlannedTasks: 1000}
	var at []time.Duration
	for i := 0; i < 12; i++ {
		if d := s.step(10 * time.Second); len(d.Add) > 0 {
			at = append(at, s.now.Sub(t0))
		} else if i > 1 && !strings.Contains(d.Reason, "cooldown") {
			t.Errorf("round %d: no add and no cooldown in %q", i, d.Reason)
		}
	}
	want := []time.Duration{20 * time.Second, 50 * time.Second, 80 * time.Second, 110 * time.Second}
	if !reflect.DeepEqual(at, want) {
		t.Errorf("adds at %v, want %v", at, want)
	}
}

func TestCeiling(t *testing.T) {
	t.Run("never exceeded, whole units only", func(t *testing.T) {
		s := newSim(t, `{"executor-parallelism":4,"max-parallelism":22,"scheduler-backlog-timeout":"1s","sustained-backlog-timeout":"1s","scale-up-cooldown":"1ns"}`)
		s.demand = sdk.Demand{PlannedTasks: 500}
		s.step(0)
		var batches [][]int64
		for i := 0; i < 8; i++ {
			d := s.step(time.Second)
			if len(d.Add) > 0 {
				batches = append(batches, sizesOf(d))
			}
			if s.threads() > 22 {
				t.Fatalf("%d threads above the ceiling", s.threads())
			}
		}
		// 20 threads leave 2 below the ceiling: no 2-thread unit.
		want := [][]int64{{4}, {4, 4}, {4, 4}}
		if !reflect.DeepEqual(batches, want) {
			t.Errorf("batches %v, want %v", batches, want)
		}
		wantContains(t, s.log[len(s.log)-1].Reason, "only 2 threads remain below max-parallelism 22, fewer than one unit of 4")
	})
	t.Run("lowered: drain the least loaded down to it at once", func(t *testing.T) {
		s := newSim(t, `{"executor-parallelism":4,"max-parallelism":8}`)
		ids := s.running(4, 4)
		busy := []int64{3, 0, 4, 1}
		for i, id := range ids {
			s.units[id].busy = busy[i]
		}
		d := s.step(0)
		if want := []string{ids[1], ids[3]}; !reflect.DeepEqual(d.Drain, want) {
			t.Fatalf("drained %v, want %v: %s", d.Drain, want, d.Reason)
		}
		wantContains(t, d.Reason, "16 threads above max-parallelism 8", "16 -> 8 threads")
		if d.DesiredCapacity != 8 {
			t.Errorf("desired %d, want 8", d.DesiredCapacity)
		}
		// The busy drained unit is released only once its work is done.
		s.units[ids[3]].busy = 1
		d = s.step(30 * time.Second)
		if got := removeIDs(d); !reflect.DeepEqual(got, []string{ids[1]}) {
			t.Fatalf("removed %v, want [%s]: %s", got, ids[1], d.Reason)
		}
		wantContains(t, d.Reason, "draining "+ids[3]+": 1 thread busy, 30s of drain-timeout 15m")
		s.units[ids[3]].busy = 0
		d = s.step(30 * time.Second)
		if len(d.Remove) != 1 || d.Remove[0] != (sdk.UnitRemove{UnitID: ids[3]}) {
			t.Fatalf("remove %+v: %s", d.Remove, d.Reason)
		}
	})
}

func TestDrainTimeout(t *testing.T) {
	s := newSim(t, `{"executor-parallelism":4,"max-parallelism":4,"drain-timeout":"10m"}`)
	ids := s.running(2, 4)
	s.units[ids[0]].busy, s.units[ids[1]].busy = 4, 2
	d := s.step(0)
	if !reflect.DeepEqual(d.Drain, []string{ids[1]}) {
		t.Fatalf("drain %v: %s", d.Drain, d.Reason)
	}
	for i := 0; i < 9; i++ {
		if d := s.step(time.Minute); len(d.Remove) > 0 {
			t.Fatalf("removed a busy draining unit before the timeout: %s", d.Reason)
		}
	}
	d = s.step(time.Minute)
	if want := []sdk.UnitRemove{{UnitID: ids[1], Force: true}}; !reflect.DeepEqual(d.Remove, want) {
		t.Fatalf("remove %+v, want %+v: %s", d.Remove, want, d.Reason)
	}
	wantContains(t, d.Reason, "drain timed out after 10m >= 10m (2 threads still busy): force-remove")
}

func TestFutureLayer(t *testing.T) {
	s := newSim(t, `{"executor-parallelism":4,"sustained-backlog-timeout":"30s","scale-up-cooldown":"1ns"}`)
	s.bootRounds = 6
	s.autoBusy = true
	s.demand = sdk.Demand{PendingTables: 5}
	s.step(0)
	d := s.step(time.Minute)
	if !reflect.DeepEqual(sizesOf(d), []int64{4}) {
		t.Fatalf("cold start: added %v: %s", sizesOf(d), d.Reason)
	}
	wantContains(t, d.Reason, "5 pending tables with no units (cold start) for 1m > 1m: pre-warm +1 unit of 4 threads, 0 -> 4 threads")
	// Booting capacity is not busy: no second pre-warm while it boots.
	for i := 0; i < 6; i++ {
		if d := s.step(30 * time.Second); len(d.Add) > 0 {
			t.Fatalf("round %d: pre-warmed again while booting: %s", i, d.Reason)
		}
	}
	// Registered and every thread busy, with tables still pending: one more
	// unit per round, never a ramp.
	s.demand = sdk.Demand{RunningTasks: 4, PendingTables: 5}
	var adds []int
	for i := 0; i < 5; i++ {
		d := s.step(30 * time.Second)
		adds = append(adds, len(d.Add))
	}
	if !reflect.DeepEqual(adds, []int{0, 0, 1, 0, 0}) {
		t.Errorf("adds per round %v, want one pre-warm after the backlog timeout and none while it boots", adds)
	}
	wantContains(t, s.log[len(s.log)-3].Reason, "5 pending tables with all 4 threads busy")
}

func TestBootingCountsAsCapacity(t *testing.T) {
	s := newSim(t, `{"executor-parallelism":2,"scheduler-backlog-timeout":"10s","sustained-backlog-timeout":"10s","scale-up-cooldown":"1ns"}`)
	s.bootRounds = 1000 // they boot for as long as the test runs (within boot-timeout)
	s.demand = sdk.Demand{PlannedTasks: 6}
	var total int64
	for i := 0; i < 15; i++ {
		d := s.step(10 * time.Second)
		for _, a := range d.Add {
			total += a.Size
		}
	}
	if total != 6 {
		t.Errorf("requested %d threads for a backlog of 6 while units boot, want exactly 6", total)
	}
}

func TestScaleDown(t *testing.T) {
	s := newSim(t, `{"executor-parallelism":2,"min-parallelism":4,"executor-idle-timeout":"5m","scale-down-cooldown":"1m"}`)
	ids := s.running(4, 2)
	// Busy for a while, then idle in this order: ids[2] first, ids[0] last.
	for _, id := range ids {
		s.units[id].busy = 1
	}
	s.step(0)
	order := []string{ids[2], ids[1], ids[3], ids[0]}
	for _, id := range order {
		s.units[id].busy = 0
		if d := s.step(10 * time.Second); len(d.Drain) > 0 {
			t.Fatalf("drained %v before any idle timeout: %s", d.Drain, d.Reason)
		}
	}
	type event struct {
		at  time.Duration
		ids []string
	}
	var drains, removes []event
	for i := 0; i < 30; i++ {
		d := s.step(15 * time.Second)
		if len(d.Drain) > 0 {
			drains = append(drains, event{s.now.Sub(t0), d.Drain})
		}
		if len(d.Remove) > 0 {
			removes = append(removes, event{s.now.Sub(t0), removeIDs(d)})
		}
	}
	// ids[2] was last seen busy at 0s: drained in the first round past 5m
	// (5m10s); the next one waits for the cooldown; then the floor of 4
	// threads (2 units) stops it.
	wantDrains := []event{{310 * time.Second, []string{ids[2]}}, {370 * time.Second, []string{ids[1]}}}
	if !reflect.DeepEqual(drains, wantDrains) {
		t.Errorf("drains %v, want %v", drains, wantDrains)
	}
	wantRemoves := []event{{325 * time.Second, []string{ids[2]}}, {385 * time.Second, []string{ids[1]}}}
	if !reflect.DeepEqual(removes, wantRemoves) {
		t.Errorf("removes %v, want %v", removes, wantRemoves)
	}
	last := s.log[len(s.log)-1].Reason
	wantContains(t, last, "is idle but draining it would leave fewer than 4 threads")
	var drainReason string
	for _, d := range s.log {
		if len(d.Drain) > 0 {
			drainReason = d.Reason
			break
		}
	}
	wantContains(t, drainReason, ids[2]+" idle 310s >= 5m with no demand: drain, 8 -> 6 threads")
}

func TestNoScaleDownWhileDemandOrUnknown(t *testing.T) {
	cases := []struct {
		name   string
		setup  func(s *sim, ids []string)
		rounds int
	}{
		{name: "tasks need every thread", setup: func(s *sim, ids []string) {
			s.demand = sdk.Demand{PlannedTasks: 8}
		}},
		{name: "backlog held back by its timer", setup: func(s *sim, ids []string) {
			s.demand = sdk.Demand{PlannedTasks: 20}
		}},
		{name: "busy state unknown", setup: func(s *sim, ids []string) {
			for _, id := range ids {
				s.units[id].busyUnknown = true
			}
		}},
		// A stale worker is not registered, so its unit is no idle
		// candidate; nor is it released as an orphan while it may work.
		{name: "stale workers", setup: func(s *sim, ids []string) {
			for _, id := range ids {
				s.units[id].stale = true
			}
		}},
		{name: "degraded snapshot", setup: func(s *sim, ids []string) { s.degraded = true }},
		{name: "incomplete snapshot", setup: func(s *sim, ids []string) { s.incomplete = true }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newSim(t, `{"executor-parallelism":4,"executor-idle-timeout":"1m","scheduler-backlog-timeout":"1h","max-parallelism":8}`)
			ids := s.running(2, 4)
			c.setup(s, ids)
			rounds := c.rounds
			if rounds == 0 {
				rounds = 10
			}
			for i := 0; i < rounds; i++ {
				if d := s.step(time.Minute); len(d.Drain)+len(d.Remove) > 0 {
					t.Fatalf("round %d: %s: %s", i, d.Summary(), d.Reason)
				}
			}
		})
	}
}

func TestDegradedSnapshot(t *testing.T) {
	s := newSim(t, `{"executor-parallelism":4,"max-parallelism":8}`)
	ids := s.running(4, 4) // 12 threads not draining: above the ceiling
	s.units[ids[0]].unit.Phase = sdk.PhaseDraining
	s.units[ids[0]].unit.DrainStartedAt = t0.Add(-time.Minute)
	s.incomplete = true
	d := s.step(0)
	if len(d.Drain)+len(d.Remove) > 0 {
		t.Fatalf("scaled down: %s", d.Summary())
	}
	wantContains(t, d.Reason, "snapshot degraded (incomplete: optimizers endpoint timed out): no drain, removal or scale-down",
		ids[0]+" could be released (drain finished) but the snapshot is degraded",
		"12 threads above max-parallelism 8, but not draining on a degraded snapshot")
	// Back to a good snapshot: the held actions happen.
	s.incomplete = false
	d = s.step(time.Second)
	if !reflect.DeepEqual(d.Remove, []sdk.UnitRemove{{UnitID: ids[0]}}) || len(d.Drain) != 1 {
		t.Fatalf("after recovery: %s (%s)", d.Summary(), d.Reason)
	}

	// Scale-up still happens on a degraded snapshot.
	s = newSim(t, `{"executor-parallelism":4,"scheduler-backlog-timeout":"1ns","scale-up-cooldown":"1ns"}`)
	s.running(1, 4)
	s.degraded = true
	s.demand = sdk.Demand{PlannedTasks: 20}
	s.step(0)
	d = s.step(time.Second)
	if len(d.Add) != 1 {
		t.Fatalf("no scale-up on a degraded snapshot: %s", d.Reason)
	}
	wantContains(t, d.Reason, "snapshot degraded (the runner marked it stale)")
}

func TestAutoRestart(t *testing.T) {
	const restartPolicy = `{"min-parallelism":4,"executor-parallelism":4,"boot-timeout":"3m","auto-restart":{"enabled":true,"max-retries":2,"grace-period":"5m"}}`
	t.Run("never registers: restart twice with the same id, then release and replace", func(t *testing.T) {
		s := newSim(t, restartPolicy)
		d := s.step(0)
		if len(d.Add) != 1 {
			t.Fatalf("floor: %s", d.Reason)
		}
		id := d.Add[0].UnitID
		s.units[id].neverBoots = true
		type ev struct {
			at   time.Duration
			what string
		}
		var got []ev
		for i := 0; i < 20; i++ {
			d := s.step(time.Minute)
			at := s.now.Sub(t0)
			if len(d.Restart) > 0 {
				got = append(got, ev{at, "restart " + strings.Join(d.Restart, ",")})
			}
			if len(d.Remove) > 0 {
				got = append(got, ev{at, "remove " + strings.Join(removeIDs(d), ",")})
			}
			if len(d.Add) > 0 {
				got = append(got, ev{at, "add " + strings.Join(addIDs(d), ",")})
			}
		}
		// Orphan at 3m (boot-timeout); restarts at 8m and 13m; released at
		// 18m, when the floor asks for a fresh unit in the same round.
		want := []ev{{8 * time.Minute, "restart " + id}, {13 * time.Minute, "restart " + id},
			{18 * time.Minute, "remove " + id}, {18 * time.Minute, "add group-a-2"}}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("events %v, want %v", got, want)
		}
		for _, d := range s.log {
			if len(d.Restart) > 0 {
				wantContains(t, d.Reason, "orphan "+id)
			}
		}
		wantContains(t, s.log[18].Reason, "orphan "+id+" (restart 2 for 5m): released, 2 restarts did not bring it back")
	})
	t.Run("worker vanishes: orphan at once, restarted, back to normal", func(t *testing.T) {
		s := newSim(t, restartPolicy)
		ids := s.running(1, 4)
		s.step(0)
		s.units[ids[0]].dead = true
		var restartAt time.Duration
		for i := 0; i < 8; i++ {
			d := s.step(time.Minute)
			if len(d.Add) > 0 {
				t.Fatalf("provisioned the floor twice while the orphan waits: %s", d.Reason)
			}
			if len(d.Restart) > 0 && restartAt == 0 {
				restartAt = s.now.Sub(t0)
			}
		}
		if restartAt != 6*time.Minute {
			t.Errorf("restarted at %v, want 6m (vanished at 1m + grace 5m)", restartAt)
		}
		st := s.decodeState()
		if us := st.Units[ids[0]]; us.Restarts != 0 || !us.OrphanSince.IsZero() {
			t.Errorf("after it registered again the orphan record stays: %+v", us)
		}
	})
	t.Run("disabled: released after the grace period", func(t *testing.T) {
		s := newSim(t, `{"min-parallelism":4,"executor-parallelism":4}`)
		ids := s.running(1, 4)
		s.step(0)
		s.units[ids[0]].dead = true
		for i := 1; i <= 6; i++ {
			d := s.step(time.Minute)
			if len(d.Restart) > 0 {
				t.Fatalf("restart with auto-restart disabled")
			}
			if i < 6 && len(d.Remove) > 0 {
				t.Fatalf("released at %dm, before the grace period", i)
			}
			if i == 6 {
				if !reflect.DeepEqual(removeIDs(d), ids) || len(d.Add) != 1 {
					t.Fatalf("at 6m: %s (%s)", d.Summary(), d.Reason)
				}
				wantContains(t, d.Reason, "released, auto-restart disabled")
			}
		}
	})
}

func TestBalanceScaleInTieBreak(t *testing.T) {
	s := newSim(t, `{"executor-parallelism":4,"executor-idle-timeout":"1m","scale-down-cooldown":"1ns"}`)
	// Three units registered at the same moment, never busy: equally idle.
	for _, u := range []struct {
		id   string
		size int64
	}{{"u-a", 4}, {"u-b", 3}, {"u-c", 3}} {
		s.units[u.id] = &simUnit{unit: sdk.Unit{ID: u.id, Size: u.size, Phase: sdk.PhaseRunning, CreatedAt: t0}, registered: true}
	}
	s.step(0)
	d := s.step(time.Minute)
	if !reflect.DeepEqual(d.Drain, []string{"u-b"}) {
		t.Errorf("drained %v, want the smallest of the equally idle units, u-b: %s", d.Drain, d.Reason)
	}
}

func TestPendingAddsRepeatedThenDropped(t *testing.T) {
	s := newSim(t, `{"min-parallelism":2,"executor-parallelism":2,"boot-timeout":"3m"}`)
	s.failAdds = true
	d := s.step(0)
	if !reflect.DeepEqual(addIDs(d), []string{"group-a-1"}) {
		t.Fatalf("first add %v", addIDs(d))
	}
	d = s.step(time.Minute)
	if !reflect.DeepEqual(addIDs(d), []string{"group-a-1"}) {
		t.Fatalf("retry should repeat the same id, got %v: %s", addIDs(d), d.Reason)
	}
	wantContains(t, d.Reason, "requested again (not in the inventory yet): group-a-1")
	s.step(time.Minute)
	d = s.step(time.Minute) // 3m: the request is given up, a new one is made
	if !reflect.DeepEqual(addIDs(d), []string{"group-a-2"}) {
		t.Fatalf("after boot-timeout: %v: %s", addIDs(d), d.Reason)
	}
	s.failAdds = false
	s.bootRounds = 0
	s.step(time.Minute)
	if d := s.step(time.Minute); len(d.Add) > 0 {
		t.Fatalf("added again once listed: %s", d.Reason)
	}
}

func TestUnitIDsSkipExistingOnes(t *testing.T) {
	s := newSim(t, `{"min-parallelism":3,"executor-parallelism":1}`)
	// State lost: the inventory still holds a unit named like the first new one.
	s.units["group-a-1"] = &simUnit{unit: sdk.Unit{ID: "group-a-1", Size: 1, Phase: sdk.PhaseRunning, CreatedAt: t0}, registered: true}
	d := s.step(0)
	if want := []string{"group-a-2", "group-a-3"}; !reflect.DeepEqual(addIDs(d), want) {
		t.Errorf("ids %v, want %v", addIDs(d), want)
	}
}

func TestBadInput(t *testing.T) {
	good := func() sdk.EvaluateRequest {
		return sdk.EvaluateRequest{Policy: json.RawMessage(`{"max-parallelism":8}`), Now: t0, Snapshot: sdk.Snapshot{Complete: true},
			Inventory: []sdk.Unit{{ID: "a", Size: 1, Phase: sdk.PhaseRunning}}}
	}
	cases := []struct {
		name   string
		mutate func(r *sdk.EvaluateRequest)
		want   string
	}{
		{"corrupt state", func(r *sdk.EvaluateRequest) { r.State = []byte("{not json") }, "decoding dra state"},
		{"future state version", func(r *sdk.EvaluateRequest) { r.State = []byte(`{"version":9}`) }, "version 9"},
		{"unknown state field", func(r *sdk.EvaluateRequest) { r.State = []byte(`{"version":1,"bogus":1}`) }, "unknown field"},
		{"null unit record", func(r *sdk.EvaluateRequest) { r.State = []byte(`{"version":1,"units":{"a":null}}`) }, "no record"},
		{"duplicate unit", func(r *sdk.EvaluateRequest) { r.Inventory = append(r.Inventory, r.Inventory[0]) }, "listed twice"},
		{"unit without id", func(r *sdk.EvaluateRequest) { r.Inventory[0].ID = "" }, "no id"},
		{"negative size", func(r *sdk.EvaluateRequest) { r.Inventory[0].Size = -1 }, "size -1"},
		{"negative demand", func(r *sdk.EvaluateRequest) { r.Snapshot.Demand.PlannedTasks = -3 }, "planned tasks -3"},
		{"huge demand", func(r *sdk.EvaluateRequest) { r.Snapshot.Demand.RunningTasks = 1 << 62 }, "out of range"},
		{"negative busy", func(r *sdk.EvaluateRequest) {
			r.Snapshot.Workers = []sdk.Worker{{ID: "w", UnitID: "a", Threads: 1, BusyThreads: -1}}
		}, `worker "w" has -1 busy`},
		{"no time", func(r *sdk.EvaluateRequest) { r.Now = time.Time{} }, "no time"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := good()
			c.mutate(&req)
			_, err := Evaluate(Config{}, req)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want %q", err, c.want)
			}
		})
	}
	if _, err := Evaluate(Config{}, good()); err != nil {
		t.Errorf("the good request fails: %v", err)
	}
}

// A worker whose busy state is unknown keeps its unit from ever looking
// idle, and a previous decision in the chain does not change the outcome.
func TestUnknownBusyAndPreviousIgnored(t *testing.T) {
	s := newSim(t, `{"executor-parallelism":2,"executor-idle-timeout":"1m"}`)
	ids := s.running(2, 2)
	s.units[ids[0]].busyUnknown = true
	s.step(0)
	req := s.request()
	req.Now = s.now.Add(10 * time.Minute)
	a, err := Evaluate(Config{}, req)
	if err != nil {
		t.Fatal(err)
	}
	req.Previous = &sdk.Decision{Drain: []string{ids[0]}, Reason: "someone else"}
	b, err := Evaluate(Config{}, req)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, b) {
		t.Errorf("Previous changed the response")
	}
	if !reflect.DeepEqual(a.Decision.Drain, []string{ids[1]}) {
		t.Errorf("drained %v, want only the unit with known idle load %s", a.Decision.Drain, ids[1])
	}
}

// A unit released by the platform stays listed by AMS until its heartbeat
// expires; its worker must count neither as capacity nor as an optimizer
// started by hand, or scale-down stalls and scale-up comes late.
func TestWorkerOfGoneUnitIsNotCapacity(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	policy := json.RawMessage(`{"min-parallelism":2,"max-parallelism":8,"executor-parallelism":2}`)
	worker := func(unit string) sdk.Worker {
		return sdk.Worker{ID: "w-" + unit, UnitID: unit, Threads: 2, BusyKnown: true, State: sdk.WorkerRegistered, LastBusyAt: now}
	}
	unit := func(id string) sdk.Unit { return sdk.Unit{ID: id, Size: 2, Phase: sdk.PhaseRunning, CreatedAt: now} }
	req := sdk.EvaluateRequest{
		Target: sdk.Target{Chain: "c", Name: "g"}, Policy: policy, Now: now,
		Snapshot:  sdk.Snapshot{ObservedAt: now, Complete: true, Workers: []sdk.Worker{worker("a"), worker("b"), worker("c")}},
		Inventory: []sdk.Unit{unit("a"), unit("b"), unit("c")},
	}
	resp, err := Evaluate(Config{}, req)
	if err != nil {
		t.Fatal(err)
	}
	wantContains(t, resp.Decision.Reason, "capacity 6 threads (6 registered")

	// c is gone from the platform; AMS still lists its worker.
	req.Now, req.Snapshot.ObservedAt, req.State = now.Add(time.Second), now.Add(time.Second), resp.State
	req.Inventory = req.Inventory[:2]
	resp, err = Evaluate(Config{}, req)
	if err != nil {
		t.Fatal(err)
	}
	wantContains(t, resp.Decision.Reason, "capacity 4 threads (4 registered")
	st, _ := DecodeState(resp.State)
	if us := st.Units["c"]; us == nil || !us.Gone {
		t.Fatalf("the gone unit is not remembered while its worker lingers: %+v", st.Units["c"])
	}

	// Its heartbeat expired: the worker is gone too, and so is the memory.
	req.Now, req.Snapshot.ObservedAt, req.State = now.Add(2*time.Second), now.Add(2*time.Second), resp.State
	req.Snapshot.Workers = req.Snapshot.Workers[:2]
	resp, err = Evaluate(Config{}, req)
	if err != nil {
		t.Fatal(err)
	}
	st, _ = DecodeState(resp.State)
	if _, ok := st.Units["c"]; ok {
		t.Fatal("the gone unit is still in the state after its worker left")
	}
}
