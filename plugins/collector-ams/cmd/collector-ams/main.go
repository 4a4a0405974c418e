// Command collector-ams is the Amoro AMS collector as a standalone ebb plugin.
package main

import (
	collectorams "github.com/ebbscale/ebb/plugins/collector-ams"
	"github.com/ebbscale/ebb/sdk"
)

func main() { sdk.Serve(collectorams.New()) }
