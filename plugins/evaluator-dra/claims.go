package dra

import (
	"fmt"
	"slices"
	"strings"

	"github.com/ebbscale/ebb/sdk"
)

// maxContradictions bounds how many contradictions a reason lists.
const maxContradictions = 3

// checkClaims compares what the workers claim with what the inventory says
// the platform runs. A unit's size is the platform's own record (the pod,
// the process it started); a worker list that claims more threads than its
// unit has, or more workers than its unit could hold, or the same worker
// twice, is nonsense that looks complete (an engine listing an optimizer
// twice, a worker reporting 2^40 cores). Acting on it drained live units
// once (issue 11), so such a snapshot counts as degraded: scale-up or
// nothing, with the reason. Out-of-range claims are clamped so that sums
// cannot overflow.
func (r *round) checkClaims() {
	var found []string
	add := func(format string, args ...any) {
		if len(found) < maxContradictions {
			found = append(found, fmt.Sprintf(format, args...))
		} else if len(found) == maxContradictions {
			found = append(found, "more")
		}
	}
	workers := r.req.Snapshot.Workers
	cloned := false
	seen := make(map[string]struct{}, len(workers))
	for i, w := range workers {
		if w.Threads > maxCount || w.BusyThreads > maxCount {
			add("worker %s claims %d threads", w.ID, max(w.Threads, w.BusyThreads))
			if !cloned { // the request is the caller's
				workers, cloned = slices.Clone(workers), true
			}
			workers[i].Threads, workers[i].BusyThreads = min(w.Threads, maxCount), min(w.BusyThreads, maxCount)
		}
		if _, dup := seen[w.ID]; w.ID != "" && dup {
			add("worker %s is listed twice", w.ID)
		}
		seen[w.ID] = struct{}{}
	}
	r.req.Snapshot.Workers = workers
	r.workersOf = indexWorkers(workers)

	for _, iu := range r.req.Inventory {
		var c struct{ workers, threads int64 }
		for i := r.workersOf.first(iu.ID); i >= 0; i = r.workersOf.next[i] {
			w := &workers[i]
			if w.State == sdk.WorkerRegistered || w.State == sdk.WorkerDraining {
				c.workers++
				c.threads += w.Threads
			}
		}
		if c.workers == 0 {
			continue
		}
		size := iu.Size
		if size <= 0 {
			if us := r.st.Units[iu.ID]; us != nil {
				size = us.Size
			}
		}
		if size <= 0 {
			continue
		}
		switch {
		case c.threads > size:
			add("unit %s has %d threads but its %d workers claim %d", iu.ID, size, c.workers, c.threads)
		case c.workers > size:
			add("unit %s of %d threads lists %d workers", iu.ID, size, c.workers)
		}
	}
	if len(found) > 0 {
		r.contradiction = strings.Join(found, "; ")
		r.degraded = true
	}
}

// workerIndex finds the workers of a unit id without a slice per unit:
// a chain through the snapshot's workers, in their order.
type workerIndex struct {
	workers []sdk.Worker
	head    map[string]int32
	next    []int32 // -1 ends a chain
}

func indexWorkers(workers []sdk.Worker) workerIndex {
	x := workerIndex{workers: workers, head: make(map[string]int32, len(workers)), next: make([]int32, len(workers))}
	for i := len(workers) - 1; i >= 0; i-- {
		id := workers[i].UnitID
		first, ok := x.head[id]
		if !ok {
			first = -1
		}
		x.next[i] = first
		x.head[id] = int32(i)
	}
	return x
}

// has tells whether some worker names the unit id.
func (x workerIndex) has(id string) bool {
	_, ok := x.head[id]
	return ok
}

// first is the index of unit id's first worker, -1 for none; next[i]
// follows it: for i := x.first(id); i >= 0; i = x.next[i] { ... }.
func (x workerIndex) first(id string) int32 {
	if i, ok := x.head[id]; ok {
		return i
	}
	return -1
}
