// Command bench regenerates the measured sections of BENCHMARKS.md:
//
//   - control: builds ebb, generates the seeded trace shapes, and runs `ebb
//     simulate` (the chain's evaluators as real plugin processes) with
//     config.hcl's example chain on every generated trace and every converted
//     sample in bench/traces, writing one SVG plot per trace to bench/out.
//
//   - scale: runs the built `ebb run` on generated configs of 100, 1,000 and
//     10,000 chains over canned plugins (bench/canned) for a fixed window
//     each, measuring evaluations achieved against due, lateness, memory,
//     CPU per evaluation, start time and state size (bench/out/scale.json
//     keeps the rows, bench/out/scale.svg plots them).
//
//   - cycle: the cycle micro-benchmarks (go test -bench in a subprocess)
//     beside the plain-gRPC baseline, reported in the scale section.
//
// Usage:
//
//	go run ./bench                       # everything (the 10,000-chain run takes ~10 min)
//	go run ./bench -only control         # one part: control, scale (its runs and cycle) or cycle
//	go run ./bench -only scale -sizes 1000:1s -duration 2m
//	go run ./bench -short                # small versions of every part, for CI
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

func main() {
	short := flag.Bool("short", false, "small versions of every part: one 3h trace, 20 chains for 5 s, each benchmark once (for CI)")
	root := flag.String("root", ".", "repository root")
	doc := flag.String("doc", "BENCHMARKS.md", "markdown file whose sections are rewritten (relative to -root)")
	out := flag.String("out", "bench/out", "directory for plots and scale.json (relative to -root)")
	only := flag.String("only", "", "comma-separated parts to run: control, scale (the scale runs and the cycle benchmarks), cycle; default all")
	sizes := flag.String("sizes", "100:1s,1000:1s,10000:10s", "scale runs as chains:interval, comma-separated")
	duration := flag.Duration("duration", time.Minute, "window of each scale run after the HTTP API answers (at least 5 intervals are run)")
	scrapeEvery := flag.Duration("scrape", 10*time.Second, "how often a scale run reads /metrics (progress and the plot)")
	startTimeout := flag.Duration("start-timeout", 15*time.Minute, "how long a scale run may wait for the HTTP API")
	lateness := flag.String("lateness", "auto", "lateness source: auto (the runner's "+latenessMetric+" when present, else the decision log), metric or log")
	latenessChains := flag.Int("lateness-chains", 1000, "most chains whose decision logs are read for lateness (an even sample)")
	jitter := flag.String("jitter", "", "jitter of every generated chain (default: the runner's)")
	pattern := flag.String("bench", ".", "go test -bench pattern of the cycle benchmarks")
	pkgs := flag.String("bench-pkgs", "./core/runner/,./core/host/", "packages of the cycle benchmarks, comma-separated")
	baseline := flag.String("baseline", "(?i)plain|grpc-baseline", "regexp naming the plain-gRPC baseline benchmark; ratios are to it")
	benchtime := flag.String("benchtime", "3s", "go test -benchtime of the cycle benchmarks")
	note := flag.String("note", "", "a remark kept with this run's scale rows (what code, what load)")
	flag.Parse()

	o := options{root: *root, doc: under(*root, *doc), out: under(*root, *out), short: *short, log: os.Stderr,
		command: strings.TrimSpace("go run ./bench " + quoteArgs(withoutNote(os.Args[1:]))), note: *note,
		scale: scaleOptions{duration: *duration, scrapeEvery: *scrapeEvery, startTimeout: *startTimeout, lateness: *lateness, latenessChains: *latenessChains, jitter: *jitter},
		cycle: cycleOptions{pattern: *pattern, baseline: *baseline, benchtime: *benchtime, pkgs: strings.Split(*pkgs, ",")}}
	var err error
	if o.parts, err = parseParts(*only); err == nil {
		o.scale.sizes, err = parseSizes(*sizes)
	}
	if err == nil && *lateness != "auto" && *lateness != "metric" && *lateness != "log" {
		err = fmt.Errorf("-lateness %q: want auto, metric or log", *lateness)
	}
	if err == nil && *short {
		o = o.shortened()
	}
	if err == nil {
		err = run(o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// shortened is the -short run: 20 chains for 5 s, each benchmark once.
func (o options) shortened() options {
	o.short = true
	o.scale.sizes, o.scale.duration, o.scale.scrapeEvery, o.cycle.benchtime = []size{{20, time.Second}}, 5*time.Second, time.Second, "1x"
	return o
}

// withoutNote drops -note and its value: the section shows the note apart.
func withoutNote(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := strings.TrimLeft(args[i], "-")
		switch {
		case a == "note" && args[i] != a:
			i++ // its value follows
		case strings.HasPrefix(a, "note=") && args[i] != a:
		default:
			out = append(out, args[i])
		}
	}
	return out
}

// quoteArgs writes args as a shell would need them.
func quoteArgs(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = a
		if strings.ContainsAny(a, " \t'\"$*?") {
			out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(out, " ")
}

// under is path relative to root, unless it is absolute.
func under(root, path string) string {
	if filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(root, path)
}

func parseParts(s string) (map[string]bool, error) {
	if s == "" {
		return map[string]bool{"control": true, "scale": true, "cycle": true}, nil
	}
	parts := map[string]bool{}
	for _, p := range strings.Split(s, ",") {
		switch p = strings.TrimSpace(p); p {
		case "control", "cycle":
			parts[p] = true
		case "scale":
			parts["scale"], parts["cycle"] = true, true
		default:
			return nil, fmt.Errorf("-only %q: unknown part %q (want control, scale or cycle)", s, p)
		}
	}
	return parts, nil
}
