package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/ebbscale/ebb/core/config"
	"github.com/ebbscale/ebb/core/metrics"
	"github.com/ebbscale/ebb/core/runner"
	"github.com/ebbscale/ebb/core/state"
)

// openSavedState opens the state ebb run keeps, read-only, for plan and
// status: flag overrides the config's path. It works while ebb run holds the
// file (through a snapshot), and a file not yet created reads as empty.
func openSavedState(flag string, cfg *config.Config) (*state.Store, error) {
	path := flag
	if path == "" {
		path = cfg.StatePath
	}
	return state.OpenReadOnly(path)
}

func newStatusCmd() *cobra.Command {
	var c common
	var statePath, httpAddr string
	cmd := &cobra.Command{
		Use:   "status FILE",
		Short: "show each chain's last decision, when it was made, its capacity and its health",
		Long: `status reads the state file that ebb run keeps (read-only, also while ebb
run holds it) for each chain's last decision, and asks the running ebb's HTTP
API for its health. Without a running ebb it says so and shows what the state
file holds.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			logger := c.logger(nil, cmd.ErrOrStderr(), true)
			cfg, h, err := c.load(args[0], logger, metrics.New())
			if err != nil {
				return err
			}
			h.Close()
			store, err := openSavedState(statePath, cfg)
			if err != nil {
				return err
			}
			defer store.Close()
			if httpAddr == "" {
				httpAddr = cfg.HTTPAddress
			}
			live, liveErr := liveChains(cmd.Context(), httpAddr)
			w := cmd.OutOrStdout()
			if liveErr != nil {
				fmt.Fprintf(w, "ebb run: not reachable at %s (%v); showing the state file %s only\n\n", httpAddr, liveErr, store.Path())
			} else {
				fmt.Fprintf(w, "ebb run: up at %s; state file %s\n\n", httpAddr, store.Path())
			}
			now := time.Now()
			for _, ch := range cfg.Chains {
				recs, err := store.Decisions(ch.Name, 1)
				if err != nil {
					return err
				}
				fmt.Fprintf(w, "chain %s -> target %s\n", ch.Name, ch.Target)
				fmt.Fprintf(w, "  health    %s\n", health(ch, live, liveErr, now))
				if len(recs) == 0 {
					fmt.Fprint(w, "  last      no decision yet\n\n")
					continue
				}
				r := recs[0]
				fmt.Fprintf(w, "  last      #%d %s at %s (%s ago): %s\n", r.Seq, r.Status, r.At.Format(time.RFC3339), ago(now, r.At), r.Summary)
				if r.Repeats > 1 {
					fmt.Fprintf(w, "  same      %d rounds alike since #%d at %s\n", r.Repeats, r.FirstSeq, r.FirstAt.Format(time.RFC3339))
				}
				if r.Error != "" {
					fmt.Fprintf(w, "  error     %s\n", r.Error)
				}
				fmt.Fprintf(w, "  capacity  %d threads, desired %d; demand %d tasks, %d pending tables\n",
					r.CurrentCapacity, r.DesiredCapacity, r.DemandTasks, r.PendingTables)
				fmt.Fprintf(w, "  reason    %s\n\n", r.Reason)
			}
			return nil
		},
	}
	c.register(cmd)
	cmd.Flags().StringVar(&statePath, "state", "", "state file (default: the config's, else ebb.db beside it)")
	cmd.Flags().StringVar(&httpAddr, "http", "", "address of the running ebb's HTTP API (default: the config's)")
	return cmd
}

// liveChain is the part of GET /v1/chains that status shows.
type liveChain struct {
	Name      string     `json:"name"`
	Running   bool       `json:"running"`
	Ticks     int        `json:"ticks"`
	LastAt    *time.Time `json:"last_at"`
	LastError string     `json:"last_error"`
}

func liveChains(ctx context.Context, addr string) (map[string]liveChain, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v1/chains", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /v1/chains: %s", resp.Status)
	}
	var body struct {
		Chains []liveChain `json:"chains"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&body); err != nil {
		return nil, fmt.Errorf("GET /v1/chains: %w", err)
	}
	out := map[string]liveChain{}
	for _, c := range body.Chains {
		out[c.Name] = c
	}
	return out, nil
}

func health(ch *config.Chain, live map[string]liveChain, liveErr error, now time.Time) string {
	if !ch.Enabled {
		return "disabled in the configuration"
	}
	if liveErr != nil {
		return "unknown (ebb run is not reachable)"
	}
	l, ok := live[ch.Name]
	switch {
	case !ok:
		return "not in the running configuration (reload ebb run with SIGHUP)"
	case !l.Running:
		return "not running"
	case l.Ticks == 0:
		return "running, no evaluation finished yet"
	case l.LastError != "":
		return fmt.Sprintf("FAILING: last evaluation %s ago: %s", ago(now, *l.LastAt), l.LastError)
	case l.LastAt != nil:
		return fmt.Sprintf("ok, %d evaluations, last %s ago", l.Ticks, ago(now, *l.LastAt))
	}
	return fmt.Sprintf("ok, %d evaluations", l.Ticks)
}

func ago(now, t time.Time) string {
	return now.Sub(t).Round(time.Second).String()
}

// printSteps shows where plan's decision came from: the saved state it
// started from and each evaluator's own decision, in chain order.
func printSteps(w io.Writer, ev *runner.Evaluation) {
	if ev.StateLoaded {
		fmt.Fprintln(w, "  state     saved evaluator state loaded (as ebb run would use it now)")
	} else {
		fmt.Fprintln(w, "  state     none saved: evaluators start fresh")
	}
	for _, s := range ev.Steps {
		fmt.Fprintf(w, "  evaluator %s: %s (desired capacity %d): %s\n", s.Evaluator, s.Decision.Summary(), s.Decision.DesiredCapacity, s.Decision.Reason)
	}
}
