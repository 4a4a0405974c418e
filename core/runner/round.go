package runner

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ebbscale/ebb/core/config"
	"github.com/ebbscale/ebb/core/host"
	"github.com/ebbscale/ebb/core/state"
	"github.com/ebbscale/ebb/sdk"
)

// A round evaluates the chains that came due together. Its calls are
// batched: the chains that call the same plugin block at the same step go in
// one call (collectBatch, inventoryBatch, evaluateBatch in calls.go). Nothing else is
// shared: each chain keeps its own timeouts, staleness rule and evaluator
// order, a failure of one chain's part of a call fails only that chain, and
// state, decision log and realize stay per chain.
//
// A chain's next call waits for the other chains of its round that make it
// too, at most the linger: chains that share only an evaluator still share
// its call, and a slow source holds up only the chains that share its call,
// never the whole round.

// maxBatch bounds the targets of one call: gRPC refuses messages over
// 4 MiB by default, and a snapshot with its workers can weigh tens of KB.
const maxBatch = 128

// member is one chain's evaluation within a round.
type member struct {
	ctx    context.Context // the chain's: done when it stops
	l      *chainLoop      // nil in ebb plan
	t      tick            // zero unless the scheduler dispatched it
	ch     *config.Chain
	p      chainPlugins
	target sdk.Target
	unlock func()
	ev     *Evaluation
	err    error

	parts    []collectResult // one per collector
	pending  int             // collector calls outstanding, under round.mu
	states   state.ChainState
	newState state.ChainState
	outcomes map[string]*sdk.Outcome
	prev     *sdk.Decision
	steps    []sdk.Step
	figures  map[string]float64
	next     int // the evaluator position called next
	// plan is the member's calls after collect, in order (inventory, then
	// each evaluator); reached counts those it has arrived at.
	plan    []stageKey
	reached int
}

type round struct {
	r       *Runner
	ctx     context.Context // bounds every call of the round
	pool    *pool
	realize bool
	// settle sees each member once it is done, before its target and
	// schedule slot are released.
	settle func(*member)
	mu     sync.Mutex
	wg     sync.WaitGroup
	// expect counts, per call, the members still to arrive at it;
	// waiting holds those that have.
	expect  map[stageKey]int
	waiting map[stageKey]*gathering
}

// callKey is one batched call: a plugin block at one timeout (chains whose
// timeouts differ do not share a deadline).
type callKey struct {
	inst    *host.Instance
	timeout time.Duration
}

// slotPart is one chain's place in a call: its collector at position i.
type slotPart struct {
	m *member
	i int
}

// start begins the round on the calling worker.
func (rd *round) start(ms []*member) {
	rd.wg.Add(len(ms))
	rd.expect, rd.waiting = map[stageKey]int{}, map[stageKey]*gathering{}
	var order []callKey
	groups := map[callKey][]slotPart{}
	var ready []*member
	for _, m := range ms {
		unlock, ok := rd.r.lockTarget(m.ch)
		if !ok {
			m.err = ErrInFlight
			rd.end(m)
			continue
		}
		m.unlock = unlock
		m.target = sdk.Target{Chain: m.ch.Name, Name: m.ch.Target}
		m.ev = &Evaluation{Chain: m.ch.Name, Target: m.ch.Target, At: rd.r.opts.Clock()}
		m.parts = make([]collectResult, len(m.p.collectors))
		m.pending = len(m.p.collectors)
		rd.planOf(m)
		if m.pending == 0 {
			ready = append(ready, m)
		}
		for i, inst := range m.p.collectors {
			k := callKey{inst, rd.r.timeout(m.ch, sdk.KindCollector, m.ch.Collectors[i])}
			if _, seen := groups[k]; !seen {
				order = append(order, k)
			}
			groups[k] = append(groups[k], slotPart{m, i})
		}
	}
	var tasks []func()
	for _, k := range order {
		for _, parts := range chunks(groups[k]) {
			tasks = append(tasks, func() { rd.collect(k, parts) })
		}
	}
	if len(ready) > 0 {
		tasks = append(tasks, func() { rd.collected(ready) })
	}
	rd.spawn(tasks)
}

// spawn queues all tasks but the last, which runs on the calling worker.
func (rd *round) spawn(tasks []func()) {
	for i, f := range tasks {
		if i == len(tasks)-1 {
			f()
			return
		}
		rd.pool.submit(f, true)
	}
}

func (rd *round) collect(k callKey, parts []slotPart) {
	targets := make([]sdk.Target, len(parts))
	ms := make([]*member, len(parts))
	for i, p := range parts {
		targets[i], ms[i] = p.m.target, p.m
	}
	ctx, done := rd.callCtx(k.timeout, ms)
	res, err := collectBatch(ctx, k.inst, targets)
	done()
	err = rd.checkBatch(k, "Collect", len(res), len(targets), err)
	var ready []*member
	rd.mu.Lock()
	for i, p := range parts {
		r := collectResult{Err: err}
		if err == nil {
			r = res[i]
		}
		p.m.parts[p.i] = r
		if p.m.pending--; p.m.pending == 0 {
			ready = append(ready, p.m)
		}
	}
	rd.mu.Unlock()
	rd.collected(ready)
}

// collected merges each member's snapshot and asks for its inventory. A
// collector that failed makes the merged snapshot incomplete instead of
// failing the round: the rest may still justify a scale-up.
func (rd *round) collected(ms []*member) {
	for _, m := range ms {
		merged := sdk.Snapshot{Complete: true, Metrics: map[string]float64{}}
		n := 0
		for i, part := range m.parts {
			if part.Err != nil {
				merged.Complete = false
				merged.IncompleteReasons = append(merged.IncompleteReasons, part.Err.Error())
				continue
			}
			mergeSnapshot(&merged, m.ch.Collectors[i], part.Snapshot, n == 0)
			n++
		}
		m.parts = nil
		m.ev.Snapshot = merged
		m.ev.Degraded = degradedReasons(merged, m.ev.At, m.ch.MaxSnapshotAge)
	}
	rd.arrive(ms)
}

func (rd *round) inventory(k callKey, ms []*member) {
	targets := make([]sdk.Target, len(ms))
	for i, m := range ms {
		targets[i] = m.target
	}
	ctx, done := rd.callCtx(k.timeout, ms)
	res, err := inventoryBatch(ctx, k.inst, targets)
	done()
	err = rd.checkBatch(k, "Inventory", len(res), len(targets), err)
	var ok []*member
	for i, m := range ms {
		e := err
		if e == nil {
			e = res[i].Err
		}
		if e != nil {
			// Without the inventory any decision would be a guess about
			// what exists; skip the round rather than risk a duplicate.
			m.err = fmt.Errorf("chain %q: inventory: %w", m.ch.Name, e)
			rd.end(m)
			continue
		}
		m.ev.Inventory = res[i].Units
		if m.err = rd.r.loadRound(m); m.err != nil {
			rd.end(m)
			continue
		}
		ok = append(ok, m)
	}
	rd.evaluateNext(ok)
}

// loadRound reads what a member's evaluators start from: their saved state
// and the outcome of their last decision.
func (r *Runner) loadRound(m *member) error {
	m.states, m.newState, m.figures = state.ChainState{}, state.ChainState{}, map[string]float64{}
	if r.opts.Store != nil {
		states, err := r.opts.Store.LoadState(m.ch.Name)
		if err != nil {
			return err
		}
		if states != nil {
			m.states = states
		}
		m.ev.StateLoaded = len(states) > 0
	}
	outcomes, err := r.loadOutcomes(m.ch.Name)
	m.outcomes = outcomes
	return err
}

// evaluateNext calls each member's next evaluator, batched by evaluator
// position: evaluator k+1 of a chain sees evaluator k's decision. Members
// past their last evaluator conclude.
func (rd *round) evaluateNext(ms []*member) {
	rd.arrive(ms)
}

func (rd *round) evaluate(k callKey, ms []*member) {
	reqs := make([]sdk.EvaluateRequest, len(ms))
	for i, m := range ms {
		name := m.ch.Evaluators[m.next]
		reqs[i] = sdk.EvaluateRequest{
			Target:           m.target,
			Policy:           m.ch.Policy[name],
			Snapshot:         m.ev.Snapshot,
			Inventory:        m.ev.Inventory,
			State:            m.states[name],
			Now:              m.ev.At,
			Previous:         copyOf(m.prev),
			SnapshotDegraded: len(m.ev.Degraded) > 0,
			Outcome:          m.outcomes[name],
		}
	}
	ctx, done := rd.callCtx(k.timeout, ms)
	res, err := evaluateBatch(ctx, k.inst, reqs)
	done()
	err = rd.checkBatch(k, "Evaluate", len(res), len(reqs), err)
	var ok []*member
	for i, m := range ms {
		e := err
		if e == nil {
			e = res[i].Err
		}
		if e != nil {
			m.err = fmt.Errorf("chain %q: %w", m.ch.Name, e)
			rd.end(m)
			continue
		}
		name := m.ch.Evaluators[m.next]
		resp := res[i].Response
		m.newState[name] = resp.State
		m.ev.Steps = append(m.ev.Steps, Step{Evaluator: name, Decision: resp.Decision})
		d := resp.Decision
		m.prev = &d
		m.steps = append(m.steps, sdk.Step{Evaluator: name, Decision: d.Copy()})
		for k, v := range d.Metrics {
			m.figures[k] = v // later evaluators win
		}
		m.next++
		ok = append(ok, m)
	}
	rd.evaluateNext(ok)
}

// conclude applies the runner's rules to the last decision and, in ebb run,
// commits and realizes it.
func (rd *round) conclude(m *member) {
	ev := m.ev
	if m.prev != nil {
		ev.Decision = *m.prev
	}
	ev.Decision.Metrics = nil
	if len(m.figures) > 0 {
		ev.Decision.Metrics = m.figures
	}
	newStates := m.newState
	switch {
	case ev.Snapshot.Conflict != "":
		ev.Conflict = ev.Snapshot.Conflict
		ev.Suppressed = suppressAll(&ev.Decision, ev.Conflict)
		// The evaluators' new state would remember units they asked for
		// and never got; keep the old one, as if the round had not run.
		newStates = m.states
	case len(ev.Degraded) > 0:
		ev.Suppressed = suppressScaleDown(&ev.Decision, ev.Degraded)
	}
	ev.round = roundOf(ev, m.steps)
	ev.Record = rd.r.record(ev)
	if !rd.realize {
		ev.Outcomes = ev.round.Outcomes()
		ev.Record.Status = "planned"
	} else if m.ctx.Err() == nil { // a chain stopped meanwhile commits nothing
		m.err = rd.r.commit(m.ctx, m.ch, m.p, ev, newStates)
	}
	rd.end(m)
}

// end finishes a member: its chain's bookkeeping, then its target and its
// schedule slot are free again.
func (rd *round) end(m *member) {
	if m.unlock != nil {
		m.unlock()
	}
	// It will not arrive at the rest of its plan: calls that waited for
	// it go now if all others are there.
	var tasks []func()
	rd.mu.Lock()
	for _, sk := range m.plan[m.reached:] {
		rd.expect[sk]--
		if g := rd.waiting[sk]; g != nil && len(g.ms) == rd.expect[sk] {
			tasks = append(tasks, rd.flushLocked(sk)...)
		}
	}
	rd.mu.Unlock()
	for _, f := range tasks {
		rd.pool.submit(f, true)
	}
	if rd.settle != nil {
		rd.settle(m)
	}
	rd.r.sched.finished(m.t.e)
	rd.wg.Done()
}

// callCtx bounds one batched call by its timeout, and cancels it once
// every chain in it has stopped (one chain stopping leaves the others'
// call alone).
func (rd *round) callCtx(timeout time.Duration, ms []*member) (context.Context, func()) {
	ctx, cancel := context.WithTimeout(rd.ctx, timeout)
	left := int32(len(ms))
	stops := make([]func() bool, len(ms))
	for i, m := range ms {
		stops[i] = context.AfterFunc(m.ctx, func() {
			if atomic.AddInt32(&left, -1) == 0 {
				cancel()
			}
		})
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}

// checkBatch turns a batched answer of the wrong length into an error of
// the whole call, and counts the call.
func (rd *round) checkBatch(k callKey, method string, got, want int, err error) error {
	rd.r.opts.Metrics.BatchTargets.WithLabelValues(method).Observe(float64(want))
	if err == nil && got != want {
		err = fmt.Errorf("%s %q answered %s with %d results for %d targets", k.inst.Spec().Kind, k.inst.Spec().Block, method, got, want)
	}
	return err
}

func chunks[T any](s []T) [][]T {
	var out [][]T
	for len(s) > maxBatch {
		out = append(out, s[:maxBatch:maxBatch])
		s = s[maxBatch:]
	}
	return append(out, s)
}

// runNow runs one round to its end on a pool of its own: ebb plan, and
// tests that step a chain on a virtual clock.
func (r *Runner) runNow(ctx context.Context, ms []*member, realize bool, settle func(*member)) {
	if len(ms) == 0 {
		return
	}
	p := newPool(min(workerCount(), 4*len(ms)))
	defer p.close()
	rd := &round{r: r, ctx: ctx, pool: p, realize: realize, settle: settle}
	rd.start(ms)
	rd.wg.Wait()
}
