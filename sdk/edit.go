package sdk

import (
	"maps"
	"slices"
)

// This file holds what an evaluator later in a chain needs to edit the
// decision it is handed (EvaluateRequest.Previous) without corrupting it.
//
// Vetoed versus an empty decision: both realize nothing, and both tell the
// evaluators before this one (in their next Outcome) that their actions were
// ResultDropped by this one. The difference is what they mean:
//
//   - Vetoed: "I refuse what came before, whatever it is". The runner counts
//     the decision as vetoed by this evaluator (ebb_evaluator_vetoes_total),
//     the decision log shows "vetoed", and the earlier evaluators' actions
//     are reported dropped with the reason prefixed "vetoed: ". Any actions
//     a vetoed decision still lists are ignored. Keep DesiredCapacity at what
//     the inventory holds (Recompute does that).
//   - An empty decision (no actions, Vetoed false): "nothing needs doing",
//     an ordinary decision of its own. Where it drops actions of an earlier
//     evaluator it counts as an adjustment (ebb_evaluator_adjustments_total).
//
// To take out only some actions, Copy the previous decision, delete what
// you refuse, then call Recompute so that DesiredCapacity matches what is
// left, and say why in Reason.

// Copy returns a deep copy of d: editing the copy's slices and maps leaves d
// as it was. The runner hands each evaluator its own copy, but a decision
// kept in a variable and edited twice would otherwise share storage.
func (d Decision) Copy() Decision {
	out := d
	out.Add = slices.Clone(d.Add)
	out.Drain = slices.Clone(d.Drain)
	out.Remove = slices.Clone(d.Remove)
	out.Restart = slices.Clone(d.Restart)
	out.ParallelismOverrides = maps.Clone(d.ParallelismOverrides)
	out.ConfigOverrides = maps.Clone(d.ConfigOverrides)
	out.Metrics = maps.Clone(d.Metrics)
	return out
}

// Capacity is the threads the inventory will hold once d is carried out:
// every unit not draining, less those d drains or removes, plus those d adds
// that the inventory does not list yet. A vetoed decision changes nothing.
func Capacity(inventory []Unit, d Decision) int64 {
	leaving := map[string]bool{}
	if !d.Vetoed {
		for _, id := range d.Drain {
			leaving[id] = true
		}
		for _, r := range d.Remove {
			leaving[r.UnitID] = true
		}
	}
	listed := map[string]bool{}
	var n int64
	for _, u := range inventory {
		listed[u.ID] = true
		if u.Phase != PhaseDraining && !leaving[u.ID] {
			n += u.Size
		}
	}
	if !d.Vetoed {
		for _, a := range d.Add {
			if !listed[a.UnitID] {
				n += a.Size
			}
		}
	}
	return n
}

// Recompute sets d.DesiredCapacity to Capacity(inventory, *d), for use after
// actions were taken out of or put into a decision.
func (d *Decision) Recompute(inventory []Unit) {
	d.DesiredCapacity = Capacity(inventory, *d)
}
