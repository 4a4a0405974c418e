// Package metrics defines the runner's Prometheus metrics in a registry of
// its own, so tests and several runners in one process do not collide.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the runner's instruments.
type Metrics struct {
	Registry        *prometheus.Registry
	Evaluations     *prometheus.CounterVec
	Decisions       *prometheus.CounterVec
	PluginCalls     *prometheus.HistogramVec
	PluginRestarts  *prometheus.CounterVec
	DesiredCapacity *prometheus.GaugeVec
	CurrentCapacity *prometheus.GaugeVec
	DemandTasks     *prometheus.GaugeVec
	TargetConflicts *prometheus.GaugeVec
	// Units counts realized unit actions (add, drain, remove, restart);
	// a request repeated until the unit is listed counts once.
	Units *prometheus.CounterVec
	// Suppressed counts decisions the staleness rule cut down.
	Suppressed *prometheus.CounterVec
	// Vetoes and Adjustments count, per evaluator, the decisions the next
	// evaluator of the chain vetoed or changed (label by).
	Vetoes      *prometheus.CounterVec
	Adjustments *prometheus.CounterVec
	// ScheduleLateness is how long after its due time an evaluation
	// started; ScheduleMissed counts ticks that came due and were not run.
	// Neither has a chain label: at thousands of chains the figure that
	// matters is the distribution, and a chain's own misses show in its
	// ebb_evaluations_total{result="skipped"}.
	ScheduleLateness prometheus.Histogram
	ScheduleMissed   prometheus.Counter
	// BatchTargets is the number of targets in each batched plugin call,
	// by method: its count is the calls, its sum the targets served.
	BatchTargets *prometheus.HistogramVec
	evaluator    *evaluatorGauges
}

// New creates the instruments and registers them, with the Go and process
// collectors, in a new registry.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		Evaluations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ebb_evaluations_total",
			Help: "Evaluations of a chain, by result (ok, degraded, error, skipped).",
		}, []string{"chain", "result"}),
		Decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ebb_decisions_total",
			Help: "Decisions with actions, by direction (up, down, mixed, none) and outcome (realized, failed, planned).",
		}, []string{"chain", "direction", "outcome"}),
		PluginCalls: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ebb_plugin_call_duration_seconds",
			Help:    "Latency of calls to plugins, by plugin block, method and result.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 9),
		}, []string{"plugin", "method", "result"}),
		PluginRestarts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ebb_plugin_restarts_total",
			Help: "Plugin processes restarted after they died.",
		}, []string{"plugin"}),
		DesiredCapacity: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ebb_chain_desired_capacity",
			Help: "Threads the chain's last decision wants.",
		}, []string{"chain"}),
		CurrentCapacity: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ebb_chain_current_capacity",
			Help: "Threads of the units the realizer reported, draining ones excluded.",
		}, []string{"chain"}),
		DemandTasks: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ebb_chain_demand_tasks",
			Help: "Tasks planned, scheduled or running in the last snapshot.",
		}, []string{"chain"}),
		TargetConflicts: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ebb_target_conflicts",
			Help: "1 while the chain's target is scaled by something else (the platform's own autoscaler) and ebb changes nothing on it; absent otherwise.",
		}, []string{"chain"}),
		Units: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ebb_chain_units_total",
			Help: "Unit actions realized, by action (add, drain, remove, restart).",
		}, []string{"chain", "target", "action"}),
		Suppressed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ebb_chain_suppressed_decisions_total",
			Help: "Decisions whose scale-down the staleness rule suppressed (stale or incomplete snapshot).",
		}, []string{"chain", "target"}),
		Vetoes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ebb_evaluator_vetoes_total",
			Help: "Decisions with actions of an evaluator that the next evaluator (by) vetoed.",
		}, []string{"chain", "evaluator", "by"}),
		Adjustments: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ebb_evaluator_adjustments_total",
			Help: "Decisions of an evaluator whose actions the next evaluator (by) took out, changed or added to.",
		}, []string{"chain", "evaluator", "by"}),
	}
	m.ScheduleLateness = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "ebb_schedule_lateness_seconds",
		Help: "Start of an evaluation minus the time it was due (fixed-rate schedule).",
		// 1 ms to 60 s: a healthy runner is in the first buckets, one
		// behind by a whole interval in the last.
		Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
	})
	m.ScheduleMissed = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ebb_schedule_missed_total",
		Help: "Ticks that came due but were not run: the target's previous evaluation was still in flight, or the runner was behind by more than an interval.",
	})
	m.BatchTargets = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "ebb_plugin_batch_targets",
		Help:    "Targets in one batched plugin call (chains due together that share a plugin block), by method.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 8), // 1 to 128, the runner's largest batch
	}, []string{"method"})
	m.evaluator = &evaluatorGauges{reg: m.Registry, gauges: map[string]*prometheus.GaugeVec{}}
	m.Registry.MustRegister(m.Evaluations, m.Decisions, m.PluginCalls, m.PluginRestarts,
		m.DesiredCapacity, m.CurrentCapacity, m.DemandTasks, m.TargetConflicts, m.Units, m.Suppressed, m.Vetoes, m.Adjustments,
		m.ScheduleLateness, m.ScheduleMissed, m.BatchTargets,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// ForgetChain deletes every series of a chain that a reload removed, so
// that series do not pile up over reloads.
func (m *Metrics) ForgetChain(chain string) {
	only := prometheus.Labels{"chain": chain}
	for _, v := range []interface{ DeletePartialMatch(prometheus.Labels) int }{
		m.Evaluations, m.Decisions, m.DesiredCapacity, m.CurrentCapacity, m.DemandTasks,
		m.TargetConflicts, m.Units, m.Suppressed, m.Vetoes, m.Adjustments,
	} {
		v.DeletePartialMatch(only)
	}
	m.evaluator.forget(only)
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}
