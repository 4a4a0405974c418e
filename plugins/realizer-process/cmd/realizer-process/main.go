// Command realizer-process is the local process realizer as a standalone ebb
// plugin binary.
package main

import (
	process "github.com/ebbscale/ebb/plugins/realizer-process"
	"github.com/ebbscale/ebb/sdk"
)

func main() { sdk.Serve(process.New()) }
