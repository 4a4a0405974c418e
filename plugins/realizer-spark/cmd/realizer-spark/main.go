// Command realizer-spark is ebb's Spark realizer as a standalone plugin.
package main

import (
	spark "github.com/ebbscale/ebb/plugins/realizer-spark"
	"github.com/ebbscale/ebb/sdk"
)

func main() { sdk.Serve(spark.New()) }
