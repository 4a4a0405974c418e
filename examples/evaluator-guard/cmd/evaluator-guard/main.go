// Command evaluator-guard is the plugin binary. Its file name in plugin_dir
// is the name chains use in `plugin = "evaluator-guard"`.
package main

import (
	"github.com/ebbscale/ebb/sdk"

	guard "example.com/evaluator-guard"
)

func main() { sdk.Serve(guard.New()) }
