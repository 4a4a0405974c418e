package collectorams

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"
)

// taskWalk is what the task lists of running processes told.
type taskWalk struct {
	complete                  bool // every running process of the group was read
	calls                     int
	err                       error
	planned, scheduled, acked int64
	busy                      map[string]int64     // token -> SCHEDULED+ACKED
	lastEnd                   map[string]time.Time // token -> latest task end
	tables                    []tableDemand
}

// tableDemand is one table's share of the walk, for the quota-aware count.
type tableDemand struct {
	name     string
	quota    float64 // TableOptimizingInfo.quota as AMS sent it
	planned  int64
	occupied int64 // SCHEDULED + ACKED: a thread is held from assignment
}

// processingActions are the table statuses that hold a running process:
// OptimizingStatus.isProcessing (amoro.md §2.3), sent as repeated
// `actions[]` parameters (OptimizerGroupController.getOptimizerTables).
var processingActions = []string{"full", "major", "minor", "committing"}

// processQuery asks for a table's running optimizing processes. AMS 0.9+
// answers a listing with neither `type` nor `processCategory` with an empty
// page (MixedAndIcebergTableDescriptor.getOptimizingProcessesInfo, #4238);
// 0.8.x ignores the category. `status` must be a ProcessStatus name
// (upper case), or AMS answers code 500.
func processQuery() url.Values {
	return url.Values{"processCategory": {"optimizing"}, "status": {"RUNNING"}}
}

// walkTasks lists the group's processing tables, their RUNNING processes and
// those processes' tasks, within maxCalls calls. A thread is busy from
// SCHEDULED until it completes, as AMS's DRA counts it (amoro.md §6.3).
func walkTasks(ctx context.Context, a *amsAPI, group string, maxCalls int) (w taskWalk) {
	w = taskWalk{busy: map[string]int64{}, lastEnd: map[string]time.Time{}}
	budget := maxCalls
	defer func() { w.calls = maxCalls - budget }()
	g := url.PathEscape(group)
	tables, _, err := fetchAll[tableInfo](ctx, a, "/optimize/optimizerGroups/"+g+"/tables", url.Values{"actions[]": processingActions}, &budget)
	if err != nil {
		w.setErr("GET /optimize/optimizerGroups/"+group+"/tables", err)
		return w
	}
	seenTables := map[string]bool{}
	for _, t := range tables {
		id := t.TableIdentifier
		full := id.Catalog + "." + id.Database + "." + id.TableName
		if seenTables[full] {
			w.err = fmt.Errorf("GET /optimize/optimizerGroups/%s/tables: table %s listed twice (the listing changed while it was paged?)", group, full)
			return w
		}
		seenTables[full] = true
		td := tableDemand{name: full, quota: t.Quota}
		base := "/tables/catalogs/" + url.PathEscape(id.Catalog) + "/dbs/" + url.PathEscape(id.Database) + "/tables/" + url.PathEscape(id.TableName) + "/optimizing-processes"
		procs, _, err := fetchAll[processInfo](ctx, a, base, processQuery(), &budget)
		if err != nil {
			w.setErr("GET "+base, err)
			return w
		}
		for _, p := range procs {
			pid, err := p.ProcessID.id()
			if err != nil {
				w.err = fmt.Errorf("GET %s: %w", base, err)
				return w
			}
			path := base + "/" + pid + "/tasks"
			tasks, _, err := fetchAll[taskInfo](ctx, a, path, nil, &budget)
			if err != nil {
				w.setErr("GET "+path, err)
				return w
			}
			for _, tk := range tasks {
				w.add(tk, &td)
			}
		}
		w.tables = append(w.tables, td)
	}
	w.complete = true
	return w
}

func (w *taskWalk) setErr(what string, err error) {
	if errors.Is(err, errBudget) {
		// Not a failure: the snapshot says busy threads are unknown.
		return
	}
	w.err = fmt.Errorf("%s: %w", what, err)
}

// add counts one task. Statuses are TaskRuntime.Status / ProcessTaskStatus
// names (amoro.md §2.3); a PLANNED task has no token (null) and thread -1.
func (w *taskWalk) add(tk taskInfo, td *tableDemand) {
	switch tk.Status {
	case "PLANNED":
		w.planned++
		td.planned++
	case "SCHEDULED":
		w.scheduled++
		td.occupied++
		w.busy[tk.OptimizerToken]++
	case "ACKED":
		w.acked++
		td.occupied++
		w.busy[tk.OptimizerToken]++
	}
	if tk.OptimizerToken != "" {
		if end := msTime(int64(tk.EndTime)); end.After(w.lastEnd[tk.OptimizerToken]) {
			w.lastEnd[tk.OptimizerToken] = end
		}
	}
}

// serviceable counts the planned tasks the tables' quotas let run, as AMS's
// DynamicAllocationState.serviceablePlannedCount does (amoro.md §0): all of
// a table's planned tasks when its quota is proportional
// (self-optimizing.quota <= 1: more threads raise its limit), else at most
// its free slots, (int)quota - occupied.
//
// REST gives the quota as a thread count on 0.9+ ((int)q for q > 1, else
// ceil(q × max(group threads, 1))) and as q itself on 0.8.x. A value of at
// most 1 is proportional on 0.8 and at most one thread on 0.9: all count.
// Above 1 it is absolute for certain only when it exceeds the group's
// threads, which no proportional quota can; at or below them it may be a
// proportional share, and then all count, as AMS itself counts a table whose
// quota it cannot find.
func (w *taskWalk) serviceable(groupThreads int64) int64 {
	var total int64
	for _, t := range w.tables {
		if t.quota <= 1 || t.quota <= float64(max(groupThreads, 1)) {
			total += t.planned
			continue
		}
		limit := int64(1 << 30)
		if t.quota < float64(limit) {
			limit = int64(t.quota)
		}
		total += min(t.planned, max(0, limit-t.occupied))
	}
	return total
}
