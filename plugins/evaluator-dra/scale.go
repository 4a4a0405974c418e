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

// allowed is how many whole units fit below the ceiling: none when fewer
// than executor-parallelism threads remain (Amoro's allowedInstances).
func (r *round) allowed() int64 {
	return max(0, (r.p.MaxParallelism-r.effective)/r.p.ExecutorParallelism)
}

// fillFloor adds whole units at once, without timers, until min-parallelism
// is covered: ceil(deficit / executor-parallelism) units, as many as fit.
func (r *round) fillFloor() {
	r.resetBacklog()
	k := r.p.ExecutorParallelism
	before := r.effective
	n := min(ceilDiv(r.p.MinParallelism-r.effective, k), r.allowed())
	if n <= 0 {
		r.note("below the floor: %d threads < min-parallelism %d, but fewer than %d threads (one unit) remain below max-parallelism %d",
			before, r.p.MinParallelism, k, r.p.MaxParallelism)
		return
	}
	sizes := r.addUnits(n)
	r.st.LastScaleUp = r.now
	r.note("below the floor: %d threads < min-parallelism %d: %s, %d -> %d threads", before, r.p.MinParallelism, describeSizes(sizes), before, r.effective)
}

// scaleUp applies both demand layers and reports whether there was demand.
func (r *round) scaleUp() bool {
	d := r.req.Snapshot.Demand
	shortfall := max(0, r.tasks-r.effective)
	// Future demand: pending tables while every thread is busy (with no
	// units at all nothing plans, so pending tables are the only signal).
	future := d.PendingTables > 0 && (r.effective == 0 || max(r.busy, r.busyTasks) >= r.effective)
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
		if d.PendingTables > 0 && d.ServiceablePlanned() == 0 && r.effective > 0 && r.busyTasks < r.effective {
			// Amoro's planning-bound warning: scaling out adds idle threads.
			r.note("planning-bound: %d idle threads while %d tables are pending and no task is planned (raise AMS's optimizer.max-planning-parallelism)",
				r.effective-r.busyTasks, d.PendingTables)
		}
		r.resetBacklog()
		return false
	}
	if r.st.BacklogSince.IsZero() {
		r.st.BacklogSince = r.now
		r.st.NextAddAt = r.now.Add(r.firstTimeout())
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
	k := r.p.ExecutorParallelism
	allowed := r.allowed()
	if allowed == 0 {
		r.st.Ramp = 1
		if r.effective >= r.p.MaxParallelism {
			r.note("%s for %s, but at max-parallelism %d", what, fmtDur(lasted), r.p.MaxParallelism)
		} else {
			r.note("%s for %s, but only %d threads remain below max-parallelism %d, fewer than one unit of %d",
				what, fmtDur(lasted), r.p.MaxParallelism-r.effective, r.p.MaxParallelism, k)
		}
		return true
	}
	first := r.st.LastScaleUp.Before(r.st.BacklogSince)
	if r.now.Before(r.st.NextAddAt) {
		timer := "scheduler-backlog-timeout " + fmtDur(r.p.SchedulerBacklogTimeout.D())
		if r.cold() {
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
	when := fmt.Sprintf("for %s > %s", fmtDur(lasted), fmtDur(r.firstTimeout()))
	if !first {
		when = fmt.Sprintf("for %s, sustained %s", fmtDur(lasted), fmtDur(r.p.SustainedBacklogTimeout.D()))
	}
	before := r.effective
	if shortfall > 0 {
		ramp := max(r.st.Ramp, 1)
		want := ceilDiv(shortfall, k)
		if r.p.BacklogStep == BacklogStepShortfall {
			ramp = want // the whole shortfall is this round's step
		}
		n := min(ramp, want, allowed)
		// Spark's rule (ExecutorAllocationManager.addExecutors): the ramp
		// doubles when the full increment was granted; a round capped by
		// the backlog or the ceiling resets it. Amoro doubles whenever the
		// want exceeds the ramp (README: differences).
		capped := ""
		switch {
		case r.p.BacklogStep == BacklogStepShortfall:
			r.st.Ramp = 1
			if n < want {
				capped = fmt.Sprintf(", capped by max-parallelism %d", r.p.MaxParallelism)
			}
		case n == ramp:
			r.st.Ramp = min(ramp*2, maxRamp)
		case n == allowed && allowed < want:
			r.st.Ramp, capped = 1, fmt.Sprintf(", capped by max-parallelism %d", r.p.MaxParallelism)
		default:
			r.st.Ramp, capped = 1, ", capped by the backlog"
		}
		sizes := r.addUnits(n)
		step := fmt.Sprintf("ramp %d", ramp)
		if r.p.BacklogStep == BacklogStepShortfall {
			step = "backlog-step shortfall"
		}
		r.note("%s %s: %s (%s%s), %d -> %d threads", what, when, describeSizes(sizes), step, capped, before, r.effective)
	} else {
		r.st.Ramp = 1
		sizes := r.addUnits(1)
		r.note("%s %s: pre-warm %s, %d -> %d threads", what, when, describeSizes(sizes), before, r.effective)
	}
	r.st.NextAddAt = r.now.Add(r.p.SustainedBacklogTimeout.D())
	r.st.LastScaleUp = r.now
	return true
}

// cold is a group with no capacity at all, where cold-backlog-timeout (if
// set) replaces scheduler-backlog-timeout: every task waits for a unit to
// boot, so waiting longer to confirm the backlog only adds to every wait.
func (r *round) cold() bool {
	return r.p.ColdBacklogTimeout != nil && r.effective == 0
}

// firstTimeout is how long a new backlog waits for its first scale-up.
func (r *round) firstTimeout() time.Duration {
	if r.cold() {
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

// addUnits requests n units of exactly executor-parallelism threads each:
// the pod size the user sized memory for (Amoro's threadCount = K).
func (r *round) addUnits(n int64) []int64 {
	if n <= 0 {
		return nil
	}
	size := r.p.ExecutorParallelism
	sizes := make([]int64, n)
	for i := range sizes {
		sizes[i] = size
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
