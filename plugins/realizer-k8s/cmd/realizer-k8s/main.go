// Command realizer-k8s is ebb's Kubernetes realizer as a standalone plugin.
package main

import (
	k8s "github.com/ebbscale/ebb/plugins/realizer-k8s"
	"github.com/ebbscale/ebb/sdk"
)

func main() { sdk.Serve(k8s.New()) }
