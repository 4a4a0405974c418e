package config

import (
	"fmt"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/ebbscale/ebb/sdk"
)

// slowCollections warns about chains whose collection may take longer than
// their interval: while one evaluation of a target runs the next ticks are
// skipped, so such a chain is evaluated less often than it says, and a
// large platform makes it so (5,000 AMS optimizers are read page by page).
// The deadline of a collection is its collector block's timeout, else the
// chain's. One warning per collector, interval and timeout, at the first
// chain, so that 10,000 chains from one template say it once.
func (l *loader) slowCollections() hcl.Diagnostics {
	type key struct {
		block              string
		interval, deadline time.Duration
	}
	first := map[key]*Chain{}
	others := map[key]int{}
	var order []key
	for _, ch := range l.cfg.Chains {
		for _, name := range ch.Collectors {
			b := l.cfg.Collectors[name]
			if b == nil {
				continue
			}
			deadline := ch.Timeout
			if b.Timeout > 0 {
				deadline = b.Timeout
			}
			if deadline <= ch.Interval {
				continue
			}
			k := key{name, ch.Interval, deadline}
			if first[k] == nil {
				first[k] = ch
				order = append(order, k)
			} else {
				others[k]++
			}
		}
	}
	var diags hcl.Diagnostics
	for _, k := range order {
		ch := first[k]
		whose := "its timeout"
		if b := l.cfg.Collectors[k.block]; b.Timeout == 0 {
			whose = "the chain's timeout"
		}
		more := ""
		if n := others[k]; n > 0 {
			more = fmt.Sprintf(" The same holds for %s with this interval and collector.", sdk.Count(n, "other chain"))
		}
		at := ch.intervalAt
		if at.Filename == "" {
			at = ch.Range
		}
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagWarning,
			Summary:  "Collection can outlast the interval",
			Detail: fmt.Sprintf("Chain %q ticks every %s, but a collection by collector %q may take up to %s (%s); "+
				"while it runs the chain's next ticks are skipped, and a large platform takes that long "+
				"(AMS lists 5,000 optimizers in pages). Make the interval at least %s, or the timeout shorter.%s",
				ch.Name, k.interval, k.block, k.deadline, whose, k.deadline, more),
			Subject: at.Ptr(),
		})
	}
	return diags
}
