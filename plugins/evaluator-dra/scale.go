package dra

// The scaling moves of a round: the ceiling, the floor, demand-driven
// scale-up and idle scale-down, each adding or draining whole units.

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ebbscale/ebb/sdk"
)

func (r *round) resetBacklog() {
	r.st.BacklogSince, r.st.NextAddAt, r.st.Ramp = time.Time{}, time.Time{}, 1
}

// enforceCeiling drains down to max-parallelism after it was lowered:
// units that do no work yet go first, then the least loaded.
func (r *round) enforceCeiling() {
	r.resetBacklog()
	ceiling := r.p.MaxParallelism
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

// room is how many threads a scale-up may add below the ceiling: whole
// units only (Amoro's allowedInstances x K), or every thread left with
// unit-size "fit".
func (r *round) room() int64 {
	left := max(0, r.p.MaxParallelism-r.effective)
	if r.p.UnitSize == UnitSizeFit {
		return left
	}
	return left / r.p.ExecutorParallelism * r.p.ExecutorParallelism
}

// fillFloor adds units at once, without timers, until min-parallelism is
// covered, as far as the ceiling allows.
func (r *round) fillFloor() {
	r.resetBacklog()
	k := r.p.ExecutorParallelism
	before := r.effective
	threads := min(r.roundUp(r.p.MinParallelism-r.effective), r.room())
	if threads <= 0 {
		r.note("below the floor: %d threads < min-parallelism %d, but fewer than %d threads (one unit) remain below max-parallelism %d",
			before, r.p.MinParallelism, k, r.p.MaxParallelism)
		return
	}
	sizes := r.addThreads(threads)
	r.st.LastScaleUp = r.now
	r.note("below the floor: %d threads < min-parallelism %d: %s, %d -> %d threads", before, r.p.MinParallelism, describeSizes(sizes), before, r.effective)
}

// roundUp is the threads a scale-up adds to cover a need of n threads:
// whole units, or exactly n with unit-size "fit".
func (r *round) roundUp(n int64) int64 {
	if r.p.UnitSize == UnitSizeFit {
		return n
	}
	return ceilDiv(n, r.p.ExecutorParallelism) * r.p.ExecutorParallelism
}

// scaleUp applies both demand layers and reports whether there was demand.
func (r *round) scaleUp() bool {
	d := r.req.Snapshot.Demand
	spare := r.spare()
	shortfall := max(0, r.tasks+spare-r.effective)
	// Future demand: pending tables while every thread is busy (with no
	// units at all nothing plans, so pending tables are the only signal).
	future := d.PendingTables > 0 && (r.effective == 0 || max(r.busy, r.busyTasks) >= r.effective)
	probe := r.p.ExecutorParallelism // Amoro's probe: one unit
	if (r.p.UnitSize == UnitSizeFit || r.p.BacklogStep == BacklogStepShortfall) && max(r.busy, r.busyTasks) >= r.registered {
		// Each pending table plans at least one task, and each booting
		// thread will take one: the tables they leave uncovered are
		// demand already measured. A shortfall step covers them all at
		// once (a cold burst on many tables needs one boot, not a probe's
		// boot and then another); a fitted probe covers up to a unit's
		// worth, so tables that arrive while a small unit boots do not
		// wait for it and then for another boot.
		unmet := d.PendingTables - r.inflight
		future, probe = unmet > 0, r.roundUp(unmet)
		if r.p.BacklogStep != BacklogStepShortfall {
			probe = min(probe, r.p.ExecutorParallelism)
		}
	}
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
		if d.PendingTables > 0 && d.ServiceablePlanned() == 0 && r.busyTasks < r.registered {
			// Amoro's planning-bound warning: scaling out adds idle threads.
			// Booting threads are not idle: they cannot plan yet.
			r.note("planning-bound: %d idle threads while %d tables are pending and no task is planned (raise AMS's optimizer.max-planning-parallelism)",
				r.registered-r.busyTasks, d.PendingTables)
		}
		r.resetBacklog()
		return false
	}
	need := shortfall
	if shortfall == 0 {
		need = probe
	}
	first := r.st.LastScaleUp.Before(r.st.BacklogSince) || r.st.BacklogSince.IsZero()
	if r.st.BacklogSince.IsZero() {
		r.st.BacklogSince = r.now
		r.st.Ramp = 1
	}
	if first {
		// Judged each round: a backlog that grows past what the running
		// tasks could free is no longer worth confirming.
		r.st.NextAddAt = r.st.BacklogSince.Add(r.firstTimeout(need))
	}
	lasted := r.now.Sub(r.st.BacklogSince)
	var what string
	switch {
	case shortfall > 0 && spare > 0:
		what = fmt.Sprintf("%s and headroom %d on %s", sdk.Count(r.tasks, "task"), spare, sdk.Count(r.effective, "thread"))
	case shortfall > 0:
		what = "backlog " + sdk.Count(shortfall, "task")
	case r.effective == 0:
		what = fmt.Sprintf("%d pending tables with no units (cold start)", d.PendingTables)
	default:
		what = fmt.Sprintf("%d pending tables with all %d threads busy", d.PendingTables, r.effective)
	}
	k := r.p.ExecutorParallelism
	room := r.room()
	if room == 0 {
		r.st.Ramp = 1
		if r.effective >= r.p.MaxParallelism {
			r.note("%s for %s, but at max-parallelism %d", what, fmtDur(lasted), r.p.MaxParallelism)
		} else {
			r.note("%s for %s, but only %d threads remain below max-parallelism %d, fewer than one unit of %d",
				what, fmtDur(lasted), r.p.MaxParallelism-r.effective, r.p.MaxParallelism, k)
		}
		return true
	}
	if r.now.Before(r.st.NextAddAt) {
		timer := "scheduler-backlog-timeout " + fmtDur(r.p.SchedulerBacklogTimeout.D())
		if r.cold(need) {
			timer = "cold-backlog-timeout " + fmtDur(r.p.ColdBacklogTimeout.D())
		}
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
	when := fmt.Sprintf("for %s > %s", fmtDur(lasted), fmtDur(r.firstTimeout(need)))
	if !first {
		when = fmt.Sprintf("for %s, sustained %s", fmtDur(lasted), fmtDur(r.p.SustainedBacklogTimeout.D()))
	}
	before := r.effective
	if shortfall > 0 {
		ramp := max(r.st.Ramp, 1)
		need := r.roundUp(shortfall) // the threads the backlog needs
		step := ramp * k
		if r.p.BacklogStep == BacklogStepShortfall {
			step = need // the whole shortfall is this round's step
		}
		threads := min(step, need, room)
		// Spark's rule (ExecutorAllocationManager.addExecutors): the ramp
		// doubles when the full increment was granted; a round capped by
		// the backlog or the ceiling resets it. Amoro doubles whenever the
		// want exceeds the ramp (README: differences).
		capped := ""
		switch {
		case r.p.BacklogStep == BacklogStepShortfall:
			r.st.Ramp = 1
			if threads < need {
				capped = fmt.Sprintf(", capped by max-parallelism %d", r.p.MaxParallelism)
			}
		case threads == step:
			r.st.Ramp = min(ramp*2, maxRamp)
		case threads == room && room < need:
			r.st.Ramp, capped = 1, fmt.Sprintf(", capped by max-parallelism %d", r.p.MaxParallelism)
		default:
			r.st.Ramp, capped = 1, ", capped by the backlog"
		}
		sizes := r.addThreads(threads)
		how := fmt.Sprintf("ramp %d", ramp)
		if r.p.BacklogStep == BacklogStepShortfall {
			how = "backlog-step shortfall"
		}
		r.note("%s %s: %s (%s%s), %d -> %d threads", what, when, describeSizes(sizes), how, capped, before, r.effective)
	} else {
		r.st.Ramp = 1
		sizes := r.addThreads(min(probe, room))
		r.note("%s %s: pre-warm %s, %d -> %d threads", what, when, describeSizes(sizes), before, r.effective)
	}
	r.st.NextAddAt = r.now.Add(r.p.SustainedBacklogTimeout.D())
	r.st.LastScaleUp = r.now
	return true
}

// cold is a backlog that the running tasks could not take over by
// finishing: more threads short than tasks running (on a group with no
// registered thread, any backlog). There cold-backlog-timeout (if set)
// replaces scheduler-backlog-timeout: the threads already booting are
// counted against the backlog, and however soon the running tasks end,
// some of it waits for a unit still to be requested, so waiting longer to
// confirm it only adds to every wait.
func (r *round) cold(need int64) bool {
	return r.p.ColdBacklogTimeout != nil && need > r.busyTasks
}

// spare is the headroom the group keeps: only while there is work (tasks,
// or pending tables), so an idle group keeps none. Scale-up aims at it and
// scale-down keeps it, so the two never undo each other.
func (r *round) spare() int64 {
	if r.tasks > 0 || r.req.Snapshot.Demand.PendingTables > 0 {
		return r.p.Headroom
	}
	return 0
}

// firstTimeout is how long a new backlog, short of need threads, waits
// for its first scale-up.
func (r *round) firstTimeout(need int64) time.Duration {
	if r.cold(need) {
		return r.p.ColdBacklogTimeout.D()
	}
	return r.p.SchedulerBacklogTimeout.D()
}

// scaleDown drains the longest-idle unit, one per round, in rounds with no
// demand, never below the floor nor below the tasks still to run.
func (r *round) scaleDown() {
	if r.degraded {
		return
	}
	idleTimeout := r.p.ExecutorIdleTimeout.D()
	keep := max(r.p.MinParallelism, r.tasks+r.spare())
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
			spare := ""
			if n := r.spare(); n > 0 {
				spare = fmt.Sprintf(", headroom %d", n)
			}
			r.note("%s is idle but draining it would leave fewer than %d threads (min-parallelism %d, %d tasks%s)", heldByFloor, keep, r.p.MinParallelism, r.tasks, spare)
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
	if r.p.ScaleDownStep != ScaleDownStepIdle {
		candidates = candidates[:1]
	}
	for _, v := range candidates {
		if r.effective-v.threads < keep {
			continue
		}
		before := r.effective
		r.effective -= v.threads
		v.st.DrainSince = r.now
		v.kind = kindDraining
		r.st.LastScaleDown = r.now
		r.dec.Drain = append(r.dec.Drain, v.id)
		r.note("%s idle %s >= %s with no demand: drain, %d -> %d threads", v.id, fmtDur(r.now.Sub(v.st.LastBusy)), fmtDur(idleTimeout), before, r.effective)
	}
}

// addThreads requests units for the given threads: executor-parallelism
// each (the pod size the user sized memory for, Amoro's threadCount = K),
// the last one smaller when threads is not a multiple of it (unit-size
// "fit" only: roundUp and room keep whole steps whole).
func (r *round) addThreads(threads int64) []int64 {
	var sizes []int64
	for threads > 0 {
		size := min(threads, r.p.ExecutorParallelism)
		threads -= size
		sizes = append(sizes, size)
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
		_, listed := r.listed[id]
		if !listed && !r.workersOf.has(id) && !r.known[id] {
			return id
		}
	}
}
