package main

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
)

const (
	scaleBegin = "<!-- scale:begin (go run ./bench rewrites this section) -->"
	scaleEnd   = "<!-- scale:end -->"
)

// scaleDoc is what bench/out/scale.json keeps between runs, so that a run
// of some sizes (-sizes) or of the cycle benchmarks alone (-only cycle)
// rewrites the section with the other rows as last measured.
type scaleDoc struct {
	Machine string       `json:"machine"`
	Sizes   []sizeResult `json:"sizes"`
	Cycle   struct {
		Command  string      `json:"command"`
		Baseline string      `json:"baseline"`
		Measured string      `json:"measured"`
		Commit   string      `json:"commit"`
		Results  []benchLine `json:"results"`
	} `json:"cycle"`
}

func loadScaleDoc(path string) scaleDoc {
	var d scaleDoc
	if b, err := os.ReadFile(path); err == nil {
		_ = json.Unmarshal(b, &d) // a damaged file is rebuilt from this run
	}
	return d
}

// merge puts this run's rows in place of the stored ones of the same size.
func (d *scaleDoc) merge(rows []sizeResult) {
	for _, r := range rows {
		replaced := false
		for i := range d.Sizes {
			if d.Sizes[i].Chains == r.Chains && d.Sizes[i].Interval == r.Interval {
				d.Sizes[i], replaced = r, true
			}
		}
		if !replaced {
			d.Sizes = append(d.Sizes, r)
		}
	}
	sort.Slice(d.Sizes, func(i, j int) bool { return d.Sizes[i].Chains < d.Sizes[j].Chains })
}

func (d scaleDoc) save(path string) error {
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// machine names what the figures were measured on.
func machine(root string) string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	gov := runtime.Version()
	if out, err := exec.Command("go", "env", "GOVERSION").Output(); err == nil {
		gov = strings.TrimSpace(string(out))
	}
	return fmt.Sprintf("nproc %d (%s), %s, %s/%s", runtime.NumCPU(), model, gov, runtime.GOOS, runtime.GOARCH)
}

// commit is the checked-out commit, "-dirty" with uncommitted changes.
func commit(root string) string {
	out, err := exec.Command("git", "-C", root, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		c += "-dirty"
	}
	return c
}

func renderScale(o options, d scaleDoc) string {
	var b strings.Builder
	fmt.Fprintln(&b, scaleBegin)
	fmt.Fprintln(&b, "## Runner at scale")
	fmt.Fprintln(&b)
	fmt.Fprintf(&b, "```sh\ngo run ./bench -only scale   # every size, then the cycle benchmarks; -sizes, -duration: see go run ./bench -h\n```\n\n")
	var cmds []string
	for _, r := range d.Sizes {
		if r.Command != "" && !slices.Contains(cmds, "`"+r.Command+"`") {
			cmds = append(cmds, "`"+r.Command+"`")
		}
	}
	if len(cmds) > 0 {
		fmt.Fprintf(&b, "The rows below were measured by %s.\n\n", strings.Join(cmds, " and "))
	}
	fmt.Fprintf(&b, "Machine: %s. It is shared with other engineers' builds, so absolute figures are noisy; "+
		"the ratios of the cycle benchmarks, measured side by side, are the figures to compare. "+
		"The last column gives the machine's 1-minute load average at the window's start and end.\n\n", d.Machine)
	fmt.Fprintln(&b, "Each size is a real `ebb run` (the built binary) on a generated config of N chains, each its own target, over "+
		"two canned plugins from `plugin_dir` (bench/canned: a collector and a realizer that answer from memory with a small "+
		"optimizer group per target, demand that comes and goes per target) and the builtin evaluator-dra; "+
		"one process per plugin block, shared by all chains. The window starts when the HTTP API first answers "+
		"(the runner starts its chains right after) and lasts the run's duration.")
	fmt.Fprintln(&b)
	fmt.Fprintln(&b, "- **achieved / due**: evaluations that reached a decision (`ebb_evaluations_total`, results ok and degraded, "+
		"summed over chains) over the ticks due in the window, N × ⌈window / interval⌉ (every chain ticking at start + k·interval).")
	fmt.Fprintln(&b, "- **lateness**: an evaluation's start minus its due tick: from the runner's histogram `"+latenessMetric+
		"` where it exports one, else from the decision log (each record's start time against the chain's start + k·interval, "+
		"k counting its evaluations; at most 1,000 chains sampled evenly), which counts the drift of a runner that waits an interval after each evaluation ends. "+
		"\"(log)\" marks figures from the decision log.")
	fmt.Fprintln(&b, "- **RSS**: from /proc/PID/status; the runner's peak is its VmHWM, the plugins' is the largest sum of their VmRSS "+
		"sampled every second. **CPU / evaluation**: utime + stime (/proc/PID/stat) of ebb and all its descendants, "+
		"reaped children included, over the window, divided by the evaluations achieved.")
	fmt.Fprintln(&b, "- **start**: from exec until `/v1/health` answers, and until `/v1/ready` does (every chain evaluated once). "+
		"**store**: the state file at the end of the window, and its growth over the window.")
	fmt.Fprintln(&b)
	fmt.Fprintln(&b, "| chains | interval | window | achieved / due | lateness p50 / p99 | runner RSS end (peak) | plugin RSS end (peak) | CPU / evaluation | start: HTTP / ready | store (growth) | measured (load avg) |")
	fmt.Fprintln(&b, "|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range d.Sizes {
		p99 := secs(r.LatenessP99)
		if r.LatenessAbove {
			p99 = "> " + p99
		}
		ach := fmt.Sprintf("%.0f%% (%s / %s)", 100*r.Achieved/r.Due, count(r.Achieved), count(r.Due))
		if r.Missed != nil {
			ach += fmt.Sprintf(", %s missed", count(*r.Missed))
		}
		if r.Errors > 0 {
			ach += fmt.Sprintf(", %s errors", count(r.Errors))
		}
		if r.StartTimedOut {
			fmt.Fprintf(&b, "| %s | %s | | not started | | %.0f MB (%.0f) at the timeout | %.0f MB (%.0f), %d processes | | HTTP not up after %.0f s | | %s %s%s |\n",
				count(float64(r.Chains)), secs(&r.Interval), r.RunnerRSSEnd, r.RunnerRSSPeak, r.PluginRSSEnd, r.PluginRSSPeak, r.Plugins,
				r.StartHTTP, r.Measured, r.Commit, loadOf(r))
			continue
		}
		ready := secs(r.StartReady)
		if r.StartReady == nil {
			ready = "not in the window"
		}
		src := ""
		if strings.HasPrefix(r.LatenessSource, "decision log") {
			src = " (log)"
		}
		// A figure a row does not have (0) reads n/a rather than zero.
		cpu, plugins, store := "n/a", "n/a", "n/a"
		if r.CPUPerEval > 0 {
			cpu = fmt.Sprintf("%.0f µs", r.CPUPerEval)
		}
		if r.PluginRSSPeak > 0 {
			plugins = fmt.Sprintf("%.0f MB (%.0f), %d processes", r.PluginRSSEnd, r.PluginRSSPeak, r.Plugins)
		}
		if r.StoreMB > 0 {
			store = fmt.Sprintf("%.1f MB (+%.1f MB/min)", r.StoreMB, r.StoreGrowth)
		}
		fmt.Fprintf(&b, "| %s | %s | %.0f s | %s | %s / %s%s | %.0f MB (%.0f) | %s | %s | %.1f s / %s | %s | %s %s%s |\n",
			count(float64(r.Chains)), secs(&r.Interval), r.Window, ach, secs(r.LatenessP50), p99, src,
			r.RunnerRSSEnd, r.RunnerRSSPeak, plugins, cpu, r.StartHTTP, ready, store, r.Measured, r.Commit, loadOf(r))
	}
	fmt.Fprint(&b, "| **goal** (issue 18) | | | all | p99 < 100 ms (1,000 at 1 s), < 1 s (10,000 at 10 s) | ≤ 200 MB (10,000 chains) | | ≤ 200 µs | ≤ 5 s | bounded by retention: stops growing | |\n\n")
	var notes []string
	for _, r := range d.Sizes {
		if n := fmt.Sprintf("%s chains (%s): %s", count(float64(r.Chains)), r.Measured, r.Note); r.Note != "" && !slices.Contains(notes, n) {
			notes = append(notes, n)
		}
	}
	for _, r := range d.Sizes {
		kinds := make([]string, 0, len(r.ErrorKinds))
		for k := range r.ErrorKinds {
			kinds = append(kinds, k)
		}
		sort.Slice(kinds, func(i, j int) bool { return r.ErrorKinds[kinds[i]] > r.ErrorKinds[kinds[j]] })
		for _, k := range kinds {
			notes = append(notes, fmt.Sprintf("%s chains: %d× `evaluation failed: %s`", count(float64(r.Chains)), r.ErrorKinds[k], strings.ReplaceAll(k, "`", "'")))
		}
	}
	for _, n := range notes {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	if len(notes) > 0 {
		fmt.Fprintln(&b)
	}
	fmt.Fprintln(&b, "`-lateness metric` insists on the runner's histogram (n/a without it), `-lateness log` on the decision log; "+
		"the default takes the histogram when /metrics has it.")
	fmt.Fprintln(&b)
	if len(d.Sizes) > 0 {
		rel, _ := filepath.Rel(filepath.Dir(o.doc), filepath.Join(o.out, "scale.svg"))
		fmt.Fprintf(&b, "![achieved evaluations over due ones during each run](%s)\n\n", filepath.ToSlash(rel))
	}
	if c := d.Cycle; len(c.Results) > 0 {
		fmt.Fprintf(&b, "The cycle benchmarks, in the same invocation (%s, %s):\n\n```sh\n%s\n```\n\n", c.Measured, c.Commit, c.Command)
		base := "the plain-gRPC baseline"
		if c.Baseline != "" {
			base = c.Baseline
		}
		fmt.Fprintf(&b, "| benchmark | package | ns/op | per evaluation | B/op | allocs/op | vs %s |\n|---|---|---|---|---|---|---|\n", base)
		for _, l := range c.Results {
			ratio := "n/a (no baseline ran)"
			if c.Baseline != "" {
				ratio = fmt.Sprintf("%.2fx", l.Ratio)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %.0f | %.0f | %s |\n", l.Name, strings.TrimPrefix(l.Pkg, "github.com/ebbscale/ebb/"),
				dur(l.NsOp), dur(l.perEval()), l.BOp, l.Alloc, ratio)
		}
		fmt.Fprintln(&b)
		fmt.Fprintln(&b, "Per evaluation is a benchmark's `ns/eval` metric where it reports one (a batch is many evaluations per op), else ns/op.")
		fmt.Fprintln(&b)
	}
	fmt.Fprint(&b, scaleEnd)
	return b.String()
}

func loadOf(r sizeResult) string {
	if r.Load == [2]float64{} {
		return ""
	}
	return fmt.Sprintf(" (%.0f–%.0f)", r.Load[0], r.Load[1])
}

// count writes 12345 as 12,345.
func count(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func dur(ns float64) string {
	switch {
	case ns >= 1e6:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	}
	return fmt.Sprintf("%.0f ns", ns)
}

// plotScale draws achieved over due evaluations (in %) against time, one
// line per size.
func plotScale(path string, sizes []sizeResult) error {
	const w, h, left, right, top, bottom = 640, 320, 50, 150, 30, 40
	maxT := 1.0
	for _, r := range sizes {
		maxT = math.Max(maxT, r.Window)
	}
	x := func(t float64) float64 { return left + (w-left-right)*t/maxT }
	y := func(pct float64) float64 { return top + (h-top-bottom)*(1-math.Min(pct, 120)/120) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", w, h)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", w, h)
	fmt.Fprintf(&b, `<text x="%d" y="18" font-size="14">ebb run: evaluations achieved / due (%%), over the run</text>`+"\n", left)
	for _, pct := range []float64{0, 25, 50, 75, 100} {
		stroke := "#ddd"
		if pct == 100 {
			stroke = "#888"
		}
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="%s"/><text x="%d" y="%.1f" text-anchor="end">%.0f%%</text>`+"\n",
			left, w-right, y(pct), y(pct), stroke, left-5, y(pct)+4, pct)
	}
	for i := 0; i <= 4; i++ {
		t := maxT * float64(i) / 4
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%.0f s</text>`+"\n", x(t), h-bottom+16, t)
	}
	colors := []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd"}
	for i, r := range sizes {
		c := colors[i%len(colors)]
		var pts []string
		for _, p := range r.Progress {
			if p.Due > 0 {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(p.T), y(100*p.Achieved/p.Due)))
			}
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", c, strings.Join(pts, " "))
		ly := top + 10 + 18*i
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="2"/><text x="%d" y="%d">%s chains, %s</text>`+"\n",
			w-right+10, w-right+30, ly, ly, c, w-right+35, ly+4, count(float64(r.Chains)), secs(&r.Interval))
	}
	b.WriteString("</svg>\n")
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
