package sdk

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Outcome tells an evaluator, on its next round, what became of the decision
// it returned last round. The runner builds it after the rest of the chain,
// the runner's rules (staleness, conflict) and the realizer have had their
// say, keeps it with the evaluator's state and hands it in
// EvaluateRequest.Outcome; the evaluator stays pure.
//
// An evaluator that tracks work in flight in its state must reconcile that
// state against the outcome: only actions whose Result is ResultDone or
// ResultChanged were handed to a realizer that answered without error.
type Outcome struct {
	// RequestID is the id the decision was realized under; empty when the
	// realizer was not called (nothing left to do).
	RequestID string `json:"request_id,omitempty"`
	// DecidedAt is the Now of the round the decision was made in.
	DecidedAt time.Time `json:"decided_at,omitzero"`
	// Final is the decision the chain handed to the realizer: after every
	// later evaluator and the runner's rules.
	Final Decision `json:"final"`
	// RealizerError is the realizer's error when it failed (every action it
	// was given is then ResultFailed: it may or may not have happened, so
	// believe only the inventory).
	RealizerError string `json:"realizer_error,omitempty"`
	// Actions is the outcome of each unit action of the evaluator's own
	// decision, in the order the decision listed them (adds, drains,
	// removes, restarts).
	Actions []ActionOutcome `json:"actions,omitempty"`
}

// ActionKind is the kind of a unit action.
type ActionKind int

const (
	ActionUnknown ActionKind = iota
	ActionAdd
	ActionDrain
	ActionRemove
	ActionRestart
)

func (k ActionKind) String() string {
	switch k {
	case ActionAdd:
		return "add"
	case ActionDrain:
		return "drain"
	case ActionRemove:
		return "remove"
	case ActionRestart:
		return "restart"
	}
	return "unknown"
}

// ActionResult is what became of one action.
type ActionResult int

const (
	ResultUnknown ActionResult = iota
	// ResultDone: realized as asked.
	ResultDone
	// ResultChanged: realized, but a later evaluator changed it (an add's
	// size, a remove's force); Final holds the form that was realized.
	ResultChanged
	// ResultDropped: a later evaluator (By) vetoed the decision or took the
	// action out. Nothing was done.
	ResultDropped
	// ResultSuppressed: a runner rule (By is "staleness" or "conflict") took
	// it out. Nothing was done.
	ResultSuppressed
	// ResultFailed: the realizer failed (or the runner stopped before it
	// answered); the action may or may not have happened.
	ResultFailed
)

func (r ActionResult) String() string {
	switch r {
	case ResultDone:
		return "done"
	case ResultChanged:
		return "changed"
	case ResultDropped:
		return "dropped"
	case ResultSuppressed:
		return "suppressed"
	case ResultFailed:
		return "failed"
	}
	return "unknown"
}

// Realized is true when the action reached a realizer that answered without
// error, as asked or changed.
func (r ActionResult) Realized() bool { return r == ResultDone || r == ResultChanged }

// ActionOutcome is the outcome of one unit action.
type ActionOutcome struct {
	Kind   ActionKind   `json:"kind"`
	UnitID string       `json:"unit_id"`
	Result ActionResult `json:"result"`
	// By names who changed, dropped, suppressed or failed the action: an
	// evaluator block name, "staleness", "conflict" or "realizer".
	By string `json:"by,omitempty"`
	// Why is that party's reason.
	Why string `json:"why,omitempty"`
}

func (a ActionOutcome) String() string {
	s := fmt.Sprintf("%s %s: %s", a.Kind, a.UnitID, a.Result)
	if a.By != "" {
		s += " by " + a.By
	}
	if a.Why != "" {
		s += " (" + a.Why + ")"
	}
	return s
}

// Result returns the outcome of one action of the previous decision; ok is
// false when that decision had no such action. A nil Outcome (the first
// round, or a runner that kept none) has none.
func (o *Outcome) Result(kind ActionKind, unitID string) (ActionOutcome, bool) {
	if o == nil {
		return ActionOutcome{}, false
	}
	for _, a := range o.Actions {
		if a.Kind == kind && a.UnitID == unitID {
			return a, true
		}
	}
	return ActionOutcome{}, false
}

// Actions lists a decision's unit actions in the order Outcome.Actions
// reports them.
func (d Decision) Actions() []ActionOutcome {
	var out []ActionOutcome
	for _, a := range d.Add {
		out = append(out, ActionOutcome{Kind: ActionAdd, UnitID: a.UnitID})
	}
	for _, id := range d.Drain {
		out = append(out, ActionOutcome{Kind: ActionDrain, UnitID: id})
	}
	for _, r := range d.Remove {
		out = append(out, ActionOutcome{Kind: ActionRemove, UnitID: r.UnitID})
	}
	for _, id := range d.Restart {
		out = append(out, ActionOutcome{Kind: ActionRestart, UnitID: id})
	}
	return out
}

// action finds one unit action in a decision and describes its form, so
// that two decisions can be compared action by action. ok is false when d
// does not hold it (or is vetoed).
func (d Decision) action(kind ActionKind, id string) (form string, ok bool) {
	if d.Vetoed {
		return "", false
	}
	switch kind {
	case ActionAdd:
		for _, a := range d.Add {
			if a.UnitID == id {
				return fmt.Sprintf("size %d", a.Size), true
			}
		}
	case ActionDrain:
		for _, x := range d.Drain {
			if x == id {
				return "", true
			}
		}
	case ActionRemove:
		for _, r := range d.Remove {
			if r.UnitID == id {
				return fmt.Sprintf("force %t", r.Force), true
			}
		}
	case ActionRestart:
		for _, x := range d.Restart {
			if x == id {
				return "", true
			}
		}
	}
	return "", false
}

// Step is one evaluator's decision in one round of a chain.
type Step struct {
	Evaluator string
	Decision  Decision
}

// Round is what happened in one round of a chain: each evaluator's decision
// in order, the runner's rule and the realizer's answer. The runner builds
// each evaluator's Outcome from it.
type Round struct {
	RequestID string
	At        time.Time
	Steps     []Step
	// Final is the decision after the runner's rule; the last step's
	// decision when no rule applied.
	Final Decision
	// Rule names the runner rule that cut Final ("staleness", "conflict"),
	// RuleWhy its reason; empty when none did.
	Rule, RuleWhy string
	// Called is set when the realizer was given Final's unit actions.
	Called bool
	// RealizerError is set when that call failed.
	RealizerError string
}

// Outcome is what became of the decision of step i.
func (r Round) Outcome(i int) Outcome {
	out := Outcome{RequestID: r.RequestID, DecidedAt: r.At, Final: r.Final.Copy(), RealizerError: r.RealizerError}
	if i < 0 || i >= len(r.Steps) {
		return out
	}
	last := r.Steps[len(r.Steps)-1].Decision
	for _, a := range r.Steps[i].Decision.Actions() {
		mine, _ := r.Steps[i].Decision.action(a.Kind, a.UnitID)
		final, inFinal := r.Final.action(a.Kind, a.UnitID)
		switch {
		case inFinal && !r.Called:
			// Only when the realizer was never reached, e.g. a plan.
			a.Result, a.By, a.Why = ResultFailed, "realizer", "not called"
		case inFinal && r.RealizerError != "":
			a.Result, a.By, a.Why = ResultFailed, "realizer", r.RealizerError
		case inFinal && final == mine:
			a.Result = ResultDone
		case inFinal:
			a.Result = ResultChanged
			a.By, a.Why = r.changedBy(i, a)
			a.Why = fmt.Sprintf("%s -> %s: %s", mine, final, a.Why)
		case func() bool { _, ok := last.action(a.Kind, a.UnitID); return ok }():
			a.Result, a.By, a.Why = ResultSuppressed, r.Rule, r.RuleWhy
		default:
			a.Result = ResultDropped
			a.By, a.Why = r.changedBy(i, a)
		}
		a.Why = clip(a.Why)
		out.Actions = append(out.Actions, a)
	}
	return out
}

// MaxWhy bounds ActionOutcome.Why: a reason that quotes an earlier reason
// (which quotes the outcome before it) must not grow round by round.
const MaxWhy = 240

func clip(s string) string {
	if len(s) <= MaxWhy {
		return s
	}
	cut := MaxWhy
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// Outcomes is the outcome of every step's decision, by evaluator name.
func (r Round) Outcomes() map[string]Outcome {
	out := make(map[string]Outcome, len(r.Steps))
	for i, s := range r.Steps {
		out[s.Evaluator] = r.Outcome(i)
	}
	return out
}

// changedBy is the first evaluator after step i whose decision no longer
// holds action a as step i asked it, and that evaluator's reason.
func (r Round) changedBy(i int, a ActionOutcome) (string, string) {
	mine, _ := r.Steps[i].Decision.action(a.Kind, a.UnitID)
	for _, s := range r.Steps[i+1:] {
		if form, ok := s.Decision.action(a.Kind, a.UnitID); !ok || form != mine {
			why := s.Decision.Reason
			if s.Decision.Vetoed {
				why = "vetoed: " + why
			}
			return s.Evaluator, why
		}
	}
	return "", ""
}

// Changes describes what after changed of before, action by action, e.g.
// "dropped add u-3; changed remove u-1 (force false -> force true)"; empty
// when after carries every action of before as it was and adds none.
func Changes(before, after Decision) string {
	var parts []string
	if after.Vetoed && !before.Vetoed {
		parts = append(parts, "vetoed")
	}
	for _, a := range before.Actions() {
		was, _ := before.action(a.Kind, a.UnitID)
		now, ok := after.action(a.Kind, a.UnitID)
		switch {
		case !ok && !after.Vetoed:
			parts = append(parts, fmt.Sprintf("dropped %s %s", a.Kind, a.UnitID))
		case ok && now != was:
			parts = append(parts, fmt.Sprintf("changed %s %s (%s -> %s)", a.Kind, a.UnitID, was, now))
		}
	}
	for _, a := range after.Actions() {
		if _, ok := before.action(a.Kind, a.UnitID); !ok && !after.Vetoed {
			parts = append(parts, fmt.Sprintf("added %s %s", a.Kind, a.UnitID))
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return strings.Join(parts, "; ")
}

// MarshalText and UnmarshalText make the kinds and results read as words in
// the runner's JSON (the API, the stored outcomes).
func (k ActionKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

func (k *ActionKind) UnmarshalText(b []byte) error {
	for c := ActionUnknown; c <= ActionRestart; c++ {
		if c.String() == string(b) {
			*k = c
			return nil
		}
	}
	return fmt.Errorf("unknown action kind %q", b)
}

func (r ActionResult) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

func (r *ActionResult) UnmarshalText(b []byte) error {
	for c := ResultUnknown; c <= ResultFailed; c++ {
		if c.String() == string(b) {
			*r = c
			return nil
		}
	}
	return fmt.Errorf("unknown action result %q", b)
}
