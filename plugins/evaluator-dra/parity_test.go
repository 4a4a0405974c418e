package dra

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ebbscale/ebb/sdk"
)

// Parity with Amoro's merged dynamic allocation (master 96a4d781a): each
// case replays an upstream test of amoro-ams (TestComputeScaleUp,
// TestComputeScaleDown, TestDynamicAllocationConfig,
// TestDynamicAllocationState, TestOptimizerScaleKeeper) against the
// evaluator, through the sim (a realizer and an engine on a virtual
// clock). Upstream passes (effective, busy, serviceablePlanned,
// pendingTables) to computeScaleUp; here effective is registered units of
// K threads, busy is RunningTasks and serviceable planned comes from a
// quota-aware collector. Defaults are Amoro's: scheduler-backlog-timeout
// 1min, sustained 30s, idle 5min, scale-down-cooldown 1min.

const (
	backlogT   = time.Minute      // TestComputeScaleUp.BACKLOG_MS
	sustainedT = 30 * time.Second // TestComputeScaleUp.SUSTAINED_MS
	idleT      = 5 * time.Minute  // TestComputeScaleDown.IDLE_MS
	cooldownT  = time.Minute      // TestComputeScaleDown.COOLDOWN_MS
)

// amoroPolicy is TestComputeScaleUp.config(min, max, k).
func amoroPolicy(minP, maxP, k int64) string {
	return fmt.Sprintf(`{"min-parallelism":%d,"max-parallelism":%d,"executor-parallelism":%d}`, minP, maxP, k)
}

// demandOf is upstream's busy / serviceablePlanned / pendingTables.
func demandOf(busy, serviceable, pending int64) sdk.Demand {
	return sdk.Demand{RunningTasks: busy, PlannedTasks: serviceable, ServiceablePlannedTasks: serviceable,
		ServiceableKnown: true, PendingTables: pending}
}

// busyAll sets the demand so every registered thread is busy (upstream's
// "effective/busy grow by the created threads each round").
func (s *sim) busyAll(serviceable, pending int64) {
	s.demand = demandOf(s.threads(), serviceable, pending)
}

func unitsAdded(d sdk.Decision) int { return len(d.Add) }

func TestParityComputeScaleUp(t *testing.T) {
	t.Run("floorDeficitScalesImmediately", func(t *testing.T) {
		s := newSim(t, amoroPolicy(5, 100, 2))
		d := s.step(0)
		if !reflect.DeepEqual(sizesOf(d), []int64{2, 2, 2}) {
			t.Fatalf("added %v, want 3 units of 2: %s", sizesOf(d), d.Reason)
		}
	})
	t.Run("noDemandReturnsZero", func(t *testing.T) {
		s := newSim(t, amoroPolicy(0, 100, 2))
		s.running(2, 2)
		s.demand = demandOf(2, 0, 0)
		for i := 0; i < 4; i++ {
			if d := s.step(backlogT); unitsAdded(d) > 0 {
				t.Fatalf("added: %s", d.Reason)
			}
		}
	})
	t.Run("idleCapacityCoveringBacklogReturnsZero", func(t *testing.T) {
		s := newSim(t, amoroPolicy(0, 100, 2))
		s.running(4, 2) // 8 threads
		s.demand = demandOf(2, 3, 0)
		for i := 0; i < 4; i++ {
			if d := s.step(backlogT); unitsAdded(d) > 0 {
				t.Fatalf("added: %s", d.Reason)
			}
		}
	})
	t.Run("backlogDuration", func(t *testing.T) {
		// backlogDurationIsZeroWithoutDemand, backlogDurationTracksSinceDemandFirstObserved,
		// backlogDurationResetsWhenDemandClears: the backlog gauge's source.
		s := newSim(t, amoroPolicy(0, 100, 2))
		s.running(1, 2)
		if d := s.step(0); d.Metrics[MetricBacklogSeconds] != 0 {
			t.Fatalf("backlog %v without demand", d.Metrics[MetricBacklogSeconds])
		}
		s.demand = demandOf(2, 5, 0)
		s.step(time.Second)
		if d := s.step(backlogT - time.Second); d.Metrics[MetricBacklogSeconds] != (backlogT - time.Second).Seconds() {
			t.Fatalf("backlog %v, want %v", d.Metrics[MetricBacklogSeconds], (backlogT - time.Second).Seconds())
		}
		s.demand = demandOf(0, 0, 0)
		if d := s.step(time.Second); d.Metrics[MetricBacklogSeconds] != 0 {
			t.Fatalf("backlog %v after it cleared", d.Metrics[MetricBacklogSeconds])
		}
	})
	t.Run("immediateBacklogWaitsForSchedulerBacklogTimeout", func(t *testing.T) {
		s := newSim(t, amoroPolicy(0, 100, 2))
		s.running(1, 2)
		s.demand = demandOf(2, 5, 0)
		if d := s.step(0); unitsAdded(d) != 0 {
			t.Fatal(d.Reason)
		}
		if d := s.step(backlogT - time.Millisecond); unitsAdded(d) != 0 {
			t.Fatal(d.Reason)
		}
		if d := s.step(time.Millisecond); unitsAdded(d) != 1 {
			t.Fatalf("want 1 unit at the timeout: %s", d.Reason)
		}
	})
	t.Run("exponentialRampAcrossSustainedRounds", func(t *testing.T) {
		s := newSim(t, amoroPolicy(0, 1000, 2))
		s.running(1, 2)
		s.busyAll(100, 0)
		s.step(0)
		var got []int
		for _, dt := range []time.Duration{backlogT, sustainedT, sustainedT, sustainedT} {
			s.busyAll(100, 0)
			got = append(got, unitsAdded(s.step(dt)))
		}
		if want := []int{1, 2, 4, 8}; !reflect.DeepEqual(got, want) {
			t.Errorf("added %v, want %v", got, want)
		}
	})
	t.Run("sustainedCadenceGatesConsecutiveAdds", func(t *testing.T) {
		s := newSim(t, amoroPolicy(0, 1000, 2))
		s.running(1, 2)
		s.busyAll(100, 0)
		s.step(0)
		var got []int
		for _, dt := range []time.Duration{backlogT, 10 * time.Second, sustainedT - 10*time.Second} {
			s.busyAll(100, 0)
			got = append(got, unitsAdded(s.step(dt)))
		}
		if want := []int{1, 0, 2}; !reflect.DeepEqual(got, want) {
			t.Errorf("added %v, want %v", got, want)
		}
	})
	t.Run("rampResetsWhenClampBinds", func(t *testing.T) {
		s := newSim(t, amoroPolicy(0, 1000, 1))
		s.running(2, 1)
		s.busyAll(10, 0)
		s.step(0)
		var got []int
		for _, serviceable := range []int64{10, 1, 10, 10} {
			s.busyAll(serviceable, 0)
			dt := sustainedT
			if len(got) == 0 {
				dt = backlogT
			}
			got = append(got, unitsAdded(s.step(dt)))
		}
		if want := []int{1, 1, 1, 2}; !reflect.DeepEqual(got, want) {
			t.Errorf("added %v, want %v", got, want)
		}
	})
	t.Run("addIsCappedByMaxParallelismAndStopsAtCap", func(t *testing.T) {
		s := newSim(t, amoroPolicy(0, 10, 2))
		s.running(4, 2) // 8 threads
		s.busyAll(100, 0)
		s.step(0)
		s.busyAll(100, 0)
		if d := s.step(backlogT); !reflect.DeepEqual(sizesOf(d), []int64{2}) {
			t.Fatalf("added %v, want one unit of 2: %s", sizesOf(d), d.Reason)
		}
		s.busyAll(100, 0)
		if d := s.step(sustainedT); unitsAdded(d) != 0 {
			t.Fatalf("added at the cap: %s", d.Reason)
		}
	})
	t.Run("floorRoundsResetDemandTiming", func(t *testing.T) {
		s := newSim(t, amoroPolicy(2, 100, 1))
		ids := s.running(2, 1)
		s.busyAll(10, 0)
		s.step(0)
		s.busyAll(10, 0)
		if d := s.step(backlogT); unitsAdded(d) != 1 {
			t.Fatalf("demand phase: %s", d.Reason)
		}
		// Optimizers die: the platform drops every unit; the floor bypasses the timers.
		for id := range s.units {
			delete(s.units, id)
		}
		_ = ids
		s.demand = demandOf(0, 0, 0)
		if d := s.step(10 * time.Second); unitsAdded(d) != 2 {
			t.Fatalf("floor: %s", d.Reason)
		}
		s.step(110 * time.Second) // recovered: the floor's units registered
		s.busyAll(10, 0)
		if d := s.step(time.Second); unitsAdded(d) != 0 {
			t.Fatalf("fresh demand fired through a stale gate: %s", d.Reason)
		}
		s.busyAll(10, 0)
		if d := s.step(backlogT); unitsAdded(d) != 1 {
			t.Fatalf("after re-proving the backlog: %s", d.Reason)
		}
	})
	t.Run("oscillatingDemandResetsBacklogTimer", func(t *testing.T) {
		s := newSim(t, amoroPolicy(0, 100, 2))
		s.running(1, 2)
		for _, r := range []struct {
			dt          time.Duration
			serviceable int64
			want        int
		}{{0, 5, 0}, {30 * time.Second, 0, 0}, {15 * time.Second, 5, 0}, {backlogT - time.Millisecond, 5, 0}, {time.Millisecond, 5, 1}} {
			s.demand = demandOf(2, r.serviceable, 0)
			if d := s.step(r.dt); unitsAdded(d) != r.want {
				t.Fatalf("at %s: added %d, want %d: %s", s.now.Sub(t0), unitsAdded(d), r.want, d.Reason)
			}
		}
	})
	t.Run("coldStartWithPendingTablesAddsOneInstance", func(t *testing.T) {
		// and futureDemandAddsOneInstanceRegardlessOfPendingTableCount.
		for _, pending := range []int64{3, 100} {
			s := newSim(t, amoroPolicy(0, 100, 4))
			s.demand = demandOf(0, 0, pending)
			s.step(0)
			if d := s.step(backlogT); !reflect.DeepEqual(sizesOf(d), []int64{4}) {
				t.Fatalf("%d pending: added %v, want one unit of 4: %s", pending, sizesOf(d), d.Reason)
			}
		}
	})
	t.Run("futureDemandRequiresAllThreadsBusy", func(t *testing.T) {
		s := newSim(t, amoroPolicy(0, 100, 2))
		s.running(2, 2)
		s.demand = demandOf(3, 0, 5)
		for _, dt := range []time.Duration{0, backlogT} {
			if d := s.step(dt); unitsAdded(d) != 0 {
				t.Fatalf("added with an idle thread: %s", d.Reason)
			}
		}
	})
	t.Run("futureDemandDoesNotRamp", func(t *testing.T) {
		s := newSim(t, amoroPolicy(0, 100, 4))
		s.demand = demandOf(0, 0, 10)
		s.step(0)
		var got []int
		for _, dt := range []time.Duration{backlogT, sustainedT, sustainedT} {
			s.busyAll(0, 10)
			got = append(got, unitsAdded(s.step(dt)))
		}
		if want := []int{1, 1, 1}; !reflect.DeepEqual(got, want) {
			t.Errorf("added %v, want %v", got, want)
		}
	})
	t.Run("demandActiveWhileBacklogGateStillHolds", func(t *testing.T) {
		// An idle unit past its idle timeout is not drained while demand
		// waits for the backlog gate (and floorDeficitCountsAsDemandActive).
		s := newSim(t, amoroPolicy(0, 100, 1))
		s.running(2, 1)
		s.step(0)
		s.demand = demandOf(2, 3, 0)
		if d := s.step(idleT + time.Second); len(d.Drain) > 0 || unitsAdded(d) > 0 {
			t.Fatalf("acted while the gate holds: %s", d.Summary())
		}
	})
}

// TestParityServiceableDemand mirrors TestDynamicAllocationState: the
// collector computes serviceablePlannedCount per table; the evaluator
// scales for it, not for every planned task.
func TestParityServiceableDemand(t *testing.T) {
	for _, c := range []struct {
		name                 string
		planned, serviceable int64
		want                 int
	}{
		{"proportionalQuotaCountsAllPlannedTasks", 10, 10, 1},
		{"absoluteQuotaExhaustedCountsZero", 5, 0, 0},
		{"absoluteQuotaCountsOnlyFreeSlots", 10, 2, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newSim(t, amoroPolicy(0, 100, 2))
			s.running(1, 2)
			s.demand = sdk.Demand{RunningTasks: 2, PlannedTasks: c.planned, ServiceablePlannedTasks: c.serviceable, ServiceableKnown: true}
			s.step(0)
			if d := s.step(backlogT); unitsAdded(d) != c.want {
				t.Fatalf("added %d, want %d: %s", unitsAdded(d), c.want, d.Reason)
			}
		})
	}
	t.Run("planningBoundWhenThreadsIdleTablesPendingAndNothingPlanned", func(t *testing.T) {
		s := newSim(t, amoroPolicy(0, 100, 2))
		s.running(2, 2)
		s.demand = demandOf(2, 0, 10)
		d := s.step(0)
		if unitsAdded(d) > 0 {
			t.Fatal(d.Reason)
		}
		wantContains(t, d.Reason, "planning-bound: 2 idle threads while 10 tables are pending")
	})
}

func TestParityComputeScaleDown(t *testing.T) {
	policy := `{"min-parallelism":%d,"max-parallelism":100}`
	t.Run("newTokenIsIdleFromFirstObservation", func(t *testing.T) {
		s := newSim(t, fmt.Sprintf(policy, 0))
		s.running(1, 1)
		s.step(0)
		if d := s.step(idleT - time.Millisecond); len(d.Drain) > 0 {
			t.Fatal(d.Reason)
		}
		if d := s.step(time.Millisecond); len(d.Drain) != 1 {
			t.Fatalf("not drained at the idle timeout: %s", d.Reason)
		}
	})
	t.Run("busyObservationResetsIdleClock", func(t *testing.T) {
		s := newSim(t, fmt.Sprintf(policy, 0))
		ids := s.running(1, 1)
		s.step(0)
		s.units[ids[0]].busy = 1
		s.step(100 * time.Second)
		s.units[ids[0]].busy = 0
		if d := s.step(idleT - 100*time.Second); len(d.Drain) > 0 {
			t.Fatal(d.Reason)
		}
		if d := s.step(100 * time.Second); len(d.Drain) != 1 {
			t.Fatalf("not drained idle since the busy round: %s", d.Reason)
		}
	})
	t.Run("reRegisteredTokenIsSeededFresh", func(t *testing.T) {
		// The restarted pod: same unit, new token. Also the token that is
		// pruned (no worker for a round) and comes back.
		for _, gone := range []bool{false, true} {
			s := newSim(t, fmt.Sprintf(policy, 0))
			ids := s.running(1, 1)
			s.step(0)
			if gone {
				s.units[ids[0]].dead = true
				s.step(10 * time.Second)
				s.units[ids[0]].dead = false
			} else {
				s.step(10 * time.Second)
				s.units[ids[0]].token = "w-restarted"
			}
			s.step(10 * time.Second) // back at 20s
			if d := s.step(idleT - 20*time.Second); len(d.Drain) > 0 {
				t.Fatalf("gone=%v: drained on the old registration's idle clock: %s", gone, d.Reason)
			}
			if d := s.step(20 * time.Second); len(d.Drain) != 1 {
				t.Fatalf("gone=%v: not drained idle-timeout after re-registering: %s", gone, d.Reason)
			}
		}
	})
	t.Run("longestIdleCandidateWins", func(t *testing.T) {
		s := newSim(t, fmt.Sprintf(policy, 0))
		ids := s.running(2, 1)
		s.step(0)
		s.units[ids[0]].busy = 1
		s.step(50 * time.Second)
		s.units[ids[0]].busy = 0
		if d := s.step(idleT); !reflect.DeepEqual(d.Drain, []string{ids[1]}) {
			t.Fatalf("drained %v, want the longest idle %s", d.Drain, ids[1])
		}
	})
	t.Run("cooldownRateLimitsRemovals", func(t *testing.T) {
		// and onlyOneCandidatePerRound.
		s := newSim(t, fmt.Sprintf(policy, 0))
		s.running(3, 1)
		s.step(0)
		if d := s.step(idleT); len(d.Drain) != 1 {
			t.Fatalf("first: %s", d.Reason)
		}
		if d := s.step(cooldownT - time.Millisecond); len(d.Drain) != 0 {
			t.Fatalf("inside the cooldown: %s", d.Reason)
		}
		if d := s.step(time.Millisecond); len(d.Drain) != 1 {
			t.Fatalf("after the cooldown: %s", d.Reason)
		}
	})
	t.Run("floorBlocksRemoval", func(t *testing.T) {
		s := newSim(t, fmt.Sprintf(policy, 2))
		s.running(2, 1)
		s.step(0)
		if d := s.step(idleT); len(d.Drain) > 0 {
			t.Fatal(d.Reason)
		}
	})
	t.Run("floorCountsDrainingThreadsAsAlreadyGone", func(t *testing.T) {
		s := newSim(t, fmt.Sprintf(policy, 2))
		ids := s.running(3, 1)
		s.units[ids[0]].unit.Phase = sdk.PhaseDraining
		s.units[ids[0]].busy = 1
		s.step(0)
		if d := s.step(idleT); len(d.Drain) > 0 {
			t.Fatalf("drained below the floor while %s drains: %s", ids[0], d.Reason)
		}
	})
	t.Run("nextIdleCandidateIsPickedWhenLongestViolatesFloor", func(t *testing.T) {
		s := newSim(t, `{"min-parallelism":2,"max-parallelism":100,"executor-parallelism":1}`)
		big := s.running(1, 3)[0]
		s.step(0)
		small := s.running(1, 1)[0]
		s.step(50 * time.Second)
		if d := s.step(idleT); !reflect.DeepEqual(d.Drain, []string{small}) {
			t.Fatalf("drained %v, want %s (draining %s would break the floor)", d.Drain, small, big)
		}
	})
}

// TestParityPolicyChecks mirrors TestDynamicAllocationConfig: the checks of
// DynamicAllocationConfig.validate, each blaming the attribute at fault
// (the runner turns it into FILE:LINE:COL, see cmd/ebb TestValidatePolicyChecks).
func TestParityPolicyChecks(t *testing.T) {
	const base = `"max-parallelism":16`
	for _, c := range []struct {
		upstream, policy, attr, msg string
	}{
		{"enabledWithoutMaxParallelismIsRejected", `{}`, "max-parallelism", "is required"},
		{"maxParallelismBelowMinIsRejected", `{"min-parallelism":32,` + base + `}`, "min-parallelism", "above max-parallelism 16"},
		{"executorParallelismBelowOneIsRejected", `{"executor-parallelism":0,` + base + `}`, "executor-parallelism", "at least 1"},
		{"executorParallelismAboveMaxParallelismIsRejected", `{"executor-parallelism":32,` + base + `}`, "executor-parallelism", "not even one full unit"},
		{"executorParallelismMakingFloorUnreachableIsRejected", `{"min-parallelism":5,"max-parallelism":6,"executor-parallelism":4}`, "min-parallelism", "2 units of executor-parallelism 4 = 8 threads, above max-parallelism 6"},
		{"enabledWithNegativeMinParallelismIsRejected", `{"min-parallelism":-3,` + base + `}`, "min-parallelism", "negative"},
		{"executorIdleTimeoutBelowMinimumIsRejected", `{"executor-idle-timeout":"10s",` + base + `}`, "executor-idle-timeout", "at least 30s"},
		{"sustainedBacklogTimeoutAboveHalfIdleTimeoutIsRejected", `{"sustained-backlog-timeout":"200s","executor-idle-timeout":"300s",` + base + `}`, "sustained-backlog-timeout", "more than half"},
		{"unparsableDurationIsRejected", `{"scheduler-backlog-timeout":"not-a-duration",` + base + `}`, "scheduler-backlog-timeout", "invalid duration"},
		{"zeroDurationIsRejected", `{"scheduler-backlog-timeout":"0s",` + base + `}`, "scheduler-backlog-timeout", "positive"},
		{"zeroDurationIsRejected (every timeout and cooldown)", `{"scale-down-cooldown":"0 min","drain-timeout":"0s","scale-up-cooldown":"0s",` + base + `}`, "drain-timeout", "positive"},
		{"malformedExecutorParallelismIsRejectedAtParse", `{"executor-parallelism":"abc",` + base + `}`, "executor-parallelism", "number"},
	} {
		t.Run(c.upstream, func(t *testing.T) {
			_, problems := CheckPolicy(json.RawMessage(c.policy))
			var found bool
			for _, p := range problems {
				found = found || (p.Attribute == c.attr && strings.Contains(p.Message, c.msg))
			}
			if !found {
				t.Fatalf("problems %+v, want %s: ...%s...", problems, c.attr, c.msg)
			}
		})
	}
	for _, c := range []struct{ upstream, policy string }{
		{"reachableFloorInExecutorParallelismUnitsIsAccepted", `{"min-parallelism":5,"max-parallelism":8,"executor-parallelism":4}`},
		{"sustainedBacklogTimeoutAtHalfIdleTimeoutIsAccepted", `{"sustained-backlog-timeout":"150s","executor-idle-timeout":"300s",` + base + `}`},
		{"validConfigIsParsedCorrectly", `{"min-parallelism":4,"scheduler-backlog-timeout":"2min","executor-idle-timeout":"10min",` + base + `}`},
	} {
		t.Run(c.upstream, func(t *testing.T) {
			p, err := ParsePolicy(json.RawMessage(c.policy))
			if err != nil {
				t.Fatal(err)
			}
			if c.upstream == "validConfigIsParsedCorrectly" {
				want := Policy{MinParallelism: 4, MaxParallelism: 16, ExecutorParallelism: 1,
					SchedulerBacklogTimeout: sdk.Duration(2 * time.Minute), ExecutorIdleTimeout: sdk.Duration(10 * time.Minute),
					SustainedBacklogTimeout: sdk.Duration(30 * time.Second), ScaleDownCooldown: sdk.Duration(time.Minute),
					DrainTimeout: sdk.Duration(15 * time.Minute)}
				// ebb's own attributes, which Amoro does not have.
				p.ScaleUpCooldown, p.BootTimeout, p.AutoRestart = 0, 0, AutoRestart{}
				p.BacklogStep, p.ScaleDownStep, p.UnitSize, p.ColdBacklogTimeout = "", "", "", nil
				if !reflect.DeepEqual(p, want) {
					t.Errorf("got %+v\nwant %+v", p, want)
				}
			}
		})
	}
}

// TestParityImport: a group's properties, translated by FromAmoro, give the
// policy DynamicAllocationConfig.parse gives (minParallelismResolution*,
// Amoro's duration syntax, bare milliseconds), and the ebb-only keys are set
// to behave as AMS.
func TestParityImport(t *testing.T) {
	im, err := FromAmoro(map[string]string{
		"dynamic-allocation.enabled": "true", "min-parallelism": "6", "dynamic-allocation.max-parallelism": "24",
		"dynamic-allocation.executor-parallelism": "3", "dynamic-allocation.sustained-backlog-timeout": "40000",
		"dynamic-allocation.executor-idle-timeout": "2 minutes", "dynamic-allocation.drain-timeout": "1 h",
	})
	if err != nil {
		t.Fatal(err)
	}
	obj := map[string]json.RawMessage{}
	for _, l := range im.Lines {
		k, v, _ := strings.Cut(l, " = ")
		obj[k] = json.RawMessage(v)
	}
	raw, _ := json.Marshal(obj)
	p, err := ParsePolicy(raw)
	if err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	want := DefaultPolicy()
	want.MinParallelism, want.MaxParallelism, want.ExecutorParallelism = 6, 24, 3
	want.SustainedBacklogTimeout, want.ScaleUpCooldown = sdk.Duration(40*time.Second), sdk.Duration(40*time.Second)
	want.ExecutorIdleTimeout, want.DrainTimeout = sdk.Duration(2*time.Minute), sdk.Duration(time.Hour)
	if !reflect.DeepEqual(p, want) {
		t.Errorf("imported %+v\nwant %+v", p, want)
	}
	wantContains(t, strings.Join(im.Notes, "\n"), "deprecated flat min-parallelism")
	if _, err := FromAmoro(map[string]string{"dynamic-allocation.max-parallelism": "lots"}); err == nil ||
		!strings.Contains(err.Error(), "dynamic-allocation.max-parallelism") {
		t.Errorf("malformed value: %v", err)
	}
}

// TestParityScaleKeeper mirrors TestOptimizerScaleKeeper's rounds.
func TestParityScaleKeeper(t *testing.T) {
	t.Run("testDraFloorSatisfiedInExecutorParallelismUnits", func(t *testing.T) {
		s := newSim(t, amoroPolicy(5, 16, 4))
		if d := s.step(0); !reflect.DeepEqual(sizesOf(d), []int64{4, 4}) {
			t.Fatalf("added %v, want 2 units of 4: %s", sizesOf(d), d.Reason)
		}
	})
	t.Run("testBootWindowPreventsDuplicateScaleOuts", func(t *testing.T) {
		s := newSim(t, amoroPolicy(4, 16, 2))
		s.bootRounds = 5
		first := addIDs(s.step(0))
		for i := 0; i < 4; i++ {
			if d := s.step(sustainedT); len(d.Add) > 0 {
				t.Fatalf("round %d: added %v while %v boot: %s", i, addIDs(d), first, d.Reason)
			}
		}
	})
	t.Run("testFailedScaleOutIsRetriedNextRound", func(t *testing.T) {
		s := newSim(t, amoroPolicy(2, 16, 2))
		s.failAdds = true
		first := addIDs(s.step(0))
		s.failAdds = false
		if again := addIDs(s.step(sustainedT)); !reflect.DeepEqual(again, first) {
			t.Fatalf("retried %v, want the same ids %v", again, first)
		}
	})
	t.Run("testScaleUpRoundIncrementsCounterAndGaugesReadState", func(t *testing.T) {
		// and testPendingRemovalGaugeCountsDrainingInstances.
		s := newSim(t, amoroPolicy(0, 100, 2))
		ids := s.running(3, 2)
		s.units[ids[0]].unit.Phase = sdk.PhaseDraining
		s.units[ids[0]].busy = 1
		s.bootRounds = 3
		s.busyAll(10, 0)
		s.step(0)
		s.busyAll(10, 0)
		d := s.step(backlogT)
		m := d.Metrics
		if unitsAdded(d) != 1 || m[MetricRegisteredThreads] != 4 || m[MetricDrainingThreads] != 2 || m[MetricBootingThreads] != 0 ||
			m[MetricEffectiveThreads] != 4 || m[MetricDesiredThreads] != 6 || m[MetricBacklogSeconds] != 60 || m[MetricRampStep] != 2 {
			t.Fatalf("metrics %v after %s", m, d.Summary())
		}
		if m := s.step(time.Second).Metrics; m[MetricBootingThreads] != 2 || m[MetricEffectiveThreads] != 6 {
			t.Fatalf("booting unit not in the metrics: %v", m)
		}
	})
}

// TestParityDrainAccounting: scaleIfNeeded's busy excludes draining
// instances' tasks; ebb's used to count them as unmet demand and add a unit
// while another drained.
func TestParityDrainAccounting(t *testing.T) {
	s := newSim(t, amoroPolicy(0, 100, 4))
	ids := s.running(2, 4)
	s.units[ids[0]].unit.Phase = sdk.PhaseDraining
	s.units[ids[0]].busy = 4
	s.demand = sdk.Demand{RunningTasks: 4 + 2}
	for i := 0; i < 4; i++ {
		if d := s.step(backlogT); unitsAdded(d) > 0 {
			t.Fatalf("added a unit for %s's work: %s", ids[0], d.Reason)
		}
	}
}

// The deliberate differences the README's table lists, one case each.
func TestParityDifferences(t *testing.T) {
	t.Run("queued tasks block scale-down", func(t *testing.T) {
		// Amoro: busy 0 + serviceable 6 <= effective 8 is no demand, so an
		// idle unit goes, leaving 4 threads for 6 queued tasks. ebb keeps
		// the threads the queue needs.
		s := newSim(t, amoroPolicy(0, 100, 4))
		s.running(2, 4)
		s.step(0)
		s.demand = demandOf(0, 6, 0)
		d := s.step(idleT + time.Minute)
		if len(d.Drain) > 0 {
			t.Fatalf("drained with 6 tasks queued: %s", d.Reason)
		}
		wantContains(t, d.Reason, "would leave fewer than 6 threads")
	})
	t.Run("ramp doubles when the full step was granted", func(t *testing.T) {
		// Spark's addExecutors rule. Round 2 wants exactly the ramp (2):
		// Amoro doubles only while want > ramp, so it resets and adds 1 in
		// round 3; ebb granted the full step, doubles and adds 4.
		s := newSim(t, amoroPolicy(0, 1000, 1))
		s.running(1, 1)
		s.busyAll(1, 0)
		s.step(0)
		var got []int
		for _, r := range []struct {
			dt          time.Duration
			serviceable int64
		}{{backlogT, 5}, {sustainedT, 2}, {sustainedT, 50}} {
			s.busyAll(r.serviceable, 0)
			got = append(got, unitsAdded(s.step(r.dt)))
		}
		// Amoro: 1 (ramp 2), 2 (want 2 = ramp: reset to 1), 1.
		if want := []int{1, 2, 4}; !reflect.DeepEqual(got, want) {
			t.Errorf("added %v, want %v", got, want)
		}
	})
	t.Run("drain then remove across two rounds", func(t *testing.T) {
		// Amoro removes an idle victim in the round it starts draining it;
		// ebb drains (the realizer stops its work) and removes next round.
		s := newSim(t, amoroPolicy(0, 100, 1))
		ids := s.running(1, 1)
		s.step(0)
		d := s.step(idleT)
		if !reflect.DeepEqual(d.Drain, ids) || len(d.Remove) > 0 {
			t.Fatalf("round 1: %s", d.Summary())
		}
		if d = s.step(time.Second); !reflect.DeepEqual(removeIDs(d), ids) {
			t.Fatalf("round 2: %s", d.Summary())
		}
	})
	t.Run("boot window makes an auto-restart candidate", func(t *testing.T) {
		// Amoro forgets a pending registration after 3 min and requests a
		// new optimizer next round; ebb keeps the unit, counts it as
		// capacity and restarts it with the same id after the grace period.
		s := newSim(t, `{"min-parallelism":2,"max-parallelism":8,"executor-parallelism":2,"auto-restart":{"enabled":true,"grace-period":"1m"}}`)
		s.bootRounds = -1
		first := addIDs(s.step(0))
		var restarted bool
		for i := 0; i < 8; i++ {
			d := s.step(time.Minute)
			for _, a := range d.Add {
				if a.UnitID != first[0] {
					t.Fatalf("a second unit %s instead of restarting %s: %s", a.UnitID, first[0], d.Reason)
				}
			}
			restarted = restarted || reflect.DeepEqual(d.Restart, first)
		}
		if !restarted {
			t.Fatalf("%s never restarted: %s", first[0], s.log[len(s.log)-1].Reason)
		}
	})
	t.Run("a lowered ceiling is enforced by draining", func(t *testing.T) {
		// Amoro only stops adding above max-parallelism; see TestCeiling
		// ("lowered") for the order ebb drains in.
		s := newSim(t, amoroPolicy(0, 4, 2))
		s.running(4, 2)
		if d := s.step(0); len(d.Drain) != 2 {
			t.Fatalf("drained %v: %s", d.Drain, d.Reason)
		}
	})
}

// Issue 11: AMS listing an optimizer twice, or one optimizer claiming 2^40
// cores, looked like a complete snapshot "24 threads above max-parallelism
// 12" and drained two of three live units. The inventory's sizes count;
// the contradiction makes the snapshot degraded: no drain, scale-up stays
// possible, and the reason says why.
func TestContradictoryClaimsAreDegraded(t *testing.T) {
	for _, c := range []struct {
		name  string
		claim func(s *sim, ids []string)
		why   string
	}{
		{"an optimizer listed twice", func(s *sim, ids []string) {
			s.external = []sdk.Worker{{ID: "w-" + ids[0], UnitID: ids[0], Threads: 4, BusyKnown: true, State: sdk.WorkerRegistered}}
		}, "worker w-" + "pre-a is listed twice"},
		{"a unit's worker claims 2^40 threads", func(s *sim, ids []string) {
			s.external = []sdk.Worker{{ID: "w-huge", UnitID: ids[1], Threads: 1 << 40, BusyKnown: true, State: sdk.WorkerRegistered}}
		}, "unit pre-b has 4 threads but its 2 workers claim 1099511627780"},
		{"a unit lists more workers than it has threads", func(s *sim, ids []string) {
			for i := 0; i < 4; i++ {
				s.external = append(s.external, sdk.Worker{ID: fmt.Sprint("w-extra-", i), UnitID: ids[2], Threads: 0, BusyKnown: true, State: sdk.WorkerRegistered})
			}
		}, "unit pre-c of 4 threads lists 5 workers"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newSim(t, amoroPolicy(0, 12, 4))
			ids := s.running(3, 4)
			c.claim(s, ids)
			d := s.step(0)
			if len(d.Drain)+len(d.Remove) > 0 {
				t.Fatalf("scaled down on nonsense: %s (%s)", d.Summary(), d.Reason)
			}
			wantContains(t, d.Reason, "snapshot contradicts the inventory ("+c.why, "capacity 12 threads (12 registered")
			// Scale-up is still allowed: a backlog adds within the ceiling.
			s2 := newSim(t, amoroPolicy(0, 16, 4))
			ids2 := s2.running(3, 4)
			c.claim(s2, ids2)
			s2.demand = demandOf(12, 10, 0)
			s2.step(0)
			if d := s2.step(backlogT); unitsAdded(d) != 1 {
				t.Fatalf("no scale-up on a contradictory snapshot: %s", d.Reason)
			}
		})
	}
}

// Issue 10: the realizer reports a unit running whose optimizer never
// registers (its group does not exist in AMS, so it retries for ever). The
// reason says so once the boot window is over.
func TestNeverRegisteredUnitSaysWhy(t *testing.T) {
	s := newSim(t, `{"min-parallelism":2,"max-parallelism":8,"executor-parallelism":2,"boot-timeout":"3m"}`)
	s.bootRounds = -1
	id := addIDs(s.step(0))[0]
	s.step(time.Second)
	s.units[id].unit.Phase = sdk.PhaseRunning // the process runs
	if d := s.step(time.Minute); strings.Contains(d.Reason, "no registered optimizer") {
		t.Fatalf("inside the boot window: %s", d.Reason)
	}
	d := s.step(2 * time.Minute)
	wantContains(t, d.Reason, id+" has no registered optimizer after the boot window (boot-timeout 3m) although the platform runs it (phase running)",
		"no such optimizer group in AMS")
}

// FuzzFromAmoro: whatever a group's properties hold, the import answers with
// an error or with lines that parse as a policy (valid or with problems
// named), never a panic.
func FuzzFromAmoro(f *testing.F) {
	f.Add("true", "4", "32", "4", "2min", "20 s", "10 minutes", "90000", "15min")
	f.Add("false", "-1", "lots", "0", "0s", "", "5m", "9223372036854775807 days", "1.5h")
	f.Fuzz(func(t *testing.T, enabled, minP, maxP, k, backlog, sustained, idle, cooldown, drain string) {
		props := map[string]string{"dynamic-allocation.enabled": enabled, "dynamic-allocation.min-parallelism": minP,
			"dynamic-allocation.max-parallelism": maxP, "dynamic-allocation.executor-parallelism": k,
			"dynamic-allocation.scheduler-backlog-timeout": backlog, "dynamic-allocation.sustained-backlog-timeout": sustained,
			"dynamic-allocation.executor-idle-timeout": idle, "dynamic-allocation.scale-down-cooldown": cooldown,
			"dynamic-allocation.drain-timeout": drain}
		im, err := FromAmoro(props)
		if err != nil {
			return
		}
		obj := map[string]json.RawMessage{}
		for _, l := range im.Lines {
			key, v, ok := strings.Cut(l, " = ")
			if !ok || !json.Valid([]byte(v)) {
				t.Fatalf("line %q is not key = JSON value", l)
			}
			obj[key] = json.RawMessage(v)
		}
		raw, _ := json.Marshal(obj)
		if _, problems := CheckPolicy(raw); len(problems) > 0 {
			for _, p := range problems {
				if p.Attribute == "" {
					t.Fatalf("a problem without an attribute: %+v", p)
				}
			}
		}
	})
}
