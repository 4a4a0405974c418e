package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The short bench runs the real command end to end (build, generate,
// simulate with plugin processes, render) so `go run ./bench` cannot rot.
func TestShortBench(t *testing.T) {
	dir := t.TempDir()
	doc := filepath.Join(dir, "B.md")
	if err := os.WriteFile(doc, []byte("# Benchmarks\n\nkept\n\n"+begin+"\nold\n"+end+"\n\ntail\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	root, _ := filepath.Abs("..")
	if err := run(options{root: root, doc: doc, out: filepath.Join(dir, "out"), short: true, log: os.Stderr}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(doc)
	s := string(b)
	for _, want := range []string{"kept", "tail", "### nightly", "| dra |", "| oracle |", "out/nightly.svg"} {
		if !strings.Contains(s, want) {
			t.Errorf("rewritten doc lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "\nold\n") {
		t.Error("the old section was not replaced")
	}
	if _, err := os.Stat(filepath.Join(dir, "out", "nightly.svg")); err != nil {
		t.Error(err)
	}
}
