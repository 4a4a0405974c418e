package config

import (
	"strings"
	"testing"
)

// A chain whose collection may take longer than its interval is told so at
// load (issue 11: 5,000 optimizers cannot be read inside a 1 s interval
// with a 10 s collector timeout), once for all chains written alike.
func TestSlowCollectionIsAWarning(t *testing.T) {
	src := `
collector "ams" {
  plugin  = "collector-ams"
  timeout = "10s"
  config {
    url = "http://ams"
  }
}

collector "quick" {
  plugin = "collector-ams"
  config {
    url = "http://ams"
  }
}

evaluator "dra" {
  plugin = "evaluator-dra"
}

realizer "k8s" {
  plugin = "realizer-k8s"
  config {
    namespace = "n"
  }
}
`
	chain := func(name, collector, timing string) string {
		return `
chain "` + name + `" {
  collectors = [collector.` + collector + `]
  evaluators = [evaluator.dra]
  realizer   = realizer.k8s
  target     = "` + name + `"
  ` + timing + `
  policy {
    max-parallelism = 1
  }
}
`
	}
	src += chain("fast", "ams", `interval = "1s"`) + // interval on line 33
		chain("fast2", "ams", `interval = "1s"`) +
		chain("fine", "ams", `interval = "10s"`) +
		chain("default", "quick", "") +
		chain("patient", "quick", `interval = "5s"
  timeout  = "20s"`) // interval on line 77
	cfg, diags := Parse([]byte(src), "t.hcl", nil, newFakeResolver())
	if cfg == nil {
		t.Fatalf("no config:\n%s", FormatDiagnostics(diags))
	}
	got := FormatDiagnostics(diags)
	for _, want := range []string{
		`t.hcl:33:14: warning: Collection can outlast the interval: Chain "fast" ticks every 1s, but a collection by collector "ams" may take up to 10s (its timeout);`,
		"Make the interval at least 10s, or the timeout shorter. The same holds for 1 other chain with this interval and collector.\n",
		`t.hcl:77:14: warning: Collection can outlast the interval: Chain "patient" ticks every 5s, but a collection by collector "quick" may take up to 20s (the chain's timeout);`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("diagnostics lack %q:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "warning:"); n != 2 {
		t.Errorf("%d warnings, want 2:\n%s", n, got)
	}
}
