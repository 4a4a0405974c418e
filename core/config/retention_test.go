package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The state block's retention settings: defaults, values that are taken,
// and each bad value reported at FILE:LINE:COL.
func TestStateRetention(t *testing.T) {
	tests := []struct {
		block    string
		keep     int
		keepFor  time.Duration
		wantDiag string
	}{
		{``, DefaultKeepDecisions, DefaultKeepFor, ""},
		{`keep_decisions = 50`, 50, DefaultKeepFor, ""},
		{`keep_for = "36h"`, DefaultKeepDecisions, 36 * time.Hour, ""},
		{`keep_decisions = 10
  keep_for = "30 min"`, 10, 30 * time.Minute, ""},
		{`keep_decisions = 0`, 0, 0, "2:20: Invalid keep_decisions: keep_decisions must be from 1 to 1000000 records per chain, not 0"},
		{`keep_decisions = -5`, 0, 0, "2:20: Invalid keep_decisions"},
		{`keep_decisions = 2000000`, 0, 0, "2:20: Invalid keep_decisions"},
		{`keep_decisions = 1.5`, 0, 0, "2:20: Invalid keep_decisions: keep_decisions must be a whole number"},
		{`keep_decisions = "many"`, 0, 0, "2:20: Incorrect attribute value type: keep_decisions: a number is required"},
		{`keep_for = "0s"`, 0, 0, "2:14: Invalid keep_for: keep_for must be a duration greater than zero"},
		{`keep_for = "-1h"`, 0, 0, `2:14: Incorrect attribute value type: keep_for: duration "-1h" must not be negative`},
		{`keep_for = "a week"`, 0, 0, `2:14: Incorrect attribute value type: keep_for: invalid duration "a week"`},
		{`keep = 5`, 0, 0, `2:3: Unsupported argument: An argument named "keep" is not expected here`},
	}
	for _, tt := range tests {
		t.Run(tt.block, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ebb.hcl")
			if err := os.WriteFile(path, []byte("state {\n  "+tt.block+"\n}\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, diags := Load(path, nil, newFakeResolver())
			out := FormatDiagnostics(diags)
			if tt.wantDiag != "" {
				if cfg != nil || !strings.Contains(out, path+":"+tt.wantDiag) {
					t.Fatalf("diagnostics:\n%s\nwant %s:%s", out, path, tt.wantDiag)
				}
				return
			}
			if diags.HasErrors() {
				t.Fatalf("unexpected diagnostics:\n%s", out)
			}
			if cfg.KeepDecisions != tt.keep || cfg.KeepFor != tt.keepFor {
				t.Fatalf("keep_decisions %d keep_for %s, want %d %s", cfg.KeepDecisions, cfg.KeepFor, tt.keep, tt.keepFor)
			}
		})
	}
}
