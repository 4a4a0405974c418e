package config

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/ebbscale/ebb/sdk"
)

// validatingResolver is the fake resolver plus a plugin-side config check:
// collector-ams finds a url without a scheme wrong, and a config with both
// api-key and metrics-url set wrong as a whole.
type validatingResolver struct {
	*fakeResolver
	asked []string
}

func (v *validatingResolver) ValidateConfig(kind sdk.Kind, plugin, _ string, raw json.RawMessage) ([]sdk.Problem, error) {
	v.asked = append(v.asked, plugin)
	var c map[string]any
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, err
	}
	var out []sdk.Problem
	if u, _ := c["url"].(string); plugin == "collector-ams" && !strings.Contains(u, "://") {
		out = append(out, sdk.Problem{Attribute: "url", Message: "want an http or https URL"})
	}
	if c["api-key"] != nil && c["metrics-url"] != nil {
		out = append(out, sdk.Problem{Message: "api-key and metrics-url exclude each other"})
	}
	return out, nil
}

func TestPluginConfigProblemsPointAtTheAttribute(t *testing.T) {
	src := `collector "ams" {
  plugin = "collector-ams"
  config {
    api-key     = "k"
    url         = "ams:19090"
    metrics-url = "http://ams:7001/metrics"
  }
}

collector "spare" {
  plugin = "collector-ams"
  config {
    url = "also wrong"
  }
}

evaluator "dra" {
  plugin = "evaluator-dra"
}

realizer "k8s" {
  plugin = "realizer-k8s"
}

chain "c" {
  collectors = [collector.ams]
  evaluators = [evaluator.dra]
  realizer   = realizer.k8s
  target     = "g"
  policy {
    max-parallelism = 1
  }
}
`
	r := &validatingResolver{fakeResolver: newFakeResolver()}
	_, diags := Parse([]byte(src), "v.hcl", nil, r)
	got := FormatDiagnostics(diags)
	for _, want := range []string{
		`v.hcl:3:3: Invalid config: api-key and metrics-url exclude each other (collector "ams").`,
		`v.hcl:5:5: Invalid config: url: want an http or https URL (collector "ams").`,
	} {
		if !strings.Contains(got, want+"\n") {
			t.Errorf("diagnostics lack %q:\n%s", want, got)
		}
	}
	// The unused block is never configured, so it is not validated either.
	if strings.Contains(got, "also wrong") || strings.Count(strings.Join(r.asked, " "), "collector-ams") != 1 {
		t.Errorf("the unused block was validated (asked %v):\n%s", r.asked, got)
	}
}
