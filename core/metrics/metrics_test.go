package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// A removed chain's series go; the others stay.
func TestForgetChain(t *testing.T) {
	m := New()
	for _, chain := range []string{"a", "b"} {
		m.Evaluations.WithLabelValues(chain, "ok").Inc()
		m.DesiredCapacity.WithLabelValues(chain).Set(4)
		m.Units.WithLabelValues(chain, "t", "add").Inc()
		m.SetEvaluatorMetrics(chain, "t", map[string]float64{"ramp_step": 2})
	}
	m.ForgetChain("a")
	for _, c := range []struct {
		name string
		want int
	}{{"ebb_evaluations_total", 1}, {"ebb_chain_desired_capacity", 1}, {"ebb_chain_units_total", 1}, {"ebb_evaluator_ramp_step", 1}} {
		if n, err := testutil.GatherAndCount(m.Registry, c.name); err != nil || n != c.want {
			t.Errorf("%s: %d series (%v), want %d", c.name, n, err, c.want)
		}
	}
	if got := testutil.ToFloat64(m.Evaluations.WithLabelValues("b", "ok")); got != 1 {
		t.Errorf("b's count = %v", got)
	}
}
