package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ebbscale/ebb/core/config"
	"github.com/ebbscale/ebb/core/host"
	"github.com/ebbscale/ebb/core/metrics"
	"github.com/ebbscale/ebb/core/sim"
	"github.com/ebbscale/ebb/core/sim/baseline"
	"github.com/ebbscale/ebb/sdk"
)

type simulateFlags struct {
	config, chain, trace, plot, policies string
	asJSON, inProcess                    bool
	bootDelay                            time.Duration
	bootFailure                          float64
	seed                                 uint64
}

func newSimulateCmd() *cobra.Command {
	var c common
	var f simulateFlags
	cmd := &cobra.Command{
		Use:   "simulate -config FILE -chain NAME -trace FILE",
		Short: "replay a task trace through the AMS queue model and compare the chain's evaluators with baseline policies",
		Long: `simulate replays a trace (CSV: submit,duration[,table][,quota], seconds) on a virtual
clock through the AMS emulator's queue model and an emulated platform (boot delay,
drain, boot failures), calling the chain's evaluators each interval, and reports
cost and task wait for the chain ("dra") and the baselines.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runSimulate(cmd, &c, f)
		},
	}
	c.register(cmd)
	fl := cmd.Flags()
	fl.StringVar(&f.config, "config", "", "configuration file (required)")
	fl.StringVar(&f.chain, "chain", "", "chain whose evaluators to run (default: the only chain)")
	fl.StringVar(&f.trace, "trace", "", "trace CSV file (required)")
	fl.BoolVar(&f.asJSON, "json", false, "print every figure as JSON, one object per policy")
	fl.StringVar(&f.plot, "plot", "", "write demand, capacity per policy and queue over time as SVG to this file")
	fl.StringVar(&f.policies, "policies", strings.Join(sim.PolicyNames, ","), "policies to compare")
	fl.BoolVar(&f.inProcess, "in-process", false, "run builtin evaluators inside this process instead of as plugin processes")
	fl.DurationVar(&f.bootDelay, "boot-delay", time.Minute, "time from a unit's request to its optimizer registering")
	fl.Float64Var(&f.bootFailure, "boot-failure", 0, "probability that a unit's boot never registers (0-1)")
	fl.Uint64Var(&f.seed, "seed", 1, "seed of the emulator and of boot failures")
	cmd.AddCommand(newGenerateCmd())
	return cmd
}

func runSimulate(cmd *cobra.Command, c *common, f simulateFlags) error {
	if f.config == "" || f.trace == "" {
		return fmt.Errorf("simulate: -config and -trace are required")
	}
	if f.bootFailure < 0 || f.bootFailure >= 1 || f.bootDelay < 0 {
		return fmt.Errorf("simulate: -boot-failure must be in [0,1) and -boot-delay not negative")
	}
	names, err := sim.ParsePolicies(f.policies)
	if err != nil {
		return fmt.Errorf("simulate: -policies: %w", err)
	}
	file, err := os.Open(f.trace)
	if err != nil {
		return fmt.Errorf("simulate: %w", err)
	}
	rows, err := sim.ParseTrace(f.trace, file)
	file.Close()
	if err != nil {
		return err
	}
	logger := c.logger(nil, cmd.ErrOrStderr(), true)
	cfg, h, err := c.load(f.config, logger, metrics.New())
	if err != nil {
		return err
	}
	defer h.Close()
	ch, err := pickChain(cfg, f.chain)
	if err != nil {
		return err
	}
	chain, err := chainPolicy(cfg, ch, h, f.inProcess)
	if err != nil {
		return err
	}
	params := ch.Policy[ch.Evaluators[0]]
	p, err := baseline.ParseParams(params)
	if err != nil {
		return fmt.Errorf("simulate: chain %q: %w", ch.Name, err)
	}
	w := sim.World{Rows: rows, Target: sdk.Target{Chain: ch.Name, Name: ch.Target}, BootDelay: f.bootDelay,
		DrainTimeout: p.DrainTimeout.D(), BootFailure: f.bootFailure, Seed: f.seed}
	results, err := sim.Compare(cmd.Context(), w, chain, params, names, progressBar(cmd.ErrOrStderr()))
	if err != nil {
		return err
	}
	if f.plot != "" {
		if err := writePlot(f.plot, fmt.Sprintf("%s: %d tasks, chain %s", filepath.Base(f.trace), len(rows), ch.Name), results); err != nil {
			return err
		}
	}
	out := cmd.OutOrStdout()
	if f.asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"trace": f.trace, "chain": ch.Name, "tasks": len(rows), "policies": results})
	}
	sim.WriteTable(out, results)
	return nil
}

func pickChain(cfg *config.Config, name string) (*config.Chain, error) {
	if name == "" {
		if len(cfg.Chains) != 1 {
			return nil, fmt.Errorf("simulate: %s has %d chains; name one with -chain", cfg.Path, len(cfg.Chains))
		}
		return cfg.Chains[0], nil
	}
	if ch := cfg.Chain(name); ch != nil {
		return ch, nil
	}
	var have []string
	for _, ch := range cfg.Chains {
		have = append(have, ch.Name)
	}
	return nil, fmt.Errorf("simulate: no chain %q in %s (have %s)", name, cfg.Path, strings.Join(have, ", "))
}

// chainPolicy builds the chain's evaluators: plugin processes through the
// host, as `ebb run` starts them, or builtins in this process.
func chainPolicy(cfg *config.Config, ch *config.Chain, h *host.Host, inProcess bool) (sim.Policy, error) {
	pol := sim.Policy{Name: "dra", Interval: ch.Interval}
	for _, name := range ch.Evaluators {
		b := cfg.Block(sdk.KindEvaluator, name)
		var ev sim.Evaluator
		if inProcess {
			newPlugin, ok := builtins[b.Plugin]
			if !ok {
				return pol, fmt.Errorf("simulate: -in-process runs builtin plugins only; evaluator %q is %q", name, b.Plugin)
			}
			e := newPlugin().(sdk.Evaluator)
			if err := e.Configure(context.Background(), b.Config); err != nil {
				return pol, fmt.Errorf("simulate: evaluator %q: %w", name, err)
			}
			ev = e
		} else {
			ev = h.Instance(host.Spec{Block: name, Kind: sdk.KindEvaluator, Plugin: b.Plugin, SHA256: b.SHA256, Config: b.Config})
		}
		pol.Stages = append(pol.Stages, sim.Stage{Name: name, Eval: ev, Policy: ch.Policy[name]})
	}
	return pol, nil
}

// progressBar draws on a terminal only; piped output stays clean.
func progressBar(w io.Writer) func(string, float64) {
	f, ok := w.(*os.File)
	if !ok {
		return nil
	}
	if st, err := f.Stat(); err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return nil
	}
	return func(policy string, done float64) {
		n := int(done * 30)
		fmt.Fprintf(w, "\r%-12s [%s%s] %3.0f%%", policy, strings.Repeat("#", n), strings.Repeat(" ", 30-n), done*100)
		if done >= 1 {
			fmt.Fprint(w, "\r\033[K")
		}
	}
}

func writePlot(path, title string, results []*sim.Result) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("simulate: -plot: %w", err)
	}
	if err := sim.PlotSVG(f, title, results); err != nil {
		f.Close()
		return fmt.Errorf("simulate: -plot: %w", err)
	}
	return f.Close()
}

func newGenerateCmd() *cobra.Command {
	var seed uint64
	var span time.Duration
	var out string
	cmd := &cobra.Command{
		Use:   "generate SHAPE",
		Short: "write a seeded trace of a typical shape (" + strings.Join(sim.ShapeNames(), ", ") + ")",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rows, err := sim.Generate(args[0], seed, span)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if out != "" {
				f, err := os.Create(out)
				if err != nil {
					return err
				}
				defer f.Close()
				w = f
			}
			return sim.WriteTrace(w, rows)
		},
	}
	cmd.Flags().Uint64Var(&seed, "seed", 1, "seed")
	cmd.Flags().DurationVar(&span, "span", 0, "how long the trace lasts (default: the shape's)")
	cmd.Flags().StringVarP(&out, "output", "o", "", "file to write (default stdout)")
	return cmd
}
