package dra

// Metric names this evaluator puts in Decision.Metrics; the runner exports
// each as the gauge ebb_evaluator_<name>{chain,target} (README: metrics).
const (
	MetricDesiredThreads    = "desired_threads"
	MetricEffectiveThreads  = "effective_threads"
	MetricRegisteredThreads = "registered_threads"
	MetricBootingThreads    = "booting_threads"
	MetricDrainingThreads   = "draining_threads"
	MetricDemandThreads     = "demand_threads"
	MetricBacklogSeconds    = "backlog_seconds"
	MetricRampStep          = "ramp_step"
)

// metrics are the round's figures as measured before its actions, except
// desired threads (after them) and the ramp (the step the next scale-up
// round may add, in units).
func (r *round) metrics() map[string]float64 {
	backlog := 0.0
	if !r.st.BacklogSince.IsZero() {
		backlog = r.now.Sub(r.st.BacklogSince).Seconds()
	}
	return map[string]float64{
		MetricDesiredThreads:    float64(r.dec.DesiredCapacity),
		MetricEffectiveThreads:  float64(r.registered + r.inflight),
		MetricRegisteredThreads: float64(r.registered),
		MetricBootingThreads:    float64(r.inflight),
		MetricDrainingThreads:   float64(r.draining),
		MetricDemandThreads:     float64(r.tasks),
		MetricBacklogSeconds:    backlog,
		MetricRampStep:          float64(max(r.st.Ramp, 1)),
	}
}
