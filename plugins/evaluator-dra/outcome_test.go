package dra

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ebbscale/ebb/sdk"
)

// chainSim plays a chain around evaluator-dra: after each decision a later
// evaluator, the runner's staleness rule or the realizer may veto, cut,
// change, suppress or fail it, and the runner hands dra the Outcome on its
// next round, as core/runner does (through sdk.Round). Realized adds show
// up in the inventory after a lag, as a realizer's listing lags.
type chainSim struct {
	t       *testing.T
	r       *rand.Rand
	policy  string
	now     time.Time
	state   []byte
	outcome *sdk.Outcome
	// tell is false to play a runner that keeps no outcomes (the bug).
	tell  bool
	units map[string]*chainUnit
	// coming are realized adds the inventory does not list yet.
	coming map[string]*chainUnit
	// issued are the ids a realizer was ever asked to add.
	issued map[string]bool
	demand int64
}

type chainUnit struct {
	size     int64
	draining bool
	busy     int64
	lag      int
}

const chainPrefix = "g"

func newChainSim(t *testing.T, seed uint64, tell bool) *chainSim {
	return &chainSim{t: t, r: rand.New(rand.NewPCG(seed, seed+1)), tell: tell, now: t0,
		policy: `{"max-parallelism":24,"executor-parallelism":2,"scheduler-backlog-timeout":"1ns","sustained-backlog-timeout":"1ns",
			"scale-up-cooldown":"1ns","scale-down-cooldown":"1ns","executor-idle-timeout":"30s","drain-timeout":"1m","boot-timeout":"10m"}`,
		units: map[string]*chainUnit{}, coming: map[string]*chainUnit{}, issued: map[string]bool{}}
}

func (c *chainSim) request() sdk.EvaluateRequest {
	req := sdk.EvaluateRequest{Target: sdk.Target{Chain: "c", Name: chainPrefix}, Policy: []byte(c.policy), Now: c.now,
		State: c.state, Snapshot: sdk.Snapshot{ObservedAt: c.now, Complete: true, Demand: sdk.Demand{PlannedTasks: c.demand}}}
	if c.tell {
		req.Outcome = c.outcome
	}
	for _, id := range sortedKeys(c.units) {
		u := c.units[id]
		phase, ws := sdk.PhaseRunning, sdk.WorkerRegistered
		if u.draining {
			phase, ws = sdk.PhaseDraining, sdk.WorkerDraining
		}
		req.Inventory = append(req.Inventory, sdk.Unit{ID: id, Size: u.size, Phase: phase, CreatedAt: t0})
		req.Snapshot.Workers = append(req.Snapshot.Workers, sdk.Worker{ID: "w-" + id, UnitID: id, Threads: u.size,
			BusyThreads: u.busy, BusyKnown: true, State: ws, RegisteredAt: t0})
	}
	return req
}

// wantCapacity is what the inventory shows plus what dra really asked for
// and has not seen yet.
func (c *chainSim) wantCapacity() int64 {
	var n int64
	for _, u := range c.units {
		if !u.draining {
			n += u.size
		}
	}
	for _, u := range c.coming {
		n += u.size
	}
	return n
}

func seqOf(id string) int {
	n, _ := strconv.Atoi(strings.TrimPrefix(id, chainPrefix+"-"))
	return n
}

// step runs one round and checks the invariants; it returns the first
// broken one.
func (c *chainSim) step(round int) string {
	req := c.request()
	resp, err := Evaluate(Config{}, req)
	if err != nil {
		c.t.Fatalf("round %d: %v", round, err)
	}
	c.state = resp.State
	d := resp.Decision
	if got, want := int64(d.Metrics[MetricEffectiveThreads]), c.wantCapacity(); got != want {
		return fmt.Sprintf("capacity %d, but the inventory shows and dra really asked for %d (%s)", got, want, d.Reason)
	}
	// Unit ids: a new one is the next after every id ever issued.
	next := 1
	for id := range c.issued {
		next = max(next, seqOf(id)+1)
	}
	for _, a := range d.Add {
		if c.issued[a.UnitID] {
			continue
		}
		if seqOf(a.UnitID) != next {
			return fmt.Sprintf("new unit %s while %s-%d was never created: an id burned", a.UnitID, chainPrefix, next)
		}
		next++
	}
	for _, rm := range d.Remove {
		if u := c.units[rm.UnitID]; u == nil || !u.draining {
			return fmt.Sprintf("remove %s (force %v) of a unit that was never drained", rm.UnitID, rm.Force)
		}
	}

	// The rest of the chain.
	final := d.Copy()
	var by sdk.Decision
	rd := sdk.Round{At: c.now}
	switch c.r.IntN(7) {
	case 0: // a guard vetoes
		by = sdk.Decision{Vetoed: true, Reason: "freeze"}
		final = by
	case 1: // a capper keeps some adds, and resizes one
		by = d.Copy()
		by.Add = by.Add[:c.r.IntN(len(by.Add)+1)]
		if len(by.Add) > 0 && c.r.IntN(2) == 0 {
			by.Add[0].Size = 1
		}
		by.Reason = "cap"
		final = by.Copy()
	case 2: // a guard refuses scale-down
		by = d.Copy()
		by.Drain, by.Remove = nil, nil
		by.Reason = "business hours"
		final = by.Copy()
	default:
		by = d.Copy()
	}
	rd.Steps = []sdk.Step{{Evaluator: "dra", Decision: d}, {Evaluator: "editor", Decision: by}}
	if c.r.IntN(6) == 0 && len(final.Drain)+len(final.Remove) > 0 { // the snapshot went stale
		final.Drain, final.Remove = nil, nil
		rd.Rule, rd.RuleWhy = "staleness", "snapshot stale"
	}
	rd.Final = final
	rd.Called = !final.Vetoed && len(final.Add)+len(final.Drain)+len(final.Remove)+len(final.Restart) > 0
	if rd.Called && c.r.IntN(3) == 0 {
		rd.RealizerError = "realizer down"
	}
	o := rd.Outcome(0)
	c.outcome = &o

	// The realizer carries Final out, unless it failed.
	if rd.Called && rd.RealizerError == "" {
		for _, a := range final.Add {
			c.issued[a.UnitID] = true
			if c.units[a.UnitID] == nil && c.coming[a.UnitID] == nil {
				c.coming[a.UnitID] = &chainUnit{size: a.Size, lag: c.r.IntN(3)}
			}
		}
		for _, id := range final.Drain {
			if u := c.units[id]; u != nil {
				u.draining = true
			}
		}
		for _, rm := range final.Remove {
			delete(c.units, rm.UnitID)
		}
	}
	// The world moves on: listings catch up, work comes and goes.
	for _, id := range sortedKeys(c.coming) {
		if u := c.coming[id]; u.lag <= 0 {
			c.units[id] = u
			delete(c.coming, id)
		} else {
			u.lag--
		}
	}
	if c.r.IntN(4) == 0 {
		c.demand = c.r.Int64N(3) * c.r.Int64N(12)
	}
	for _, id := range sortedKeys(c.units) {
		u := c.units[id]
		u.busy = 0
		if c.demand > 0 || u.draining && c.r.IntN(2) == 0 {
			u.busy = c.r.Int64N(u.size + 1)
		}
	}
	c.now = c.now.Add(15 * time.Second)
	return ""
}

// For any sequence of veto, adjust, suppress and fail outcomes, dra's
// capacity is what the inventory shows plus what it really asked for and
// has not yet seen; it burns no id, and removes only units really drained.
func TestOutcomePropertyCapacityIsReal(t *testing.T) {
	for seed := uint64(1); seed <= 60; seed++ {
		c := newChainSim(t, seed, true)
		for round := 0; round < 120; round++ {
			if broken := c.step(round); broken != "" {
				t.Fatalf("seed %d round %d: %s", seed, round, broken)
			}
		}
	}
}

// Without the outcome (the runner before issue 13) the same chains break
// those rules: the property test above would have caught the bug.
func TestOutcomeWithheldBreaksTheRules(t *testing.T) {
	broken := 0
	for seed := uint64(1); seed <= 20; seed++ {
		c := newChainSim(t, seed, false)
		for round := 0; round < 120; round++ {
			if c.step(round) != "" {
				broken++
				break
			}
		}
	}
	if broken == 0 {
		t.Fatal("no chain broke without outcomes: the property test cannot fail")
	}
}

// A step a later evaluator took out did not happen: the next round may
// propose it again without waiting out the cooldown, and a ramp that the
// dropped step doubled starts where it was.
func TestDroppedStepHoldsNothingBack(t *testing.T) {
	s := newSim(t, `{"max-parallelism":64,"executor-parallelism":4,"scheduler-backlog-timeout":"1s","sustained-backlog-timeout":"1s",
		"scale-up-cooldown":"1m","scale-down-cooldown":"5m","executor-idle-timeout":"30s"}`)
	s.bootRounds = 1
	var outcome *sdk.Outcome
	// round runs one evaluation; drop says whether a later evaluator takes
	// out all of its actions, as a capper or a guard would.
	round := func(drop bool) sdk.Decision {
		t.Helper()
		s.now = s.now.Add(10 * time.Second)
		for _, u := range s.units {
			u.rounds++
			if !u.registered && u.rounds > s.bootRounds {
				u.registered, u.unit.Phase = true, sdk.PhaseRunning
			}
		}
		req := s.request()
		req.Outcome = outcome
		resp, err := Evaluate(Config{}, req)
		if err != nil {
			t.Fatal(err)
		}
		s.state = resp.State
		d := resp.Decision
		outcome = &sdk.Outcome{DecidedAt: s.now, Final: d}
		for _, a := range d.Actions() {
			a.Result = sdk.ResultDone
			if drop {
				a.Result, a.By = sdk.ResultDropped, "cap"
			}
			outcome.Actions = append(outcome.Actions, a)
		}
		if drop {
			outcome.Final = sdk.Decision{}
		} else {
			s.apply(d)
		}
		return d
	}
	s.demand = sdk.Demand{PlannedTasks: 40}
	round(false) // the backlog starts
	for i := range 3 {
		if d := round(true); len(d.Add) != 1 {
			t.Fatalf("dropped round %d: %d new units, want the one-unit step again (%s)", i, len(d.Add), d.Reason)
		}
	}
	if d := round(false); len(d.Add) != 1 {
		t.Errorf("first step let through: %d units, want 1: three dropped steps must not have doubled the ramp (%s)", len(d.Add), d.Reason)
	}

	s.demand = sdk.Demand{}
	drained := false
	for range 10 { // the unit registers, idles past the idle timeout, and its drain is vetoed
		if d := round(true); len(d.Drain) > 0 {
			drained = true
			break
		}
	}
	if !drained {
		t.Fatal("the idle unit was never drained")
	}
	if d := round(true); len(d.Drain) != 1 {
		t.Errorf("a vetoed drain is proposed again the next round, not after scale-down-cooldown: %s", d.Reason)
	}
}
