// Command ebb is the autoscaler: the runner, its CLI, and (re-executed as
// `ebb plugin-serve NAME`) every builtin plugin.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// exitError carries an exit code out of a command without printing twice.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	root := newRootCmd()
	if err := root.Execute(); err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		fmt.Fprintln(os.Stderr, "ebb:", err)
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "ebb",
		Short: "ebb scales data-engine workers with demand",
		Long: `ebb watches demand and scales workers up and down. Chains of plugins,
declared in HCL, collect (observe), evaluate (decide) and realize (act).`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newRunCmd(), newValidateCmd(), newPlanCmd(), newPluginsCmd(), newVersionCmd(), newEmulateCmd(), newDevCmd(), newServeCmd())
	return root
}
