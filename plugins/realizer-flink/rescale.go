package flink

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ebbscale/ebb/sdk"
)

// requestedPrefix names subtasks asked for (upper bound) that do not run yet.
const requestedPrefix = "requested-"

// conflictRetries bounds re-reads after a concurrent change (a 409 from the
// JobManager, a resourceVersion conflict from the API server).
const conflictRetries = 5

var errNotAdaptive = errors.New("in-place rescaling needs the adaptive scheduler (jobmanager.scheduler: adaptive); " +
	"with the default scheduler a parallelism change needs a job restart (use mode \"deployment\" with the Flink operator)")

func isHexID(s string) bool {
	if len(s) != 32 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

func terminalState(s string) bool {
	switch s {
	case "CANCELED", "FINISHED", "FAILED", "SUSPENDED":
		return true
	}
	return false
}

// findJob resolves a job-mode target: a job id, or the name of exactly one
// job that has not ended.
func findJob(ctx context.Context, rc *restClient, name string) (string, error) {
	if isHexID(strings.ToLower(name)) {
		return strings.ToLower(name), nil
	}
	jobs, err := rc.jobs(ctx)
	if err != nil {
		return "", err
	}
	var ids []string
	for _, j := range jobs {
		if j.Name == name && !terminalState(j.State) {
			ids = append(ids, j.ID)
		}
	}
	switch len(ids) {
	case 0:
		return "", fmt.Errorf("no running Flink job named %q (target is a job id or a job name)", name)
	case 1:
		return ids[0], nil
	}
	return "", fmt.Errorf("%d running Flink jobs are named %q (%s): name the job by id", len(ids), name, strings.Join(ids, ", "))
}

// checkRescalable refuses what FLIP-291 cannot do: Flink before 1.18 has no
// resource requirements endpoint, and only the adaptive scheduler takes them
// (RescaleApiScalingRealizer checks the same).
func checkRescalable(ctx context.Context, rc *restClient, jobID string) error {
	v, major, minor, err := rc.version(ctx)
	if err != nil {
		return err
	}
	if major < 1 || (major == 1 && minor < 18) {
		return fmt.Errorf("Flink %s cannot rescale a job in place: the resource requirements API (FLIP-291) needs Flink 1.18 or newer", v)
	}
	cfg, err := rc.configMap(ctx, "/jobs/"+jobID+"/jobmanager/config")
	if err != nil {
		return err
	}
	if !strings.EqualFold(cfg["jobmanager.scheduler"], "adaptive") {
		return fmt.Errorf("job %s: %w", jobID, errNotAdaptive)
	}
	return nil
}

// checkBalanced refuses balanced mode where Flink cannot balance tasks:
// TASKS came with Flink 2.2 (FLIP-370), and a session cluster reads it from
// its own configuration only.
func checkBalanced(ctx context.Context, rc *restClient) error {
	v, major, minor, err := rc.version(ctx)
	if err != nil {
		return err
	}
	if major < 2 || (major == 2 && minor < 2) {
		return fmt.Errorf("balanced-tasks needs Flink 2.2 or newer (taskmanager.load-balance.mode TASKS, FLIP-370); the cluster runs Flink %s", v)
	}
	cfg, err := rc.configMap(ctx, "/jobmanager/config")
	if err != nil {
		return err
	}
	if !strings.EqualFold(cfg["taskmanager.load-balance.mode"], "TASKS") {
		return fmt.Errorf("balanced-tasks: the cluster's taskmanager.load-balance.mode is %q; set it to TASKS in the cluster configuration (a running cluster does not take it per job)", cfg["taskmanager.load-balance.mode"])
	}
	return nil
}

// rescaleJob sets each vertex's upper bound to its target, as the Flink
// operator does (NativeFlinkService.scale): the lower bound is never raised,
// because resources for it may never arrive. It reads the requirements first
// and sends nothing when they already say so. A concurrent update (409) is
// retried on a fresh read.
func (r *Realizer) rescaleJob(ctx context.Context, cfg Config, rc *restClient, jobID string, targets map[string]int) (string, error) {
	if err := checkRescalable(ctx, rc, jobID); err != nil {
		return "", err
	}
	job, err := rc.job(ctx, jobID)
	if err != nil {
		return "", err
	}
	if job.State != "RUNNING" {
		return "", fmt.Errorf("job %s is %s, not RUNNING: nothing to rescale", jobID, job.State)
	}
	if cfg.BalancedTasks {
		if err := checkBalanced(ctx, rc); err != nil {
			return "", err
		}
		slots, err := rc.slotsPerTaskManager(ctx)
		if err != nil {
			return "", err
		}
		for _, v := range job.Vertices {
			if t, ok := targets[v.ID]; ok {
				targets[v.ID] = align(v.Parallelism, t, v.MaxParallelism, slots)
			}
		}
	}
	for attempt := 1; ; attempt++ {
		var req requirements
		path := "/jobs/" + jobID + "/resource-requirements"
		if err := rc.do(ctx, http.MethodGet, path, nil, &req); err != nil {
			if re := asREST(err); re != nil && re.has("UnsupportedOperationException") {
				return "", fmt.Errorf("job %s: %w", jobID, errNotAdaptive)
			}
			return "", err
		}
		if len(req) == 0 {
			// FLINK-32341: an empty body from a scheduler that does not
			// support declarative resources.
			return "", fmt.Errorf("job %s: the JobManager returned no resource requirements: %w", jobID, errNotAdaptive)
		}
		var changes []string
		for _, id := range sortedKeys(targets) {
			cur, ok := req[id]
			if !ok {
				return "", fmt.Errorf("job %s has no vertex %s", jobID, id)
			}
			p := targets[id]
			next := cur
			next.Parallelism = bound{Lower: min(p, cur.Parallelism.Lower), Upper: p}
			if next != cur {
				req[id] = next
				changes = append(changes, fmt.Sprintf("%s %d->%d", shortID(id), cur.Parallelism.Upper, p))
			}
		}
		if len(changes) == 0 {
			return "parallelism unchanged", nil
		}
		err := rc.do(ctx, http.MethodPut, path, req, nil)
		if err == nil {
			return "rescaled in place: " + strings.Join(changes, ", "), nil
		}
		if re := asREST(err); re == nil || re.Status != http.StatusConflict || attempt >= conflictRetries {
			return "", err
		}
		t := time.NewTimer(time.Duration(attempt) * 100 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return "", fmt.Errorf("%w (while retrying: %w)", err, ctx.Err())
		case <-t.C:
		}
	}
}

func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// resolveVertices maps names or ids to vertex ids.
func resolveVertices(job jobDetails, keys []string) (map[string]vertexDetails, error) {
	out := map[string]vertexDetails{}
	for _, k := range keys {
		found := false
		for _, v := range job.Vertices {
			if v.ID == strings.ToLower(k) || v.Name == k {
				out[k] = v
				found = true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("job %s has no vertex %q (give a vertex id or its exact name)", job.ID, k)
		}
	}
	return out, nil
}

// scaledVertices are the vertices the desired capacity sets: the configured
// ones, else those at the job's widest parallelism (an Amoro optimizer job's
// executor, leaving its parallelism-1 toucher and sink alone).
func scaledVertices(cfg Config, job jobDetails) ([]vertexDetails, error) {
	if len(cfg.Vertices) > 0 {
		m, err := resolveVertices(job, cfg.Vertices)
		if err != nil {
			return nil, err
		}
		var out []vertexDetails
		for _, k := range cfg.Vertices {
			out = append(out, m[k])
		}
		return out, nil
	}
	widest := 0
	for _, v := range job.Vertices {
		widest = max(widest, v.Parallelism)
	}
	var out []vertexDetails
	for _, v := range job.Vertices {
		if v.Parallelism == widest {
			out = append(out, v)
		}
	}
	return out, nil
}

// jobRealize makes the desired capacity the parallelism of the scaled
// vertices. Which subtasks go on a scale-in is Flink's choice, so unit ids of
// drains and removals only count; a restart is refused, as a subtask cannot
// be restarted alone.
func (r *Realizer) jobRealize(ctx context.Context, cfg Config, rc *restClient, req sdk.RealizeRequest) (string, error) {
	d := req.Decision
	if len(d.Restart) > 0 {
		return "", fmt.Errorf("job mode cannot restart single subtasks (%s); Flink restarts failed tasks itself", strings.Join(d.Restart, ","))
	}
	if d.DesiredCapacity <= 0 && len(d.Add)+len(d.Drain)+len(d.Remove) == 0 {
		return "no action", nil
	}
	jobID, err := findJob(ctx, rc, req.Target.Name)
	if err != nil {
		return "", err
	}
	job, err := rc.job(ctx, jobID)
	if err != nil {
		return "", err
	}
	vs, err := scaledVertices(cfg, job)
	if err != nil {
		return "", err
	}
	want := max(int(math.Ceil(float64(d.DesiredCapacity)/cfg.ThreadsPerSubtask)), 1)
	targets := map[string]int{}
	for _, v := range vs {
		targets[v.ID] = min(want, v.MaxParallelism)
	}
	s, err := r.rescaleJob(ctx, cfg, rc, jobID, targets)
	if err == nil {
		r.remember(req.Target, d)
	}
	return s, err
}

// jobOverrides realizes ParallelismOverrides per vertex (id or name).
func (r *Realizer) jobOverrides(ctx context.Context, cfg Config, rc *restClient, target sdk.Target, overrides map[string]int64) (string, error) {
	jobID, err := findJob(ctx, rc, target.Name)
	if err != nil {
		return "", err
	}
	job, err := rc.job(ctx, jobID)
	if err != nil {
		return "", err
	}
	m, err := resolveVertices(job, sortedKeys(overrides))
	if err != nil {
		return "", err
	}
	targets := map[string]int{}
	for k, v := range m {
		p := overrides[k]
		if p < 1 || p > int64(v.MaxParallelism) {
			return "", fmt.Errorf("parallelism override %s=%d: want 1..%d (the vertex's max parallelism)", k, p, v.MaxParallelism)
		}
		targets[v.ID] = int(p)
	}
	return r.rescaleJob(ctx, cfg, rc, jobID, targets)
}

// jobInventory reports the subtasks of the widest scaled vertex as units of
// threads-per-subtask threads: subtasks that run, then those the declared
// upper bound asks for that do not run yet (requested). Units a decision
// added are reported under their own ids, holding the topmost subtasks, so an
// evaluator sees the unit it asked for arrive; the other subtasks are
// "subtask-N" (or "requested-N"). Which ids hold which subtasks is this
// process's memory: after a plugin restart every subtask is reported by index.
func (r *Realizer) jobInventory(ctx context.Context, cfg Config, rc *restClient, target sdk.Target) ([]sdk.Unit, error) {
	jobID, err := findJob(ctx, rc, target.Name)
	if err != nil {
		return nil, err
	}
	job, err := rc.job(ctx, jobID)
	if err != nil {
		return nil, err
	}
	vs, err := scaledVertices(cfg, job)
	if err != nil || len(vs) == 0 {
		return nil, err
	}
	sort.Slice(vs, func(i, j int) bool { return vs[i].Parallelism > vs[j].Parallelism })
	v := vs[0]
	subs, err := rc.subtasks(ctx, jobID, v.ID)
	if err != nil {
		return nil, err
	}
	slots := make([]sdk.Unit, 0, len(subs))
	for _, s := range subs {
		u := sdk.Unit{ID: fmt.Sprintf("subtask-%d", s.Index), Phase: subtaskPhase(s.Status)}
		if s.Start > 0 {
			u.CreatedAt = time.UnixMilli(s.Start).UTC()
		}
		slots = append(slots, u)
	}
	var req requirements
	if err := rc.do(ctx, http.MethodGet, "/jobs/"+jobID+"/resource-requirements", nil, &req); err == nil {
		if b, ok := req[v.ID]; ok {
			for i := len(subs); i < b.Parallelism.Upper; i++ {
				slots = append(slots, sdk.Unit{ID: fmt.Sprintf("%s%d", requestedPrefix, i-len(subs)+1), Phase: sdk.PhaseRequested})
			}
		}
	}
	per := max(int64(math.Round(cfg.ThreadsPerSubtask)), 1)
	var units []sdk.Unit
	top := len(slots)
	r.mu.Lock()
	named := append([]sdk.UnitAdd(nil), r.added[target]...)
	r.mu.Unlock()
	for i := len(named) - 1; i >= 0; i-- {
		n := int((named[i].Size + per - 1) / per)
		if n > top {
			break
		}
		held := slots[top-n : top]
		u := sdk.Unit{ID: named[i].UnitID, Size: int64(n) * per, Phase: sdk.PhaseRunning, CreatedAt: held[0].CreatedAt}
		for _, h := range held {
			u.Phase = min(u.Phase, h.Phase) // the least advanced subtask
		}
		units = append(units, u)
		top -= n
	}
	for _, s := range slots[:top] {
		s.Size = per
		units = append(units, s)
	}
	return units, nil
}

// remember keeps the ids of units a decision added (job mode), and forgets
// those it drains or removes.
func (r *Realizer) remember(t sdk.Target, d sdk.Decision) {
	r.mu.Lock()
	defer r.mu.Unlock()
	gone := map[string]bool{}
	for _, id := range d.Drain {
		gone[id] = true
	}
	for _, rm := range d.Remove {
		gone[rm.UnitID] = true
	}
	var keep []sdk.UnitAdd
	have := map[string]bool{}
	for _, a := range r.added[t] {
		if !gone[a.UnitID] {
			keep = append(keep, a)
			have[a.UnitID] = true
		}
	}
	for _, a := range d.Add {
		if !have[a.UnitID] && !gone[a.UnitID] {
			keep = append(keep, a)
		}
	}
	// Bounded: more named units than the largest parallelism cannot hold
	// subtasks anyway.
	if len(keep) > 1024 {
		keep = keep[len(keep)-1024:]
	}
	r.added[t] = keep
}

// subtaskPhase maps an ExecutionState to a unit phase.
func subtaskPhase(s string) sdk.Phase {
	switch s {
	case "RUNNING", "FINISHED":
		return sdk.PhaseRunning
	case "DEPLOYING", "INITIALIZING":
		return sdk.PhaseBooting
	case "CANCELING", "CANCELED":
		return sdk.PhaseDraining
	}
	return sdk.PhaseRequested
}

// sortedKeys lists a map's keys in order, for output that does not change
// from one call to the next.
func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
