package baseline

import (
	"fmt"
	"sort"
	"time"

	"github.com/ebbscale/ebb/sdk"
)

// AmoroBootTimeout is OptimizerScaleKeeper's hard-coded BOOT_TIMEOUT_MS
// (amoro.md §6.2): a requested instance not registered by then no longer
// counts as pending capacity.
const AmoroBootTimeout = 3 * time.Minute

// Amoro ports AMS's merged OptimizerScaleKeeper (amoro.md §0, §6.3,
// DefaultOptimizingService.java) as the simulator calls it: one round every
// sustained-backlog-timeout. The round order is Amoro's: drain progress,
// effective capacity (registered − draining + pending registrations), idle
// tracking per token, the two-layer scale-up (immediate demand
// busy + serviceable planned − effective, through the backlog gate and the
// 1, 2, 4 … ramp; a single probe for pending tables alone), and, only in a
// round with no demand at all, at most one longest-idle instance drained,
// removed at once when it holds nothing. The planning-bound warning (which
// only logs and holds scaling) is left out: the simulator plans at once, so
// its condition cannot last two rounds.
func Amoro(p Params) Func {
	g := &ids{name: "amoro"}
	pending := map[string]time.Time{} // resource id -> requested at
	draining := map[string]time.Time{}
	lastBusy := map[string]time.Time{} // by token
	var backlogSince, lastScaleUp, lastSelection time.Time
	scaled := false
	ramp := int64(1)
	return func(req sdk.EvaluateRequest) sdk.Decision {
		now := req.Now
		var d sdk.Decision
		inInventory := map[string]bool{}
		for _, u := range req.Inventory {
			inInventory[u.ID] = true
		}
		busyOf, threadsOf, tokenOf := map[string]int64{}, map[string]int64{}, map[string]string{}
		for _, w := range req.Snapshot.Workers {
			busyOf[w.UnitID] += w.BusyThreads
			threadsOf[w.UnitID] += w.Threads
			tokenOf[w.UnitID] = w.ID
		}
		// 1. Drain progress first.
		for id, deadline := range draining {
			if !inInventory[id] {
				delete(draining, id)
				continue
			}
			if busyOf[id] == 0 || !now.Before(deadline) {
				d.Remove = append(d.Remove, sdk.UnitRemove{UnitID: id})
				delete(draining, id)
			}
		}
		sort.Slice(d.Remove, func(i, j int) bool { return d.Remove[i].UnitID < d.Remove[j].UnitID })
		// 2. Capacity, with draining capacity already gone on both sides.
		var registered, drainingT, busy, drainingBusy int64
		for id, t := range threadsOf {
			registered += t
			busy += busyOf[id]
			if _, ok := draining[id]; ok {
				drainingT += t
				drainingBusy += busyOf[id]
			}
		}
		for id, at := range pending {
			if _, ok := threadsOf[id]; ok || now.Sub(at) > AmoroBootTimeout || !inInventory[id] {
				delete(pending, id)
			}
		}
		effective := registered - drainingT + int64(len(pending))*p.K
		busy -= drainingBusy
		// 3. Idle tracking per token.
		live := map[string]bool{}
		for id, tok := range tokenOf {
			live[tok] = true
			if _, seen := lastBusy[tok]; !seen || busyOf[id] > 0 {
				lastBusy[tok] = now
			}
		}
		for tok := range lastBusy {
			if !live[tok] {
				delete(lastBusy, tok)
			}
		}
		// 5. Scale-up.
		allowed := max(0, (p.Max-effective)/p.K)
		n, demand := int64(0), true
		dm := req.Snapshot.Demand
		switch {
		case effective < p.Min:
			n = min((p.Min-effective+p.K-1)/p.K, allowed)
			ramp, backlogSince, scaled = 1, time.Time{}, false
		default:
			need := max(busy+dm.ServiceablePlanned()-effective, 0)
			future := dm.PendingTables > 0 && busy >= effective
			if need == 0 && !future {
				backlogSince, ramp, scaled, demand = time.Time{}, 1, false, false
				break
			}
			if backlogSince.IsZero() {
				backlogSince = now
			}
			gate := now.Sub(backlogSince) >= p.BacklogTimeout.D()
			if scaled {
				gate = now.Sub(lastScaleUp) >= p.SustainedTimeout.D()
			}
			if !gate {
				break
			}
			if need > 0 {
				want := (need + p.K - 1) / p.K
				n = min(want, ramp, allowed)
				if want > ramp && n == ramp {
					ramp *= 2
				} else {
					ramp = 1
				}
			} else {
				n = min(1, allowed)
			}
			if n > 0 {
				lastScaleUp, scaled = now, true
			}
		}
		d.Add = g.add(n, p.K)
		for _, a := range d.Add {
			pending[a.UnitID] = now
		}
		// 7. Scale-down only in a round without any demand.
		if !demand && now.Sub(lastSelection) >= p.ScaleDownCooldown.D() {
			var victim string
			var oldest time.Time
			ids := make([]string, 0, len(tokenOf))
			for id := range tokenOf {
				ids = append(ids, id)
			}
			sort.Strings(ids)
			for _, id := range ids {
				_, isDraining := draining[id]
				lb := lastBusy[tokenOf[id]]
				if isDraining || !inInventory[id] || now.Sub(lb) < p.IdleTimeout.D() {
					continue
				}
				if registered-drainingT-threadsOf[id] < p.Min {
					continue
				}
				if victim == "" || lb.Before(oldest) {
					victim, oldest = id, lb
				}
			}
			if victim != "" {
				lastSelection = now
				if busyOf[victim] == 0 {
					d.Remove = append(d.Remove, sdk.UnitRemove{UnitID: victim})
				} else {
					d.Drain = append(d.Drain, victim)
					draining[victim] = now.Add(p.DrainTimeout.D())
				}
			}
		}
		d.DesiredCapacity = effective + n*p.K
		d.Reason = fmt.Sprintf("amoro: effective %d, busy %d, +%d instances", effective, busy, n)
		return d
	}
}
