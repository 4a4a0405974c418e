package runner

import (
	"encoding/json"
	"fmt"

	"github.com/ebbscale/ebb/core/state"
	"github.com/ebbscale/ebb/sdk"
)

// This file keeps, for each evaluator of a chain, what became of its last
// decision (sdk.Outcome): the runner saves it beside the evaluator's state
// and hands it in on the next round, so an evaluator whose decision a later
// one vetoed or cut, a rule suppressed or the realizer failed does not
// believe it was carried out.

// roundOf is what this round did so far: each evaluator's decision and the
// runner's rule. The realizer's part is filled in by commit.
func roundOf(ev *Evaluation, steps []sdk.Step) sdk.Round {
	rd := sdk.Round{At: ev.At, Steps: steps, Final: ev.Decision.Copy()}
	if ev.Suppressed != "" {
		rd.Rule, rd.RuleWhy = "staleness", fmt.Sprint(ev.Degraded)
		if ev.Snapshot.Conflict != "" {
			rd.Rule, rd.RuleWhy = "conflict", ev.Snapshot.Conflict
		}
	}
	return rd
}

func hasUnitActions(d sdk.Decision) bool {
	return !d.Vetoed && len(d.Add)+len(d.Drain)+len(d.Remove)+len(d.Restart) > 0
}

func copyOf(d *sdk.Decision) *sdk.Decision {
	if d == nil {
		return nil
	}
	c := d.Copy()
	return &c
}

// outcomeState encodes each evaluator's outcome for the store.
func outcomeState(rd sdk.Round) state.ChainState {
	out := state.ChainState{}
	for name, o := range rd.Outcomes() {
		b, err := json.Marshal(o)
		if err != nil {
			continue // a Decision always encodes; nothing to lose here
		}
		out[name] = b
	}
	return out
}

// loadOutcomes returns each evaluator's saved outcome; none without a store.
// An outcome that does not decode is dropped (the evaluator then reconciles
// against the inventory alone) rather than stopping the chain.
func (r *Runner) loadOutcomes(chain string) (map[string]*sdk.Outcome, error) {
	out := map[string]*sdk.Outcome{}
	if r.opts.Store == nil {
		return out, nil
	}
	saved, err := r.opts.Store.LoadOutcomes(chain)
	if err != nil {
		return nil, err
	}
	for name, b := range saved {
		var o sdk.Outcome
		if err := json.Unmarshal(b, &o); err != nil {
			r.opts.Logger.Warn("dropping an outcome that does not decode", "chain", chain, "evaluator", name, "error", err)
			continue
		}
		out[name] = &o
	}
	return out, nil
}

// recordSteps is the decision log's view of the round: each evaluator's
// decision in order and what it changed of the one before.
func recordSteps(rd sdk.Round) []state.Step {
	out := make([]state.Step, len(rd.Steps))
	for i, s := range rd.Steps {
		out[i] = state.Step{Evaluator: s.Evaluator, Summary: s.Decision.Summary(), Reason: s.Decision.Reason, Vetoed: s.Decision.Vetoed}
		if i > 0 {
			out[i].Changes = sdk.Changes(rd.Steps[i-1].Decision, s.Decision)
		}
	}
	return out
}

// countEdits counts, per evaluator, the decisions the next evaluator vetoed
// or adjusted (took actions out of, changed or added to).
func (r *Runner) countEdits(ev *Evaluation) {
	m := r.opts.Metrics
	steps := ev.round.Steps
	for i := 1; i < len(steps); i++ {
		before, after := steps[i-1].Decision, steps[i].Decision
		switch {
		case after.Vetoed && !before.Vetoed && before.HasActions():
			m.Vetoes.WithLabelValues(ev.Chain, steps[i-1].Evaluator, steps[i].Evaluator).Inc()
		case !after.Vetoed && sdk.Changes(before, after) != "":
			m.Adjustments.WithLabelValues(ev.Chain, steps[i-1].Evaluator, steps[i].Evaluator).Inc()
		}
	}
}
