package config

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
)

// FormatDiagnostics renders diagnostics one per line as
// "FILE:LINE:COL: Summary: Detail", for `ebb validate` and startup errors.
// Warnings say so after the position; a diagnostic with no position (a -var
// for an undeclared variable) starts with its summary.
func FormatDiagnostics(diags hcl.Diagnostics) string {
	var b strings.Builder
	for _, d := range diags {
		if d.Subject != nil {
			fmt.Fprintf(&b, "%s:%d:%d: ", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
		}
		if d.Severity == hcl.DiagWarning {
			b.WriteString("warning: ")
		}
		msg := d.Summary
		if d.Detail != "" {
			msg += ": " + d.Detail
		}
		// One line per diagnostic keeps the output greppable.
		b.WriteString(strings.Join(strings.Fields(msg), " "))
		b.WriteByte('\n')
	}
	return b.String()
}

// sortDiags drops the diagnostics that only repeat a variable's error (when
// that error is there) and orders the rest by position, those without one
// first.
func sortDiags(diags hcl.Diagnostics) hcl.Diagnostics {
	out := diags[:0]
	other := false
	for _, d := range diags {
		if _, ok := d.Extra.(invalidDependency); !ok && d.Severity == hcl.DiagError {
			other = true
		}
	}
	for _, d := range diags {
		if _, ok := d.Extra.(invalidDependency); ok && other {
			continue
		}
		out = append(out, d)
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i].Subject, out[j].Subject
		switch {
		case a == nil || b == nil:
			return a == nil && b != nil
		case a.Filename != b.Filename:
			return a.Filename < b.Filename
		case a.Start.Line != b.Start.Line:
			return a.Start.Line < b.Start.Line
		}
		return a.Start.Column < b.Start.Column
	})
	return out
}

// suggest adds "Did you mean ...?" to HCL's unsupported-argument and
// unsupported-block diagnostics, naming the closest key the schema accepts.
func suggest(diags hcl.Diagnostics, schema *hcl.BodySchema) {
	for _, d := range diags {
		var names []string
		switch d.Summary {
		case "Unsupported argument":
			for _, a := range schema.Attributes {
				names = append(names, a.Name)
			}
		case "Unsupported block type":
			for _, b := range schema.Blocks {
				names = append(names, b.Type)
			}
		default:
			continue
		}
		if strings.Contains(d.Detail, "Did you mean") {
			continue
		}
		parts := strings.SplitN(d.Detail, `"`, 3)
		if len(parts) < 3 {
			continue
		}
		if s := closest(parts[1], names); s != "" {
			d.Detail = strings.TrimSuffix(d.Detail, " ") + fmt.Sprintf(" Did you mean %q?", s)
		}
	}
}

// closest returns the name within a small edit distance of typo, or "".
func closest(typo string, names []string) string {
	best, bestDist := "", len(typo)/3+1
	for _, n := range names {
		if d := editDistance(typo, n); d <= bestDist && (best == "" || d < editDistance(typo, best)) {
			best, bestDist = n, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// duplicateName reports a second block of a kind with the same name, at its
// label, pointing back at the first.
func duplicateName(what, name, verb string, first, dup *hcl.Block) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  fmt.Sprintf("Duplicate %s %q", what, name),
		Detail:   fmt.Sprintf("A %s named %q is already %s at %s.", what, name, verb, posString(first.DefRange)),
		Subject:  dup.LabelRanges[0].Ptr(),
	}
}
