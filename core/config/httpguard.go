package config

import (
	"fmt"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/ebbscale/ebb/sdk"
)

// httpGuard decodes the http block's token and allowed_hosts. The token is
// kept out of every message.
func httpGuard(cfg *Config, attrs hcl.Attributes, ctx *hcl.EvalContext) hcl.Diagnostics {
	var diags hcl.Diagnostics
	if a, ok := attrs["token"]; ok {
		s, d := evalString(a, ctx)
		diags = append(diags, d...)
		if !d.HasErrors() {
			if strings.TrimSpace(s) != s || strings.ContainsAny(s, "\r\n") {
				diags = append(diags, attrError(a, "Invalid HTTP token", "token must not contain spaces at its ends or line breaks."))
			} else {
				cfg.HTTPToken = s
			}
		}
	}
	if a, ok := attrs["allowed_hosts"]; ok {
		v, d := evalAs(a, sdk.TypeListString, ctx)
		diags = append(diags, d...)
		if hosts, ok := v.([]string); ok && !d.HasErrors() {
			for _, h := range hosts {
				if h == "" || strings.ContainsAny(h, ":/ ") {
					diags = append(diags, attrError(a, "Invalid allowed host", fmt.Sprintf("%q is not a host name (no port, scheme or path).", h)))
				}
			}
			cfg.HTTPAllowedHosts = hosts
		}
	}
	return diags
}
