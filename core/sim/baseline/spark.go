package baseline

import (
	"fmt"
	"time"

	"github.com/ebbscale/ebb/sdk"
)

// Spark's ExecutorAllocationManager defaults (spark-keda-hpa.md §1.7).
const (
	SparkBacklogTimeout = time.Second // schedulerBacklogTimeout; sustained defaults to it
	SparkIdleTimeout    = 60 * time.Second
	// SparkInterval is how often the simulator calls it: EAM's loop runs
	// every 100 ms, but with 1 s timers nothing it decides changes between
	// whole seconds.
	SparkInterval = time.Second
)

// Spark is ExecutorAllocationManager (spark-keda-hpa.md §1.2-1.4) with its
// defaults, an executor being one unit of K threads: the target rises by a
// ramp of 1, 2, 4 … executors each sustained backlog timeout up to
// ceil((pending + running) / K), is lowered at once to the need (cancelling
// requests not yet granted), and an executor idle for executorIdleTimeout is
// killed if that keeps the count at the target and the floor. Pending tasks
// are the planned ones plus one per table waiting to be planned (what
// Spark's listener would know as submitted); running are scheduled + acked.
// Without shuffle data or cache, removal kills an idle executor, which holds
// no task.
func Spark(p Params) Func {
	g := &ids{name: "spark"}
	minE, maxE := p.minUnits(), p.maxUnits()
	target := minE // initialExecutors = minExecutors
	numToAdd := int64(1)
	var addTime time.Time // zero: NOT_SET
	initializing := true
	idleSince := map[string]time.Time{}
	return func(req sdk.EvaluateRequest) sdk.Decision {
		now := req.Now
		v := look(req)
		dm := req.Snapshot.Demand
		pending := dm.PlannedTasks + dm.PendingTables
		running := dm.ScheduledTasks + dm.RunningTasks
		maxNeeded := (pending + running + p.K - 1) / p.K
		if pending > 0 {
			initializing = false
			if addTime.IsZero() { // onSchedulerBacklogged
				addTime = now.Add(SparkBacklogTimeout)
			}
		} else { // onSchedulerQueueEmpty
			addTime, numToAdd = time.Time{}, 1
		}
		// Idle tracking, ExecutorMonitor style.
		var timedOut []sdk.Unit
		for _, u := range v.running {
			if v.busy[u.ID] > 0 {
				delete(idleSince, u.ID)
				continue
			}
			if _, ok := idleSince[u.ID]; !ok {
				idleSince[u.ID] = now
			}
			if now.Sub(idleSince[u.ID]) >= SparkIdleTimeout {
				timedOut = append(timedOut, u)
			}
		}
		if len(timedOut) > 0 {
			initializing = false
		}
		current := int64(len(v.running) + len(v.booting))
		if !initializing {
			switch {
			case maxNeeded < target:
				target, numToAdd = max(maxNeeded, minE), 1
			case !addTime.IsZero() && !now.Before(addTime):
				if target >= maxE {
					numToAdd = 1
				} else {
					t := max(target, int64(len(v.running))) + numToAdd
					t = max(min(t, maxNeeded, maxE), minE)
					delta := t - target
					target = t
					if delta == numToAdd {
						numToAdd *= 2
					} else {
						numToAdd = 1
					}
					if delta > 0 {
						addTime = now.Add(SparkBacklogTimeout)
					}
				}
			}
		}
		d := sdk.Decision{DesiredCapacity: target * p.K, Reason: fmt.Sprintf("spark target %d executors", target)}
		switch {
		case current < target:
			d.Add = g.add(target-current, p.K)
		case current > target:
			// A lowered target cancels requests not yet granted.
			for _, u := range newestFirst(v.booting) {
				if current <= target {
					break
				}
				d.Remove = append(d.Remove, sdk.UnitRemove{UnitID: u.ID})
				current--
			}
		}
		count := int64(len(v.running))
		for _, u := range timedOut {
			if count-1 < minE || count-1 < target {
				break
			}
			d.Remove = append(d.Remove, sdk.UnitRemove{UnitID: u.ID})
			delete(idleSince, u.ID)
			count--
		}
		return d
	}
}
