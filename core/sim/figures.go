package sim

import (
	"math"
	"sort"
	"time"

	"github.com/ebbscale/ebb/emulator/ams"
)

// Result is every figure of one policy on one trace. Thread-seconds are
// threads × seconds; provisioned counts units booting, running and
// draining. Elasticity figures follow SPEC RG Cloud's metrics
// (spark-keda-hpa.md §5.4) with demand = busy + waiting tasks, supply =
// provisioned threads.
type Result struct {
	Policy string `json:"policy"`
	Tasks  int    `json:"tasks"`
	// Unfinished tasks had not finished at the run's deadline; their wait
	// counts up to it.
	Unfinished           int     `json:"unfinished"`
	ProvisionedThreadSec float64 `json:"provisioned_thread_seconds"`
	UsedThreadSec        float64 `json:"used_thread_seconds"`
	CostVsOracle         float64 `json:"cost_vs_oracle"`
	WaitP50, WaitP95     float64 `json:"-"`
	WaitP99, WaitMax     float64 `json:"-"`
	Wait                 Waits   `json:"wait_seconds"`
	MakespanSec          float64 `json:"makespan_seconds"`
	ScaleActions         int     `json:"scale_actions"`
	PeakThreads          int64   `json:"peak_threads"`
	UnderAccuracyPct     float64 `json:"under_provisioning_accuracy_pct"`
	OverAccuracyPct      float64 `json:"over_provisioning_accuracy_pct"`
	UnderTimesharePct    float64 `json:"under_provisioning_timeshare_pct"`
	OverTimesharePct     float64 `json:"over_provisioning_timeshare_pct"`
	InstabilityPct       float64 `json:"instability_pct"`
	// The oracle's only (BootBound): the least any policy whose units
	// boot for the world's boot delay pays to start every task when the
	// oracle does, in units of one thread and of executor-parallelism.
	BootBoundThreadSec     float64 `json:"boot_bound_thread_seconds,omitempty"`
	BootBoundUnitThreadSec float64 `json:"boot_bound_unit_thread_seconds,omitempty"`
	// CappedWait (the oracle's only) are its waits when it may run no more
	// threads than max-parallelism: the least wait any policy under that
	// ceiling can give.
	CappedWait *Waits `json:"capped_wait_seconds,omitempty"`
	Series     Series `json:"-"`
	spans      []span
}

// Waits are how long tasks waited from submission until a thread took them.
type Waits struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// Series is the run sampled on a regular grid, for plots.
type Series struct {
	Step     time.Duration
	Demand   []float64 // busy + waiting tasks
	Capacity []float64 // provisioned threads
	Queue    []float64 // waiting tasks
}

type account struct {
	policy          string
	tasks, finished int
	deadline        time.Time
	waits           []float64
	spans           []span
	submits         []time.Time // of rows, to count unfinished waits
	lastFinish      time.Time
	prov, used      float64
	under, over     float64
	underT, overT   float64
	total           float64
	peak            int64
	step            time.Duration
	nextSample      time.Time
	series          Series
	actions         int
	prevS, prevD    float64
	unstable, steps int
	haveSample      bool
}

func newAccount(w World, name string) *account {
	var work, last time.Duration
	a := &account{policy: name, tasks: len(w.Rows)}
	for _, r := range w.Rows {
		work += r.Duration
		last = max(last, r.Submit+r.Duration)
		a.submits = append(a.submits, Start.Add(r.Submit))
	}
	// At least one thread always serves in any sane policy, so all work is
	// done by then; a policy that never serves is cut off there.
	a.deadline = Start.Add(last + min(work, 30*24*time.Hour) + time.Hour)
	n := w.Samples
	if n <= 0 {
		n = 600
	}
	a.step = max(time.Second, (last / time.Duration(n)).Round(time.Second))
	a.series.Step = a.step
	a.nextSample = Start
	return a
}

func (a *account) taskDone(d ams.TaskDone) {
	a.finished++
	a.waits = append(a.waits, d.Started.Sub(d.Submitted).Seconds())
	a.spans = append(a.spans, span{d.Started, d.Finished})
	if d.Finished.After(a.lastFinish) {
		a.lastFinish = d.Finished
	}
}

// integrate adds [from, to) with the state constant over it.
func (a *account) integrate(from, to time.Time, prov int64, v ams.GroupView) {
	dt := to.Sub(from).Seconds()
	busy := float64(busyThreads(v))
	waiting := float64(v.Planned + v.Queued)
	d, s := busy+waiting, float64(prov)
	a.prov += s * dt
	a.used += busy * dt
	a.total += dt
	a.peak = max(a.peak, prov)
	norm := max(d, 1)
	if d > s {
		a.under += (d - s) / norm * dt
		a.underT += dt
	} else if s > d {
		a.over += (s - d) / norm * dt
		a.overT += dt
	}
	for !a.nextSample.After(to) && a.nextSample.Before(to) {
		a.series.Demand = append(a.series.Demand, d)
		a.series.Capacity = append(a.series.Capacity, s)
		a.series.Queue = append(a.series.Queue, waiting)
		if a.haveSample {
			// Instability: the share of steps in which supply and demand
			// do not move the same way (one moves, the other does not or
			// goes the other way).
			ds, dd := sign(s-a.prevS), sign(d-a.prevD)
			if ds != dd {
				a.unstable++
			}
			a.steps++
		}
		a.prevS, a.prevD, a.haveSample = s, d, true
		a.nextSample = a.nextSample.Add(a.step)
	}
}

func sign(x float64) int {
	switch {
	case x > 0:
		return 1
	case x < 0:
		return -1
	}
	return 0
}

func (a *account) finish(now time.Time, v ams.GroupView) {
	if a.finished < a.tasks {
		// Tasks still unfinished at the cut-off wait at least until it.
		// Which ones they are is not tracked; the latest submitted are
		// taken, which understates the wait (the figure is a lower bound).
		for _, s := range a.submits[a.finished:] {
			a.waits = append(a.waits, now.Sub(s).Seconds())
		}
		a.lastFinish = now
	}
}

func (a *account) result() *Result {
	r := &Result{Policy: a.policy, Tasks: a.tasks, Unfinished: a.tasks - a.finished,
		ProvisionedThreadSec: a.prov, UsedThreadSec: a.used, ScaleActions: a.actions, PeakThreads: a.peak,
		Series: a.series, spans: a.spans}
	sort.Float64s(a.waits)
	r.Wait = Waits{P50: quantile(a.waits, 0.50), P95: quantile(a.waits, 0.95), P99: quantile(a.waits, 0.99)}
	if n := len(a.waits); n > 0 {
		r.Wait.Max = a.waits[n-1]
	}
	if !a.lastFinish.IsZero() {
		r.MakespanSec = a.lastFinish.Sub(Start).Seconds()
	}
	if a.total > 0 {
		r.UnderAccuracyPct = 100 * a.under / a.total
		r.OverAccuracyPct = 100 * a.over / a.total
		r.UnderTimesharePct = 100 * a.underT / a.total
		r.OverTimesharePct = 100 * a.overT / a.total
	}
	if a.steps > 0 {
		r.InstabilityPct = 100 * float64(a.unstable) / float64(a.steps)
	}
	return r
}

// quantile is the nearest-rank quantile of sorted xs.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(xs)))) - 1
	return xs[max(0, min(i, len(xs)-1))]
}

// Relate sets each result's cost relative to the oracle's provisioned
// thread-seconds.
func Relate(results []*Result) {
	var oracle float64
	for _, r := range results {
		if r.Policy == "oracle" {
			oracle = r.ProvisionedThreadSec
		}
	}
	for _, r := range results {
		if oracle > 0 {
			r.CostVsOracle = r.ProvisionedThreadSec / oracle
		}
	}
}
