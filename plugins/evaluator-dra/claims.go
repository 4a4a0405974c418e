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
	workers := slices.Clone(r.req.Snapshot.Workers)
	seen := map[string]bool{}
	for i, w := range workers {
		if w.Threads > maxCount || w.BusyThreads > maxCount {
			add("worker %s claims %d threads", w.ID, max(w.Threads, w.BusyThreads))
			workers[i].Threads, workers[i].BusyThreads = min(w.Threads, maxCount), min(w.BusyThreads, maxCount)
		}
		if w.ID != "" && seen[w.ID] {
			add("worker %s is listed twice", w.ID)
		}
		seen[w.ID] = true
	}
	r.req.Snapshot.Workers = workers

	type claim struct{ workers, threads int64 }
	claims := map[string]*claim{}
	for _, w := range workers {
		if w.UnitID == "" || (w.State != sdk.WorkerRegistered && w.State != sdk.WorkerDraining) {
			continue
		}
		c := claims[w.UnitID]
		if c == nil {
			c = &claim{}
			claims[w.UnitID] = c
		}
		c.workers++
		c.threads += w.Threads
	}
	for _, iu := range r.req.Inventory {
		c := claims[iu.ID]
		if c == nil {
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
