package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/ebbscale/ebb/core/state"
)

// newStateCmd looks after the state file: what a damaged one still holds,
// and moving it aside so ebb starts over. ebb keeps nothing there that it
// cannot rebuild: units come from the platform, evaluators start afresh.
func newStateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "state",
		Short: "inspect or reset the state file (evaluator state and decision log)",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "inspect FILE",
		Short: "show what can be read from a state file, without changing it (also while ebb runs)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rep, err := state.Inspect(args[0])
			if err != nil {
				return err
			}
			printReport(cmd.OutOrStdout(), rep)
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "reset FILE",
		Short: "move a state file aside (kept as FILE.damaged-TIME) so that ebb starts with an empty one",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			moved, err := state.Reset(args[0], time.Now())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "moved %s to %s; the next `ebb run` starts with empty state "+
				"and reads the units from the platform\n", args[0], moved)
			return nil
		},
	})
	return cmd
}

func printReport(w io.Writer, rep *state.Report) {
	if rep.Damage == "" {
		fmt.Fprintf(w, "%s: healthy\n", rep.Path)
	} else {
		fmt.Fprintf(w, "%s: DAMAGED: %s\n", rep.Path, rep.Damage)
	}
	if len(rep.Chains) == 0 {
		fmt.Fprintln(w, "  no chains could be read")
	}
	for _, c := range rep.Chains {
		fmt.Fprintf(w, "  chain %s\n", c.Name)
		switch {
		case c.StateError != "":
			fmt.Fprintf(w, "    state      unreadable: %s\n", c.StateError)
		case len(c.Evaluators) > 0:
			fmt.Fprintf(w, "    state      readable for %v\n", c.Evaluators)
		default:
			fmt.Fprintln(w, "    state      none")
		}
		fmt.Fprintf(w, "    decisions  %d readable", c.Decisions)
		if c.Unreadable > 0 {
			fmt.Fprintf(w, ", %d unreadable", c.Unreadable)
		}
		if c.LogError != "" {
			fmt.Fprintf(w, "; the log stops at damage: %s", c.LogError)
		}
		fmt.Fprintln(w)
		if c.Last != nil {
			fmt.Fprintf(w, "    last       #%d at %s: %s (%s)\n", c.Last.Seq, c.Last.At.Format(time.RFC3339), c.Last.Summary, c.Last.Status)
		}
	}
}
