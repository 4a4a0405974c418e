package collectorams

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/ebbscale/ebb/sdk"
)

// collection is the work of one Collect call.
type collection struct {
	api   *amsAPI
	group string
	snap  sdk.Snapshot

	optimizers []optimizerInfo
	listed     bool      // the optimizer listing was read
	amsNow     time.Time // AMS's clock, from the Date header
	walk       taskWalk
	gauges     map[string]float64
	// resourceGroup is the group's entry of GET /optimize/resourceGroups;
	// rgErr says why it could not be read.
	resourceGroup *resourceGroup
	rgErr         error
	// folded maps a kept token to the tokens of the same unit dropped by
	// dedupe, whose busy threads still count for the unit.
	folded map[string][]string
}

func (s *collection) fail(format string, args ...any) {
	s.snap.IncompleteReasons = append(s.snap.IncompleteReasons, fmt.Sprintf(format, args...))
}

func (s *collection) run(ctx context.Context) {
	g := url.PathEscape(s.group)

	// The group must exist: AMS answers an unknown group's listings with
	// empty pages (OptimizerGroupController.java), which would otherwise
	// read as a group with nothing to do.
	if res, _, err := s.api.get(ctx, "/optimize/optimizerGroups", nil); err != nil {
		s.fail("GET /optimize/optimizerGroups: %v", err)
	} else {
		var groups []groupName
		if err := json.Unmarshal(res, &groups); err != nil {
			s.fail("GET /optimize/optimizerGroups: malformed result: %v", err)
		} else if !hasGroup(groups, s.group) {
			s.fail("optimizer group %q not found in AMS", s.group)
		}
	}

	// The group's properties: does AMS scale it itself?
	s.resourceGroup, s.rgErr = readResourceGroup(ctx, s.api, s.group)

	// Registered optimizers (amoro.md §4.2, §8.2 "Instance inventory").
	opts, date, err := fetchAll[optimizerInfo](ctx, s.api, "/optimize/optimizerGroups/"+g+"/optimizers", nil, nil)
	if err != nil {
		s.fail("GET /optimize/optimizerGroups/%s/optimizers: %v", s.group, err)
	} else {
		s.optimizers = s.dedupe(opts)
		s.listed = true
		s.amsNow = date
	}

	// Task lists of running processes (amoro.md §8.2 "Per-optimizer idle
	// time": group tasks by optimizerToken).
	s.walk = walkTasks(ctx, s.api, s.group, *s.api.cfg.MaxTaskCalls)
	s.snap.Metrics["ams_task_list_calls"] = float64(s.walk.calls)
	if s.walk.err != nil {
		s.fail("task lists: %v", s.walk.err)
	}

	// Gauges (amoro.md §5), read after the walk so the two are as close
	// in time as they can be.
	if s.api.cfg.MetricsURL != "" {
		scrape, err := s.api.metrics(ctx, s.group)
		where := redactURL(s.api.cfg.MetricsURL)
		switch {
		case err != nil:
			s.fail("GET %s: %v", where, err)
		case len(scrape.values) == 0 && len(scrape.problems) == 0:
			s.fail("GET %s: no amoro_optimizer_group_* series with group=%q (reporter filter, or not the leader?)", where, s.group)
		default:
			for _, p := range scrape.problems {
				s.fail("GET %s: %s", where, p)
			}
			s.gauges = scrape.values
			for k, v := range scrape.values {
				s.snap.Metrics[k] = v
			}
		}
	}

	s.demand(ctx)
}

func hasGroup(groups []groupName, name string) bool {
	for _, g := range groups {
		if g.OptimizerGroupName == name {
			return true
		}
	}
	return false
}

// dedupe keeps one entry per token and per unit. The same token twice means
// the listing moved while it was paged (it is sorted by start time, newest
// first) or AMS's list is inconsistent; one unit under two tokens is a
// restarted optimizer whose old registration AMS has not expired yet
// (amoro.md §3.3), or a duplicate. Either way counting both would
// double the group's threads, so the snapshot is incomplete; the unit keeps
// its most recently heard-from registration, and the busy threads of all.
func (s *collection) dedupe(opts []optimizerInfo) []optimizerInfo {
	byToken := map[string]bool{}
	var out []optimizerInfo
	for _, o := range opts {
		if byToken[o.Token] {
			s.fail("optimizer %s listed twice by GET /optimize/optimizerGroups/%s/optimizers (the listing changed while it was paged?)", WorkerID(o.Token), s.group)
			continue
		}
		byToken[o.Token] = true
		if o.CoreNumber < 0 || o.CoreNumber > maxOptimizerThreads {
			s.fail("optimizer %s reports %d threads: not a plausible optimizer", WorkerID(o.Token), o.CoreNumber)
		}
		out = append(out, o)
	}
	units := map[string][]int{}
	for i, o := range out {
		if o.JobID != nil && *o.JobID != "" {
			units[*o.JobID] = append(units[*o.JobID], i)
		}
	}
	s.folded = map[string][]string{}
	drop := map[int]bool{}
	for unit, idx := range units {
		if len(idx) < 2 {
			continue
		}
		keep := idx[0]
		ids := []string{}
		for _, i := range idx {
			ids = append(ids, WorkerID(out[i].Token))
			if out[i].TouchTime > out[keep].TouchTime {
				keep = i
			}
		}
		for _, i := range idx {
			if i != keep {
				drop[i] = true
				s.folded[out[keep].Token] = append(s.folded[out[keep].Token], out[i].Token)
			}
		}
		sort.Strings(ids)
		s.fail("unit %s is listed as %d optimizers (%s): a restarted optimizer AMS has not expired yet, or a duplicate; counted once", unit, len(idx), strings.Join(ids, ", "))
	}
	kept := out[:0]
	for i, o := range out {
		if !drop[i] {
			kept = append(kept, o)
		}
	}
	return kept
}

// maxOptimizerThreads: AMS's own ceiling for a group is 1024
// (DYNAMIC_ALLOCATION_MAX_PARALLELISM_LIMIT); one optimizer claiming more is
// nonsense, not capacity.
const maxOptimizerThreads = 1024

// demand fills Demand: task counts from the task lists when they covered
// every running process and agree with the gauges (they split PLANNED from
// SCHEDULED, which the gauges cannot, amoro.md §8.2), else from the gauges;
// table counts from the gauges, else from the REST table list.
func (s *collection) demand(ctx context.Context) {
	d := &s.snap.Demand
	gaugeTasks := s.gauges != nil && hasAll(s.gauges, "amoro_optimizer_group_pending_tasks", "amoro_optimizer_group_executing_tasks")
	agree := s.walk.complete && (!gaugeTasks || s.crossCheck())
	switch {
	case agree:
		d.PlannedTasks, d.ScheduledTasks, d.RunningTasks = s.walk.planned, s.walk.scheduled, s.walk.acked
		if s.listed {
			var threads int64
			for _, o := range s.optimizers {
				threads += int64(o.CoreNumber)
			}
			d.ServiceablePlannedTasks, d.ServiceableKnown = s.walk.serviceable(threads), true
		}
	case gaugeTasks:
		// pending_tasks counts PLANNED + SCHEDULED (amoro.md §5.1); the
		// split is unknown, so all of it is reported as planned.
		d.PlannedTasks = int64(s.gauges["amoro_optimizer_group_pending_tasks"])
		d.RunningTasks = int64(s.gauges["amoro_optimizer_group_executing_tasks"])
	default:
		s.fail("task demand unknown: task lists incomplete and no optimizer-group gauges")
	}
	if s.gauges != nil && hasAll(s.gauges, "amoro_optimizer_group_pending_tables", "amoro_optimizer_group_planing_tables") {
		d.PendingTables = int64(s.gauges["amoro_optimizer_group_pending_tables"])
		d.PlanningTables = int64(s.gauges["amoro_optimizer_group_planing_tables"])
		return
	}
	// No gauges: count via the table list's `total` (amoro.md §8.2
	// "Cold-start / future demand").
	g := url.PathEscape(s.group)
	for _, x := range []struct {
		action string
		into   *int64
	}{{"pending", &d.PendingTables}, {"planning", &d.PlanningTables}} {
		n, err := countTables(ctx, s.api, g, x.action)
		if err != nil {
			s.fail("GET /optimize/optimizerGroups/%s/tables?actions[]=%s: %v", s.group, x.action, err)
			continue
		}
		*x.into = n
	}
}

// crossCheck compares the walk with AMS's own gauges, a second line of
// defence against a misread walk (an AMS answering a request differently
// than expected returns an empty page, not an error). The two are read a
// moment apart, in which each thread can finish a task, so the walk may see
// up to one task per registered thread fewer; a walk that sees nothing of
// a group AMS says has work, or less than that allowance, makes the
// snapshot incomplete, so it can never lead to a scale-down. Seeing more
// (planning added tasks in between) is harmless.
func (s *collection) crossCheck() bool {
	pending, executing := int64(s.gauges["amoro_optimizer_group_pending_tasks"]), int64(s.gauges["amoro_optimizer_group_executing_tasks"])
	gauge := pending + executing
	walk := s.walk.planned + s.walk.scheduled + s.walk.acked
	var allowance int64
	for _, o := range s.optimizers {
		allowance += max(int64(o.CoreNumber), 0)
	}
	if gauge == 0 || walk >= gauge || (walk > 0 && gauge-walk <= allowance) {
		return true
	}
	s.fail("task lists show %d tasks (%d planned, %d scheduled, %d running) but AMS's gauges show %d (pending_tasks %d, executing_tasks %d); more than %d tasks moving between the two reads can explain",
		walk, s.walk.planned, s.walk.scheduled, s.walk.acked, gauge, pending, executing, allowance)
	return false
}

func hasAll(m map[string]float64, keys ...string) bool {
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			return false
		}
	}
	return true
}

// WorkerID derives a worker's id from its AMS token. The token is the
// optimizer's credential for the optimizing service (amoro.md §4.2 notes the
// REST list exposes it), so it never leaves the collector: ids are a hash.
func WorkerID(token string) string {
	sum := sha256.Sum256([]byte(token))
	return "opt-" + hex.EncodeToString(sum[:6])
}

func (c *Collector) finishWorkers(s *collection) {
	if !s.listed {
		return
	}
	ref := s.amsNow
	if ref.IsZero() {
		ref = s.snap.ObservedAt
	}
	hbTimeout := s.api.cfg.HeartbeatTimeout.D()
	c.mu.Lock()
	defer c.mu.Unlock()
	seen := c.lastBusy[s.group]
	if seen == nil {
		seen = map[string]time.Time{}
	}
	next := map[string]time.Time{}
	stale := 0
	for _, o := range s.optimizers {
		id := WorkerID(o.Token)
		w := sdk.Worker{
			ID: id, Threads: int64(o.CoreNumber), State: sdk.WorkerRegistered,
			RegisteredAt: msTime(int64(o.StartTime)),
		}
		if o.JobID != nil {
			w.UnitID = *o.JobID
		}
		// OptimizerKeeper expires an optimizer heartbeat-timeout after its
		// last touch (amoro.md §2.4); until it does, the REST list still
		// shows it, so judge by touchTime against AMS's clock.
		if ref.Sub(msTime(int64(o.TouchTime))) > hbTimeout {
			w.State = sdk.WorkerStale
			stale++
		}
		last := seen[id]
		for _, tok := range append([]string{o.Token}, s.folded[o.Token]...) {
			if t := s.walk.lastEnd[tok]; t.After(last) {
				last = t
			}
			w.BusyThreads += s.walk.busy[tok]
		}
		w.BusyKnown = s.walk.complete
		if w.BusyThreads > 0 {
			last = s.snap.ObservedAt
		}
		w.LastBusyAt = last
		if !last.IsZero() {
			next[id] = last
		}
		s.snap.Workers = append(s.snap.Workers, w)
	}
	sort.Slice(s.snap.Workers, func(i, j int) bool { return s.snap.Workers[i].ID < s.snap.Workers[j].ID })
	c.lastBusy[s.group] = next
	s.snap.Metrics["ams_stale_optimizers"] = float64(stale)
}

func msTime(ms int64) time.Time {
	if ms <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}
