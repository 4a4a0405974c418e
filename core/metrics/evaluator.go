package metrics

import (
	"math"
	"regexp"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// maxEvaluatorGauges bounds the gauges evaluators can create: names come
// from plugins, and each one is a new time series family.
const maxEvaluatorGauges = 64

var gaugeName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// evaluatorGauges export Decision.Metrics: one gauge family per name,
// ebb_evaluator_<name>{chain,target}, created on first use.
type evaluatorGauges struct {
	mu     sync.Mutex
	reg    *prometheus.Registry
	gauges map[string]*prometheus.GaugeVec
}

// SetEvaluatorMetrics sets the gauges of a chain's evaluator figures. Names
// that are not snake_case, values that are not finite, and names beyond the
// bound are dropped and returned, so the caller can say so once.
func (m *Metrics) SetEvaluatorMetrics(chain, target string, values map[string]float64) (dropped []string) {
	g := m.evaluator
	g.mu.Lock()
	defer g.mu.Unlock()
	for name, v := range values {
		if !gaugeName.MatchString(name) || math.IsNaN(v) || math.IsInf(v, 0) {
			dropped = append(dropped, name)
			continue
		}
		vec, ok := g.gauges[name]
		if !ok {
			if len(g.gauges) >= maxEvaluatorGauges {
				dropped = append(dropped, name)
				continue
			}
			vec = prometheus.NewGaugeVec(prometheus.GaugeOpts{
				Name: "ebb_evaluator_" + name,
				Help: "An evaluator's own figure " + name + " (Decision.Metrics) in the chain's last evaluation.",
			}, []string{"chain", "target"})
			if err := g.reg.Register(vec); err != nil {
				dropped = append(dropped, name)
				continue
			}
			g.gauges[name] = vec
		}
		vec.WithLabelValues(chain, target).Set(v)
	}
	return dropped
}

func (g *evaluatorGauges) forget(labels prometheus.Labels) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, vec := range g.gauges {
		vec.DeletePartialMatch(labels)
	}
}
