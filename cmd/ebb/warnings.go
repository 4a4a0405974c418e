package main

import (
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"

	"github.com/ebbscale/ebb/core/config"
)

// logWarnings logs a configuration's warnings (an unused block, no chains)
// one per line, as FILE:LINE:COL: text, when ebb run starts and reloads.
func logWarnings(logger hclog.Logger, diags hcl.Diagnostics) {
	for _, line := range strings.Split(strings.TrimSpace(config.FormatDiagnostics(diags)), "\n") {
		if line != "" {
			logger.Warn("configuration warning: " + line)
		}
	}
}
