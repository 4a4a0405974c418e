package sim

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/ebbscale/ebb/core/sim/baseline"
)

// PolicyNames are the contenders Compare knows, in the order it reports
// them. "dra" is the chain's own evaluators.
var PolicyNames = []string{"dra", "static-min", "static-peak", "spark", "hpa", "amoro", "oracle"}

// ParsePolicies checks a comma-separated list against PolicyNames.
func ParsePolicies(s string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	for _, n := range strings.Split(s, ",") {
		n = strings.TrimSpace(n)
		if n == "" || seen[n] {
			continue
		}
		ok := false
		for _, k := range PolicyNames {
			ok = ok || k == n
		}
		if !ok {
			return nil, fmt.Errorf("unknown policy %q (have %s)", n, strings.Join(PolicyNames, ", "))
		}
		seen[n] = true
		out = append(out, n)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no policy given (have %s)", strings.Join(PolicyNames, ", "))
	}
	return out, nil
}

// Compare runs every named policy on the same world. chain is the chain's
// own evaluators (run as "dra"); params is the chain policy the baselines
// take their bounds, unit size and Amoro timings from. The oracle always
// runs, first: static-peak is sized from its peak and every cost is
// relative to it. Results come in PolicyNames order.
func Compare(ctx context.Context, w World, chain Policy, params json.RawMessage, names []string, progress func(policy string, done float64)) ([]*Result, error) {
	p, err := baseline.ParseParams(params)
	if err != nil {
		return nil, err
	}
	want := map[string]bool{"oracle": true}
	for _, n := range names {
		want[n] = true
	}
	run := func(pol Policy) (*Result, error) {
		var prog func(float64)
		if progress != nil {
			prog = func(f float64) { progress(pol.Name, f) }
		}
		return Run(ctx, w, pol, prog)
	}
	oracle, err := run(Policy{Name: "oracle", Oracle: true})
	if err != nil {
		return nil, err
	}
	oracle.BootBoundThreadSec = BootBound(oracle.spans, 1, w.BootDelay)
	oracle.BootBoundUnitThreadSec = BootBound(oracle.spans, p.K, w.BootDelay)
	if p.Max > 0 && oracle.PeakThreads > p.Max {
		capped, err := run(Policy{Name: "oracle", Oracle: true, Cap: p.Max})
		if err != nil {
			return nil, err
		}
		oracle.CappedWait = &capped.Wait
	}
	var results []*Result
	for _, name := range PolicyNames {
		if !want[name] {
			continue
		}
		var pol Policy
		switch name {
		case "oracle":
			results = append(results, oracle)
			continue
		case "dra":
			pol = chain
			pol.Name = "dra"
		case "static-min":
			pol = single(name, baseline.StaticMin(p), chain.Interval)
		case "static-peak":
			pol = single(name, baseline.StaticPeak(p, oracle.PeakThreads), chain.Interval)
		case "spark":
			pol = single(name, baseline.Spark(p), baseline.SparkInterval)
		case "hpa":
			pol = single(name, baseline.HPA(p), baseline.HPAInterval)
		case "amoro":
			pol = single(name, baseline.Amoro(p), p.SustainedTimeout.D())
		}
		r, err := run(pol)
		if err != nil {
			return nil, err
		}
		results = append(results, r)
	}
	Relate(results)
	return results, nil
}

func single(name string, f baseline.Func, every time.Duration) Policy {
	return Policy{Name: name, Interval: every, Stages: []Stage{{Name: name, Eval: f}}}
}
