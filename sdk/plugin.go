package sdk

import (
	"context"
	"encoding/json"
)

// Plugin is what every plugin implements, whatever its kind.
type Plugin interface {
	// Info names the plugin and publishes its schemas. It must not depend on
	// the configuration: the runner asks before configuring.
	Info(ctx context.Context) (Info, error)
	// Configure receives the plugin block's decoded `config { }` as a JSON
	// object with defaults filled in. It is called after every (re)start.
	Configure(ctx context.Context, config json.RawMessage) error
}

// Collector observes demand and workers for a target.
type Collector interface {
	Plugin
	Collect(ctx context.Context, target Target) (Snapshot, error)
}

// Evaluator decides. It must be a pure function of its request: it keeps no
// memory between calls other than the State it returns, which the runner stores.
type Evaluator interface {
	Plugin
	Evaluate(ctx context.Context, req EvaluateRequest) (EvaluateResponse, error)
	// ValidatePolicy reports what the policy schema cannot express, such as
	// min > max. The runner calls it when it loads the configuration.
	ValidatePolicy(ctx context.Context, policy json.RawMessage) ([]PolicyProblem, error)
}

// Problem is one thing wrong with a policy or a config. Attribute is the
// dotted path of the attribute at fault ("auto-restart.max-retries"), or
// empty.
type Problem struct {
	Attribute string
	Message   string
}

// PolicyProblem is a Problem with a policy.
type PolicyProblem = Problem

// ConfigValidator is optional for a plugin of any kind: it reports what its
// config schema cannot express (a malformed URL, an unknown mode) without
// applying the config, so the runner can point at the attribute's
// file:line:col when it loads the configuration rather than fail at run time.
// A plugin without it is taken to find no problems; its Configure still has
// the last word. ProblemsOf turns Configure's error into problems.
type ConfigValidator interface {
	ValidateConfig(ctx context.Context, config json.RawMessage) ([]Problem, error)
}

// Realizer acts on a platform. Every method is idempotent.
type Realizer interface {
	Plugin
	// Inventory lists the units of a target straight from the platform.
	Inventory(ctx context.Context, target Target) ([]Unit, error)
	// Realize carries out a decision's unit actions. It returns a summary
	// of what it did.
	Realize(ctx context.Context, req RealizeRequest) (string, error)
	RealizeParallelismOverrides(ctx context.Context, req OverridesRequest[int64]) (string, error)
	RealizeConfigOverrides(ctx context.Context, req OverridesRequest[string]) (string, error)
}

// TargetIdentifier is an optional realizer hook: it names the platform
// object a target means under a config (cluster, namespace and target; an
// AMS group; a job), so that the runner refuses two chains that would scale
// the same object through differently named or configured blocks. Two
// (config, target) pairs acting on the same object must get equal strings.
// It is called when a configuration loads, without Configure: it must not
// reach the platform. A realizer without it is compared by plugin, config
// and target.
type TargetIdentifier interface {
	TargetIdentity(ctx context.Context, config json.RawMessage, target string) (string, error)
}

// KindOf tells which kind a plugin value implements.
func KindOf(p Plugin) Kind {
	switch p.(type) {
	case Collector:
		return KindCollector
	case Evaluator:
		return KindEvaluator
	case Realizer:
		return KindRealizer
	}
	return KindUnknown
}
