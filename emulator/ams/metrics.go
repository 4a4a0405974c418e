package ams

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// MetricPrefix is what the Prometheus reporter prepends to every AMS metric
// name (amoro.md §5.2).
const MetricPrefix = "amoro_"

// groupGauges are the optimizer-group gauges of OptimizerGroupMetrics.java,
// with their exact definitions (amoro.md §5.1). They are computed at scrape
// time, as AMS's are.
var groupGauges = []struct {
	name, help string
	value      func(s GroupStats) float64
}{
	{"optimizer_group_pending_tasks", "Tasks PLANNED or SCHEDULED in the group queue", func(s GroupStats) float64 { return float64(s.Planned + s.Scheduled) }},
	{"optimizer_group_executing_tasks", "Tasks ACKED in the group queue", func(s GroupStats) float64 { return float64(s.Acked) }},
	{"optimizer_group_planing_tables", "Tables in PLANNING", func(s GroupStats) float64 { return float64(s.PlanningTables) }},
	{"optimizer_group_pending_tables", "Tables in PENDING", func(s GroupStats) float64 { return float64(s.PendingTables) }},
	{"optimizer_group_executing_tables", "Tables optimizing or committing", func(s GroupStats) float64 { return float64(s.ExecutingTables) }},
	{"optimizer_group_idle_tables", "Tables in IDLE", func(s GroupStats) float64 { return float64(s.IdleTables) }},
	{"optimizer_group_committing_tables", "Tables in COMMITTING", func(s GroupStats) float64 { return float64(s.CommittingTables) }},
	{"optimizer_group_optimizer_instances", "Registered optimizer instances", func(s GroupStats) float64 { return float64(s.Optimizers) }},
	{"optimizer_group_memory_bytes_allocated", "Memory of registered instances in bytes", func(s GroupStats) float64 { return float64(s.MemoryMB) * 1024 * 1024 }},
	{"optimizer_group_threads", "Threads of registered instances", func(s GroupStats) float64 { return float64(s.Threads) }},
	{"optimizer_group_idle_optimizers", "Registered instances with no SCHEDULED or ACKED task", func(s GroupStats) float64 { return float64(s.IdleOptimizers) }},
	{"optimizer_group_config_invalid", "1 if dynamic allocation is enabled with an invalid config", func(GroupStats) float64 { return 0 }},
}

// draGauges are registered only while a group's dynamic allocation is on
// (dra/DynamicAllocationMetrics.java, amoro.md §5.1). The emulator runs no
// scale keeper, so nothing is draining, backlogged or scaled.
var draGauges = []struct {
	name, help string
	value      func(s GroupStats) float64
}{
	{"optimizer_group_pending_removal_optimizers", "Instances in graceful drain", func(GroupStats) float64 { return 0 }},
	{"optimizer_group_effective_threads", "Registered threads plus threads pending registration", func(s GroupStats) float64 { return float64(s.Threads) }},
	{"optimizer_group_backlog_duration_ms", "How long demand has waited", func(GroupStats) float64 { return 0 }},
	{"optimizer_group_scale_up_total", "Scale-out rounds", func(GroupStats) float64 { return 0 }},
	{"optimizer_group_scale_down_total", "Drain starts", func(GroupStats) float64 { return 0 }},
}

type metricsCollector struct{ e *Emulator }

// Describe sends nothing: the collector is unchecked, because groups are
// only known at scrape time.
func (metricsCollector) Describe(chan<- *prometheus.Desc) {}

func (c metricsCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.e.AllStats() {
		for _, g := range groupGauges {
			desc := prometheus.NewDesc(MetricPrefix+g.name, g.help, []string{"group"}, nil)
			ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, g.value(s), s.Group)
		}
		if !s.DynamicAllocation {
			continue
		}
		for _, g := range draGauges {
			desc := prometheus.NewDesc(MetricPrefix+g.name, g.help, []string{"group"}, nil)
			ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, g.value(s), s.Group)
		}
	}
}

// MetricsHandler serves the Prometheus exposition the prometheus-exporter
// reporter serves on its own port, at /metrics and / (amoro.md §5.2).
func (e *Emulator) MetricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(metricsCollector{e})
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", h)
	mux.Handle("GET /{$}", h)
	return e.withFaults(mux)
}

// GroupStats is a group's queue and registration state at one instant.
type GroupStats struct {
	Group                                                string
	Planned, Scheduled, Acked, Success, Failed, Canceled int
	PendingTables, PlanningTables, ExecutingTables       int
	IdleTables, CommittingTables                         int
	Optimizers, Threads, IdleOptimizers                  int
	MemoryMB                                             int64
	QueuedWork                                           int
	// DynamicAllocation: the group has dynamic-allocation.enabled=true.
	DynamicAllocation bool
}

// Stats reports one group ("" = the first).
func (e *Emulator) Stats(groupName string) (GroupStats, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.syncLocked()
	g, err := e.resolveGroupLocked(groupName)
	if err != nil {
		return GroupStats{}, err
	}
	return e.statsLocked(g), nil
}

// AllStats reports every group in definition order.
func (e *Emulator) AllStats() []GroupStats {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.syncLocked()
	out := make([]GroupStats, 0, len(e.groupOrder))
	for _, g := range e.groupOrder {
		out = append(out, e.statsLocked(g))
	}
	return out
}

func (e *Emulator) statsLocked(g *group) GroupStats {
	s := GroupStats{Group: g.name, DynamicAllocation: strings.EqualFold(g.properties["dynamic-allocation.enabled"], "true")}
	busy := map[string]bool{}
	for _, t := range g.tables {
		s.QueuedWork += len(t.queued)
		switch t.status {
		case TablePending:
			s.PendingTables++
		case TablePlanning:
			s.PlanningTables++
		case TableIdle:
			s.IdleTables++
		case TableCommitting:
			s.CommittingTables++
		}
		if t.status.isProcessing() {
			s.ExecutingTables++
		}
		for _, p := range t.processes {
			for _, tk := range p.tasks {
				switch tk.status {
				case TaskPlanned:
					s.Planned++
				case TaskScheduled:
					s.Scheduled++
					busy[tk.token] = true
				case TaskAcked:
					s.Acked++
					busy[tk.token] = true
				case TaskSuccess:
					s.Success++
				case TaskFailed:
					s.Failed++
				case TaskCanceled:
					s.Canceled++
				}
			}
		}
	}
	for _, o := range e.optimizers {
		if o.group != g {
			continue
		}
		s.Optimizers++
		s.Threads += int(o.threads)
		s.MemoryMB += int64(o.memoryMB)
		if !busy[o.token] {
			s.IdleOptimizers++
		}
	}
	return s
}
