package config

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/ebbscale/ebb/sdk"
)

// fakeResolver stands in for the runner's plugin supervisor: the loader's
// job is parsing against published schemas, and the runner's tests start the
// real plugins. Schemas follow the builtin plugins' keys.
type fakeResolver struct {
	mu       sync.Mutex
	infos    map[string]sdk.Info
	sums     map[string]string
	failing  map[string]error
	calls    []string
	policies map[string][]json.RawMessage
	dir      string
}

const goodSum = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func newFakeResolver() *fakeResolver {
	dur := func(name, def string) sdk.Attribute {
		return sdk.Attribute{Name: name, Type: sdk.TypeDuration, Default: def}
	}
	return &fakeResolver{
		sums:     map[string]string{"evaluator-dra": goodSum},
		failing:  map[string]error{"realizer-broken": fmt.Errorf("exec: permission denied")},
		policies: map[string][]json.RawMessage{},
		infos: map[string]sdk.Info{
			"collector-ams": {Name: "collector-ams", Kind: sdk.KindCollector, Version: "1.0.0", ConfigSchema: sdk.Schema{
				Attributes: []sdk.Attribute{
					{Name: "url", Type: sdk.TypeString, Required: true, Description: "AMS base URL"},
					{Name: "api-key", Type: sdk.TypeString, Sensitive: true},
					{Name: "secret", Type: sdk.TypeString, Sensitive: true},
					{Name: "metrics-url", Type: sdk.TypeString},
					{Name: "insecure", Type: sdk.TypeBool, Default: false},
					{Name: "page-size", Type: sdk.TypeNumber, Default: float64(100)},
					{Name: "request-timeout", Type: sdk.TypeDuration, Default: "5s"},
					{Name: "groups", Type: sdk.TypeListString},
					{Name: "headers", Type: sdk.TypeMapString},
				},
			}},
			"collector-prom": {Name: "collector-prom", Kind: sdk.KindCollector, Version: "0.1.0", ConfigSchema: sdk.Schema{
				Attributes: []sdk.Attribute{{Name: "address", Type: sdk.TypeString, Required: true}},
			}},
			"evaluator-dra": {Name: "evaluator-dra", Kind: sdk.KindEvaluator, Version: "1.0.0", PolicySchema: sdk.Schema{
				Attributes: []sdk.Attribute{
					{Name: "min-parallelism", Type: sdk.TypeNumber, Default: 0},
					{Name: "max-parallelism", Type: sdk.TypeNumber, Required: true},
					{Name: "executor-parallelism", Type: sdk.TypeNumber, Default: 1},
					dur("executor-idle-timeout", "5m"),
					dur("scheduler-backlog-timeout", "1m"),
					dur("sustained-backlog-timeout", "30s"),
					dur("scale-up-cooldown", "30s"),
					dur("scale-down-cooldown", "1m"),
					dur("drain-timeout", "15m"),
					dur("boot-timeout", "3m"),
				},
				Blocks: []sdk.Block{{Name: "auto-restart", Schema: sdk.Schema{Attributes: []sdk.Attribute{
					{Name: "enabled", Type: sdk.TypeBool, Default: true},
					{Name: "max-retries", Type: sdk.TypeNumber, Default: 5},
					dur("grace-period", "5m"),
				}}}},
			}},
			// guard also reads max-parallelism, to test policy namespaces.
			"evaluator-guard": {Name: "evaluator-guard", Kind: sdk.KindEvaluator, Version: "0.2.0", PolicySchema: sdk.Schema{
				Attributes: []sdk.Attribute{
					{Name: "max-parallelism", Type: sdk.TypeNumber},
					{Name: "max-step", Type: sdk.TypeNumber, Default: 8},
				},
			}},
			// clash declares max-parallelism as a string: a conflict with dra.
			"evaluator-clash": {Name: "evaluator-clash", Kind: sdk.KindEvaluator, Version: "0.1.0", PolicySchema: sdk.Schema{
				Attributes: []sdk.Attribute{{Name: "max-parallelism", Type: sdk.TypeString}},
			}},
			"realizer-k8s": {Name: "realizer-k8s", Kind: sdk.KindRealizer, Version: "1.0.0", ConfigSchema: sdk.Schema{
				Attributes: []sdk.Attribute{
					{Name: "namespace", Type: sdk.TypeString, Required: true},
					{Name: "mode", Type: sdk.TypeString, Default: "unit"},
					{Name: "image", Type: sdk.TypeString},
					{Name: "kubeconfig", Type: sdk.TypeString, Sensitive: true},
				},
			}},
			"realizer-process": {Name: "realizer-process", Kind: sdk.KindRealizer, Version: "1.0.0", ConfigSchema: sdk.Schema{
				Attributes: []sdk.Attribute{
					{Name: "command", Type: sdk.TypeListString, Required: true},
					{Name: "workdir", Type: sdk.TypeString},
				},
			}},
		},
	}
}

func (f *fakeResolver) SetPluginDir(dir string) error { f.dir = dir; return nil }

func (f *fakeResolver) Info(kind sdk.Kind, plugin, sum string) (sdk.Info, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, kind.String()+":"+plugin)
	if err, ok := f.failing[plugin]; ok {
		return sdk.Info{}, fmt.Errorf("starting %s: %w", plugin, err)
	}
	info, ok := f.infos[plugin]
	if !ok {
		return sdk.Info{}, fmt.Errorf("%w %q: not builtin and not in the plugin directory", ErrUnknownPlugin, plugin)
	}
	if want := f.sums[plugin]; sum != "" && !strings.EqualFold(sum, want) {
		return sdk.Info{}, fmt.Errorf("%w: pinned %s, binary has %s", ErrChecksumMismatch, sum, want)
	}
	return info, nil
}

// ValidatePolicy implements the consistency checks a DRA evaluator makes.
func (f *fakeResolver) ValidatePolicy(plugin string, raw json.RawMessage) ([]sdk.PolicyProblem, error) {
	f.mu.Lock()
	f.policies[plugin] = append(f.policies[plugin], raw)
	f.mu.Unlock()
	if plugin != "evaluator-dra" {
		return nil, nil
	}
	var p struct {
		Min         float64 `json:"min-parallelism"`
		Max         float64 `json:"max-parallelism"`
		AutoRestart struct {
			MaxRetries float64 `json:"max-retries"`
		} `json:"auto-restart"`
		BootTimeout string `json:"boot-timeout"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, fmt.Errorf("decoding policy: %w", err)
	}
	var out []sdk.PolicyProblem
	if p.Min > p.Max {
		out = append(out, sdk.PolicyProblem{Attribute: "min-parallelism", Message: "must not exceed max-parallelism"})
	}
	if p.AutoRestart.MaxRetries > 100 {
		out = append(out, sdk.PolicyProblem{Attribute: "auto-restart.max-retries", Message: "must be at most 100"})
	}
	if p.BootTimeout == "0s" {
		out = append(out, sdk.PolicyProblem{Attribute: "boot-timeout", Message: "must be positive"})
	}
	if p.Max > 10000 {
		out = append(out, sdk.PolicyProblem{Message: "policy is unreasonably large"})
	}
	return out, nil
}
