package flink

import (
	"reflect"
	"testing"
)

// FuzzParseOverrides checks that any pipeline.jobvertex-parallelism-overrides
// value a user may have written is parsed or refused, never a panic, and that
// what parses survives formatting unchanged.
func FuzzParseOverrides(f *testing.F) {
	for _, s := range []string{"", vidA + ":3", vidA + ":3," + vidB + ":4", "a:0", "a:-1", "a", ":", "a:b", " a : 2 ,, b:3", "a:99999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := parseOverrides(s)
		if err != nil {
			return
		}
		back, err := parseOverrides(formatOverrides(m))
		if err != nil || !reflect.DeepEqual(back, m) {
			t.Fatalf("%q -> %v -> %q -> %v, %v", s, m, formatOverrides(m), back, err)
		}
	})
}
