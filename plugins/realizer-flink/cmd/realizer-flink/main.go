// Command realizer-flink is ebb's Flink realizer as a standalone plugin.
package main

import (
	flink "github.com/ebbscale/ebb/plugins/realizer-flink"
	"github.com/ebbscale/ebb/sdk"
)

func main() { sdk.Serve(flink.New()) }
