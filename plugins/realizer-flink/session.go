package flink

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ebbscale/ebb/sdk"
)

// Global job parameters ebb gives each session unit. Flink shows them as the
// job's user-config (GET /jobs/:jobid/config), so a restarted runner finds
// its units on the cluster: Amoro's optimizer names every job alike.
const (
	paramManagedBy = "ebb.managed-by"
	paramChain     = "ebb.chain"
	paramGroup     = "ebb.group"
	paramUnit      = "ebb.unit"
	paramThreads   = "ebb.threads"
	paramRestart   = "ebb.restart"
)

// maxSessionJobs bounds how many jobs an inventory reads the config of.
const maxSessionJobs = 1000

// sessionUnits run each optimizer as a job on a session cluster, submitted
// over REST as Amoro's FlinkOptimizerContainer does for its session target
// (amoro.md §3.4): the jar is uploaded unless present, then run.
type sessionUnits struct {
	r   *Realizer
	cfg Config
	rc  *restClient
}

// jobID derives the job id of a unit (and of each restart of it), so a
// retried submission names the same job and Flink refuses a second one.
func jobID(t sdk.Target, unitID, restart string) string {
	h := sha256.Sum256([]byte(t.Chain + "\x00" + t.Name + "\x00" + unitID + "\x00" + restart))
	return hex.EncodeToString(h[:16])
}

// jar returns the cluster's id of the optimizer jar, uploading it once.
func (s *sessionUnits) jar(ctx context.Context) (string, error) {
	s.r.mu.Lock()
	id := s.r.jarID
	s.r.mu.Unlock()
	var list struct {
		Files []struct{ ID, Name string } `json:"files"`
	}
	if err := s.rc.do(ctx, http.MethodGet, "/jars", nil, &list); err != nil {
		return "", err
	}
	name := filepath.Base(s.cfg.JarPath)
	for _, f := range list.Files {
		if (id != "" && f.ID == id) || (id == "" && f.Name == name) {
			s.r.mu.Lock()
			s.r.jarID = f.ID
			s.r.mu.Unlock()
			return f.ID, nil
		}
	}
	id, err := s.rc.uploadJar(ctx, s.cfg.JarPath)
	if err != nil {
		return "", err
	}
	s.r.mu.Lock()
	s.r.jarID = id
	s.r.mu.Unlock()
	return id, nil
}

// sessionJob is one of ebb's jobs on the cluster.
type sessionJob struct {
	overview jobOverview
	params   map[string]string
}

// jobs lists ebb's jobs of the target that have not ended.
func (s *sessionUnits) jobs(ctx context.Context, t sdk.Target) (map[string][]sessionJob, error) {
	all, err := s.rc.jobs(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string][]sessionJob{}
	read := 0
	for _, j := range all {
		if terminalState(j.State) {
			continue
		}
		if read++; read > maxSessionJobs {
			return nil, fmt.Errorf("the session cluster runs more than %d jobs; not reading them all", maxSessionJobs)
		}
		var cfg struct {
			Exec struct {
				User map[string]string `json:"user-config"`
			} `json:"execution-config"`
		}
		if err := s.rc.do(ctx, http.MethodGet, "/jobs/"+j.ID+"/config", nil, &cfg); err != nil {
			if re := asREST(err); re != nil && re.Status == http.StatusNotFound {
				continue // ended between the two calls
			}
			return nil, err
		}
		p := cfg.Exec.User
		if p[paramManagedBy] != ManagedByValue || p[paramChain] != t.Chain || p[paramGroup] != t.Name || p[paramUnit] == "" {
			continue
		}
		if jobID(t, p[paramUnit], p[paramRestart]) != j.ID {
			continue // parameters copied onto some other job: not ours
		}
		out[p[paramUnit]] = append(out[p[paramUnit]], sessionJob{overview: j, params: p})
	}
	return out, nil
}

// current is a unit's live job: the one not being cancelled, else the newest.
func current(js []sessionJob) sessionJob {
	best := js[0]
	for _, j := range js[1:] {
		if (best.overview.State == "CANCELLING") != (j.overview.State == "CANCELLING") {
			if best.overview.State == "CANCELLING" {
				best = j
			}
			continue
		}
		if j.overview.StartTime > best.overview.StartTime {
			best = j
		}
	}
	return best
}

func (s *sessionUnits) inventory(ctx context.Context, t sdk.Target) ([]sdk.Unit, error) {
	jobs, err := s.jobs(ctx, t)
	if err != nil {
		return nil, err
	}
	units := []sdk.Unit{}
	for id, js := range jobs {
		j := current(js)
		size, _ := strconv.ParseInt(j.params[paramThreads], 10, 64)
		u := sdk.Unit{ID: id, Size: size, CreatedAt: time.UnixMilli(j.overview.StartTime).UTC(),
			Labels: map[string]string{"flink-job-id": j.overview.ID}}
		switch j.overview.State {
		case "CANCELLING":
			// last-modification is when the job entered CANCELLING.
			u.Phase, u.DrainStartedAt = sdk.PhaseDraining, time.UnixMilli(j.overview.LastModification).UTC()
		case "RUNNING":
			u.Phase = sdk.PhaseBooting
			if j.overview.Tasks["running"] == j.overview.Tasks["total"] && j.overview.Tasks["total"] > 0 {
				u.Phase = sdk.PhaseRunning
			}
		default:
			u.Phase = sdk.PhaseBooting
		}
		units = append(units, u)
	}
	return units, nil
}

// submit runs one optimizer job for a unit.
func (s *sessionUnits) submit(ctx context.Context, t sdk.Target, unitID string, threads int64, restart string) error {
	jar, err := s.jar(ctx)
	if err != nil {
		return err
	}
	params := fmt.Sprintf("%s:%s,%s:%s,%s:%s,%s:%s,%s:%d,%s:%s", paramManagedBy, ManagedByValue, paramChain, t.Chain,
		paramGroup, t.Name, paramUnit, unitID, paramThreads, threads, paramRestart, restart)
	fc := map[string]string{}
	for k, v := range s.cfg.FlinkConfiguration {
		fc[k] = v
	}
	fc["pipeline.global-job-parameters"] = params
	body := map[string]any{
		"entryClass": optimizerClass, "programArgsList": optimizerArgs(s.cfg, t.Name, unitID, threads),
		"parallelism": threads, "jobId": jobID(t, unitID, restart), "flinkConfiguration": fc,
	}
	var out struct {
		JobID string `json:"jobid"`
	}
	err = s.rc.do(ctx, http.MethodPost, "/jars/"+jar+"/run", body, &out)
	if re := asREST(err); re != nil && re.has("DuplicateJobSubmissionException") {
		return nil // an earlier attempt got through: the job exists
	}
	return err
}

func (s *sessionUnits) add(ctx context.Context, t sdk.Target, a sdk.UnitAdd, _ string) (string, error) {
	if s.cfg.BalancedTasks {
		if err := checkBalanced(ctx, s.rc); err != nil {
			return "", err
		}
	}
	jobs, err := s.jobs(ctx, t)
	if err != nil {
		return "", err
	}
	if js, ok := jobs[a.UnitID]; ok {
		if current(js).overview.State == "CANCELLING" {
			return "", fmt.Errorf("unit %q is still draining; a new unit needs a new id", a.UnitID)
		}
		return "exists " + a.UnitID, nil
	}
	// A released unit's job id is taken for good (Flink keeps terminated
	// jobs in its job result store).
	var j jobDetails
	err = s.rc.do(ctx, http.MethodGet, "/jobs/"+jobID(t, a.UnitID, ""), nil, &j)
	if err == nil && terminalState(j.State) {
		return "", fmt.Errorf("unit %q was released (job %s is %s); a new unit needs a new id", a.UnitID, j.ID, j.State)
	}
	if err := s.submit(ctx, t, a.UnitID, a.Size, ""); err != nil {
		return "", fmt.Errorf("submit unit %q: %w", a.UnitID, err)
	}
	return "submitted " + a.UnitID, nil
}

// release cancels the unit's jobs without a savepoint (PATCH mode=cancel):
// Amoro's FlinkExecutor drains its tasks while Flink cancels it. A forced
// release is the same call; Flink's task.cancellation.timeout bounds it.
func (s *sessionUnits) release(ctx context.Context, t sdk.Target, unitID string, force bool) (string, error) {
	jobs, err := s.jobs(ctx, t)
	if err != nil {
		return "", err
	}
	js, ok := jobs[unitID]
	if !ok {
		return "already gone " + unitID, nil
	}
	verb := "draining "
	if force {
		verb = "force-removed "
	}
	for _, j := range js {
		if j.overview.State == "CANCELLING" && !force {
			continue
		}
		err := s.rc.do(ctx, http.MethodPatch, "/jobs/"+j.overview.ID+"?mode=cancel", nil, nil)
		if re := asREST(err); re != nil && re.Status == http.StatusNotFound {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("cancel unit %q: %w", unitID, err)
		}
	}
	return verb + unitID, nil
}

// restart cancels the unit's job and submits a new one under a job id of
// this restart, keeping the unit id the optimizer registers with.
func (s *sessionUnits) restart(ctx context.Context, t sdk.Target, unitID, requestID string) (string, error) {
	if strings.ContainsAny(requestID, ",:") {
		return "", fmt.Errorf("restart unit %q: request id %q cannot be a job parameter", unitID, requestID)
	}
	jobs, err := s.jobs(ctx, t)
	if err != nil {
		return "", err
	}
	js, ok := jobs[unitID]
	if !ok {
		return "", fmt.Errorf("restart unit %q: no job of it runs", unitID)
	}
	cur := current(js)
	if cur.params[paramRestart] == requestID {
		return "already restarted " + unitID, nil
	}
	threads, _ := strconv.ParseInt(cur.params[paramThreads], 10, 64)
	if err := s.rc.do(ctx, http.MethodPatch, "/jobs/"+cur.overview.ID+"?mode=cancel", nil, nil); err != nil {
		if re := asREST(err); re == nil || re.Status != http.StatusNotFound {
			return "", fmt.Errorf("restart unit %q: %w", unitID, err)
		}
	}
	if err := s.submit(ctx, t, unitID, max(threads, 1), requestID); err != nil {
		return "", fmt.Errorf("restart unit %q: %w", unitID, err)
	}
	return "restarted " + unitID, nil
}
