package runner

import (
	"slices"
	"strings"

	"github.com/ebbscale/ebb/sdk"
)

// exportChainMetrics publishes what one evaluation of a running chain did:
// the evaluators' own figures, the unit actions realized and whether the
// staleness rule suppressed part of the decision. prev is the chain's
// previous evaluation, so that a request an evaluator repeats until the
// realizer lists the unit (same id) is counted once.
func (r *Runner) exportChainMetrics(ev, prev *Evaluation) {
	m := r.opts.Metrics
	if dropped := m.SetEvaluatorMetrics(ev.Chain, ev.Target, ev.Decision.Metrics); len(dropped) > 0 {
		slices.Sort(dropped)
		r.opts.Logger.Warn("evaluator metrics not exported (names must be snake_case, values finite, at most 64 names)",
			"chain", ev.Chain, "names", strings.Join(dropped, ","))
	}
	if ev.Suppressed != "" {
		m.Suppressed.WithLabelValues(ev.Chain, ev.Target).Inc()
	}
	if ev.Record.Status != "realized" {
		return
	}
	var before sdk.Decision
	if prev != nil && prev.Record.Status == "realized" {
		before = prev.Decision
	}
	count := func(action string, ids, already []string) {
		n := 0
		for _, id := range ids {
			if !slices.Contains(already, id) {
				n++
			}
		}
		if n > 0 {
			m.Units.WithLabelValues(ev.Chain, ev.Target, action).Add(float64(n))
		}
	}
	d := ev.Decision
	count("add", addIDs(d), addIDs(before))
	count("drain", d.Drain, before.Drain)
	count("remove", removeIDs(d), removeIDs(before))
	count("restart", d.Restart, before.Restart)
}

func addIDs(d sdk.Decision) []string {
	ids := make([]string, len(d.Add))
	for i, a := range d.Add {
		ids[i] = a.UnitID
	}
	return ids
}

func removeIDs(d sdk.Decision) []string {
	ids := make([]string, len(d.Remove))
	for i, r := range d.Remove {
		ids[i] = r.UnitID
	}
	return ids
}
