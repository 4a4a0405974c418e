// Command testplugin is a small plugin used only by the runner's tests. Its
// kind is chosen by the name it is run as (test-collector, test-evaluator,
// test-realizer), so one binary serves all three. It is not shipped.
//
// The collector reads its snapshot from a JSON file on every call, so a test
// can change demand while the runner runs; the realizer keeps its units as
// files in a directory, so a test can see what was realized.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/ebbscale/ebb/sdk"
)

func main() {
	switch filepath.Base(os.Args[0]) {
	case "test-collector":
		sdk.Serve(&collector{})
	case "test-evaluator":
		sdk.Serve(&evaluator{})
	case "test-realizer":
		sdk.Serve(&realizer{})
	case "test-capper":
		sdk.Serve(&capper{})
	case "test-guard":
		sdk.Serve(&guard{})
	case "test-grpc-baseline":
		serveBaseline(os.Args[1])
	case "test-v1-collector":
		serveV1(sdk.KindCollector)
	case "test-v1-evaluator":
		serveV1(sdk.KindEvaluator)
	case "test-v1-realizer":
		serveV1(sdk.KindRealizer)
	default:
		fmt.Fprintln(os.Stderr, "run me as test-collector, test-evaluator, test-realizer, test-capper, test-guard or test-v1-{collector,evaluator,realizer}")
		os.Exit(2)
	}
}

// ---- collector ----

type collectorConfig struct {
	File string `json:"file"`
	// UnitsDir, when set, is a test-realizer's directory: every unit in it
	// is reported as one registered (or draining) worker of its size.
	UnitsDir string       `json:"units-dir"`
	Sleep    sdk.Duration `json:"sleep"`
	Marker   string       `json:"marker"`
}

type collector struct{ cfg collectorConfig }

// snapshotFile is what the test writes for the collector to report.
type snapshotFile struct {
	Tasks    int64  `json:"tasks"`
	Complete *bool  `json:"complete"`
	Age      string `json:"age"`
	Fail     string `json:"fail"`
	// FailTargets fail only the targets named, so a test can fail one
	// chain among many that share this collector.
	FailTargets []string `json:"fail_targets"`
	Conflict    string   `json:"conflict"`
	// ObservedAt (RFC 3339) replaces the wall clock, for a runner on a
	// virtual clock; Age is counted back from it.
	ObservedAt string `json:"observed_at"`
	// Busy makes every registered worker fully busy; draining ones are idle.
	Busy bool `json:"busy"`
}

func (c *collector) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: "test-collector", Version: "0.0.1", ConfigSchema: sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "file", Type: sdk.TypeString, Required: true, Description: "JSON file read on every Collect"},
		{Name: "sleep", Type: sdk.TypeDuration, Default: "0s", Description: "delay before answering"},
		{Name: "marker", Type: sdk.TypeString, Default: "", Description: "file to write the deadline seen into"},
		{Name: "units-dir", Type: sdk.TypeString, Default: "", Description: "test-realizer directory whose units are reported as workers"},
	}}}, nil
}

func (c *collector) Configure(_ context.Context, raw json.RawMessage) error {
	return sdk.DecodeConfig(raw, &c.cfg)
}

func (c *collector) Collect(ctx context.Context, t sdk.Target) (sdk.Snapshot, error) {
	if t.Name == benchTarget {
		return benchSnapshot(), nil
	}
	tasks, hooked, err := targetHooks(ctx, t.Name)
	if hooked {
		return sdk.Snapshot{ObservedAt: time.Now(), Complete: true, Demand: sdk.Demand{PlannedTasks: tasks}}, err
	}
	if c.cfg.Marker != "" {
		// Record what deadline crossed the process boundary.
		line := "none"
		if d, ok := ctx.Deadline(); ok {
			line = time.Until(d).String()
		}
		_ = os.WriteFile(c.cfg.Marker, []byte(line), 0o644)
	}
	if c.cfg.Sleep > 0 {
		select {
		case <-time.After(c.cfg.Sleep.D()):
		case <-ctx.Done():
			if c.cfg.Marker != "" {
				_ = os.WriteFile(c.cfg.Marker+".done", []byte(ctx.Err().Error()), 0o644)
			}
			return sdk.Snapshot{}, ctx.Err()
		}
	}
	b, err := os.ReadFile(c.cfg.File)
	if err != nil {
		return sdk.Snapshot{}, err
	}
	var f snapshotFile
	if err := json.Unmarshal(b, &f); err != nil {
		return sdk.Snapshot{}, fmt.Errorf("%s: %w", c.cfg.File, err)
	}
	if f.Fail != "" {
		return sdk.Snapshot{}, errors.New(f.Fail)
	}
	if slices.Contains(f.FailTargets, t.Name) {
		return sdk.Snapshot{}, fmt.Errorf("test-collector: target %s fails", t.Name)
	}
	s := sdk.Snapshot{ObservedAt: time.Now(), Complete: true, Demand: sdk.Demand{PlannedTasks: f.Tasks}, Conflict: f.Conflict}
	if f.ObservedAt != "" {
		at, err := time.Parse(time.RFC3339, f.ObservedAt)
		if err != nil {
			return sdk.Snapshot{}, fmt.Errorf("%s: observed_at: %w", c.cfg.File, err)
		}
		s.ObservedAt = at
	}
	if c.cfg.UnitsDir != "" {
		workers, err := unitWorkers(c.cfg.UnitsDir, f.Busy)
		if err != nil {
			return sdk.Snapshot{}, err
		}
		s.Workers = workers
	}
	if f.Complete != nil && !*f.Complete {
		s.Complete = false
		s.IncompleteReasons = []string{"test says incomplete"}
	}
	if f.Age != "" {
		age, err := time.ParseDuration(f.Age)
		if err != nil {
			return sdk.Snapshot{}, err
		}
		s.ObservedAt = s.ObservedAt.Add(-age)
	}
	return s, nil
}

// unitWorkers reports one worker per unit file in dir.
func unitWorkers(dir string, busy bool) ([]sdk.Worker, error) {
	units, err := (&realizer{cfg: realizerConfig{Dir: dir}}).Inventory(context.Background(), sdk.Target{})
	if err != nil {
		return nil, err
	}
	var out []sdk.Worker
	for _, u := range units {
		w := sdk.Worker{ID: "w-" + u.ID, UnitID: u.ID, Threads: u.Size, BusyKnown: true, State: sdk.WorkerRegistered}
		switch {
		case u.Phase == sdk.PhaseDraining:
			w.State = sdk.WorkerDraining
		case busy:
			w.BusyThreads = u.Size
		}
		out = append(out, w)
	}
	return out, nil
}

// ---- evaluator: one unit per task, state counts evaluations ----

type evaluator struct{}

type evalPolicy struct {
	PerUnit int64 `json:"per-unit"`
}

type evalState struct {
	Evaluations int `json:"evaluations"`
	Next        int `json:"next"`
	// Outcome is what the runner said of the previous decision, so a test
	// can see it crossed the process boundary.
	Outcome []string `json:"outcome,omitempty"`
}

func (e *evaluator) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: "test-evaluator", Version: "0.0.1", PolicySchema: sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "per-unit", Type: sdk.TypeNumber, Default: 1, Description: "threads per unit"},
	}}}, nil
}

func (e *evaluator) Configure(context.Context, json.RawMessage) error { return nil }

func (e *evaluator) ValidatePolicy(_ context.Context, raw json.RawMessage) ([]sdk.PolicyProblem, error) {
	var p evalPolicy
	if err := sdk.DecodeConfig(raw, &p); err != nil {
		return nil, err
	}
	if p.PerUnit < 1 {
		return []sdk.PolicyProblem{{Attribute: "per-unit", Message: "per-unit must be at least 1"}}, nil
	}
	return nil, nil
}

func (e *evaluator) Evaluate(ctx context.Context, req sdk.EvaluateRequest) (sdk.EvaluateResponse, error) {
	if _, _, err := targetHooks(ctx, req.Target.Name); err != nil {
		return sdk.EvaluateResponse{}, err
	}
	p := evalPolicy{PerUnit: 1}
	if err := sdk.DecodeConfig(req.Policy, &p); err != nil {
		return sdk.EvaluateResponse{}, err
	}
	var st evalState
	if len(req.State) > 0 {
		if err := json.Unmarshal(req.State, &st); err != nil {
			return sdk.EvaluateResponse{}, fmt.Errorf("bad state: %w", err)
		}
	}
	st.Evaluations++
	st.Outcome = nil
	if req.Outcome != nil {
		for _, a := range req.Outcome.Actions {
			st.Outcome = append(st.Outcome, a.String())
		}
	}
	want := (req.Snapshot.Demand.Tasks() + p.PerUnit - 1) / p.PerUnit
	var active []sdk.Unit
	for _, u := range req.Inventory {
		if u.Phase != sdk.PhaseDraining {
			active = append(active, u)
		}
	}
	sort.Slice(active, func(i, j int) bool { return active[i].ID < active[j].ID })
	d := sdk.Decision{DesiredCapacity: want * p.PerUnit}
	have := int64(len(active))
	switch {
	case want > have:
		for range want - have {
			st.Next++
			d.Add = append(d.Add, sdk.UnitAdd{UnitID: fmt.Sprintf("u-%d", st.Next), Size: p.PerUnit})
		}
	case want < have:
		for _, u := range active[want:] {
			d.Drain = append(d.Drain, u.ID)
		}
	}
	d.Reason = fmt.Sprintf("evaluation %d: %d tasks want %d units, have %d", st.Evaluations, req.Snapshot.Demand.Tasks(), want, have)
	b, _ := json.Marshal(st)
	return sdk.EvaluateResponse{Decision: d, State: b}, nil
}

// ---- realizer: units are files in a directory ----

type realizerConfig struct {
	Dir string `json:"dir"`
	// FailEvery makes every n-th Realize call fail before doing anything.
	FailEvery int64 `json:"fail-every"`
}

type realizer struct{ cfg realizerConfig }

type unitFile struct {
	Size  int64  `json:"size"`
	Phase string `json:"phase"`
}

func (r *realizer) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: "test-realizer", Version: "0.0.1", ConfigSchema: sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "dir", Type: sdk.TypeString, Required: true, Description: "directory holding one file per unit"},
		{Name: "fail-every", Type: sdk.TypeNumber, Default: 0, Description: "fail every n-th Realize call (0: never)"},
	}}}, nil
}

func (r *realizer) Configure(_ context.Context, raw json.RawMessage) error {
	if err := sdk.DecodeConfig(raw, &r.cfg); err != nil {
		return err
	}
	return os.MkdirAll(r.cfg.Dir, 0o755)
}

func (r *realizer) Inventory(ctx context.Context, t sdk.Target) ([]sdk.Unit, error) {
	if strings.HasPrefix(t.Name, "no-inventory") {
		return nil, fmt.Errorf("test-realizer: no inventory for target %s", t.Name)
	}
	if t.Name == benchTarget {
		return benchUnits(), nil
	}
	if _, _, err := targetHooks(ctx, t.Name); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(r.cfg.Dir)
	if err != nil {
		return nil, err
	}
	var out []sdk.Unit
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(r.cfg.Dir, e.Name()))
		if err != nil {
			return nil, err
		}
		var u unitFile
		if err := json.Unmarshal(b, &u); err != nil {
			return nil, fmt.Errorf("unit %s: %w", e.Name(), err)
		}
		phase := sdk.PhaseRunning
		if u.Phase == "draining" {
			phase = sdk.PhaseDraining
		}
		info, _ := e.Info()
		out = append(out, sdk.Unit{ID: e.Name(), Size: u.Size, Phase: phase, CreatedAt: info.ModTime()})
	}
	return out, nil
}

func (r *realizer) write(id string, u unitFile) error {
	b, _ := json.Marshal(u)
	return os.WriteFile(filepath.Join(r.cfg.Dir, id), b, 0o644)
}

func (r *realizer) Realize(_ context.Context, req sdk.RealizeRequest) (string, error) {
	log, err := os.OpenFile(filepath.Join(r.cfg.Dir, ".log"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return "", err
	}
	defer log.Close()
	fmt.Fprintf(log, "%s %s\n", req.RequestID, req.Decision.Summary())
	if r.cfg.FailEvery > 0 {
		// The count is kept in the directory so it survives a restart.
		calls := filepath.Join(r.cfg.Dir, ".calls")
		var n int64
		if b, err := os.ReadFile(calls); err == nil {
			fmt.Sscan(string(b), &n)
		}
		n++
		if err := os.WriteFile(calls, []byte(fmt.Sprint(n)), 0o644); err != nil {
			return "", err
		}
		if n%r.cfg.FailEvery == 0 {
			fmt.Fprintf(log, "%s failed (call %d)\n", req.RequestID, n)
			return "", fmt.Errorf("test-realizer: call %d fails (fail-every %d)", n, r.cfg.FailEvery)
		}
	}
	for _, a := range req.Decision.Add {
		// The unit id is stable across retries: an existing file means the
		// unit was already created.
		if _, err := os.Stat(filepath.Join(r.cfg.Dir, a.UnitID)); err == nil {
			continue
		}
		if err := r.write(a.UnitID, unitFile{Size: a.Size, Phase: "running"}); err != nil {
			return "", err
		}
	}
	for _, id := range req.Decision.Drain {
		// A drain keeps the unit's size; draining a unit that is gone is a
		// no-op, as on a real platform.
		b, err := os.ReadFile(filepath.Join(r.cfg.Dir, id))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		var u unitFile
		if err := json.Unmarshal(b, &u); err != nil {
			return "", fmt.Errorf("unit %s: %w", id, err)
		}
		u.Phase = "draining"
		if err := r.write(id, u); err != nil {
			return "", err
		}
	}
	for _, rm := range req.Decision.Remove {
		if err := os.Remove(filepath.Join(r.cfg.Dir, rm.UnitID)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
	}
	return req.Decision.Summary(), nil
}

func (r *realizer) RealizeParallelismOverrides(context.Context, sdk.OverridesRequest[int64]) (string, error) {
	return "", errors.New("test-realizer has no parallelism")
}

func (r *realizer) RealizeConfigOverrides(context.Context, sdk.OverridesRequest[string]) (string, error) {
	return "", errors.New("test-realizer has no config")
}

// targetHooks lets a batch test give each target its own fate by its name:
// "tasks:N" reports N planned tasks, "fail:MSG" fails with MSG, "panic"
// panics, "hang" waits for the deadline, "crash" ends the process. Other
// names are not hooked.
func targetHooks(ctx context.Context, name string) (tasks int64, hooked bool, err error) {
	switch {
	case strings.HasPrefix(name, "tasks:"):
		_, err := fmt.Sscan(strings.TrimPrefix(name, "tasks:"), &tasks)
		return tasks, true, err
	case strings.HasPrefix(name, "fail:"):
		return 0, true, errors.New(strings.TrimPrefix(name, "fail:"))
	case name == "panic":
		panic("test-collector: asked to panic")
	case name == "hang":
		<-ctx.Done()
		return 0, true, ctx.Err()
	case name == "crash":
		os.Exit(3)
	}
	return 0, false, nil
}
