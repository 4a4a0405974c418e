package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

type options struct {
	root, doc, out string
	short          bool
	log            io.Writer
	// parts to run: control, scale, cycle.
	parts map[string]bool
	// command is how this run was invoked, and note what to say of it,
	// for the scale section.
	command, note string
	scale         scaleOptions
	cycle         cycleOptions
}

// result is one policy's figures as `ebb simulate -json` prints them.
type result struct {
	Policy      string  `json:"policy"`
	Unfinished  int     `json:"unfinished"`
	Provisioned float64 `json:"provisioned_thread_seconds"`
	Used        float64 `json:"used_thread_seconds"`
	Cost        float64 `json:"cost_vs_oracle"`
	Wait        struct {
		P50, P95, P99, Max float64
	} `json:"wait_seconds"`
	Makespan    float64 `json:"makespan_seconds"`
	Peak        int64   `json:"peak_threads"`
	Actions     int     `json:"scale_actions"`
	UnderAcc    float64 `json:"under_provisioning_accuracy_pct"`
	OverAcc     float64 `json:"over_provisioning_accuracy_pct"`
	UnderTime   float64 `json:"under_provisioning_timeshare_pct"`
	OverTime    float64 `json:"over_provisioning_timeshare_pct"`
	Instability float64 `json:"instability_pct"`
	// The oracle's only: core/sim.BootBound in units of 1 and of 4 threads.
	BootBound     float64 `json:"boot_bound_thread_seconds"`
	BootBoundUnit float64 `json:"boot_bound_unit_thread_seconds"`
	// The oracle's only, when its peak is above max-parallelism: its waits
	// held to that ceiling.
	CappedWait *struct{ P99 float64 } `json:"capped_wait_seconds"`
}

type traceRun struct {
	name, source string
	tasks        int
	results      []result
	// variants are the figures of config.hcl's chain changed by each of
	// variants' edits, measured in the same run, by variant name.
	variants map[string][]result
}

// variant is config.hcl's chain with a few attributes changed. Each edit
// must match exactly once, so a change to config.hcl cannot quietly leave
// a variant measuring something else.
type variant struct {
	name  string
	edits [][2]string
}

var variants = []variant{
	// The example as it was before issue 15: a 30 s interval, a floor of
	// 4 threads, Amoro's timers and steps, whole units.
	{"before", [][2]string{
		{`interval = "2s"`, `interval = "30s"`},
		{`  timeout = "2s"`, `  timeout = "10s"`},
		{`timeout = "10s" # deadline`, `timeout = "20s" # deadline`},
		{"min-parallelism      = var.min_optimizers", "min-parallelism      = 4"},
		{`executor-idle-timeout     = "2m"`, `executor-idle-timeout     = "5m"`},
		{`scheduler-backlog-timeout = "10s"`, `scheduler-backlog-timeout = "1m"`},
		{`sustained-backlog-timeout = "2s"`, `sustained-backlog-timeout = "30s"`},
		{`scale-up-cooldown         = "2s"`, `scale-up-cooldown         = "30s"`},
		{`scale-down-cooldown       = "30s"`, `scale-down-cooldown       = "1m"`},
		{`cold-backlog-timeout      = "0s"`, `# cold-backlog-timeout unset`},
		{`backlog-step              = "shortfall"`, `backlog-step              = "ramp"`},
		{`scale-down-step           = "idle"`, `scale-down-step           = "one"`},
		{`unit-size                 = "fit"`, `unit-size                 = "whole"`},
		{`headroom                  = 2`, `# headroom unset`},
	}},
	// The example with whole units: what unit-size "fit" saves and costs.
	{"whole", [][2]string{
		{`unit-size                 = "fit"`, `unit-size                 = "whole"`},
	}},
	// The example without spare threads: what headroom costs and buys.
	{"no-headroom", [][2]string{
		{`headroom                  = 2`, `headroom                  = 0`},
	}},
}

func writeVariant(root, path string, v variant) error {
	b, err := os.ReadFile(filepath.Join(root, "config.hcl"))
	if err != nil {
		return err
	}
	s := string(b)
	for _, e := range v.edits {
		if strings.Count(s, e[0]) != 1 {
			return fmt.Errorf("config.hcl no longer holds %q once; update bench's %q variant", e[0], v.name)
		}
		s = strings.Replace(s, e[0], e[1], 1)
	}
	return os.WriteFile(path, []byte(s), 0o644)
}

const (
	begin = "<!-- control-quality:begin (go run ./bench rewrites this section) -->"
	end   = "<!-- control-quality:end -->"
	// bootDelay is the unit boot time every run uses; the goal's p99 bound
	// is scheduler-backlog-timeout (config.hcl: 10s) plus it.
	bootDelay = time.Minute
	p99Goal   = 10*time.Second + bootDelay
	// minThreads is the previous example's min-parallelism, for the floor's
	// share of its cost.
	minThreads = 4
)

// run builds ebb once and runs the parts asked for.
func run(o options) error {
	tmp, err := os.MkdirTemp("", "ebb-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	ebb := filepath.Join(tmp, "ebb")
	build := exec.Command("go", "build", "-o", ebb, "./cmd/ebb")
	build.Dir, build.Stderr = o.root, o.log
	if err := build.Run(); err != nil {
		return fmt.Errorf("building ebb: %w", err)
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	if o.parts["control"] {
		if err := runControl(o, ebb, tmp); err != nil {
			return err
		}
	}
	if o.parts["scale"] || o.parts["cycle"] {
		return runScale(o, ebb, tmp)
	}
	return nil
}

// runControl regenerates the control-quality section.
func runControl(o options, ebb, tmp string) error {
	type input struct{ name, path, source string }
	var inputs []input
	shapes := []string{"nightly", "diurnal", "weekend", "small-tables", "storm"}
	span := ""
	if o.short {
		shapes, span = []string{"nightly"}, "3h"
	}
	for _, s := range shapes {
		p := filepath.Join(tmp, s+".csv")
		args := []string{"simulate", "generate", s, "-seed", "1", "-o", p}
		if span != "" {
			args = append(args, "-span", span)
		}
		if out, err := exec.Command(ebb, args...).CombinedOutput(); err != nil {
			return fmt.Errorf("generate %s: %v: %s", s, err, out)
		}
		inputs = append(inputs, input{s, p, fmt.Sprintf("`ebb simulate generate %s -seed 1%s`", s, map[bool]string{true: " -span " + span}[span != ""])})
	}
	if !o.short {
		samples, _ := filepath.Glob(filepath.Join(o.root, "bench/traces/*.csv"))
		sort.Strings(samples)
		for _, p := range samples {
			n := strings.TrimSuffix(filepath.Base(p), ".csv")
			inputs = append(inputs, input{n, p, "`bench/traces/" + n + ".csv` (converted, see bench/traces/SOURCES.md)"})
		}
	}
	configs := map[string]string{}
	for _, v := range variants {
		configs[v.name] = filepath.Join(tmp, v.name+".hcl")
		if err := writeVariant(o.root, configs[v.name], v); err != nil {
			return err
		}
	}
	var runs []traceRun
	for _, in := range inputs {
		started := time.Now()
		tasks, results, err := simulate(o, ebb, "config.hcl", in.path, filepath.Join(o.out, in.name+".svg"))
		if err != nil {
			return fmt.Errorf("simulate %s: %w", in.name, err)
		}
		run := traceRun{name: in.name, source: in.source, tasks: tasks, results: results, variants: map[string][]result{}}
		for _, v := range variants {
			if _, run.variants[v.name], err = simulate(o, ebb, configs[v.name], in.path, ""); err != nil {
				return fmt.Errorf("simulate %s (%s): %w", in.name, v.name, err)
			}
		}
		runs = append(runs, run)
		fmt.Fprintf(o.log, "%s: %d tasks, %s\n", in.name, tasks, time.Since(started).Round(time.Millisecond))
	}
	return rewrite(o.doc, begin, end, render(o, runs))
}

// simulate runs `ebb simulate -json` on one trace with one configuration.
func simulate(o options, ebb, cfg, trace, plot string) (int, []result, error) {
	args := []string{"simulate", "-config", cfg, "-trace", trace, "-json", "-boot-delay", bootDelay.String()}
	if plot != "" {
		args = append(args, "-plot", plot)
	}
	cmd := exec.Command(ebb, args...)
	cmd.Dir = o.root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return 0, nil, fmt.Errorf("%v: %s", err, stderr.String())
	}
	var doc struct {
		Tasks    int      `json:"tasks"`
		Policies []result `json:"policies"`
	}
	if err := json.Unmarshal(stdout.Bytes(), &doc); err != nil {
		return 0, nil, err
	}
	return doc.Tasks, doc.Policies, nil
}

// rewrite replaces the section between begin and end of doc, or appends it.
func rewrite(doc, begin, end, section string) error {
	old, err := os.ReadFile(doc)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	s := string(old)
	i, j := strings.Index(s, begin), strings.Index(s, end)
	switch {
	case i >= 0 && j > i:
		s = s[:i] + section + s[j+len(end):]
	default:
		s = strings.TrimRight(s, "\n") + "\n\n" + section + "\n"
	}
	return os.WriteFile(doc, []byte(s), 0o644)
}
