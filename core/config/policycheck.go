package config

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"

	"github.com/ebbscale/ebb/sdk"
)

// Ten thousand chains written from one template decode a handful of distinct
// policies, and their evaluators need to see each only once. So a chain's
// decoded policy is kept by its source text for the rest of the load, and
// the evaluators are asked after every chain is decoded: once per distinct
// (plugin, policy), several at a time, each chain still getting its own
// diagnostics at its own keys.

// policyWorkers bounds the ValidatePolicy calls in flight; the plugin
// process answers them concurrently.
const policyWorkers = 8

// policyCheck is one evaluator's policy of one chain, waiting to be checked.
type policyCheck struct {
	ch     *Chain
	ev     *PluginBlock
	chain  *hcl.Block // the chain block
	policy *hcl.Block // its policy block, nil when it has none
}

// policyKey names a chain's policy by its evaluators and its source text;
// ok is false when the text is not at hand.
func (l *loader) policyKey(ch *Chain, policy *hcl.Block) (string, bool) {
	text := ""
	if policy != nil {
		sb, ok := policy.Body.(*hclsyntax.Body)
		if !ok || l.src == nil {
			return "", false
		}
		r := sb.SrcRange
		if r.Start.Byte < 0 || r.End.Byte > len(l.src) || r.Start.Byte > r.End.Byte {
			return "", false
		}
		text = string(l.src[r.Start.Byte:r.End.Byte])
	}
	return strings.Join(ch.Evaluators, "\x00") + "\x00\x00" + text, true
}

// checkPolicy queues an evaluator's decoded policy for validatePolicies.
func (l *loader) checkPolicy(ch *Chain, ev *PluginBlock, chain, policy *hcl.Block) {
	l.checks = append(l.checks, policyCheck{ch: ch, ev: ev, chain: chain, policy: policy})
}

// validatePolicies asks each evaluator about every distinct policy queued,
// and reports problems at each chain's own attribute.
func (l *loader) validatePolicies() hcl.Diagnostics {
	type result struct {
		problems []sdk.PolicyProblem
		err      error
	}
	type question struct{ plugin, raw string }
	index := map[question]int{}
	var asks []question
	for _, c := range l.checks {
		q := question{c.ev.Plugin, string(c.ch.Policy[c.ev.Name])}
		if _, ok := index[q]; !ok {
			index[q] = len(asks)
			asks = append(asks, q)
		}
	}
	results := make([]result, len(asks))
	concurrently(len(asks), policyWorkers, func(i int) {
		ps, err := l.resolver.ValidatePolicy(asks[i].plugin, json.RawMessage(asks[i].raw))
		results[i] = result{problems: ps, err: err}
	})

	var diags hcl.Diagnostics
	for _, c := range l.checks {
		res := results[index[question{c.ev.Plugin, string(c.ch.Policy[c.ev.Name])}]]
		if res.err == nil && len(res.problems) == 0 {
			continue
		}
		body, where := c.policyBody()
		if res.err != nil {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Cannot validate policy",
				Detail:   fmt.Sprintf("evaluator %q (plugin %q): %v", c.ev.Name, c.ev.Plugin, res.err),
				Subject:  where.Ptr(),
			})
			continue
		}
		for _, p := range res.problems {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "Invalid policy",
				Detail:   fmt.Sprintf("%s (evaluator %q).", strings.TrimSuffix(problemText(p), "."), c.ev.Name),
				Subject:  attrRange(body, where, p.Attribute).Ptr(),
			})
		}
	}
	return diags
}

// policyBody is where the evaluator's keys are written in the chain: its
// namespace block, else the policy block, else (no policy) the chain.
func (c policyCheck) policyBody() (hcl.Body, hcl.Range) {
	if c.policy == nil {
		return hcl.EmptyBody(), c.chain.DefRange
	}
	ns, _ := policyNamespaces(c.policy.Body, c.ch.Evaluators)
	if b := ns[c.ev.Name]; b != nil {
		return b.Body, b.DefRange
	}
	return c.policy.Body, c.policy.DefRange
}

// concurrently calls f(0) ... f(n-1) on at most workers goroutines and
// returns when all have returned. The resolver's plugins answer calls in
// parallel; the loader's own state is written only after.
func concurrently(n, workers int, f func(int)) {
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				f(i)
			}
		}()
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
}
