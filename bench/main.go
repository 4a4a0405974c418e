// Command bench regenerates the control-quality section of BENCHMARKS.md:
// it builds ebb, generates the seeded trace shapes, and runs `ebb simulate`
// (the chain's evaluators as real plugin processes) with config.hcl's example
// chain on every generated trace and every converted sample in bench/traces,
// writing one SVG plot per trace to bench/out and the tables between the
// section's markers in BENCHMARKS.md.
//
//	go run ./bench            # from the repository root
//	go run ./bench -short     # one small trace, for CI
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	short := flag.Bool("short", false, "one small generated trace only (for CI)")
	root := flag.String("root", ".", "repository root")
	doc := flag.String("doc", "BENCHMARKS.md", "markdown file whose control-quality section is rewritten (relative to -root)")
	out := flag.String("out", "bench/out", "directory for plots (relative to -root)")
	flag.Parse()
	err := run(options{root: *root, doc: filepath.Join(*root, *doc), out: filepath.Join(*root, *out), short: *short, log: os.Stderr})
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}
