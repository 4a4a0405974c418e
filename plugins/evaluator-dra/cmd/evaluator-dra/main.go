// Command evaluator-dra is the dynamic resource allocation evaluator as a
// standalone ebb plugin binary.
package main

import (
	dra "github.com/ebbscale/ebb/plugins/evaluator-dra"
	"github.com/ebbscale/ebb/sdk"
)

func main() { sdk.Serve(dra.New()) }
