package config

import (
	"strings"
	"testing"
)

func policySrc(policy string) []byte {
	return []byte(`
collector "ams" {
  plugin = "collector-ams"
  config {
    url = "http://ams"
  }
}
evaluator "dra" {
  plugin = "evaluator-dra"
}
evaluator "guard" {
  plugin = "evaluator-guard"
}
realizer "process" {
  plugin = "realizer-process"
  config {
    command = ["optimizer.sh"]
  }
}
chain "c" {
  collectors = [collector.ams]
  evaluators = [evaluator.dra, evaluator.guard]
  realizer   = realizer.process
  target     = "g"
  policy {
` + policy + `
  }
}
`)
}

// Two evaluators that read the same key no longer share one value silently:
// written flat it is an error at the key; in namespaces each gets its own.
func TestPolicyNamespaces(t *testing.T) {
	_, diags := Parse(policySrc(`    max-parallelism = 8
    max-step        = 2`), "c.hcl", nil, newFakeResolver())
	got := FormatDiagnostics(diags)
	if !strings.Contains(got, `c.hcl:26:5: Policy key read by several evaluators: "max-parallelism" is a policy key of evaluators "dra" and "guard"`) {
		t.Fatalf("a flat key two evaluators read:\n%s", got)
	}

	cfg, diags := Parse(policySrc(`    dra {
      max-parallelism = 32
    }
    guard {
      max-parallelism = 16
      max-step        = 2
    }`), "c.hcl", nil, newFakeResolver())
	if diags.HasErrors() {
		t.Fatalf("namespaced policy:\n%s", FormatDiagnostics(diags))
	}
	assertJSON(t, "guard policy", cfg.Chains[0].Policy["guard"], `{"max-parallelism":16,"max-step":2}`)
	if p := string(cfg.Chains[0].Policy["dra"]); !strings.Contains(p, `"max-parallelism":32`) || strings.Contains(p, "max-step") {
		t.Errorf("dra policy %s", p)
	}

	// Flat keys only one evaluator reads still go to it beside a namespace.
	cfg, diags = Parse(policySrc(`    max-parallelism = 32
    guard {
      max-step = 3
    }`), "c.hcl", nil, newFakeResolver())
	if diags.HasErrors() {
		t.Fatalf("flat and namespaced:\n%s", FormatDiagnostics(diags))
	}
	assertJSON(t, "guard policy", cfg.Chains[0].Policy["guard"], `{"max-step":3}`)

	for _, tc := range []struct{ policy, want string }{
		{"    guard {\n      max-stp = 3\n    }\n    max-parallelism = 1", `c.hcl:27:7: Unsupported argument`},
		{"    guard {\n      max-step = 3\n    }\n    guard {\n      max-step = 4\n    }\n    max-parallelism = 1", `c.hcl:29:5: Duplicate`},
		{"    dra {\n      min-parallelism = 1\n    }", `Missing required argument: The argument "dra.max-parallelism" is required`},
	} {
		_, diags := Parse(policySrc(tc.policy), "c.hcl", nil, newFakeResolver())
		if got := FormatDiagnostics(diags); !strings.Contains(got, tc.want) {
			t.Errorf("policy\n%s\ngot:\n%s\nwant %s", tc.policy, got, tc.want)
		}
	}
}
