package runner

import (
	"context"
	"errors"
	"sort"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// From the schedule to rounds and back: the scheduler's ticks become
// rounds on the pool, and each evaluation's result becomes the chain's
// metrics, status, log lines and OnEvaluation.

// dispatch hands the ticks that came due together to the pool, in rounds
// of chains that share plugin blocks. It runs in the scheduler's goroutine.
func (r *Runner) dispatch(slot []tick) {
	sort.Slice(slot, func(i, j int) bool { return slot[i].e.loop.sig < slot[j].e.loop.sig })
	for _, part := range chunks(slot) {
		r.pool.submit(func() { r.startRound(part) }, false)
	}
}

// missed counts ticks that came due and were not run, overall and as the
// chain's skipped evaluations.
func (r *Runner) missed(e *entry, n int) {
	r.opts.Metrics.ScheduleMissed.Add(float64(n))
	r.opts.Metrics.Evaluations.WithLabelValues(e.name, "skipped").Add(float64(n))
}

// startRound starts the evaluations of dispatched ticks on a worker: this
// is where an evaluation starts, so its lateness is measured here.
func (r *Runner) startRound(slot []tick) {
	ms := make([]*member, 0, len(slot))
	for _, t := range slot {
		l := t.e.loop
		ch := l.chain()
		if !r.owns(ch.Name) {
			// Another replica evaluates it: no evaluation, nothing missed.
			r.sched.finished(t.e)
			continue
		}
		r.opts.Metrics.ScheduleLateness.Observe(r.sched.begin(t, r.time.Now()).Seconds())
		ms = append(ms, &member{ctx: l.ctx, l: l, t: t, ch: ch, p: l.plugins})
	}
	rd := &round{r: r, ctx: r.ctx, pool: r.pool, realize: true, settle: r.settle}
	rd.start(ms)
}

// tick evaluates a chain once, now, outside the schedule (tests that step
// a chain on a virtual clock).
func (r *Runner) tick(ctx context.Context, l *chainLoop) {
	r.runNow(ctx, []*member{{ctx: ctx, l: l, ch: l.chain(), p: l.plugins}}, true, r.settle)
}

// settle does a running chain's bookkeeping after an evaluation: metrics,
// what the API shows, the log and OnEvaluation.
func (r *Runner) settle(m *member) {
	l, ch, ev, err := m.l, m.ch, m.ev, m.err
	if l == nil || m.ctx.Err() != nil {
		return // ebb plan, or stopping: the half-done round is not an error
	}
	mt := r.opts.Metrics
	result := "ok"
	switch {
	case errors.Is(err, ErrInFlight):
		result = "skipped"
		if m.t.e != nil {
			mt.ScheduleMissed.Inc()
		}
	case err != nil:
		result = "error"
	case len(ev.Degraded) > 0:
		result = "degraded"
	}
	mt.Evaluations.WithLabelValues(ch.Name, result).Inc()
	done := ev != nil && ev.Record.Status != ""
	if done {
		mt.DesiredCapacity.WithLabelValues(ch.Name).Set(float64(ev.Decision.DesiredCapacity))
		mt.CurrentCapacity.WithLabelValues(ch.Name).Set(float64(ev.Record.CurrentCapacity))
		mt.DemandTasks.WithLabelValues(ch.Name).Set(float64(ev.Record.DemandTasks))
		// Only chains in conflict have the series: thousands of zeros say
		// nothing an absent series does not.
		if ev.Conflict != "" {
			mt.TargetConflicts.WithLabelValues(ch.Name).Set(1)
		} else {
			mt.TargetConflicts.DeleteLabelValues(ch.Name)
		}
		if ev.Decision.HasActions() {
			mt.Decisions.WithLabelValues(ch.Name, ev.Record.Direction, ev.Record.Status).Inc()
		}
	}
	l.mu.Lock()
	l.ticks++
	l.lastAt = r.opts.Clock()
	l.lastErr = err
	prev := l.last
	if done {
		l.last = slim(ev)
	}
	l.mu.Unlock()
	if done {
		r.exportChainMetrics(ev, prev)
		r.countEdits(ev)
	}
	if errors.Is(err, ErrInFlight) {
		ev = nil
	}
	r.log(l, ev, err)
	if r.opts.OnEvaluation != nil {
		r.opts.OnEvaluation(ev, err)
	}
}

// log logs a decision: at info when it acts, and when it does nothing for
// a reason not logged before, so that a user sees within the first interval
// why nothing happens, without a line every round while nothing changes.
func (r *Runner) log(l *chainLoop, ev *Evaluation, err error) {
	if err != nil {
		r.opts.Logger.Error("evaluation failed", "error", err)
		return
	}
	if ev.Conflict != "" {
		r.opts.Logger.Warn("target is scaled by something else: no change", "chain", ev.Chain, "target", ev.Target,
			"conflict", ev.Conflict, "refused", ev.Suppressed)
	}
	level := hclog.Debug
	l.mu.Lock()
	switch {
	case ev.Decision.HasActions():
		level, l.loggedReason = hclog.Info, ""
	case ev.Record.Shape != l.loggedReason:
		level, l.loggedReason = hclog.Info, ev.Record.Shape
	}
	l.mu.Unlock()
	args := []any{"chain", ev.Chain, "target", ev.Target,
		"demand_tasks", ev.Record.DemandTasks, "pending_tables", ev.Record.PendingTables,
		"capacity", ev.Record.CurrentCapacity, "desired", ev.Record.DesiredCapacity,
		"action", ev.Record.Summary, "status", ev.Record.Status, "reason", ev.Record.Reason}
	if len(ev.Record.Steps) > 1 {
		// Who decided what, in chain order, and what each one changed.
		var steps []string
		for _, s := range ev.Record.Steps {
			line := s.Evaluator + ": " + s.Summary
			if s.Changes != "" {
				line += " (" + s.Changes + ")"
			}
			steps = append(steps, line)
		}
		args = append(args, "evaluators", strings.Join(steps, " | "))
	}
	r.opts.Logger.Log(level, "decision", args...)
}
