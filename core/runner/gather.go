package runner

import (
	"time"

	"github.com/ebbscale/ebb/sdk"
)

// Gathering: a member's calls after collect wait for the other members of
// its round that make the same call, so that they share it, but never
// longer than the linger.

// stageKey is one call of a round's plan: stage 1 is the inventory, stage
// 2+k the evaluator at position k.
type stageKey struct {
	stage int
	k     callKey
}

// gathering is the members gathered for one call, until the last expected
// one arrives or the linger runs out.
type gathering struct {
	ms    []*member
	timer *time.Timer
}

// linger is how long members that arrived at a call wait for the others of
// their round expected there (chains with different collectors that share
// an evaluator): long enough for calls running side by side to end, short
// enough that a chain whose peer waits on a slow source goes on without it.
const linger = 5 * time.Millisecond

// planOf lays out a member's calls after collect and counts it as
// expected at each.
func (rd *round) planOf(m *member) {
	m.plan = append(m.plan, stageKey{1, callKey{m.p.realizer, rd.r.timeout(m.ch, sdk.KindRealizer, m.ch.Realizer)}})
	for i, inst := range m.p.evaluators {
		m.plan = append(m.plan, stageKey{2 + i, callKey{inst, rd.r.timeout(m.ch, sdk.KindEvaluator, m.ch.Evaluators[i])}})
	}
	for _, sk := range m.plan {
		rd.expect[sk]++
	}
}

// arrive sends members on to their next call. A call goes out once every
// member of the round expected at it has arrived, or when the linger runs
// out. Members past their plan conclude, each as its own task when the
// round realizes (commit and realize are per chain). Members whose chain
// stopped are ended.
func (rd *round) arrive(ms []*member) {
	var tasks []func()
	for _, m := range ms {
		if m.ctx.Err() != nil {
			rd.end(m)
			continue
		}
		if m.reached == len(m.plan) {
			if rd.realize {
				tasks = append(tasks, func() { rd.conclude(m) })
			} else {
				rd.conclude(m) // ebb plan: nothing slow is left to do
			}
			continue
		}
		sk := m.plan[m.reached]
		m.reached++
		rd.mu.Lock()
		g := rd.waiting[sk]
		if g == nil {
			g = &gathering{}
			rd.waiting[sk] = g
		}
		g.ms = append(g.ms, m)
		if len(g.ms) == rd.expect[sk] {
			tasks = append(tasks, rd.flushLocked(sk)...)
		} else if g.timer == nil {
			g.timer = time.AfterFunc(rd.r.linger, func() { rd.lingered(sk, g) })
		}
		rd.mu.Unlock()
	}
	rd.spawn(tasks)
}

// lingered sends a gathering whose linger ran out with whoever arrived.
func (rd *round) lingered(sk stageKey, g *gathering) {
	rd.mu.Lock()
	var tasks []func()
	if rd.waiting[sk] == g {
		tasks = rd.flushLocked(sk)
	}
	rd.mu.Unlock()
	for _, f := range tasks {
		rd.pool.submit(f, true)
	}
}

// flushLocked takes the members gathered for a call out and returns the
// tasks that make it, in batches of at most maxBatch. rd.mu is held.
func (rd *round) flushLocked(sk stageKey) []func() {
	g := rd.waiting[sk]
	delete(rd.waiting, sk)
	if g.timer != nil {
		g.timer.Stop()
	}
	rd.expect[sk] -= len(g.ms)
	call := rd.evaluate
	if sk.stage == 1 {
		call = rd.inventory
	}
	var tasks []func()
	for _, part := range chunks(g.ms) {
		tasks = append(tasks, func() { call(sk.k, part) })
	}
	return tasks
}
