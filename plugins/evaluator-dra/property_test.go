package dra

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sort"
	"testing"
	"time"

	"github.com/ebbscale/ebb/sdk"
)

// randomPolicy draws a consistent policy with short timers, so that random
// walks reach every branch within a few dozen rounds.
func randomPolicy(r *rand.Rand) string {
	k := 1 + r.Int64N(4)
	// Not always a multiple of k, so "fewer than k threads remain" happens.
	maxP := k*(1+r.Int64N(8)) + r.Int64N(k)
	minP := min(r.Int64N(3*k), maxP/k*k)
	dur := func(choices ...string) string { return choices[r.IntN(len(choices))] }
	return fmt.Sprintf(`{"min-parallelism":%d,"max-parallelism":%d,"executor-parallelism":%d,"executor-idle-timeout":%q,
		"scheduler-backlog-timeout":%q,"sustained-backlog-timeout":%q,"scale-up-cooldown":%q,"scale-down-cooldown":%q,
		"drain-timeout":%q,"boot-timeout":%q,"auto-restart":{"enabled":%v,"max-retries":%d,"grace-period":%q}}`,
		minP, maxP, k, dur("30s", "1m"), dur("1ns", "5s", "30s"), dur("1ns", "5s", "15s"), dur("1ns", "15s"),
		dur("1ns", "20s"), dur("30s", "2m"), dur("20s", "1m"), r.IntN(2) == 0, r.IntN(3), dur("10s", "1m"))
}

// randomWalk runs a simulation whose environment changes at random between
// rounds: demand, load, crashes, lagging realizers, stale and partial
// snapshots, units drained behind the evaluator's back, clocks that jump.
// sim.step checks the invariants, purity and the state round trip each round.
func randomWalk(t *testing.T, seed uint64, steps int) {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	s := newSim(t, randomPolicy(r))
	s.bootRounds = r.IntN(4) - 1
	for i := 0; i < r.IntN(4); i++ {
		s.running(1, 1+r.Int64N(4))
	}
	if r.IntN(4) == 0 {
		s.external = []sdk.Worker{{ID: "ext", Threads: 2, BusyThreads: r.Int64N(3), BusyKnown: true, State: sdk.WorkerRegistered}}
	}
	for i := 0; i < steps; i++ {
		if r.IntN(3) == 0 {
			s.demand = sdk.Demand{PlannedTasks: r.Int64N(30), RunningTasks: r.Int64N(10), ScheduledTasks: r.Int64N(3), PendingTables: r.Int64N(3) * r.Int64N(2)}
			if r.IntN(2) == 0 { // a quota-aware collector
				s.demand.ServiceableKnown = true
				s.demand.ServiceablePlannedTasks = r.Int64N(s.demand.PlannedTasks + 1)
			}
		}
		s.autoBusy = r.IntN(2) == 0
		s.degraded = r.IntN(6) == 0
		s.incomplete = r.IntN(8) == 0
		s.failAdds = r.IntN(5) == 0
		ids := make([]string, 0, len(s.units))
		for id := range s.units {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			u := s.units[id]
			switch r.IntN(25) {
			case 0:
				u.dead = true
			case 1:
				u.neverBoots = true
			case 2:
				u.busyUnknown = !u.busyUnknown
			case 3:
				u.stale = !u.stale
			case 4:
				u.unit.Phase = sdk.PhaseDraining // drained by someone else
			case 5:
				u.unit.Size = 0 // a realizer that does not report sizes
			}
			if !s.autoBusy && u.registered {
				u.busy = r.Int64N(u.unit.Size + 1)
			}
		}
		dt := []time.Duration{0, time.Second, 5 * time.Second, 30 * time.Second, 2 * time.Minute}[r.IntN(5)]
		s.step(dt)
	}
}

// TestProperties checks, over many random walks: never above max, never
// drains below min, never drains a busy unit unless above the ceiling or
// past the drain timeout, never adds while booting capacity covers the
// shortfall, state round-trips through bytes, same inputs same decision.
func TestProperties(t *testing.T) {
	seeds := 150
	if testing.Short() {
		seeds = 30
	}
	for seed := 0; seed < seeds; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { randomWalk(t, uint64(seed), 40) })
	}
}

func FuzzEvaluate(f *testing.F) {
	for _, seed := range []uint64{1, 2, 3, 42, 1 << 40} {
		f.Add(seed, uint8(30))
	}
	f.Fuzz(func(t *testing.T, seed uint64, steps uint8) {
		randomWalk(t, seed, int(steps%64))
	})
}

// FuzzEvaluateRaw feeds arbitrary policy and state bytes: the evaluator must
// answer with an error or a coherent decision, never panic, and be pure.
func FuzzEvaluateRaw(f *testing.F) {
	f.Add([]byte(`{"min-parallelism":2,"max-parallelism":8}`), []byte(nil), int64(5))
	f.Add([]byte(`{"max-parallelism":8}`), []byte(`{"version":1,"next-seq":3,"ramp":2,"units":{"u-1":{"size":2,"requested-at":"2026-03-01T11:59:00Z"}}}`), int64(40))
	f.Add([]byte(`{"max-parallelism":8,"auto-restart":{"enabled":true}}`), []byte(`{"version":1,"units":{"u-1":{"seen-at":"2026-03-01T11:00:00Z","registered":true,"drain-since":"2026-03-01T11:50:00Z"}}}`), int64(0))
	f.Fuzz(func(t *testing.T, policy, state []byte, tasks int64) {
		req := sdk.EvaluateRequest{
			Target: sdk.Target{Chain: "c", Name: "g"}, Policy: policy, State: state, Now: t0,
			Snapshot: sdk.Snapshot{Complete: true, Demand: sdk.Demand{PlannedTasks: tasks},
				Workers: []sdk.Worker{{ID: "w1", UnitID: "u-1", Threads: 2, BusyKnown: true, State: sdk.WorkerRegistered}}},
			Inventory: []sdk.Unit{{ID: "u-1", Size: 2, Phase: sdk.PhaseRunning, CreatedAt: t0.Add(-time.Hour)}},
		}
		a, errA := Evaluate(Config{}, req)
		b, errB := Evaluate(Config{}, req)
		if (errA == nil) != (errB == nil) || !reflect.DeepEqual(a, b) {
			t.Fatalf("not pure: %v / %v", errA, errB)
		}
		if errA != nil {
			return
		}
		checkInvariants(t, req, a)
	})
}

// TestStateRoundTrip: a state decoded from bytes this package wrote encodes
// back to the same bytes, and equal states encode identically whatever the
// order units were inserted in.
func TestStateRoundTrip(t *testing.T) {
	s := newSim(t, `{"min-parallelism":6,"executor-parallelism":2,"auto-restart":{"enabled":true}}`)
	s.bootRounds = 1
	s.demand = sdk.Demand{PlannedTasks: 20}
	for i := 0; i < 6; i++ {
		s.step(20 * time.Second)
	}
	st := s.decodeState()
	if len(st.Units) < 3 {
		t.Fatalf("want a state with several units, got %s", s.state)
	}
	b, err := st.Encode()
	if err != nil || !bytes.Equal(b, s.state) {
		t.Fatalf("re-encoded state differs:\n%s\n%s", s.state, b)
	}
	// Rebuild the same state by inserting units in reverse order.
	var ids []string
	for id := range st.Units {
		ids = append(ids, id)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(ids)))
	rebuilt := *st
	rebuilt.Units = map[string]*UnitState{}
	for _, id := range ids {
		u := *st.Units[id]
		rebuilt.Units[id] = &u
	}
	b2, err := rebuilt.Encode()
	if err != nil || !bytes.Equal(b2, b) {
		t.Fatalf("insertion order changed the encoding")
	}
	if !bytes.HasPrefix(b, append(stateMagic[:], StateVersion)) {
		t.Fatalf("state does not start with the binary state's magic and version %d: %q", StateVersion, b[:min(len(b), 8)])
	}
}
