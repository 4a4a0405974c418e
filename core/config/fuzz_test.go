package config

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary source to Parse: it must never panic, every
// diagnostic with a position must name the file and a line, and a config is
// returned only without errors. Run: go test -fuzz=FuzzParse ./core/config
func FuzzParse(f *testing.F) {
	seeds, err := filepath.Glob("testdata/*.hcl")
	if err != nil {
		f.Fatal(err)
	}
	// The README's example is a seed when it is there.
	seeds = append(seeds, filepath.Join("..", "..", "config.hcl"))
	for _, p := range seeds {
		src, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		f.Add(src)
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		cfg, diags := Parse(src, "fuzz.hcl", nil, newFakeResolver())
		for _, d := range diags {
			if d.Subject != nil && (d.Subject.Filename != "fuzz.hcl" || d.Subject.Start.Line <= 0) {
				t.Errorf("diagnostic %q at %q line %d", d.Summary, d.Subject.Filename, d.Subject.Start.Line)
			}
		}
		if cfg != nil && diags.HasErrors() {
			t.Errorf("config returned with errors:\n%s", FormatDiagnostics(diags))
		}
		if cfg == nil && !diags.HasErrors() {
			t.Errorf("no config and no error")
		}
		_ = FormatDiagnostics(diags)
	})
}
