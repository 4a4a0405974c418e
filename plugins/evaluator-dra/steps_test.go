package dra

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ebbscale/ebb/sdk"
)

// With backlog-step "shortfall" the first round past the backlog timeout
// adds what the backlog needs; with the default ramp it adds one unit, then
// two, as Amoro does.
func TestBacklogStepShortfall(t *testing.T) {
	const base = `{"executor-parallelism":4,"max-parallelism":64,"scheduler-backlog-timeout":"10s","sustained-backlog-timeout":"10s","scale-up-cooldown":"1s"`
	for _, c := range []struct {
		policy string
		want   []int // units added in the first rounds past the timeout
	}{
		{base + `}`, []int{1, 2}},
		{base + `,"backlog-step":"shortfall"}`, []int{5, 0}},
		{base + `,"backlog-step":"shortfall","max-parallelism":12}`, []int{3, 0}},
	} {
		s := newSim(t, c.policy)
		s.bootRounds = 10 // nothing registers during the test: the backlog stays
		s.demand = sdk.Demand{PlannedTasks: 20}
		s.step(0)
		var got []int
		for range c.want {
			s.step(10 * time.Second)
			got = append(got, countNew(s))
		}
		for i := range c.want {
			if got[i] != c.want[i] {
				t.Errorf("%s: units added per round %v, want %v (%s)", c.policy, got, c.want, s.log[len(s.log)-1].Reason)
				break
			}
		}
	}
}

// countNew is how many of the latest decision's adds are new units (not
// repeated requests of units not listed yet).
func countNew(s *sim) int {
	d := s.log[len(s.log)-1]
	n := 0
	for _, a := range d.Add {
		if s.units[a.UnitID].rounds == 0 {
			n++
		}
	}
	return n
}

// With scale-down-step "idle" one round drains every idle unit beyond the
// floor; the default drains one per round and cooldown.
func TestScaleDownStepIdle(t *testing.T) {
	const base = `{"min-parallelism":4,"executor-parallelism":4,"max-parallelism":64,"executor-idle-timeout":"1m","sustained-backlog-timeout":"10s","scale-down-cooldown":"30s"`
	for _, c := range []struct {
		policy string
		drains int
	}{
		{base + `}`, 1},
		{base + `,"scale-down-step":"idle"}`, 4}, // 5 idle units, the floor keeps one
	} {
		s := newSim(t, c.policy)
		s.running(5, 4)
		s.step(0)
		d := s.step(2 * time.Minute)
		if len(d.Drain) != c.drains {
			t.Errorf("%s: drained %v, want %d units (%s)", c.policy, d.Drain, c.drains, d.Reason)
		}
		if c.drains > 1 && !strings.Contains(d.Reason, "with no demand: drain") {
			t.Errorf("reason %q", d.Reason)
		}
	}
}

// cold-backlog-timeout replaces scheduler-backlog-timeout only while the
// group has no capacity at all: a cold start adds at once, a warm group
// with a backlog still waits scheduler-backlog-timeout.
func TestColdBacklogTimeout(t *testing.T) {
	const policy = `{"executor-parallelism":4,"max-parallelism":64,"scheduler-backlog-timeout":"1m","sustained-backlog-timeout":"10s","cold-backlog-timeout":"1s","scale-up-cooldown":"1s"}`
	cold := newSim(t, policy)
	cold.bootRounds = 10
	cold.demand = sdk.Demand{PlannedTasks: 8}
	cold.step(0)
	if d := cold.step(10 * time.Second); countNew(cold) != 1 || !strings.Contains(d.Reason, "> 1s") {
		t.Errorf("cold start 10s into a backlog: %d new units (%s), want 1 after cold-backlog-timeout 1s", countNew(cold), d.Reason)
	}
	now := newSim(t, strings.Replace(policy, `"1s"`, `"0s"`, 1))
	now.demand = sdk.Demand{PlannedTasks: 8}
	if d := now.step(0); countNew(now) != 1 {
		t.Errorf("cold-backlog-timeout 0s: %d new units in the round the backlog appeared (%s), want 1", countNew(now), d.Reason)
	}
	// Four tasks run on the one unit and two wait: the running ones may
	// finish and take them, so the backlog is confirmed first.
	warm := newSim(t, policy)
	warm.running(1, 4)
	warm.autoBusy = true
	warm.bootRounds = 10
	warm.demand = sdk.Demand{RunningTasks: 4, PlannedTasks: 2}
	warm.step(0)
	if d := warm.step(10 * time.Second); countNew(warm) != 0 || !strings.Contains(d.Reason, "waiting for scheduler-backlog-timeout 1m") {
		t.Errorf("warm group 10s into a backlog: %d new units (%s), want none before scheduler-backlog-timeout", countNew(warm), d.Reason)
	}
	// Then the backlog grows past what the running tasks could free.
	warm.demand.PlannedTasks = 9
	if d := warm.step(time.Second); countNew(warm) != 1 || !strings.Contains(d.Reason, "> 1s") {
		t.Errorf("a backlog of 9 beyond 4 running tasks: %d new units (%s), want 1 after cold-backlog-timeout", countNew(warm), d.Reason)
	}
	booting := newSim(t, strings.Replace(policy, `"1s"`, `"0s"`, 1))
	booting.bootRounds = 10
	booting.demand = sdk.Demand{PlannedTasks: 4}
	booting.step(0)
	booting.step(10 * time.Second) // the booting unit covers the backlog: it clears
	booting.demand.PlannedTasks = 8
	if d := booting.step(time.Second); countNew(booting) != 1 {
		t.Errorf("a backlog beyond the threads still booting, none registered: %d new units (%s), want 1 at once", countNew(booting), d.Reason)
	}
	dflt := newSim(t, `{"executor-parallelism":4,"max-parallelism":64,"scheduler-backlog-timeout":"1m"}`)
	dflt.demand = sdk.Demand{PlannedTasks: 8}
	dflt.step(0)
	if d := dflt.step(10 * time.Second); countNew(dflt) != 0 {
		t.Errorf("without cold-backlog-timeout a cold start waits scheduler-backlog-timeout: %s", d.Reason)
	}
}

// newSizes are the sizes of the latest decision's new units, in order.
func newSizes(s *sim) []int64 {
	var out []int64
	for _, a := range s.log[len(s.log)-1].Add {
		if s.units[a.UnitID].rounds == 0 {
			out = append(out, a.Size)
		}
	}
	return out
}

// With unit-size "fit" a step's last unit takes only the threads still
// short, and the threads below the ceiling that make less than a unit are
// used; whole units stay Amoro's.
func TestUnitSizeFit(t *testing.T) {
	const base = `{"executor-parallelism":4,"scheduler-backlog-timeout":"10s","cold-backlog-timeout":"0s","backlog-step":"shortfall"`
	for _, c := range []struct {
		name, policy string
		planned      int64
		want         []int64
	}{
		{"whole units round the shortfall up", base + `,"max-parallelism":64}`, 9, []int64{4, 4, 4}},
		{"fit: the last unit takes the rest", base + `,"max-parallelism":64,"unit-size":"fit"}`, 9, []int64{4, 4, 1}},
		{"whole units stop a unit short of the ceiling", base + `,"max-parallelism":10}`, 20, []int64{4, 4}},
		{"fit: up to the ceiling", base + `,"max-parallelism":10,"unit-size":"fit"}`, 20, []int64{4, 4, 2}},
		{"fit: one task, one thread", base + `,"max-parallelism":64,"unit-size":"fit"}`, 1, []int64{1}},
	} {
		s := newSim(t, c.policy)
		s.bootRounds = 10
		s.demand = sdk.Demand{PlannedTasks: c.planned}
		d := s.step(0)
		if got := newSizes(s); !slices.Equal(got, c.want) {
			t.Errorf("%s: new unit sizes %v, want %v (%s)", c.name, got, c.want, d.Reason)
		}
	}
}

// Pending tables with every thread busy (or none at all) are demand not yet
// planned: Amoro probes with one unit; a shortfall step covers each table
// that booting threads leave uncovered, and a fitted probe covers up to a
// unit's worth; a table that arrives while a fitted unit boots gets its own.
func TestProbeSizedToPendingTables(t *testing.T) {
	const base = `{"executor-parallelism":4,"max-parallelism":64,"scheduler-backlog-timeout":"10s","sustained-backlog-timeout":"10s","scale-up-cooldown":"1s","cold-backlog-timeout":"0s"`
	for _, c := range []struct {
		name, policy string
		want         []int64
	}{
		{"Amoro's probe: one unit", base + `}`, []int64{4}},
		{"fit: a unit's worth at most", base + `,"unit-size":"fit"}`, []int64{4}},
		{"shortfall: every table", base + `,"backlog-step":"shortfall"}`, []int64{4, 4, 4}},
		{"shortfall and fit: every table, exactly", base + `,"backlog-step":"shortfall","unit-size":"fit"}`, []int64{4, 4, 1}},
	} {
		s := newSim(t, c.policy)
		s.bootRounds = 10
		s.demand = sdk.Demand{PendingTables: 9}
		d := s.step(0)
		if got := newSizes(s); !slices.Equal(got, c.want) {
			t.Errorf("%s: cold start on 9 pending tables added %v, want %v (%s)", c.name, got, c.want, d.Reason)
		}
	}

	s := newSim(t, base+`,"unit-size":"fit"}`)
	s.bootRounds = 10
	s.demand = sdk.Demand{PendingTables: 1}
	s.step(0)
	if got := newSizes(s); !slices.Equal(got, []int64{1}) {
		t.Fatalf("one pending table: %v, want one thread", got)
	}
	if d := s.step(10 * time.Second); countNew(s) != 0 {
		t.Errorf("the booting thread covers the one table, but more was added: %s", d.Reason)
	}
	s.demand.PendingTables = 2
	if d := s.step(10 * time.Second); !slices.Equal(newSizes(s), []int64{1}) {
		t.Errorf("a second table while the first unit boots: %v, want one more thread at once (%s)", newSizes(s), d.Reason)
	}
	if d := s.step(10 * time.Second); strings.Contains(d.Reason, "planning-bound") {
		t.Errorf("booting threads are not idle ones: %s", d.Reason)
	}
}

// headroom keeps spare threads above the tasks while there is work: a cold
// start on one task gets the task's thread and the spare ones, scale-down
// keeps them while a task runs, and they go with the work.
func TestHeadroom(t *testing.T) {
	const policy = `{"executor-parallelism":4,"max-parallelism":64,"scheduler-backlog-timeout":"10s","sustained-backlog-timeout":"10s","scale-up-cooldown":"1s",
		"cold-backlog-timeout":"0s","backlog-step":"shortfall","unit-size":"fit","headroom":2,"executor-idle-timeout":"30s","scale-down-cooldown":"1s","scale-down-step":"idle"}`
	s := newSim(t, policy)
	s.bootRounds = 1
	s.autoBusy = true
	s.demand = sdk.Demand{PlannedTasks: 1}
	if d := s.step(0); !slices.Equal(newSizes(s), []int64{3}) {
		t.Fatalf("one task, headroom 2: %v, want one unit of 3 threads (%s)", newSizes(s), d.Reason)
	}
	s.demand = sdk.Demand{RunningTasks: 1}
	for range 6 {
		if d := s.step(10 * time.Second); len(d.Add)+len(d.Drain) > 0 {
			t.Fatalf("one task running on 3 threads with headroom 2: nothing to do, got %s", d.Reason)
		}
	}
	// Spare threads are no backlog: nothing waits, so they come after
	// scheduler-backlog-timeout.
	s.demand = sdk.Demand{RunningTasks: 3}
	s.step(10 * time.Second)
	if d := s.step(10 * time.Second); !slices.Equal(newSizes(s), []int64{2}) {
		t.Errorf("3 tasks on 3 threads: %v, want 2 spare threads more (%s)", newSizes(s), d.Reason)
	}
	s.demand = sdk.Demand{}
	drained := 0
	for range 8 {
		d := s.step(10 * time.Second)
		drained += len(d.Drain)
	}
	if drained != 2 || s.threads() != 0 {
		t.Errorf("the work is gone: drained %d units, %d threads left; want both units drained and none left", drained, s.threads())
	}
	idle := newSim(t, policy)
	if d := idle.step(0); len(d.Add) != 0 {
		t.Errorf("no work: headroom adds nothing, got %s", d.Reason)
	}
	// A pending table is work too (nothing planned yet, threads idle): the
	// spare threads scale-up would ask for are not drained meanwhile, or
	// the two would undo each other every idle timeout.
	pending := newSim(t, policy)
	pending.running(1, 2)
	pending.demand = sdk.Demand{PendingTables: 1}
	for range 6 {
		if d := pending.step(10 * time.Second); len(d.Add)+len(d.Drain) > 0 {
			t.Fatalf("2 idle threads, a pending table, headroom 2: nothing to do, got %s", d.Reason)
		}
	}
}
