package runner

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ebbscale/ebb/core/config"
	"github.com/ebbscale/ebb/core/host"
	"github.com/ebbscale/ebb/core/state"
	"github.com/ebbscale/ebb/internal/jsontext"
	"github.com/ebbscale/ebb/sdk"
)

// Evaluation is the outcome of one evaluation of one chain.
type Evaluation struct {
	Chain     string       `json:"chain"`
	Target    string       `json:"target"`
	At        time.Time    `json:"at"`
	Snapshot  sdk.Snapshot `json:"snapshot,omitzero"`
	Inventory []sdk.Unit   `json:"inventory"`
	// Steps is each evaluator's own decision, in chain order: the next
	// one saw it as its previous. Decision is the last, after the
	// staleness rule.
	Steps    []Step       `json:"steps,omitempty"`
	Decision sdk.Decision `json:"decision"`
	// StateLoaded tells whether saved evaluator state was found.
	StateLoaded bool `json:"state_loaded"`
	// Degraded lists why the snapshot could not justify a scale-down.
	Degraded []string `json:"degraded,omitempty"`
	// Suppressed is what the staleness rule took out of the decision.
	Suppressed string `json:"suppressed,omitempty"`
	// Conflict is why nothing may change on the target: something else
	// (the platform's own autoscaler) already scales it.
	Conflict string `json:"conflict,omitempty"`
	// Realized is the realizer's summary; empty when nothing was realized.
	Realized string       `json:"realized,omitempty"`
	Record   state.Record `json:"record"`
	// Outcomes is what became of each evaluator's decision, by block name:
	// what its next round is told.
	Outcomes map[string]sdk.Outcome `json:"outcomes,omitempty"`
	round    sdk.Round
}

// slim is what a running chain keeps of an evaluation for the API (its
// last): the decision and the inventory it was made on, the rules applied
// and the outcomes, without the snapshot (workers and metrics, the bulk of
// it), each evaluator's full decision (the record keeps their summaries)
// and the record's second copy of the decision as JSON. At ten thousand
// chains the full copies were most of the runner's memory.
func slim(ev *Evaluation) *Evaluation {
	out := &Evaluation{Chain: ev.Chain, Target: ev.Target, At: ev.At, Decision: ev.Decision,
		StateLoaded: ev.StateLoaded, Degraded: ev.Degraded, Suppressed: ev.Suppressed, Conflict: ev.Conflict,
		Realized: ev.Realized, Record: ev.Record, Outcomes: ev.Outcomes}
	out.Record.Decision = nil
	if ev.Inventory != nil {
		// Labels are the platform's bookkeeping; the API shows id, size,
		// phase and times.
		out.Inventory = make([]sdk.Unit, len(ev.Inventory))
		for i, u := range ev.Inventory {
			u.Labels = nil
			out.Inventory[i] = u
		}
	}
	return out
}

// Step is one evaluator's decision within a chain.
type Step struct {
	Evaluator string       `json:"evaluator"`
	Decision  sdk.Decision `json:"decision"`
}

// chainPlugins are the supervised instances a chain calls.
type chainPlugins struct {
	collectors []*host.Instance
	evaluators []*host.Instance
	realizer   *host.Instance
}

// ErrInFlight is returned when another evaluation of the same target is
// still running: at most one is in flight per target.
var ErrInFlight = errors.New("an evaluation of this target is already in flight")

// commit persists the new state and the decision, then realizes it. State is
// saved before realizing: evaluators derive in-flight work from the inventory,
// so a crash between the two steps is recovered from the platform itself.
func (r *Runner) commit(ctx context.Context, ch *config.Chain, p chainPlugins, ev *Evaluation, states state.ChainState) error {
	store := r.opts.Store
	ev.Record.Status = "realized"
	if !ev.Decision.HasActions() {
		ev.Record.Status = "skipped"
	}
	if store != nil {
		// State, decision and the pending outcome commit together: state
		// without its logged decision would remember a scale-up that never
		// happened. Until the realizer answers, the outcome says its actions
		// may not have happened: that is what a runner that stops here leaves.
		err := store.Commit(ch.Name, states, &ev.Record, func(seq uint64) state.ChainState {
			pending := ev.round
			pending.RequestID = requestID(ch.Name, seq)
			pending.Called = hasUnitActions(ev.Decision)
			pending.RealizerError = "the runner stopped before the realizer answered"
			return outcomeState(pending)
		})
		if err != nil {
			return err
		}
	}
	ev.Record.RequestID = requestID(ch.Name, ev.Record.Seq)
	ev.round.RequestID = ev.Record.RequestID
	ev.round.Called = hasUnitActions(ev.Decision)
	if ev.Decision.HasActions() {
		summary, unitsErr, err := r.realize(ctx, ch, p, ev)
		ev.Realized = summary
		if unitsErr != nil {
			ev.round.RealizerError = unitsErr.Error()
		}
		if err != nil {
			ev.Record.Status = "failed"
			ev.Record.Error = err.Error()
		}
	}
	ev.Outcomes = ev.round.Outcomes()
	if store != nil {
		if err := store.Finish(ch.Name, outcomeState(ev.round), ev.Record); err != nil {
			return err
		}
	}
	if ev.Record.Error != "" {
		return fmt.Errorf("chain %q: %s", ch.Name, ev.Record.Error)
	}
	return nil
}

// realize carries the decision out; unitsErr is set when the call that
// carries the unit actions failed (err is the first failure of any call).
func (r *Runner) realize(ctx context.Context, ch *config.Chain, p chainPlugins, ev *Evaluation) (summary string, unitsErr, err error) {
	target := sdk.Target{Chain: ch.Name, Name: ch.Target}
	d, id := ev.Decision, ev.Record.RequestID
	// Each realizer method carries one part of the decision; a part that is
	// empty is not sent, and the first failure stops the rest.
	var steps []func(context.Context) (string, error)
	if hasUnitActions(d) {
		steps = append(steps, func(ctx context.Context) (string, error) {
			return p.realizer.Realize(ctx, sdk.RealizeRequest{Target: target, Decision: d, RequestID: id})
		})
	}
	if len(d.ParallelismOverrides) > 0 {
		steps = append(steps, func(ctx context.Context) (string, error) {
			return p.realizer.RealizeParallelismOverrides(ctx, sdk.OverridesRequest[int64]{Target: target, Overrides: d.ParallelismOverrides, RequestID: id})
		})
	}
	if len(d.ConfigOverrides) > 0 {
		steps = append(steps, func(ctx context.Context) (string, error) {
			return p.realizer.RealizeConfigOverrides(ctx, sdk.OverridesRequest[string]{Target: target, Overrides: d.ConfigOverrides, RequestID: id})
		})
	}
	timeout := r.timeout(ch, sdk.KindRealizer, ch.Realizer)
	var summaries []string
	for i, step := range steps {
		s, err := withTimeout(ctx, timeout, step)
		if err != nil {
			if i == 0 && hasUnitActions(d) {
				unitsErr = err
			}
			return strings.Join(summaries, "; "), unitsErr, err
		}
		summaries = append(summaries, s)
	}
	return strings.Join(summaries, "; "), nil, nil
}

func mergeSnapshot(into *sdk.Snapshot, name string, s sdk.Snapshot, first bool) {
	// The merged snapshot is as old as its oldest part, and undated if any
	// part is.
	if first || s.ObservedAt.IsZero() || (!into.ObservedAt.IsZero() && s.ObservedAt.Before(into.ObservedAt)) {
		into.ObservedAt = s.ObservedAt
	}
	if !s.Complete {
		into.Complete = false
		for _, why := range s.IncompleteReasons {
			into.IncompleteReasons = append(into.IncompleteReasons, fmt.Sprintf("collector %q: %s", name, why))
		}
		if len(s.IncompleteReasons) == 0 {
			into.IncompleteReasons = append(into.IncompleteReasons, fmt.Sprintf("collector %q: incomplete (no reason given)", name))
		}
	}
	into.Demand.PlannedTasks += s.Demand.PlannedTasks
	into.Demand.ScheduledTasks += s.Demand.ScheduledTasks
	into.Demand.RunningTasks += s.Demand.RunningTasks
	into.Demand.PendingTables += s.Demand.PendingTables
	into.Demand.PlanningTables += s.Demand.PlanningTables
	// Known once any part knows: the others add all their planned tasks.
	into.Demand.ServiceableKnown = into.Demand.ServiceableKnown || s.Demand.ServiceableKnown
	into.Demand.ServiceablePlannedTasks += s.Demand.ServiceablePlanned()
	if s.Conflict != "" {
		c := fmt.Sprintf("collector %q: %s", name, s.Conflict)
		if into.Conflict != "" {
			c = into.Conflict + "; " + c
		}
		into.Conflict = c
	}
	into.Workers = append(into.Workers, s.Workers...)
	for k, v := range s.Metrics {
		if _, taken := into.Metrics[k]; taken {
			k = name + "." + k
		}
		into.Metrics[k] = v
	}
}

// degradedReasons applies the staleness rule's test: a snapshot that is
// incomplete, undated or older than maxAge cannot justify a scale-down.
func degradedReasons(s sdk.Snapshot, now time.Time, maxAge time.Duration) []string {
	var out []string
	if !s.Complete {
		out = append(out, "snapshot incomplete: "+strings.Join(s.IncompleteReasons, "; "))
	}
	switch {
	case s.ObservedAt.IsZero():
		out = append(out, "snapshot has no observation time")
	case maxAge > 0 && now.Sub(s.ObservedAt) > maxAge:
		out = append(out, fmt.Sprintf("snapshot stale: observed %s ago, max %s", now.Sub(s.ObservedAt).Round(time.Second), maxAge))
	}
	return out
}

// suppressScaleDown enforces the staleness rule whatever the evaluators did:
// drains and removals are taken out and the reason says so.
func suppressScaleDown(d *sdk.Decision, why []string) string {
	if len(d.Drain) == 0 && len(d.Remove) == 0 {
		return ""
	}
	cut := sdk.Decision{Drain: d.Drain, Remove: d.Remove}
	d.Drain, d.Remove = nil, nil
	summary := cut.Summary()
	d.Reason = strings.TrimSpace(fmt.Sprintf("%s [scale-down suppressed (%s): %s]", d.Reason, summary, strings.Join(why, "; ")))
	return summary
}

// suppressAll is the conflict rule: a target something else already scales
// gets no change at all, scale-up included, whatever the evaluators want.
func suppressAll(d *sdk.Decision, conflict string) string {
	summary := ""
	if d.HasActions() {
		summary = d.Summary()
	}
	*d = sdk.Decision{DesiredCapacity: d.DesiredCapacity,
		Reason: strings.TrimSpace(fmt.Sprintf("%s [no change: %s]", d.Reason, conflict))}
	if summary != "" {
		d.Reason = strings.TrimSpace(fmt.Sprintf("%s [refused: %s]", d.Reason, summary))
	}
	return summary
}

func (r *Runner) record(ev *Evaluation) state.Record {
	var capNow int64
	for _, u := range ev.Inventory {
		if u.Phase != sdk.PhaseDraining {
			capNow += u.Size
		}
	}
	raw, _ := jsontext.Marshal(ev.Decision)
	return state.Record{
		At:        ev.At,
		Target:    ev.Target,
		Direction: ev.Decision.Direction().String(),
		Summary:   ev.Decision.Summary(),
		Reason:    ev.Decision.Reason,
		// Rounds without actions whose reasons differ only in figures are
		// kept as one record in the decision log, and logged at info once.
		Shape:           reasonShape(ev.Decision.Reason),
		DemandTasks:     ev.Snapshot.Demand.Tasks(),
		PendingTables:   ev.Snapshot.Demand.PendingTables,
		CurrentCapacity: capNow,
		DesiredCapacity: ev.Decision.DesiredCapacity,
		Degraded:        len(ev.Degraded) > 0,
		Decision:        raw,
		Steps:           recordSteps(ev.round),
	}
}

// timeout is the deadline of one call to a plugin block: the block's own
// timeout, else the chain's.
func (r *Runner) timeout(ch *config.Chain, kind sdk.Kind, block string) time.Duration {
	if b := r.cfg().Block(kind, block); b != nil && b.Timeout > 0 {
		return b.Timeout
	}
	if ch.Timeout > 0 {
		return ch.Timeout
	}
	return 10 * time.Second
}

func withTimeout[T any](ctx context.Context, d time.Duration, f func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	return f(ctx)
}

// requestID names a realized decision: the chain and its decision-log
// sequence number, so a retry of the same decision carries the same id.
func requestID(chain string, seq uint64) string { return fmt.Sprintf("%s-%d", chain, seq) }
