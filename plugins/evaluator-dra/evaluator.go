// Package dra is ebb's dynamic resource allocation evaluator: Spark's
// ExecutorAllocationManager rules as Amoro's AIP-5 applies them to optimizer
// groups (seeds 000 and 003), plus seed 001's auto-restart of orphaned units.
//
// The evaluator is a pure function of its request. Everything it remembers
// (backlog timer, ramp, cooldowns, per-unit idle, drain and restart
// bookkeeping, the unit id counter) travels in the State bytes the runner
// stores, so the same request always yields byte-identical output.
//
// A previous evaluator's decision (EvaluateRequest.Previous) is ignored: this
// evaluator decides from the snapshot and the inventory alone and is meant to
// be first in a chain; later evaluators may adjust or veto its decision, and
// EvaluateRequest.Outcome tells it next round what was really done.
package dra

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/ebbscale/ebb/sdk"
)

// Name is the plugin's name in Info.
const Name = "evaluator-dra"

// Version is the plugin's version in Info.
const Version = "0.2.0"

// Config is the plugin block's `config { }`.
type Config struct {
	// UnitPrefix starts the ids of new units ("<prefix>-<seq>"); empty means
	// the target's name. It is folded to a DNS-1123 label because realizers
	// name Kubernetes objects after unit ids.
	UnitPrefix string `json:"unit-prefix,omitempty"`
}

// Evaluator implements sdk.Evaluator.
type Evaluator struct {
	mu  sync.RWMutex
	cfg Config
}

var _ sdk.Evaluator = (*Evaluator)(nil)

// New returns an unconfigured evaluator; its zero config is valid.
func New() *Evaluator { return &Evaluator{} }

// ConfigSchema is the plugin block's published config schema.
func ConfigSchema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{{
		Name:    "unit-prefix",
		Type:    sdk.TypeString,
		Default: "",
		Description: "Prefix of generated unit ids (\"<prefix>-<seq>\"); empty means the target's name. " +
			"Folded to lower-case letters, digits and dashes.",
	}}}
}

func (e *Evaluator) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{
		Name:            Name,
		Kind:            sdk.KindEvaluator,
		Version:         Version,
		ProtocolVersion: sdk.ProtocolVersion,
		ConfigSchema:    ConfigSchema(),
		PolicySchema:    PolicySchema(),
	}, nil
}

func (e *Evaluator) Configure(_ context.Context, raw json.RawMessage) error {
	var c Config
	if err := sdk.DecodeConfig(raw, &c); err != nil {
		return fmt.Errorf("evaluator-dra: %w", err)
	}
	if c.UnitPrefix != "" && sanitizeLabel(c.UnitPrefix) == "" {
		return fmt.Errorf("evaluator-dra: unit-prefix %q has no letters or digits to build unit ids from", c.UnitPrefix)
	}
	e.mu.Lock()
	e.cfg = c
	e.mu.Unlock()
	return nil
}

// ValidatePolicy reports each problem of a policy against its attribute.
func (e *Evaluator) ValidatePolicy(_ context.Context, policy json.RawMessage) ([]sdk.PolicyProblem, error) {
	_, problems := CheckPolicy(policy)
	return problems, nil
}

func (e *Evaluator) Evaluate(ctx context.Context, req sdk.EvaluateRequest) (sdk.EvaluateResponse, error) {
	if err := ctx.Err(); err != nil {
		return sdk.EvaluateResponse{}, err
	}
	e.mu.RLock()
	cfg := e.cfg
	e.mu.RUnlock()
	return Evaluate(cfg, req)
}

var nonLabel = regexp.MustCompile(`[^a-z0-9]+`)

// maxPrefix keeps "<prefix>-<seq>" well inside a 63-character DNS label even
// after a realizer prepends its own prefix (Amoro's "amoro-optimizer-").
const maxPrefix = 30

func sanitizeLabel(s string) string {
	s = nonLabel.ReplaceAllString(strings.ToLower(s), "-")
	s = strings.Trim(s, "-")
	if len(s) > maxPrefix {
		s = strings.TrimRight(s[:maxPrefix], "-")
	}
	return s
}

func unitPrefix(cfg Config, t sdk.Target) string {
	for _, s := range []string{cfg.UnitPrefix, t.Name, t.Chain} {
		if p := sanitizeLabel(s); p != "" {
			return p
		}
	}
	return "unit"
}
