package dra

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ebbscale/ebb/sdk"
)

// maxRamp caps the exponential ramp; beyond it the ceiling or the shortfall
// binds anyway, and the cap keeps the doubling from overflowing.
const maxRamp = 1 << 20

// maxEntries bounds the workers and units a request may carry, so that sums
// of counts bounded by maxCount cannot overflow.
const maxEntries = 1 << 20

type unitKind int

const (
	kindRegistered unitKind = iota // a live worker serves it
	kindBooting                    // requested, not registered yet, within boot-timeout
	kindOrphan                     // no live worker after boot-timeout, or its worker vanished
	kindDraining                   // told to finish in-flight work and take none
	kindReleased                   // a Remove was issued; no longer capacity
	// kindSuspect: its only workers are stale. The worker may still be
	// running work, so the unit is neither restarted, released nor drained
	// until the collector either sees it again or drops it.
	kindSuspect
)

// unit is one inventory unit as this round sees it.
type unit struct {
	id   string
	inv  *sdk.Unit
	st   *UnitState
	size int64
	kind unitKind
	// threads and busy count workers in the registered state only: what can
	// take new work. busy counts a worker of unknown load as fully busy.
	threads   int64
	busy      int64
	busyKnown bool
	// inflight is busy work on any live worker (registered or draining).
	inflight int64
	// drainingWorker: some worker of the unit is draining on the engine side
	// although the unit is not, so it is no scale-down candidate.
	drainingWorker bool
	stale          bool
}

// pending is a unit this evaluator requested that the inventory does not show yet.
type pending struct {
	id string
	st *UnitState
	// registered is true when a worker already registered for it (the
	// realizer's listing lags): its threads are counted through the worker.
	registered bool
}

type round struct {
	p        Policy
	now      time.Time
	prefix   string
	req      sdk.EvaluateRequest
	st       *State
	degraded bool

	units   []*unit
	pending []*pending
	// listed says where each inventory unit is in req.Inventory;
	// workersOf holds each unit's workers (by unit id, in snapshot order).
	listed    map[string]int
	workersOf workerIndex
	// known holds the ids of the state's units that are not listed, and
	// those requested this round: with listed and workersOf, every id in
	// use, which a new unit must not take.
	known map[string]bool

	// external: registered workers of no inventory unit (started by hand).
	externalThreads, externalBusy int64

	registered, busy, inflight, effective int64
	// draining is the threads of draining units; drainingBusy what they
	// still run: work that is not unmet demand (Amoro's drain accounting).
	draining, drainingBusy int64
	// busyTasks are the scheduled and running tasks outside draining
	// units; tasks adds the serviceable planned ones: the threads the work
	// needs now (Amoro's busy + serviceablePlanned).
	busyTasks, tasks int64
	// contradiction says why the snapshot contradicts the inventory; such
	// a snapshot counts as degraded.
	contradiction string

	dec   sdk.Decision
	notes []string
}

// Evaluate is the evaluator as a plain function of its config and request.
func Evaluate(cfg Config, req sdk.EvaluateRequest) (sdk.EvaluateResponse, error) {
	return evaluate(cfg, req, (*State).Encode)
}

// evaluate takes the state's encoder as an argument so that the benchmark
// can measure the JSON encoding of version 1 beside the binary one.
func evaluate(cfg Config, req sdk.EvaluateRequest, encode func(*State) ([]byte, error)) (sdk.EvaluateResponse, error) {
	p, err := ParsePolicy(req.Policy)
	if err != nil {
		return sdk.EvaluateResponse{}, fmt.Errorf("evaluator-dra: %w", err)
	}
	if req.Now.IsZero() {
		return sdk.EvaluateResponse{}, fmt.Errorf("evaluator-dra: request has no time (Now is zero)")
	}
	listed, err := checkRequest(req)
	if err != nil {
		return sdk.EvaluateResponse{}, fmt.Errorf("evaluator-dra: %w", err)
	}
	st, err := DecodeState(req.State)
	if err != nil {
		return sdk.EvaluateResponse{}, fmt.Errorf("evaluator-dra: %w", err)
	}
	r := &round{
		p:        p,
		now:      req.Now.UTC(),
		prefix:   unitPrefix(cfg, req.Target),
		req:      req,
		st:       st,
		degraded: req.SnapshotDegraded || !req.Snapshot.Complete,
		listed:   listed,
		known:    map[string]bool{},
	}
	r.checkClaims()
	r.reconcile()
	r.run()
	b, err := encode(st)
	if err != nil {
		return sdk.EvaluateResponse{}, fmt.Errorf("evaluator-dra: %w", err)
	}
	return sdk.EvaluateResponse{Decision: r.dec, State: b}, nil
}

// checkRequest refuses counts out of range and a duplicate inventory unit;
// it returns where each inventory unit is listed.
func checkRequest(req sdk.EvaluateRequest) (map[string]int, error) {
	d := req.Snapshot.Demand
	for _, c := range []struct {
		name string
		v    int64
	}{{"planned tasks", d.PlannedTasks}, {"scheduled tasks", d.ScheduledTasks}, {"running tasks", d.RunningTasks}, {"pending tables", d.PendingTables}, {"planning tables", d.PlanningTables}} {
		if c.v < 0 || c.v > maxCount {
			return nil, fmt.Errorf("snapshot: %s %d out of range [0, %d]", c.name, c.v, int64(maxCount))
		}
	}
	if len(req.Snapshot.Workers) > maxEntries || len(req.Inventory) > maxEntries {
		return nil, fmt.Errorf("request lists %d workers and %d units, more than %d", len(req.Snapshot.Workers), len(req.Inventory), maxEntries)
	}
	for _, w := range req.Snapshot.Workers {
		// Too large a claim is judged against the inventory (checkClaims);
		// a negative one is no count at all.
		if w.Threads < 0 || w.BusyThreads < 0 {
			return nil, fmt.Errorf("snapshot: worker %q has %d busy of %d threads", w.ID, w.BusyThreads, w.Threads)
		}
	}
	listed := make(map[string]int, len(req.Inventory))
	for i, u := range req.Inventory {
		if u.ID == "" {
			return nil, fmt.Errorf("inventory: a unit has no id")
		}
		if _, dup := listed[u.ID]; dup {
			return nil, fmt.Errorf("inventory: unit %q is listed twice", u.ID)
		}
		listed[u.ID] = i
		if u.Size < 0 || u.Size > maxCount {
			return nil, fmt.Errorf("inventory: unit %q has size %d", u.ID, u.Size)
		}
	}
	return listed, nil
}

func (r *round) run() {
	if r.contradiction != "" {
		r.note("snapshot contradicts the inventory (%s): the inventory's unit sizes count, and the snapshot is treated as degraded", r.contradiction)
	} else if r.degraded {
		why := "the runner marked it stale"
		if !r.req.Snapshot.Complete {
			why = "incomplete"
			if len(r.req.Snapshot.IncompleteReasons) > 0 {
				why += ": " + strings.Join(r.req.Snapshot.IncompleteReasons, ", ")
			}
		}
		r.note("snapshot degraded (%s): no drain, removal or scale-down this round", why)
	}
	r.observe()
	r.progressDrains()
	r.handleOrphans()
	r.measure()
	switch {
	case r.effective > r.p.MaxParallelism:
		r.enforceCeiling()
	case r.effective < r.p.MinParallelism:
		r.fillFloor()
	default:
		if !r.scaleUp() {
			r.scaleDown()
		}
	}
	r.repeatPendingAdds()
	r.finish()
}

func (r *round) note(format string, args ...any) {
	r.notes = append(r.notes, fmt.Sprintf(format, args...))
}

// observe classifies every unit and updates the per-unit memory: first
// sighting, registration, idle time, orphan detection, drain start.
func (r *round) observe() {
	ws := r.workersOf
	// Sorted by id through pointers: an sdk.Unit is too large to move.
	inv := make([]*sdk.Unit, len(r.req.Inventory))
	for i := range r.req.Inventory {
		inv[i] = &r.req.Inventory[i]
	}
	slices.SortFunc(inv, func(a, b *sdk.Unit) int { return strings.Compare(a.ID, b.ID) })
	slab := make([]unit, len(inv))
	r.units = make([]*unit, 0, len(inv))
	var tokens []string
	for i, iu := range inv {
		us := r.st.Units[iu.ID]
		if us == nil {
			us = &UnitState{}
			r.st.Units[iu.ID] = us
		}
		if us.SeenAt.IsZero() {
			us.SeenAt = r.now
		}
		if us.Size <= 0 {
			us.Size = iu.Size
		}
		u := &slab[i]
		*u = unit{id: iu.ID, inv: iu, st: us, size: iu.Size, busyKnown: true}
		if u.size <= 0 {
			u.size = us.Size
		}
		if u.size <= 0 {
			u.size = r.p.ExecutorParallelism
		}
		alive, busyNow := false, false
		tokens = tokens[:0]
		for i := ws.first(iu.ID); i >= 0; i = ws.next[i] {
			w := &ws.workers[i]
			switch w.State {
			case sdk.WorkerRegistered:
				alive = true
				tokens = append(tokens, w.ID)
				u.threads += w.Threads
				u.busy += busyThreads(w)
			case sdk.WorkerDraining:
				alive = true
				u.drainingWorker = true
			case sdk.WorkerStale:
				u.stale = true
				continue
			default:
				continue
			}
			u.inflight += busyThreads(w)
			if !w.BusyKnown {
				u.busyKnown = false
			}
			if !w.BusyKnown || w.BusyThreads > 0 {
				busyNow = true
			}
		}
		// The inventory's size is what the platform runs; workers claiming
		// more are wrong (checkClaims has said so).
		u.threads = min(u.threads, u.size)
		u.busy = min(u.busy, u.threads)
		u.inflight = min(u.inflight, u.size)
		switch {
		case iu.Phase == sdk.PhaseDraining || !us.DrainSince.IsZero():
			u.kind = kindDraining
			if us.DrainSince.IsZero() {
				us.DrainSince = r.now
				if at := iu.DrainStartedAt.UTC(); !iu.DrainStartedAt.IsZero() && !at.After(r.now) {
					us.DrainSince = at
				}
			}
		case us.Released:
			u.kind = kindReleased
		case alive:
			u.kind = kindRegistered
			us.Registered = true
			us.OrphanSince, us.LastRestart, us.Restarts = time.Time{}, time.Time{}, 0
			r.trackIdle(u, iu.ID, tokens, busyNow)
		case u.stale:
			u.kind = kindSuspect
		case !us.Registered && r.now.Sub(bootAnchor(iu, us, r.now)) < r.p.BootTimeout.D():
			u.kind = kindBooting
		default:
			u.kind = kindOrphan
			// An incomplete worker list can hide a live worker, so orphan
			// detection only starts on a trustworthy snapshot.
			if !r.degraded {
				if us.OrphanSince.IsZero() {
					us.OrphanSince = r.now
				}
				// Its registration is over: a worker that comes back
				// earns its idle time afresh (Amoro prunes the token).
				us.Workers, us.LastBusy = nil, time.Time{}
			}
		}
		r.units = append(r.units, u)
	}
	var unlisted []string
	for id := range r.st.Units {
		if _, ok := r.listed[id]; !ok {
			unlisted = append(unlisted, id)
		}
	}
	slices.Sort(unlisted)
	for _, id := range unlisted {
		us := r.st.Units[id]
		// A unit seen before and gone now was released; one requested and
		// never listed within the boot window most likely failed to start.
		if !us.SeenAt.IsZero() || us.Released || us.RequestedAt.IsZero() || r.now.Sub(us.RequestedAt) >= r.p.BootTimeout.D() {
			if r.lingering(id) {
				us.Gone = true
				r.known[id] = true
				continue
			}
			// An incomplete worker list can hide a lingering worker: forget
			// the unit only on a trustworthy snapshot, or that worker would
			// come back next round as capacity that nobody manages.
			if r.degraded {
				r.known[id] = true
				continue
			}
			delete(r.st.Units, id)
			continue
		}
		r.known[id] = true
		pu := &pending{id: id, st: us}
		for i := ws.first(id); i >= 0; i = ws.next[i] {
			if ws.workers[i].State == sdk.WorkerRegistered {
				pu.registered = true
			}
		}
		r.pending = append(r.pending, pu)
	}
	for i := range r.req.Snapshot.Workers {
		w := &r.req.Snapshot.Workers[i]
		if _, ok := r.listed[w.UnitID]; w.State != sdk.WorkerRegistered || (ok && w.UnitID != "") {
			continue
		}
		if us := r.st.Units[w.UnitID]; us != nil && us.Gone {
			continue
		}
		r.externalThreads += w.Threads
		r.externalBusy += busyThreads(w)
	}
}

// lingering is true while the engine still lists a worker of a unit.
func (r *round) lingering(id string) bool {
	ws := r.workersOf
	for i := ws.first(id); i >= 0; i = ws.next[i] {
		w := &ws.workers[i]
		if w.State == sdk.WorkerRegistered || w.State == sdk.WorkerDraining {
			return true
		}
	}
	return false
}

// busyThreads counts a worker of unknown load as fully busy, so that it is
// never mistaken for idle capacity.
func busyThreads(w *sdk.Worker) int64 {
	if !w.BusyKnown {
		return w.Threads
	}
	return min(w.BusyThreads, w.Threads)
}

func bootAnchor(iu *sdk.Unit, us *UnitState, now time.Time) time.Time {
	anchor := us.SeenAt
	for _, t := range []time.Time{us.RequestedAt, iu.CreatedAt.UTC()} {
		if !t.IsZero() && t.Before(anchor) && !t.After(now) {
			anchor = t
		}
	}
	return anchor
}

// trackIdle keeps the start of a unit's idle time: a busy unit (or one whose
// load is unknown) is busy now; a newly registered one starts idle now, so a
// unit that never gets work still becomes removable (Amoro's seeding).
//
// The clock belongs to the worker registrations (Amoro keys it by optimizer
// token): a worker that re-registers under the same unit (a restarted pod,
// same unit id, new token) starts a fresh clock instead of inheriting the
// old one and being drained right after it came back.
func (r *round) trackIdle(u *unit, id string, tokens []string, busyNow bool) {
	us := u.st
	slices.Sort(tokens)
	tokens = slices.Compact(tokens)
	if len(us.Workers) > 0 {
		for _, t := range tokens {
			if _, found := slices.BinarySearch(us.Workers, t); !found {
				us.LastBusy = time.Time{}
				break
			}
		}
	}
	// tokens is the caller's scratch buffer: keep the state's own slice
	// when nothing changed (the common round), a copy otherwise.
	switch {
	case len(tokens) == 0:
		us.Workers = nil
	case !slices.Equal(us.Workers, tokens):
		us.Workers = slices.Clone(tokens)
	}
	if busyNow {
		us.LastBusy = r.now
		return
	}
	if us.LastBusy.IsZero() {
		us.LastBusy = r.now
	}
	ws := r.workersOf
	for i := ws.first(id); i >= 0; i = ws.next[i] {
		w := &ws.workers[i]
		if w.State != sdk.WorkerRegistered || w.LastBusyAt.IsZero() || w.LastBusyAt.Before(w.RegisteredAt) {
			continue
		}
		if at := w.LastBusyAt.UTC(); at.After(us.LastBusy) && !at.After(r.now) {
			us.LastBusy = at
		}
	}
}

// progressDrains releases draining units whose in-flight work is done or
// whose drain timed out.
func (r *round) progressDrains() {
	for _, u := range r.units {
		if u.kind != kindDraining {
			continue
		}
		elapsed := r.now.Sub(u.st.DrainSince)
		known := u.busyKnown && !u.stale
		done := known && u.inflight == 0
		timedOut := elapsed >= r.p.DrainTimeout.D()
		switch {
		case !done && !timedOut:
			busy := sdk.Count(u.inflight, "thread") + " busy"
			if !known {
				busy = "load unknown"
			}
			r.note("draining %s: %s, %s of drain-timeout %s", u.id, busy, fmtDur(elapsed), fmtDur(r.p.DrainTimeout.D()))
		case r.degraded:
			r.note("%s could be released (drain %s) but the snapshot is degraded: waiting for a good one", u.id, map[bool]string{true: "finished", false: "timed out"}[done])
		case done:
			r.dec.Remove = append(r.dec.Remove, sdk.UnitRemove{UnitID: u.id})
			r.note("%s drained after %s: remove", u.id, fmtDur(elapsed))
		default:
			r.dec.Remove = append(r.dec.Remove, sdk.UnitRemove{UnitID: u.id, Force: true})
			busy := sdk.Count(u.inflight, "thread") + " still busy"
			if !known {
				busy = "load unknown"
			}
			r.note("%s drain timed out after %s >= %s (%s): force-remove", u.id, fmtDur(elapsed), fmtDur(r.p.DrainTimeout.D()), busy)
		}
	}
}

// handleOrphans restarts or releases units without a live worker (seed 001).
func (r *round) handleOrphans() {
	grace := r.p.AutoRestart.GracePeriod.D()
	for _, u := range r.units {
		switch u.kind {
		case kindReleased:
			if r.degraded {
				r.note("%s is being released; not repeating the removal on a degraded snapshot", u.id)
				continue
			}
			r.dec.Remove = append(r.dec.Remove, sdk.UnitRemove{UnitID: u.id})
			continue
		case kindOrphan:
		default:
			continue
		}
		us := u.st
		if us.OrphanSince.IsZero() {
			r.note("%s has no live worker; not judged on a degraded snapshot", u.id)
			continue
		}
		anchor, since := us.OrphanSince, "no worker"
		if !us.LastRestart.IsZero() {
			anchor, since = us.LastRestart, fmt.Sprintf("restart %d", us.Restarts)
		}
		if !us.Registered {
			// The realizer may well report it running: the process is up
			// but never registered (issue 10).
			r.note("%s has no registered optimizer after the boot window (boot-timeout %s) although the platform runs it (phase %s): "+
				"likely its group does not exist in the engine (Amoro: no such optimizer group in AMS; the optimizer retries for ever) "+
				"or it cannot reach the engine's address", u.id, fmtDur(r.p.BootTimeout.D()), u.inv.Phase)
		}
		waited := r.now.Sub(anchor)
		if waited < grace {
			r.note("orphan %s (%s for %s): waiting for grace-period %s", u.id, since, fmtDur(waited), fmtDur(grace))
			continue
		}
		if r.p.AutoRestart.Enabled && us.Restarts < r.p.AutoRestart.MaxRetries {
			us.Restarts++
			us.LastRestart = r.now
			r.dec.Restart = append(r.dec.Restart, u.id)
			r.note("orphan %s (%s for %s >= %s): restart %d of %d", u.id, since, fmtDur(waited), fmtDur(grace), us.Restarts, r.p.AutoRestart.MaxRetries)
			continue
		}
		if r.degraded {
			r.note("orphan %s (%s for %s) is due for release, held back on a degraded snapshot", u.id, since, fmtDur(waited))
			continue
		}
		us.Released = true
		u.kind = kindReleased
		r.dec.Remove = append(r.dec.Remove, sdk.UnitRemove{UnitID: u.id})
		why := "auto-restart disabled"
		if r.p.AutoRestart.Enabled {
			why = fmt.Sprintf("%d restarts did not bring it back", us.Restarts)
		}
		r.note("orphan %s (%s for %s): released, %s", u.id, since, fmtDur(waited), why)
	}
}

// measure computes capacity. Effective threads are those that can take work
// now or soon: registered and not draining, plus booting units, orphans
// that are waiting for a restart, and requested units not listed yet; so
// nothing is requested twice while earlier requests are still in flight.
func (r *round) measure() {
	r.registered, r.busy = r.externalThreads, r.externalBusy
	r.inflight = 0
	for _, u := range r.units {
		switch u.kind {
		case kindRegistered:
			r.registered += u.threads
			r.busy += u.busy
		case kindDraining:
			r.draining += u.size
			r.drainingBusy += u.inflight
		case kindBooting, kindOrphan:
			r.inflight += u.size
		case kindSuspect:
			r.inflight += u.size
			r.note("%s: its worker is stale, counted as in flight and left alone until it is seen again or gone", u.id)
		}
	}
	for _, pu := range r.pending {
		if !pu.registered {
			r.inflight += max(pu.st.Size, 1)
		}
	}
	r.effective = r.registered + r.inflight
	d := r.req.Snapshot.Demand
	r.busyTasks = max(0, d.ScheduledTasks+d.RunningTasks-r.drainingBusy)
	r.tasks = r.busyTasks + d.ServiceablePlanned()
}

// repeatPendingAdds asks again for units requested earlier that the
// inventory does not list yet: a realizer that already made them does
// nothing (same id), one whose first attempt failed makes them now.
func (r *round) repeatPendingAdds() {
	var again []sdk.UnitAdd
	for _, pu := range r.pending {
		if pu.registered || r.st.Units[pu.id] == nil {
			continue
		}
		again = append(again, sdk.UnitAdd{UnitID: pu.id, Size: max(pu.st.Size, 1)})
	}
	if len(again) == 0 {
		return
	}
	ids := make([]string, len(again))
	for i, a := range again {
		ids[i] = a.UnitID
	}
	r.dec.Add = append(again, r.dec.Add...)
	r.note("requested again (not in the inventory yet): %s", strings.Join(ids, ", "))
}

func (r *round) finish() {
	slices.Sort(r.dec.Drain)
	slices.Sort(r.dec.Restart)
	slices.SortFunc(r.dec.Remove, func(a, b sdk.UnitRemove) int { return strings.Compare(a.UnitID, b.UnitID) })
	r.dec.DesiredCapacity = max(r.effective, 0)
	r.dec.Metrics = r.metrics()
	d := r.req.Snapshot.Demand
	status := fmt.Sprintf("capacity %s (%d registered, %d in flight), %d busy; %s, %s; floor %d, ceiling %d",
		sdk.Count(r.registered+r.inflight, "thread"), r.registered, r.inflight, r.busy, sdk.Count(r.tasks, "task"),
		sdk.Count(d.PendingTables, "pending table"), r.p.MinParallelism, r.p.MaxParallelism)
	if len(r.notes) == 0 {
		r.dec.Reason = "steady: " + status
		return
	}
	r.dec.Reason = strings.Join(r.notes, "; ") + " | " + status
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

func describeSizes(sizes []int64) string {
	if len(sizes) == 0 {
		return "+0 units"
	}
	unitWord := "units"
	if len(sizes) == 1 {
		unitWord = "unit"
	}
	same := true
	for _, s := range sizes {
		if s != sizes[0] {
			same = false
		}
	}
	if same {
		return fmt.Sprintf("+%d %s of %s", len(sizes), unitWord, sdk.Count(sizes[0], "thread"))
	}
	parts := make([]string, len(sizes))
	for i, s := range sizes {
		parts[i] = fmt.Sprint(s)
	}
	return fmt.Sprintf("+%d %s (%s threads)", len(sizes), unitWord, strings.Join(parts, ","))
}
