// Command canned-realizer is the scale benchmark's realizer (bench/canned)
// as a plugin binary for plugin_dir.
package main

import (
	"github.com/ebbscale/ebb/bench/canned"
	"github.com/ebbscale/ebb/sdk"
)

func main() { sdk.Serve(canned.NewRealizer()) }
