package runner

import (
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ebbscale/ebb/core/metrics"
	"github.com/ebbscale/ebb/core/state"
	"github.com/ebbscale/ebb/sdk"
)

// Evaluator figures become ebb_evaluator_<name>{chain,target}; unit actions
// are counted once even when an evaluator repeats a request until the unit
// is listed; suppressed decisions are counted; bad names are dropped.
func TestExportChainMetrics(t *testing.T) {
	m := metrics.New()
	r := &Runner{opts: Options{Metrics: m, Logger: hclog.NewNullLogger()}}
	realized := func(d sdk.Decision) *Evaluation {
		return &Evaluation{Chain: "c", Target: "g", Decision: d, Record: state.Record{Status: "realized"}}
	}
	first := realized(sdk.Decision{Add: []sdk.UnitAdd{{UnitID: "u-1", Size: 2}, {UnitID: "u-2", Size: 2}},
		Metrics: map[string]float64{"backlog_seconds": 65, "ramp_step": 4, "Bad-Name": 1}})
	r.exportChainMetrics(first, nil)
	// u-2 requested again (not listed yet) plus a new u-3, a drain and a restart.
	second := realized(sdk.Decision{Add: []sdk.UnitAdd{{UnitID: "u-2", Size: 2}, {UnitID: "u-3", Size: 2}},
		Drain: []string{"u-0"}, Restart: []string{"u-9"}, Metrics: map[string]float64{"backlog_seconds": 95, "ramp_step": 8}})
	r.exportChainMetrics(second, first)
	suppressed := &Evaluation{Chain: "c", Target: "g", Suppressed: "drain u-1", Record: state.Record{Status: "skipped"}}
	r.exportChainMetrics(suppressed, second)

	for _, c := range []struct {
		action string
		want   float64
	}{{"add", 3}, {"drain", 1}, {"remove", 0}, {"restart", 1}} {
		if got := testutil.ToFloat64(m.Units.WithLabelValues("c", "g", c.action)); got != c.want {
			t.Errorf("ebb_chain_units_total{action=%q} = %v, want %v", c.action, got, c.want)
		}
	}
	if got := testutil.ToFloat64(m.Suppressed.WithLabelValues("c", "g")); got != 1 {
		t.Errorf("suppressed = %v, want 1", got)
	}
	body := `
# HELP ebb_evaluator_ramp_step An evaluator's own figure ramp_step (Decision.Metrics) in the chain's last evaluation.
# TYPE ebb_evaluator_ramp_step gauge
ebb_evaluator_ramp_step{chain="c",target="g"} 8
`
	if err := testutil.GatherAndCompare(m.Registry, strings.NewReader(body), "ebb_evaluator_ramp_step"); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(m.Registry, "ebb_evaluator_Bad-Name"); err != nil || n != 0 {
		t.Errorf("a bad name was exported (%d, %v)", n, err)
	}
}
