package baseline

import (
	"fmt"
	"math"
	"time"

	"github.com/ebbscale/ebb/sdk"
)

// HPA v2 defaults (spark-keda-hpa.md §4).
const (
	HPAInterval       = 15 * time.Second // --horizontal-pod-autoscaler-sync-period
	HPATolerance      = 0.1
	HPAStabilisation  = 300 * time.Second // scaleDown.stabilizationWindowSeconds
	HPAScaleUpPods    = 4                 // scaleUp policy Pods 4 / 15 s
	HPAScaleUpPercent = 100               // scaleUp policy Percent 100 / 15 s
)

// HPATarget is the utilisation target: the threads demanded (busy +
// serviceable planned) per thread of the ready pods. Kubernetes has no
// default; 0.8 is the usual choice for a queue-backed worker pool.
const HPATarget = 0.8

// HPA is the Kubernetes HPA v2 control loop with its default behaviour
// (spark-keda-hpa.md §4) on one pod per unit of K threads: every 15 s,
// desired = ceil(current × utilisation / target), skipped inside the 10 %
// tolerance; pods not yet ready count as 0 % on scale-up; scale-up at most
// max(+4 pods, +100 %) per period; scale-down to the highest recommendation
// of the last 300 s, at once (100 % / 15 s). A scaled-down pod gets SIGTERM,
// which an Amoro >= 0.9 optimizer answers by draining; the ReplicaSet deletes
// not-ready pods first, then the newest.
func HPA(p Params) Func {
	g := &ids{name: "hpa"}
	minR, maxR := max(1, p.minUnits()), p.maxUnits() // minReplicas defaults to 1
	type rec struct {
		at time.Time
		n  int64
	}
	var history []rec
	return func(req sdk.EvaluateRequest) sdk.Decision {
		now := req.Now
		v := look(req)
		dm := req.Snapshot.Demand
		ready := int64(len(v.running))
		notReady := int64(len(v.booting))
		current := ready + notReady
		usage := float64(dm.ScheduledTasks + dm.RunningTasks + dm.ServiceablePlanned())
		desired := current
		if current == 0 {
			desired = minR
		} else {
			// Utilisation over the ready pods; on scale-up the not-ready
			// ones are added at 0 %, which lowers the ratio.
			ratio := 0.0
			if ready > 0 {
				ratio = usage / (float64(ready*p.K) * HPATarget)
			} else if usage > 0 {
				ratio = math.Inf(1)
			}
			if ratio > 1 && notReady > 0 {
				ratio = usage / (float64(current*p.K) * HPATarget)
			}
			if math.Abs(ratio-1) > HPATolerance {
				if math.IsInf(ratio, 1) {
					desired = current + 1
				} else {
					desired = int64(math.Ceil(float64(current) * ratio))
				}
			}
		}
		desired = min(max(desired, minR), maxR)
		// Scale-down stabilisation: the highest recommendation in the window.
		history = append(history, rec{now, desired})
		for len(history) > 0 && now.Sub(history[0].at) > HPAStabilisation {
			history = history[1:]
		}
		if desired < current {
			for _, r := range history {
				desired = max(desired, r.n)
			}
			desired = min(desired, current)
		}
		if desired > current {
			desired = min(desired, max(current+HPAScaleUpPods, current*(100+HPAScaleUpPercent)/100))
		}
		d := sdk.Decision{DesiredCapacity: desired * p.K, Reason: fmt.Sprintf("hpa %d -> %d replicas (usage %.0f threads)", current, desired, usage)}
		switch {
		case desired > current:
			d.Add = g.add(desired-current, p.K)
		case desired < current:
			n := current - desired
			for _, u := range append(newestFirst(v.booting), newestFirst(v.running)...) {
				if n == 0 {
					break
				}
				d.Drain = append(d.Drain, u.ID)
				n--
			}
		}
		return d
	}
}
