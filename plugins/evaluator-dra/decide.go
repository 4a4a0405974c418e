package dra

import (
	"cmp"
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
	inv  sdk.Unit
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
	known   map[string]bool // ids in the inventory, the state or the workers

	// external: registered workers of no inventory unit (started by hand).
	externalThreads, externalBusy int64

	registered, busy, inflight, effective int64
	tasks                                 int64

	dec   sdk.Decision
	notes []string
}

// Evaluate is the evaluator as a plain function of its config and request.
func Evaluate(cfg Config, req sdk.EvaluateRequest) (sdk.EvaluateResponse, error) {
	p, err := ParsePolicy(req.Policy)
	if err != nil {
		return sdk.EvaluateResponse{}, fmt.Errorf("evaluator-dra: %w", err)
	}
	if req.Now.IsZero() {
		return sdk.EvaluateResponse{}, fmt.Errorf("evaluator-dra: request has no time (Now is zero)")
	}
	if err := checkRequest(req); err != nil {
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
		known:    map[string]bool{},
	}
	r.run()
	b, err := st.Encode()
	if err != nil {
		return sdk.EvaluateResponse{}, fmt.Errorf("evaluator-dra: %w", err)
	}
	return sdk.EvaluateResponse{Decision: r.dec, State: b}, nil
}

func checkRequest(req sdk.EvaluateRequest) error {
	d := req.Snapshot.Demand
	for _, c := range []struct {
		name string
		v    int64
	}{{"planned tasks", d.PlannedTasks}, {"scheduled tasks", d.ScheduledTasks}, {"running tasks", d.RunningTasks}, {"pending tables", d.PendingTables}, {"planning tables", d.PlanningTables}} {
		if c.v < 0 || c.v > maxCount {
			return fmt.Errorf("snapshot: %s %d out of range [0, %d]", c.name, c.v, int64(maxCount))
		}
	}
	if len(req.Snapshot.Workers) > maxEntries || len(req.Inventory) > maxEntries {
		return fmt.Errorf("request lists %d workers and %d units, more than %d", len(req.Snapshot.Workers), len(req.Inventory), maxEntries)
	}
	for _, w := range req.Snapshot.Workers {
		if w.Threads < 0 || w.Threads > maxCount || w.BusyThreads < 0 || w.BusyThreads > maxCount {
			return fmt.Errorf("snapshot: worker %q has %d busy of %d threads", w.ID, w.BusyThreads, w.Threads)
		}
	}
	seen := map[string]bool{}
	for _, u := range req.Inventory {
		if u.ID == "" {
			return fmt.Errorf("inventory: a unit has no id")
		}
		if seen[u.ID] {
			return fmt.Errorf("inventory: unit %q is listed twice", u.ID)
		}
		seen[u.ID] = true
		if u.Size < 0 || u.Size > maxCount {
			return fmt.Errorf("inventory: unit %q has size %d", u.ID, u.Size)
		}
	}
	return nil
}

func (r *round) run() {
	if r.degraded {
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
	case r.effective > r.p.ceiling():
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
	byUnit := map[string][]sdk.Worker{}
	for _, w := range r.req.Snapshot.Workers {
		byUnit[w.UnitID] = append(byUnit[w.UnitID], w)
		if w.UnitID != "" {
			r.known[w.UnitID] = true
		}
	}
	inv := slices.Clone(r.req.Inventory)
	slices.SortFunc(inv, func(a, b sdk.Unit) int { return strings.Compare(a.ID, b.ID) })
	inInventory := map[string]bool{}
	for _, iu := range inv {
		inInventory[iu.ID] = true
		r.known[iu.ID] = true
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
		u := &unit{id: iu.ID, inv: iu, st: us, size: iu.Size, busyKnown: true}
		if u.size <= 0 {
			u.size = us.Size
		}
		if u.size <= 0 {
			u.size = r.p.ExecutorParallelism
		}
		alive, busyNow := false, false
		for _, w := range byUnit[iu.ID] {
			switch w.State {
			case sdk.WorkerRegistered:
				alive = true
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
			r.trackIdle(u, byUnit[iu.ID], busyNow)
		case u.stale:
			u.kind = kindSuspect
		case !us.Registered && r.now.Sub(bootAnchor(iu, us, r.now)) < r.p.BootTimeout.D():
			u.kind = kindBooting
		default:
			u.kind = kindOrphan
			// An incomplete worker list can hide a live worker, so orphan
			// detection only starts on a trustworthy snapshot.
			if us.OrphanSince.IsZero() && !r.degraded {
				us.OrphanSince = r.now
			}
		}
		r.units = append(r.units, u)
	}
	for _, id := range sortedKeys(r.st.Units) {
		if inInventory[id] {
			continue
		}
		us := r.st.Units[id]
		// A unit seen before and gone now was released; one requested and
		// never listed within the boot window most likely failed to start.
		if !us.SeenAt.IsZero() || us.Released || us.RequestedAt.IsZero() || r.now.Sub(us.RequestedAt) >= r.p.BootTimeout.D() {
			if lingering(byUnit[id]) {
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
		for _, w := range byUnit[id] {
			if w.State == sdk.WorkerRegistered {
				pu.registered = true
			}
		}
		r.pending = append(r.pending, pu)
	}
	for _, w := range r.req.Snapshot.Workers {
		if us := r.st.Units[w.UnitID]; us != nil && us.Gone {
			continue
		}
		if w.State == sdk.WorkerRegistered && (w.UnitID == "" || !inInventory[w.UnitID]) {
			r.externalThreads += w.Threads
			r.externalBusy += busyThreads(w)
		}
	}
}

// lingering is true while the engine still lists a worker of a unit.
func lingering(workers []sdk.Worker) bool {
	for _, w := range workers {
		if w.State == sdk.WorkerRegistered || w.State == sdk.WorkerDraining {
			return true
		}
	}
	return false
}

// busyThreads counts a worker of unknown load as fully busy, so that it is
// never mistaken for idle capacity.
func busyThreads(w sdk.Worker) int64 {
	if !w.BusyKnown {
		return w.Threads
	}
	return min(w.BusyThreads, w.Threads)
}

func bootAnchor(iu sdk.Unit, us *UnitState, now time.Time) time.Time {
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
func (r *round) trackIdle(u *unit, workers []sdk.Worker, busyNow bool) {
	us := u.st
	if busyNow {
		us.LastBusy = r.now
		return
	}
	if us.LastBusy.IsZero() {
		us.LastBusy = r.now
	}
	for _, w := range workers {
		if w.State != sdk.WorkerRegistered || w.LastBusyAt.IsZero() {
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
			busy := fmt.Sprintf("%d threads still busy", u.inflight)
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
	r.tasks = r.req.Snapshot.Demand.Tasks()
}

func (r *round) resetBacklog() {
	r.st.BacklogSince, r.st.NextAddAt, r.st.Ramp = time.Time{}, time.Time{}, 1
}

// enforceCeiling drains down to max-parallelism after it was lowered:
// units that do no work yet go first, then the least loaded.
func (r *round) enforceCeiling() {
	r.resetBacklog()
	ceiling := r.p.ceiling()
	if r.degraded {
		r.note("%d threads above max-parallelism %d, but not draining on a degraded snapshot", r.effective, ceiling)
		return
	}
	// Requests not listed yet are cancelled first: they cost nothing.
	for _, pu := range r.pending {
		if r.effective <= ceiling {
			break
		}
		if pu.registered || r.effective-pu.st.Size < r.p.MinParallelism {
			continue
		}
		delete(r.st.Units, pu.id)
		r.effective -= pu.st.Size
		r.note("cancel request %s (%d threads): above max-parallelism %d", pu.id, pu.st.Size, ceiling)
	}
	r.pending = slices.DeleteFunc(r.pending, func(pu *pending) bool { return r.st.Units[pu.id] == nil })
	var idle, working []*unit
	for _, u := range r.units {
		switch u.kind {
		case kindBooting, kindOrphan:
			idle = append(idle, u)
		case kindRegistered:
			if u.threads > 0 {
				working = append(working, u)
			}
		}
	}
	slices.SortStableFunc(working, func(a, b *unit) int {
		return cmp.Or(cmp.Compare(a.busy, b.busy), a.st.LastBusy.Compare(b.st.LastBusy), strings.Compare(a.id, b.id))
	})
	before := r.effective
	var acted []string
	for _, u := range append(idle, working...) {
		if r.effective <= ceiling {
			break
		}
		threads := u.threads
		if u.kind != kindRegistered {
			threads = u.size
		}
		if r.effective-threads < r.p.MinParallelism {
			continue
		}
		r.effective -= threads
		if u.kind == kindRegistered {
			u.st.DrainSince = r.now
			u.kind = kindDraining
			r.dec.Drain = append(r.dec.Drain, u.id)
			acted = append(acted, fmt.Sprintf("drain %s (%d of %d threads busy)", u.id, u.busy, u.threads))
		} else {
			u.st.Released = true
			u.kind = kindReleased
			r.dec.Remove = append(r.dec.Remove, sdk.UnitRemove{UnitID: u.id})
			acted = append(acted, fmt.Sprintf("remove %s (not registered)", u.id))
		}
	}
	if len(acted) > 0 {
		r.st.LastScaleDown = r.now
	}
	msg := fmt.Sprintf("%d threads above max-parallelism %d: ", before, ceiling)
	if len(acted) > 0 {
		msg += strings.Join(acted, ", ")
	} else {
		msg += "nothing can go without breaking min-parallelism"
	}
	r.note("%s, %d -> %d threads", msg, before, r.effective)
}

// fillFloor adds units at once, without timers, up to min-parallelism.
func (r *round) fillFloor() {
	r.resetBacklog()
	deficit := r.p.MinParallelism - r.effective
	total := min(deficit, r.p.ceiling()-r.effective)
	if total <= 0 {
		return
	}
	before := r.effective
	sizes := r.addUnits(total, ceilDiv(total, r.p.ExecutorParallelism))
	r.st.LastScaleUp = r.now
	r.note("below the floor: %d threads < min-parallelism %d: %s, %d -> %d threads", before, r.p.MinParallelism, describeSizes(sizes), before, r.effective)
}

// scaleUp applies both demand layers and reports whether there was demand.
func (r *round) scaleUp() bool {
	d := r.req.Snapshot.Demand
	shortfall := max(0, r.tasks-r.effective)
	future := d.PendingTables > 0 && (r.effective == 0 || r.busy >= r.effective)
	if shortfall == 0 && !future {
		// A degraded snapshot may lack the demand (a collector is down):
		// missing data is not an empty queue, so the backlog's timers and
		// ramp wait for a good snapshot instead of starting over.
		if r.degraded {
			if !r.st.BacklogSince.IsZero() {
				r.note("backlog of %s not judged on a degraded snapshot", fmtDur(r.now.Sub(r.st.BacklogSince)))
			}
			return false
		}
		if !r.st.BacklogSince.IsZero() {
			r.note("backlog cleared after %s", fmtDur(r.now.Sub(r.st.BacklogSince)))
		}
		r.resetBacklog()
		return false
	}
	if r.st.BacklogSince.IsZero() {
		r.st.BacklogSince = r.now
		r.st.NextAddAt = r.now.Add(r.p.SchedulerBacklogTimeout.D())
		r.st.Ramp = 1
	}
	lasted := r.now.Sub(r.st.BacklogSince)
	var what string
	switch {
	case shortfall > 0:
		what = "backlog " + sdk.Count(shortfall, "task")
	case r.effective == 0:
		what = fmt.Sprintf("%d pending tables with no units (cold start)", d.PendingTables)
	default:
		what = fmt.Sprintf("%d pending tables with all %d threads busy", d.PendingTables, r.effective)
	}
	room := r.p.ceiling() - r.effective
	if room <= 0 {
		r.st.Ramp = 1
		r.note("%s for %s, but at max-parallelism %d", what, fmtDur(lasted), r.p.ceiling())
		return true
	}
	first := r.st.LastScaleUp.Before(r.st.BacklogSince)
	if r.now.Before(r.st.NextAddAt) {
		timer := "scheduler-backlog-timeout " + fmtDur(r.p.SchedulerBacklogTimeout.D())
		if !first {
			timer = "sustained-backlog-timeout " + fmtDur(r.p.SustainedBacklogTimeout.D())
		}
		r.note("%s for %s, waiting for %s (next add in %s)", what, fmtDur(lasted), timer, fmtDur(r.st.NextAddAt.Sub(r.now)))
		return true
	}
	if cd := r.p.ScaleUpCooldown.D(); !r.st.LastScaleUp.IsZero() && r.now.Sub(r.st.LastScaleUp) < cd {
		r.note("%s for %s, waiting for scale-up-cooldown %s (next add in %s)", what, fmtDur(lasted), fmtDur(cd), fmtDur(r.st.LastScaleUp.Add(cd).Sub(r.now)))
		return true
	}
	when := fmt.Sprintf("for %s > %s", fmtDur(lasted), fmtDur(r.p.SchedulerBacklogTimeout.D()))
	if !first {
		when = fmt.Sprintf("for %s, sustained %s", fmtDur(lasted), fmtDur(r.p.SustainedBacklogTimeout.D()))
	}
	before := r.effective
	k := r.p.ExecutorParallelism
	if shortfall > 0 {
		ramp := max(r.st.Ramp, 1)
		n := min(ramp, ceilDiv(shortfall, k))
		total := min(n*k, room)
		// Spark's rule: the ramp doubles only when the full increment was
		// granted; capping by the shortfall or the ceiling resets it.
		capped := ""
		switch {
		case n == ramp && total == n*k:
			r.st.Ramp = min(ramp*2, maxRamp)
		case total < n*k:
			r.st.Ramp, capped = 1, fmt.Sprintf(", capped by max-parallelism %d", r.p.ceiling())
		default:
			r.st.Ramp, capped = 1, ", capped by the backlog"
		}
		sizes := r.addUnits(total, ceilDiv(total, k))
		r.note("%s %s: %s (ramp %d%s), %d -> %d threads", what, when, describeSizes(sizes), ramp, capped, before, r.effective)
	} else {
		r.st.Ramp = 1
		sizes := r.addUnits(min(k, room), 1)
		r.note("%s %s: pre-warm %s, %d -> %d threads", what, when, describeSizes(sizes), before, r.effective)
	}
	r.st.NextAddAt = r.now.Add(r.p.SustainedBacklogTimeout.D())
	r.st.LastScaleUp = r.now
	return true
}

// scaleDown drains the longest-idle unit, one per round, in rounds with no
// demand, never below the floor nor below the tasks still to run.
func (r *round) scaleDown() {
	if r.degraded {
		return
	}
	idleTimeout := r.p.ExecutorIdleTimeout.D()
	keep := max(r.p.MinParallelism, r.tasks)
	var candidates []*unit
	heldByFloor := ""
	for _, u := range r.units {
		if u.kind != kindRegistered || u.threads == 0 || !u.busyKnown || u.busy > 0 || u.drainingWorker || u.stale {
			continue
		}
		if r.now.Sub(u.st.LastBusy) < idleTimeout {
			continue
		}
		if r.effective-u.threads < keep {
			heldByFloor = u.id
			continue
		}
		candidates = append(candidates, u)
	}
	if len(candidates) == 0 {
		if heldByFloor != "" {
			r.note("%s is idle but draining it would leave fewer than %d threads (min-parallelism %d, %d tasks)", heldByFloor, keep, r.p.MinParallelism, r.tasks)
		}
		return
	}
	// Longest idle first; among equally idle units the least loaded, then
	// the smallest, so the remaining units stay balanced.
	slices.SortStableFunc(candidates, func(a, b *unit) int {
		return cmp.Or(a.st.LastBusy.Compare(b.st.LastBusy), cmp.Compare(a.inflight, b.inflight),
			cmp.Compare(a.threads, b.threads), strings.Compare(a.id, b.id))
	})
	v := candidates[0]
	idle := r.now.Sub(v.st.LastBusy)
	if cd := r.p.ScaleDownCooldown.D(); !r.st.LastScaleDown.IsZero() && r.now.Sub(r.st.LastScaleDown) < cd {
		r.note("%s idle %s, waiting for scale-down-cooldown %s (next in %s)", v.id, fmtDur(idle), fmtDur(cd), fmtDur(r.st.LastScaleDown.Add(cd).Sub(r.now)))
		return
	}
	before := r.effective
	r.effective -= v.threads
	v.st.DrainSince = r.now
	v.kind = kindDraining
	r.st.LastScaleDown = r.now
	r.dec.Drain = append(r.dec.Drain, v.id)
	r.note("%s idle %s >= %s with no demand: drain, %d -> %d threads", v.id, fmtDur(idle), fmtDur(idleTimeout), before, r.effective)
}

// addUnits requests total threads over n units whose sizes differ by at most
// one thread (seed 004's balance) and returns the sizes.
func (r *round) addUnits(total, n int64) []int64 {
	if n <= 0 || total <= 0 {
		return nil
	}
	sizes := make([]int64, n)
	for i := range sizes {
		sizes[i] = total / n
		if int64(i) < total%n {
			sizes[i]++
		}
	}
	for _, size := range sizes {
		id := r.nextID()
		r.known[id] = true
		r.st.Units[id] = &UnitState{Size: size, RequestedAt: r.now}
		r.dec.Add = append(r.dec.Add, sdk.UnitAdd{UnitID: id, Size: size})
		r.effective += size
	}
	return sizes
}

// nextID is deterministic: the counter lives in the state, and ids already
// in use (inventory, state, workers) are skipped, so a lost state cannot
// collide with existing units.
func (r *round) nextID() string {
	for {
		id := fmt.Sprintf("%s-%d", r.prefix, r.st.NextSeq)
		r.st.NextSeq++
		if !r.known[id] {
			return id
		}
	}
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
	d := r.req.Snapshot.Demand
	status := fmt.Sprintf("capacity %s (%d registered, %d in flight), %d busy; %s, %s; floor %d, ceiling %s",
		sdk.Count(r.registered+r.inflight, "thread"), r.registered, r.inflight, r.busy, sdk.Count(r.tasks, "task"),
		sdk.Count(d.PendingTables, "pending table"), r.p.MinParallelism, r.p.ceilingString())
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
