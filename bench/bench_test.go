package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The short bench runs the real command end to end (build, generate,
// simulate with plugin processes, a 20-chain `ebb run` over the canned
// plugins, the cycle benchmarks once, render) so `go run ./bench` cannot rot.
func TestShortBench(t *testing.T) {
	dir := t.TempDir()
	doc := filepath.Join(dir, "B.md")
	old := "# Benchmarks\n\nkept\n\n" + begin + "\nold\n" + end + "\n\nmiddle\n\n" + scaleBegin + "\nold scale\n" + scaleEnd + "\n\ntail\n"
	if err := os.WriteFile(doc, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	root, _ := filepath.Abs("..")
	parts, _ := parseParts("")
	o := options{root: root, doc: doc, out: filepath.Join(dir, "out"), log: os.Stderr, parts: parts, command: "go run ./bench -short",
		scale: scaleOptions{startTimeout: 5 * time.Minute, lateness: "auto", latenessChains: 1000},
		cycle: cycleOptions{pattern: ".", baseline: "(?i)plain|grpc-baseline", pkgs: []string{"./core/runner/", "./core/host/"}}}
	if err := run(o.shortened()); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(doc)
	s := string(b)
	for _, want := range []string{"kept", "middle", "tail", "### nightly", "| dra |", "| oracle |", "out/nightly.svg",
		"## Runner at scale", "| 20 | 1.0 s | 5 s | ", "| **goal** (issue 18) |", "out/scale.svg", "| BenchmarkEvaluation | core/runner |"} {
		if !strings.Contains(s, want) {
			t.Errorf("rewritten doc lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "\nold\n") || strings.Contains(s, "old scale") {
		t.Error("an old section was not replaced")
	}
	// Every evaluation due in 5 s at 1 s for 20 chains is at most 100; the
	// run must have achieved some, through the real plugins.
	if strings.Contains(s, "| 0% (0 / ") {
		t.Errorf("the scale run achieved no evaluation:\n%s", s)
	}
	for _, f := range []string{"nightly.svg", "scale.svg"} {
		if _, err := os.Stat(filepath.Join(dir, "out", f)); err != nil {
			t.Error(err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "out", "scale.json")); err == nil {
		t.Error("a short run wrote scale.json, which keeps the real figures")
	}
}
