package main

import (
	"fmt"
	"os"
	"sort"

	"github.com/spf13/cobra"

	"github.com/ebbscale/ebb/core/host"
	collectorams "github.com/ebbscale/ebb/plugins/collector-ams"
	dra "github.com/ebbscale/ebb/plugins/evaluator-dra"
	flink "github.com/ebbscale/ebb/plugins/realizer-flink"
	k8s "github.com/ebbscale/ebb/plugins/realizer-k8s"
	process "github.com/ebbscale/ebb/plugins/realizer-process"
	spark "github.com/ebbscale/ebb/plugins/realizer-spark"
	"github.com/ebbscale/ebb/sdk"
)

// builtins are the plugins the ebb binary serves by re-executing itself, so
// one binary installs them all while each still runs in its own process.
var builtins = map[string]func() sdk.Plugin{
	collectorams.Name: func() sdk.Plugin { return collectorams.New() },
	dra.Name:          func() sdk.Plugin { return dra.New() },
	process.Name:      func() sdk.Plugin { return process.New() },
	k8s.Name:          func() sdk.Plugin { return k8s.New() },
	flink.Name:        func() sdk.Plugin { return flink.New() },
	spark.Name:        func() sdk.Plugin { return spark.New() },
}

func builtinNames() []string {
	names := make([]string, 0, len(builtins))
	for n := range builtins {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func newServeCmd() *cobra.Command {
	return &cobra.Command{
		Use:    host.ServeCommand + " NAME",
		Short:  "serve a builtin plugin (the runner starts this; not for people)",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			newPlugin, ok := builtins[args[0]]
			if !ok {
				return fmt.Errorf("no builtin plugin %q (have %v)", args[0], builtinNames())
			}
			sdk.Serve(newPlugin())
			return nil
		},
	}
}

// self is the path of the running ebb binary, which serves the builtins.
func self() string {
	p, err := os.Executable()
	if err != nil {
		return ""
	}
	return p
}
