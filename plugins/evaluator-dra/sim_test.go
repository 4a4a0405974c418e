package dra

import (
	"bytes"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ebbscale/ebb/sdk"
)

// sim plays the runner, the realizer and the engine around the evaluator on
// a virtual clock: each step evaluates, applies the decision to an inventory
// the way a realizer would, and lets requested units register after
// bootRounds rounds.
type sim struct {
	t      *testing.T
	policy string
	target sdk.Target
	now    time.Time
	state  []byte
	units  map[string]*simUnit
	// external are workers of no unit (optimizers started by hand).
	external []sdk.Worker
	// bootRounds is how many evaluations a new unit takes to register; a
	// negative value means it never registers.
	bootRounds int
	demand     sdk.Demand
	degraded   bool
	incomplete bool
	// failAdds makes the realizer drop Add actions (an API outage).
	failAdds bool
	// autoBusy spreads the running tasks over registered units each round.
	autoBusy bool
	log      []sdk.Decision
	// lastReq is the request of the latest step.
	lastReq sdk.EvaluateRequest
}

type simUnit struct {
	unit       sdk.Unit
	rounds     int
	registered bool
	// dead: the worker is gone (crash) until the unit is restarted.
	dead bool
	// neverBoots: this unit's worker never registers, even after a restart.
	neverBoots  bool
	busy        int64
	busyUnknown bool
	stale       bool
	// token is the worker's id (Amoro's optimizer token); empty means "w-<id>".
	token string
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// newSim runs policy; one that names no max-parallelism (required) gets a
// ceiling high enough not to matter, so tests of other rules stay short.
func newSim(t *testing.T, policy string) *sim {
	policy = withCeiling(policy)
	return &sim{t: t, policy: policy, target: sdk.Target{Chain: "amoro", Name: "Group_A"}, now: t0, units: map[string]*simUnit{}}
}

// running adds n registered units of size threads, created long ago.
func (s *sim) running(n int, size int64) []string {
	var ids []string
	for i := 0; i < n; i++ {
		id := "pre-" + string(rune('a'+len(s.units)))
		s.units[id] = &simUnit{unit: sdk.Unit{ID: id, Size: size, Phase: sdk.PhaseRunning, CreatedAt: s.now.Add(-time.Hour)}, registered: true}
		ids = append(ids, id)
	}
	return ids
}

func (s *sim) request() sdk.EvaluateRequest {
	req := sdk.EvaluateRequest{
		Target:           s.target,
		Policy:           []byte(s.policy),
		State:            s.state,
		Now:              s.now,
		SnapshotDegraded: s.degraded,
		Snapshot: sdk.Snapshot{
			ObservedAt: s.now,
			Complete:   !s.incomplete,
			Demand:     s.demand,
		},
	}
	if s.incomplete {
		req.Snapshot.IncompleteReasons = []string{"optimizers endpoint timed out"}
	}
	ids := make([]string, 0, len(s.units))
	for id := range s.units {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	if s.autoBusy {
		left := s.demand.RunningTasks + s.demand.ScheduledTasks
		for _, id := range ids {
			u := s.units[id]
			u.busy = 0
			if u.registered && !u.dead && u.unit.Phase != sdk.PhaseDraining {
				u.busy = min(left, u.unit.Size)
				left -= u.busy
			}
		}
	}
	for _, id := range ids {
		u := s.units[id]
		req.Inventory = append(req.Inventory, u.unit)
		if !u.registered || u.dead {
			continue
		}
		token := u.token
		if token == "" {
			token = "w-" + id
		}
		w := sdk.Worker{ID: token, UnitID: id, Threads: u.unit.Size, BusyThreads: u.busy, BusyKnown: !u.busyUnknown, State: sdk.WorkerRegistered}
		if u.unit.Phase == sdk.PhaseDraining {
			w.State = sdk.WorkerDraining
		}
		if u.stale {
			w.State = sdk.WorkerStale
		}
		req.Snapshot.Workers = append(req.Snapshot.Workers, w)
	}
	req.Snapshot.Workers = append(req.Snapshot.Workers, s.external...)
	return req
}

// step advances the clock by d, evaluates and applies the decision.
func (s *sim) step(d time.Duration) sdk.Decision {
	s.t.Helper()
	s.now = s.now.Add(d)
	for _, u := range s.units {
		u.rounds++
		if !u.registered && !u.dead && !u.neverBoots && s.bootRounds >= 0 && u.rounds > s.bootRounds {
			u.registered = true
			if u.unit.Phase != sdk.PhaseDraining {
				u.unit.Phase = sdk.PhaseRunning
			}
		}
	}
	req := s.request()
	s.lastReq = req
	resp, err := Evaluate(Config{}, req)
	if err != nil {
		s.t.Fatalf("at %s: Evaluate: %v", s.now.Sub(t0), err)
	}
	again, err := Evaluate(Config{}, req)
	if err != nil || !bytes.Equal(again.State, resp.State) || !reflect.DeepEqual(again.Decision, resp.Decision) {
		s.t.Fatalf("at %s: the same request gave a different response (err %v)", s.now.Sub(t0), err)
	}
	checkInvariants(s.t, req, resp)
	s.state = resp.State
	s.apply(resp.Decision)
	s.log = append(s.log, resp.Decision)
	return resp.Decision
}

func (s *sim) apply(d sdk.Decision) {
	for _, a := range d.Add {
		if s.failAdds {
			continue
		}
		if _, ok := s.units[a.UnitID]; ok {
			continue
		}
		s.units[a.UnitID] = &simUnit{unit: sdk.Unit{ID: a.UnitID, Size: a.Size, Phase: sdk.PhaseRequested, CreatedAt: s.now}}
	}
	for _, id := range d.Drain {
		if u, ok := s.units[id]; ok {
			u.unit.Phase = sdk.PhaseDraining
			u.unit.DrainStartedAt = s.now
		}
	}
	for _, r := range d.Remove {
		delete(s.units, r.UnitID)
	}
	for _, id := range d.Restart {
		if u, ok := s.units[id]; ok {
			u.registered, u.dead, u.rounds = false, false, 0
			u.unit.Phase = sdk.PhaseBooting
		}
	}
}

// threads is the total size of units that are not draining.
func (s *sim) threads() int64 {
	var n int64
	for _, u := range s.units {
		if u.unit.Phase != sdk.PhaseDraining {
			n += u.unit.Size
		}
	}
	return n
}

func (s *sim) decodeState() *State {
	s.t.Helper()
	st, err := DecodeState(s.state)
	if err != nil {
		s.t.Fatal(err)
	}
	return st
}

func addIDs(d sdk.Decision) []string {
	var ids []string
	for _, a := range d.Add {
		ids = append(ids, a.UnitID)
	}
	return ids
}

func removeIDs(d sdk.Decision) []string {
	var ids []string
	for _, r := range d.Remove {
		ids = append(ids, r.UnitID)
	}
	return ids
}

// checkInvariants holds for every decision, whatever the input: it is the
// oracle of the property tests and runs on every simulated step too.
func checkInvariants(t *testing.T, req sdk.EvaluateRequest, resp sdk.EvaluateResponse) {
	t.Helper()
	p, err := ParsePolicy(req.Policy)
	if err != nil {
		t.Fatal(err)
	}
	prev, err := DecodeState(req.State)
	if err != nil {
		t.Fatal(err)
	}
	d := resp.Decision
	if d.Reason == "" {
		t.Errorf("decision without a reason: %s", d.Summary())
	}
	degraded := req.SnapshotDegraded || !req.Snapshot.Complete
	if degraded && (len(d.Drain) > 0 || len(d.Remove) > 0) {
		t.Errorf("scaled down on a degraded snapshot: %s (%s)", d.Summary(), d.Reason)
	}
	// Capacity before this round, as the evaluator must count it.
	units := map[string]sdk.Unit{}
	for _, u := range req.Inventory {
		units[u.ID] = u
	}
	byUnit := map[string][]sdk.Worker{}
	for _, w := range req.Snapshot.Workers {
		byUnit[w.UnitID] = append(byUnit[w.UnitID], w)
	}
	next, err := DecodeState(resp.State)
	if err != nil {
		t.Fatalf("returned state does not decode: %v", err)
	}
	enc, err := next.Encode()
	if err != nil || !bytes.Equal(enc, resp.State) {
		t.Errorf("state does not round-trip through bytes:\n%s\n%s", resp.State, enc)
	}
	var newThreads int64
	for _, a := range d.Add {
		if _, ok := prev.Units[a.UnitID]; ok {
			continue // a repeated request for a unit already counted
		}
		// Whole units: exactly executor-parallelism threads, always; with
		// unit-size "fit" at least one and at most that.
		if fit := p.UnitSize == UnitSizeFit; (!fit && a.Size != p.ExecutorParallelism) || (fit && (a.Size < 1 || a.Size > p.ExecutorParallelism)) {
			t.Errorf("unit %s of size %d, not executor-parallelism %d (unit-size %s)", a.UnitID, a.Size, p.ExecutorParallelism, p.UnitSize)
		}
		if _, ok := units[a.UnitID]; ok {
			t.Errorf("adds %s, which exists", a.UnitID)
		}
		newThreads += a.Size
	}
	effective := capacityBefore(req, p, prev) - releasedNow(req, d, p, prev)
	if newThreads > 0 {
		if effective+newThreads > p.MaxParallelism {
			t.Errorf("adds %d threads to %d, above max-parallelism %d: %s", newThreads, effective, p.MaxParallelism, d.Reason)
		}
		tasks := req.Snapshot.Demand.Tasks()
		if tasks > 0 {
			tasks += p.Headroom // spare threads while there is work
		}
		if effective >= p.MinParallelism && tasks <= effective && req.Snapshot.Demand.PendingTables == 0 {
			t.Errorf("adds %d threads while %d effective threads cover %d tasks and headroom: %s", newThreads, effective, tasks, d.Reason)
		}
	}
	// Drains: never a busy unit unless above the ceiling, never below the floor.
	var drained int64
	for _, id := range d.Drain {
		u, ok := units[id]
		if !ok {
			t.Errorf("drains %s, which is not in the inventory", id)
			continue
		}
		var threads, busy int64
		known := true
		for _, w := range byUnit[id] {
			if w.State == sdk.WorkerRegistered {
				threads += w.Threads
				busy += w.BusyThreads
				known = known && w.BusyKnown
			}
		}
		if (busy > 0 || !known) && effective <= p.MaxParallelism {
			t.Errorf("drains busy unit %s (%d busy, known %v) within the ceiling: %s", u.ID, busy, known, d.Reason)
		}
		drained += threads
	}
	if drained > 0 && effective-drained < p.MinParallelism {
		t.Errorf("drains %d of %d threads, below min-parallelism %d: %s", drained, effective, p.MinParallelism, d.Reason)
	}
	if len(d.Drain) > 1 && effective <= p.MaxParallelism && p.ScaleDownStep != ScaleDownStepIdle {
		t.Errorf("drains %d units in one round within the ceiling: %v", len(d.Drain), d.Drain)
	}
	for _, r := range d.Remove {
		u, ok := units[r.UnitID]
		if !ok {
			t.Errorf("removes %s, which is not in the inventory", r.UnitID)
			continue
		}
		// Work in flight on the unit: only a force removal past the drain
		// timeout may cut it short.
		var busy int64
		known := true
		for _, w := range byUnit[r.UnitID] {
			switch w.State {
			case sdk.WorkerRegistered, sdk.WorkerDraining:
				busy += w.BusyThreads
				known = known && w.BusyKnown
			case sdk.WorkerStale:
				known = false
			}
		}
		if busy == 0 && known {
			continue
		}
		since := u.DrainStartedAt
		if us := prev.Units[r.UnitID]; us != nil && !us.DrainSince.IsZero() {
			since = us.DrainSince
		}
		if !r.Force || since.IsZero() || req.Now.Sub(since) < p.DrainTimeout.D() {
			t.Errorf("removes %s with work in flight (%d busy, known %v) before the drain timeout: %s", r.UnitID, busy, known, d.Reason)
		}
	}
	for _, id := range d.Restart {
		if _, ok := units[id]; !ok {
			t.Errorf("restarts %s, which is not in the inventory", id)
		}
	}
	if !slices.IsSorted(d.Drain) || !slices.IsSorted(d.Restart) {
		t.Errorf("unsorted ids: %v %v", d.Drain, d.Restart)
	}
}

// capacityBefore recomputes effective threads independently of the
// evaluator's code: registered threads of non-draining units (and of unit-less
// workers), plus the size of every unit neither registered, draining nor
// released, plus requests the inventory does not list yet.
func capacityBefore(req sdk.EvaluateRequest, p Policy, prev *State) int64 {
	inInv := map[string]bool{}
	var total int64
	alive, registered := map[string]bool{}, map[string]bool{}
	for _, w := range req.Snapshot.Workers {
		if w.State == sdk.WorkerRegistered || w.State == sdk.WorkerDraining {
			alive[w.UnitID] = true
		}
		if w.State == sdk.WorkerRegistered {
			registered[w.UnitID] = true
		}
	}
	excluded := map[string]bool{}
	for _, u := range req.Inventory {
		inInv[u.ID] = true
		us := prev.Units[u.ID]
		if u.Phase == sdk.PhaseDraining || (us != nil && (!us.DrainSince.IsZero() || us.Released)) {
			excluded[u.ID] = true
			continue
		}
		if !alive[u.ID] {
			size := u.Size
			if size <= 0 && us != nil {
				size = us.Size
			}
			if size <= 0 {
				size = p.ExecutorParallelism
			}
			total += size
		}
	}
	// A unit counts at most its size, whatever its workers claim.
	claimed := map[string]int64{}
	for _, w := range req.Snapshot.Workers {
		if w.State == sdk.WorkerRegistered && !excluded[w.UnitID] {
			claimed[w.UnitID] += min(w.Threads, maxCount)
		}
	}
	sizes := map[string]int64{}
	for _, u := range req.Inventory {
		size := u.Size
		if us := prev.Units[u.ID]; size <= 0 && us != nil {
			size = us.Size
		}
		if size <= 0 {
			size = p.ExecutorParallelism
		}
		sizes[u.ID] = size
	}
	for id, n := range claimed {
		if size, ok := sizes[id]; ok && id != "" {
			n = min(n, size)
		}
		total += n
	}
	for id, us := range prev.Units {
		if !inInv[id] && us.SeenAt.IsZero() && !us.Released && !us.RequestedAt.IsZero() &&
			req.Now.Sub(us.RequestedAt) < p.BootTimeout.D() && !registered[id] {
			total += max(us.Size, 1)
		}
	}
	return total
}

// releasedNow is the capacity of units without a live worker that this
// decision releases: they stop counting in the same round.
func releasedNow(req sdk.EvaluateRequest, d sdk.Decision, p Policy, prev *State) int64 {
	alive := map[string]bool{}
	for _, w := range req.Snapshot.Workers {
		if w.State == sdk.WorkerRegistered || w.State == sdk.WorkerDraining {
			alive[w.UnitID] = true
		}
	}
	var n int64
	for _, r := range d.Remove {
		for _, u := range req.Inventory {
			us := prev.Units[u.ID]
			if u.ID != r.UnitID || alive[u.ID] || u.Phase == sdk.PhaseDraining || (us != nil && (!us.DrainSince.IsZero() || us.Released)) {
				continue
			}
			size := u.Size
			if size <= 0 && us != nil {
				size = us.Size
			}
			if size <= 0 {
				size = p.ExecutorParallelism
			}
			n += size
		}
	}
	return n
}

func withCeiling(policy string) string {
	if strings.Contains(policy, `"max-parallelism"`) {
		return policy
	}
	if strings.TrimSpace(policy) == "" || strings.TrimSpace(policy) == "{}" {
		return `{"max-parallelism":1000}`
	}
	return `{"max-parallelism":1000,` + strings.TrimPrefix(strings.TrimSpace(policy), "{")
}
