// Package baseline holds the autoscaling algorithms ebb is measured against,
// each an evaluator written from its documentation (shared/reference:
// spark-keda-hpa.md §1 and §4, amoro.md §0 and §6.3) and run in the same
// simulated world as the chain's own evaluators. None is tuned: each uses
// its documented defaults and the chain policy's bounds and unit size.
package baseline

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/ebbscale/ebb/sdk"
)

// Params are the chain policy's keys every baseline shares: the bounds and
// the unit size, and the Amoro DRA timings the amoro port reads. Defaults are
// evaluator-dra's (and Amoro's).
type Params struct {
	Min               int64        `json:"min-parallelism"`
	Max               int64        `json:"max-parallelism"`
	K                 int64        `json:"executor-parallelism"`
	IdleTimeout       sdk.Duration `json:"executor-idle-timeout"`
	BacklogTimeout    sdk.Duration `json:"scheduler-backlog-timeout"`
	SustainedTimeout  sdk.Duration `json:"sustained-backlog-timeout"`
	ScaleDownCooldown sdk.Duration `json:"scale-down-cooldown"`
	DrainTimeout      sdk.Duration `json:"drain-timeout"`
}

// ParseParams reads the keys it knows from a chain policy and ignores the rest.
func ParseParams(policy json.RawMessage) (Params, error) {
	p := Params{K: 1, IdleTimeout: sdk.Duration(5 * time.Minute), BacklogTimeout: sdk.Duration(time.Minute),
		SustainedTimeout: sdk.Duration(30 * time.Second), ScaleDownCooldown: sdk.Duration(time.Minute),
		DrainTimeout: sdk.Duration(15 * time.Minute)}
	if len(policy) > 0 {
		if err := json.Unmarshal(policy, &p); err != nil {
			return p, fmt.Errorf("baseline: policy: %w", err)
		}
	}
	if p.K < 1 {
		return p, fmt.Errorf("baseline: executor-parallelism %d must be at least 1", p.K)
	}
	if p.Max <= 0 {
		p.Max = 1024 // Amoro's ceiling for max-parallelism
	}
	if p.Min > p.Max {
		return p, fmt.Errorf("baseline: min-parallelism %d above max-parallelism %d", p.Min, p.Max)
	}
	return p, nil
}

// minUnits and maxUnits are the bounds in whole units of K threads.
func (p Params) minUnits() int64 { return (p.Min + p.K - 1) / p.K }
func (p Params) maxUnits() int64 { return max(p.Max/p.K, p.minUnits()) }

// Func adapts a decision function to the simulator's evaluator interface.
// Baselines keep their memory in the value (the simulator runs each once per
// world), not in State.
type Func func(req sdk.EvaluateRequest) sdk.Decision

func (f Func) Evaluate(_ context.Context, req sdk.EvaluateRequest) (sdk.EvaluateResponse, error) {
	return sdk.EvaluateResponse{Decision: f(req)}, nil
}

// view is the inventory joined with the workers, per unit.
type view struct {
	booting, running, draining []sdk.Unit
	busy                       map[string]int64 // by unit id
	registered                 map[string]bool
	token                      map[string]string
}

func look(req sdk.EvaluateRequest) view {
	v := view{busy: map[string]int64{}, registered: map[string]bool{}, token: map[string]string{}}
	for _, w := range req.Snapshot.Workers {
		v.busy[w.UnitID] += w.BusyThreads
		v.registered[w.UnitID] = true
		v.token[w.UnitID] = w.ID
	}
	for _, u := range req.Inventory {
		switch u.Phase {
		case sdk.PhaseDraining:
			v.draining = append(v.draining, u)
		case sdk.PhaseRunning:
			if v.registered[u.ID] {
				v.running = append(v.running, u)
			} else {
				v.booting = append(v.booting, u)
			}
		default:
			v.booting = append(v.booting, u)
		}
	}
	return v
}

// ids hands out unit ids "<name>-<seq>".
type ids struct {
	name string
	seq  int
}

func (g *ids) add(n int64, size int64) []sdk.UnitAdd {
	var out []sdk.UnitAdd
	for range n {
		g.seq++
		out = append(out, sdk.UnitAdd{UnitID: fmt.Sprintf("%s-%d", g.name, g.seq), Size: size})
	}
	return out
}

// newestFirst orders units newest first, ids breaking ties so runs repeat.
func newestFirst(us []sdk.Unit) []sdk.Unit {
	out := append([]sdk.Unit(nil), us...)
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.After(out[j].CreatedAt)
		}
		return out[i].ID > out[j].ID
	})
	return out
}

// Static keeps a fixed number of units: static-min (the policy's floor) or
// static-peak (sized for the trace's peak). Lost units are replaced.
func Static(name string, p Params, units int64) Func {
	g := &ids{name: name}
	return func(req sdk.EvaluateRequest) sdk.Decision {
		v := look(req)
		have := int64(len(v.booting) + len(v.running))
		d := sdk.Decision{DesiredCapacity: units * p.K, Reason: fmt.Sprintf("static %d units", units)}
		if have < units {
			d.Add = g.add(units-have, p.K)
		}
		return d
	}
}

// StaticMin is the policy's floor, at least one unit so work is served.
func StaticMin(p Params) Func { return Static("static-min", p, max(1, p.minUnits())) }

// StaticPeak is provisioned for peakThreads (the oracle's peak busy threads),
// within the policy's bounds.
func StaticPeak(p Params, peakThreads int64) Func {
	u := (peakThreads + p.K - 1) / p.K
	return Static("static-peak", p, max(1, min(max(u, p.minUnits()), p.maxUnits())))
}
