package config

import (
	"fmt"
	"strconv"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/ebbscale/ebb/sdk"
)

// Defaults of the decision log's retention (the state block's
// keep_decisions and keep_for). A week of history covers a weekly workload
// cycle and a weekend before someone asks why it scaled down on Saturday;
// rounds without actions are compacted, so at a 30s interval a week of a
// busy chain still fits in the thousand records kept before retention was
// configurable. They equal state.DefaultKeep and state.DefaultMaxAge, which
// config does not import.
const (
	DefaultKeepDecisions = 1000
	DefaultKeepFor       = 7 * 24 * time.Hour
)

// maxKeepDecisions bounds keep_decisions: a million records of one chain is
// far beyond what a user reads, and the count is an int everywhere.
const maxKeepDecisions = 1_000_000

// retention decodes the state block's keep_decisions and keep_for into cfg.
func retention(cfg *Config, attrs hcl.Attributes, ctx *hcl.EvalContext) hcl.Diagnostics {
	var diags hcl.Diagnostics
	if a, ok := attrs["keep_decisions"]; ok {
		v, d := evalAs(a, sdk.TypeNumber, ctx)
		diags = append(diags, d...)
		if !d.HasErrors() {
			n, err := strconv.ParseInt(fmt.Sprint(v), 10, 64)
			switch {
			case err != nil:
				diags = append(diags, attrError(a, "Invalid keep_decisions", fmt.Sprintf("keep_decisions must be a whole number of records, such as 1000, not %v.", v)))
			case n < 1 || n > maxKeepDecisions:
				diags = append(diags, attrError(a, "Invalid keep_decisions",
					fmt.Sprintf("keep_decisions must be from 1 to %d records per chain, not %d; leave it out for %d.", maxKeepDecisions, n, DefaultKeepDecisions)))
			default:
				cfg.KeepDecisions = int(n)
			}
		}
	}
	if a, ok := attrs["keep_for"]; ok {
		v, d := evalDuration(a, ctx)
		diags = append(diags, d...)
		switch {
		case d.HasErrors():
		case v <= 0:
			diags = append(diags, attrError(a, "Invalid keep_for", "keep_for must be a duration greater than zero, such as \"168h\"; leave it out for 7 days."))
		default:
			cfg.KeepFor = v
		}
	}
	return diags
}
