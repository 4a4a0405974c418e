package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/ebbscale/ebb/emulator/ams"
	"github.com/ebbscale/ebb/sdk"
)

// Evaluator is what a round calls: sdk.Evaluator in process, or a
// host.Instance running the plugin as its own process.
type Evaluator interface {
	Evaluate(ctx context.Context, req sdk.EvaluateRequest) (sdk.EvaluateResponse, error)
}

// Stage is one evaluator of a chain with its own policy keys.
type Stage struct {
	Name   string
	Eval   Evaluator
	Policy json.RawMessage
}

// Policy is one contender: a chain of evaluators called every Interval, or
// the oracle.
type Policy struct {
	Name     string
	Stages   []Stage
	Interval time.Duration
	// Oracle runs exactly the busy threads, instantly: the lower bound.
	Oracle bool
	// Cap, if above zero, holds the oracle to at most this many threads
	// (a policy's max-parallelism): the least wait under that ceiling.
	Cap int64
}

// World is what every policy of a comparison shares.
type World struct {
	Rows   []Row
	Target sdk.Target
	// BootDelay is how long a unit takes from request to registration.
	BootDelay time.Duration
	// DrainTimeout ends a drain that has not finished.
	DrainTimeout time.Duration
	// BootFailure is the probability that a boot never registers.
	BootFailure float64
	Seed        uint64
	// Samples is how many points the series get (default 600).
	Samples int
}

// Start is the virtual clock's origin: fixed, so runs repeat.
var Start = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)

// maxRounds bounds one run, whatever the trace.
const maxRounds = 5_000_000

// Run replays the world's trace under one policy. progress, when set, gets
// the share of the trace replayed.
func Run(ctx context.Context, w World, pol Policy, progress func(float64)) (*Result, error) {
	if len(w.Rows) == 0 {
		return nil, fmt.Errorf("sim: empty trace")
	}
	if !pol.Oracle && (pol.Interval <= 0 || len(pol.Stages) == 0) {
		return nil, fmt.Errorf("sim: policy %s needs evaluators and an interval", pol.Name)
	}
	vc := ams.NewVirtualClock(Start)
	acc := newAccount(w, pol.Name)
	group := "sim"
	quota := false
	for _, r := range w.Rows {
		quota = quota || r.Quota > 0
	}
	em, err := ams.New(ams.Options{Clock: vc, Groups: []ams.GroupConfig{{Name: group}}, Seed: w.Seed, Start: Start,
		QuotaLimit: quota, OnTaskDone: acc.taskDone})
	if err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	trace := make([]ams.TraceRow, len(w.Rows))
	for i, r := range w.Rows {
		trace[i] = ams.TraceRow{Submit: r.Submit, Duration: r.Duration, Table: r.Table}
		if r.Quota > 0 {
			if err := em.SetTableQuota(group, r.Table, r.Quota); err != nil {
				return nil, fmt.Errorf("sim: %w", err)
			}
		}
	}
	if err := em.ScheduleTrace(trace); err != nil {
		return nil, fmt.Errorf("sim: %w", err)
	}
	p := &platform{em: em, group: group, bootDelay: w.BootDelay, drainTimeout: w.DrainTimeout, bootFailure: w.BootFailure,
		rng: rand.New(rand.NewPCG(w.Seed, 0x5eed)), units: map[string]*unit{}}
	states := make([][]byte, len(pol.Stages))
	oracleSeq := 0

	now, nextTick := Start, Start
	lastSubmit := Start.Add(w.Rows[len(w.Rows)-1].Submit)
	for rounds := 0; ; rounds++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if rounds > maxRounds {
			return nil, fmt.Errorf("sim: policy %s: more than %d steps; the trace is too long for one run", pol.Name, maxRounds)
		}
		view, err := em.View(group)
		if err != nil {
			return nil, err
		}
		if err := p.settle(now, view); err != nil {
			return nil, fmt.Errorf("sim: platform: %w", err)
		}
		if pol.Oracle {
			oracleSeq, err = topUp(em, group, oracleSeq, pol.Cap)
			if err != nil {
				return nil, err
			}
		}
		if view, err = em.View(group); err != nil {
			return nil, err
		}
		if !pol.Oracle && !now.Before(nextTick) {
			d, err := decide(ctx, w, pol, states, snapshot(view, now), p.inventory(), now)
			if err != nil {
				return nil, fmt.Errorf("sim: policy %s at %s: %w", pol.Name, now.Sub(Start), err)
			}
			if err := p.realize(d, now); err != nil {
				return nil, fmt.Errorf("sim: platform: %w", err)
			}
			nextTick = nextTick.Add(pol.Interval)
			continue // the decision changed the platform: settle again at the same instant
		}
		if acc.finished == len(w.Rows) || now.After(acc.deadline) {
			acc.finish(now, view)
			break
		}
		next := acc.deadline.Add(time.Nanosecond)
		if !pol.Oracle && nextTick.Before(next) {
			next = nextTick
		}
		if t, ok := em.NextEventAt(); ok && t.Before(next) {
			next = t
		}
		if t, ok := p.nextEvent(); ok && t.Before(next) {
			next = t
		}
		if !next.After(now) {
			next = now.Add(time.Millisecond)
		}
		prov := p.provisioned()
		if pol.Oracle {
			prov = int64(busyThreads(view))
		}
		acc.integrate(now, next, prov, view)
		vc.Set(next)
		em.Sync()
		now = next
		if progress != nil && rounds%512 == 0 {
			progress(min(1, float64(now.Sub(Start))/float64(max(lastSubmit.Sub(Start), time.Second))))
		}
	}
	if v := em.InvariantViolations(); len(v) > 0 {
		return nil, fmt.Errorf("sim: emulator invariant broken: %s", v[0])
	}
	acc.actions = p.actions
	if progress != nil {
		progress(1)
	}
	return acc.result(), nil
}

// decide runs the chain's evaluators in order, as the runner does: each sees
// the previous one's decision and its own state from last round.
func decide(ctx context.Context, w World, pol Policy, states [][]byte, snap sdk.Snapshot, inv []sdk.Unit, now time.Time) (sdk.Decision, error) {
	var prev *sdk.Decision
	for i, st := range pol.Stages {
		resp, err := st.Eval.Evaluate(ctx, sdk.EvaluateRequest{Target: w.Target, Policy: st.Policy, Snapshot: snap,
			Inventory: inv, State: states[i], Now: now, Previous: prev})
		if err != nil {
			return sdk.Decision{}, fmt.Errorf("evaluator %s: %w", st.Name, err)
		}
		states[i] = resp.State
		d := resp.Decision
		prev = &d
	}
	return *prev, nil
}

func busyThreads(v ams.GroupView) int {
	n := 0
	for _, o := range v.Optimizers {
		if !o.Stopped {
			n += o.Busy
		}
	}
	return n
}

// topUp gives the oracle a free thread whenever work is waiting that a
// thread could take, one-thread optimizers started instantly, and drains
// idle ones beyond a single spare (the oracle pays for busy threads only;
// the spare is what lets a new table be planned at once). With a cap above
// zero it never runs more threads than that.
func topUp(em *ams.Emulator, group string, seq int, cap int64) (int, error) {
	for range maxRows {
		v, err := em.View(group)
		if err != nil {
			return seq, err
		}
		var idle []string
		free, threads := 0, int64(0)
		for _, o := range v.Optimizers {
			if !o.Stopped {
				free += o.Threads - o.Busy
				threads += int64(o.Threads)
				if o.Busy == 0 {
					idle = append(idle, o.UnitID)
				}
			}
		}
		full := cap > 0 && threads >= cap
		if free > 0 || full || (v.ServiceablePlanned == 0 && v.PendingTables == 0) {
			for _, id := range idle[min(1, len(idle)):] {
				if err := em.DrainOptimizer(id); err != nil {
					return seq, err
				}
			}
			return seq, nil
		}
		seq++
		if _, err := em.StartOptimizer(group, fmt.Sprintf("oracle-%d", seq), 1); err != nil {
			return seq, err
		}
	}
	return seq, fmt.Errorf("sim: oracle: more than %d threads", maxRows)
}
