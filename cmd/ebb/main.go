// Command ebb is the autoscaler: the runner, its CLI, and (re-executed as
// `ebb plugin-serve NAME`) every builtin plugin.
package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// exitError carries an exit code out of a command without printing twice.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func main() {
	root := newRootCmd()
	root.SetArgs(longFlags(os.Args[1:]))
	if err := root.Execute(); err != nil {
		var ee exitError
		if errors.As(err, &ee) {
			os.Exit(ee.code)
		}
		var de diagError
		if errors.As(err, &de) {
			fmt.Fprintln(os.Stderr, de.Error())
			os.Exit(1)
		}
		fmt.Fprintln(os.Stderr, "ebb:", err)
		os.Exit(1)
	}
}

// singleDash are the long flags also accepted with one dash, as in
// Terraform and Nomad (`ebb validate config.hcl -var k=v`).
var singleDash = []string{"var", "config", "json", "http", "state", "plugin-dir", "log-level", "log-json",
	"chain", "trace", "plot", "policies", "in-process", "boot-delay", "boot-failure", "seed", "span"}

// longFlags rewrites `-var x` and `-var=x` to `--var x` and `--var=x`.
func longFlags(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = a
		if a == "--" {
			copy(out[i:], args[i:])
			break
		}
		for _, f := range singleDash {
			if a == "-"+f || strings.HasPrefix(a, "-"+f+"=") {
				out[i] = "-" + a
			}
		}
	}
	return out
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
	root.AddCommand(newRunCmd(), newValidateCmd(), newPlanCmd(), newPluginsCmd(), newVersionCmd(), newEmulateCmd(), newDevCmd(), newSimulateCmd(), newServeCmd(),
		newImportCmd(), newStateCmd(), newStatusCmd())
	return root
}
