package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
)

// benchLine is one result line of `go test -bench`.
type benchLine struct {
	Pkg   string  `json:"pkg"`
	Name  string  `json:"name"` // without the -GOMAXPROCS suffix
	N     int64   `json:"n"`
	NsOp  float64 `json:"ns_per_op"`
	BOp   float64 `json:"b_per_op"`
	Alloc float64 `json:"allocs_per_op"`
	// Extra are the b.ReportMetric figures by unit ("ns/eval").
	Extra map[string]float64 `json:"extra,omitempty"`
	// Ratio is this benchmark's time per evaluation over the baseline's.
	Ratio float64 `json:"ratio,omitempty"`
}

// cycleOptions are the micro-benchmarks' flags.
type cycleOptions struct {
	pattern, baseline, benchtime string
	pkgs                         []string
}

var procsSuffix = regexp.MustCompile(`-\d+$`)

// parseBench reads `go test -bench` output: "pkg: X" lines name the package
// of the lines after them; a result line is
// "BenchmarkX-2  N  v ns/op  [v unit]...".
func parseBench(r io.Reader) ([]benchLine, error) {
	var out []benchLine
	pkg := ""
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimSpace(p)
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
			continue // "BenchmarkX" alone (a sub-benchmark's parent), logs, PASS, ok
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		b := benchLine{Pkg: pkg, Name: procsSuffix.ReplaceAllString(f[0], ""), N: n}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("%s: %q is not a number", f[0], f[i])
			}
			switch unit := f[i+1]; unit {
			case "ns/op":
				b.NsOp = v
			case "B/op":
				b.BOp = v
			case "allocs/op":
				b.Alloc = v
			default:
				if b.Extra == nil {
					b.Extra = map[string]float64{}
				}
				b.Extra[unit] = v
			}
		}
		out = append(out, b)
	}
	return out, sc.Err()
}

// perEval is a benchmark's time per evaluation: a "ns/eval" metric when it
// reports one (a batched benchmark runs many evaluations per op), else ns/op.
func (b benchLine) perEval() float64 {
	if v, ok := b.Extra["ns/eval"]; ok {
		return v
	}
	return b.NsOp
}

// withRatios sets each benchmark's ratio to the first one whose name matches
// baseline; it returns the baseline's name, or "" when none matched.
func withRatios(lines []benchLine, baseline *regexp.Regexp) string {
	var base *benchLine
	for i := range lines {
		if baseline.MatchString(lines[i].Name) {
			base = &lines[i]
			break
		}
	}
	if base == nil || base.perEval() == 0 {
		return ""
	}
	for i := range lines {
		lines[i].Ratio = lines[i].perEval() / base.perEval()
	}
	return base.Name
}

// runCycle runs the cycle benchmarks in a go test subprocess, echoing its
// output as progress.
func runCycle(o options, co cycleOptions) ([]benchLine, error) {
	args := append([]string{"test", "-run", "^$", "-bench", co.pattern, "-benchtime", co.benchtime, "-benchmem"}, co.pkgs...)
	fmt.Fprintf(o.log, "cycle: go %s\n", strings.Join(args, " "))
	cmd := exec.Command("go", args...)
	cmd.Dir = o.root
	var out bytes.Buffer
	cmd.Stdout = io.MultiWriter(&out, o.log)
	cmd.Stderr = o.log
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go %s: %w", strings.Join(args, " "), err)
	}
	return parseBench(&out)
}
