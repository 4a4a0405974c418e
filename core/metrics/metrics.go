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
	evaluator   *evaluatorGauges
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
			Help: "1 while the chain's target is scaled by something else (the platform's own autoscaler) and ebb changes nothing on it, else 0.",
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
	m.evaluator = &evaluatorGauges{reg: m.Registry, gauges: map[string]*prometheus.GaugeVec{}}
	m.Registry.MustRegister(m.Evaluations, m.Decisions, m.PluginCalls, m.PluginRestarts,
		m.DesiredCapacity, m.CurrentCapacity, m.DemandTasks, m.TargetConflicts, m.Units, m.Suppressed, m.Vetoes, m.Adjustments,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry in the Prometheus exposition format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}
