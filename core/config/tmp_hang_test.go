package config

import (
	"os"
	"testing"
)

func TestTmpHang(t *testing.T) {
	src, _ := os.ReadFile("/tmp/hang.hcl")
	_, d := Parse(src, "x.hcl", nil, newFakeResolver())
	t.Log(FormatDiagnostics(d))
}
