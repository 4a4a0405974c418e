package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/hcl/v2"
	"github.com/spf13/cobra"

	"github.com/ebbscale/ebb/core/config"
	"github.com/ebbscale/ebb/core/host"
	"github.com/ebbscale/ebb/core/metrics"
	"github.com/ebbscale/ebb/core/runner"
	"github.com/ebbscale/ebb/sdk"
)

// common holds the flags every config-reading command shares.
type common struct {
	// warnings are the last load's diagnostics, when it had no errors.
	warnings  hcl.Diagnostics
	vars      []string
	logLevel  string
	logJSON   bool
	pluginDir string
}

func (c *common) register(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&c.vars, "var", nil, "set a variable: -var name=value (repeatable)")
	cmd.Flags().StringVar(&c.logLevel, "log-level", "", "trace, debug, info, warn or error (default: the config's, else info)")
	cmd.Flags().BoolVar(&c.logJSON, "log-json", false, "log JSON lines")
	cmd.Flags().StringVar(&c.pluginDir, "plugin-dir", "", "directory of external plugin binaries (default: the config's plugin_dir)")
}

func (c *common) varMap() (map[string]string, error) {
	out := map[string]string{}
	for _, v := range c.vars {
		k, val, ok := strings.Cut(v, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("-var %q: want name=value", v)
		}
		out[k] = val
	}
	return out, nil
}

// logger builds the command's logger; quiet commands (validate, plan,
// plugins) default to warnings only, since their output is the point.
func (c *common) logger(cfg *config.Config, out io.Writer, quiet bool) hclog.Logger {
	level, jsonFmt := c.logLevel, c.logJSON
	if level == "" && quiet {
		level = "warn"
	}
	if cfg != nil {
		if level == "" {
			level = cfg.LogLevel
		}
		jsonFmt = jsonFmt || cfg.LogJSON
	}
	if level == "" {
		level = "info"
	}
	return hclog.New(&hclog.LoggerOptions{Name: "ebb", Level: hclog.LevelFromString(level), JSONFormat: jsonFmt, Output: out})
}

// load reads a configuration with a host that will also run its plugins.
func (c *common) load(path string, logger hclog.Logger, m *metrics.Metrics) (*config.Config, *host.Host, error) {
	vars, err := c.varMap()
	if err != nil {
		return nil, nil, err
	}
	// The plugin directory comes from --plugin-dir or the file (resolver).
	h, err := newHost(logger, m, "")
	if err != nil {
		return nil, nil, err
	}
	res, err := c.resolver(h)
	if err != nil {
		h.Close()
		return nil, nil, err
	}
	cfg, diags := config.Load(path, vars, res)
	if diags.HasErrors() {
		h.Close()
		return nil, nil, diagError{config.FormatDiagnostics(diags)}
	}
	if c.pluginDir != "" {
		cfg.PluginDir = c.pluginDir
	}
	c.warnings = diags
	return cfg, h, nil
}

// resolver is the host as the config loader sees it: with --plugin-dir, the
// flag's directory wins over the file's plugin_dir.
func (c *common) resolver(h *host.Host) (config.Resolver, error) {
	if c.pluginDir == "" {
		return h, nil
	}
	abs, err := filepath.Abs(c.pluginDir)
	if err != nil {
		return nil, fmt.Errorf("--plugin-dir: %w", err)
	}
	c.pluginDir = abs
	if err := h.SetPluginDir(abs); err != nil {
		return nil, fmt.Errorf("--plugin-dir: %w", err)
	}
	return flagDir{h}, nil
}

// flagDir is a host whose plugin directory came from --plugin-dir; the
// configuration's plugin_dir does not replace it.
type flagDir struct{ *host.Host }

func (flagDir) SetPluginDir(string) error { return nil }

// startTimeoutEnv bounds each plugin's start (the handshake), 20s unless set.
const startTimeoutEnv = "EBB_PLUGIN_START_TIMEOUT"

// newHost returns the plugin host every command runs its plugins with.
func newHost(logger hclog.Logger, m *metrics.Metrics, pluginDir string) (*host.Host, error) {
	opts := host.Options{Self: self(), Builtins: builtinNames(), Logger: logger, Metrics: m, PluginDir: pluginDir}
	if v := os.Getenv(startTimeoutEnv); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("%s=%q: want a positive duration such as 20s", startTimeoutEnv, v)
		}
		opts.StartTimeout = d
	}
	return host.New(opts), nil
}

// diagError is a configuration that did not load; its text is the
// diagnostics, one FILE:LINE:COL: message per line. main prints it as is and
// exits 1.
type diagError struct{ text string }

func (e diagError) Error() string { return strings.TrimRight(e.text, "\n") }

func newValidateCmd() *cobra.Command {
	var c common
	cmd := &cobra.Command{
		Use:   "validate FILE",
		Short: "check a configuration: exit 0 when valid, 1 with every problem as FILE:LINE:COL: message",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			logger := c.logger(nil, cmd.ErrOrStderr(), true)
			cfg, h, err := c.load(args[0], logger.Named("validate"), metrics.New())
			if err != nil {
				return err
			}
			h.Close()
			fmt.Fprint(cmd.ErrOrStderr(), config.FormatDiagnostics(c.warnings))
			fmt.Fprintf(cmd.OutOrStdout(), "%s: valid (%s)\n", args[0], sdk.Count(len(cfg.Chains), "chain"))
			return nil
		},
	}
	c.register(cmd)
	return cmd
}

func newPlanCmd() *cobra.Command {
	var c common
	var asJSON bool
	var statePath string
	cmd := &cobra.Command{
		Use:   "plan FILE [CHAIN]",
		Short: "evaluate chains once (collect, inventory, evaluate) without realizing anything",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			logger := c.logger(nil, cmd.ErrOrStderr(), true)
			m := metrics.New()
			cfg, h, err := c.load(args[0], logger, m)
			if err != nil {
				return err
			}
			defer h.Close()
			name := ""
			if len(args) == 2 {
				name = args[1]
			}
			// The saved state makes plan's decision the one run would make
			// now; it is only read.
			store, err := openSavedState(statePath, cfg)
			if err != nil {
				return err
			}
			defer store.Close()
			r := runner.New(cfg, runner.Options{Host: h, Store: store, Metrics: m, Logger: logger})
			evs, planErr := r.Plan(cmd.Context(), name)
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				enc.SetEscapeHTML(false) // reasons say "0 threads < min-parallelism 4"
				if err := enc.Encode(map[string]any{"evaluations": evs}); err != nil {
					return err
				}
			} else {
				for _, ev := range evs {
					printEvaluation(cmd.OutOrStdout(), ev)
				}
			}
			return planErr
		},
	}
	c.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().StringVar(&statePath, "state", "", "state file to read, never written (default: the config's, else ebb.db beside it)")
	return cmd
}

func printEvaluation(w io.Writer, ev *runner.Evaluation) {
	s := ev.Snapshot
	fmt.Fprintf(w, "chain %s -> target %s\n", ev.Chain, ev.Target)
	fmt.Fprintf(w, "  snapshot  observed %s, complete %v\n", s.ObservedAt.Format(time.RFC3339), s.Complete)
	for _, why := range s.IncompleteReasons {
		fmt.Fprintf(w, "            incomplete: %s\n", why)
	}
	d := s.Demand
	fmt.Fprintf(w, "  demand    planned %d, scheduled %d, running %d, pending tables %d, planning tables %d\n",
		d.PlannedTasks, d.ScheduledTasks, d.RunningTasks, d.PendingTables, d.PlanningTables)
	if d.ServiceableKnown {
		fmt.Fprintf(w, "            serviceable planned %d (table quotas)\n", d.ServiceablePlannedTasks)
	}
	fmt.Fprintf(w, "  workers   %d\n", len(s.Workers))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, wk := range s.Workers {
		busy := fmt.Sprintf("%d/%d busy", wk.BusyThreads, wk.Threads)
		if !wk.BusyKnown {
			busy = fmt.Sprintf("?/%d busy (unknown)", wk.Threads)
		}
		fmt.Fprintf(tw, "    %s\tunit %s\t%s\t%s\n", wk.ID, wk.UnitID, wk.State, busy)
	}
	tw.Flush()
	fmt.Fprintf(w, "  inventory %s\n", sdk.Count(len(ev.Inventory), "unit"))
	for _, u := range ev.Inventory {
		fmt.Fprintf(tw, "    %s\t%s\tsize %d\tcreated %s\n", u.ID, u.Phase, u.Size, u.CreatedAt.Format(time.RFC3339))
	}
	tw.Flush()
	if ev.Conflict != "" {
		fmt.Fprintf(w, "  CONFLICT  %s\n", ev.Conflict)
	}
	for _, why := range ev.Degraded {
		fmt.Fprintf(w, "  degraded  %s\n", why)
	}
	printSteps(w, ev)
	fmt.Fprintf(w, "  decision  %s (desired capacity %d)\n", ev.Decision.Summary(), ev.Decision.DesiredCapacity)
	fmt.Fprintf(w, "  reason    %s\n\n", ev.Decision.Reason)
}

func newRunCmd() *cobra.Command {
	var c common
	var path, httpAddr, statePath string
	cmd := &cobra.Command{
		Use:   "run [FILE]",
		Short: "run the chains of a configuration (FILE or --config) until interrupted; SIGHUP reloads it",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if cmd.Flags().Changed("config") && path != args[0] {
					return fmt.Errorf("two configurations: %s and --config %s; give one", args[0], path)
				}
				path = args[0]
			}
			boot := c.logger(nil, cmd.ErrOrStderr(), false)
			m := metrics.New()
			cfg, h, err := c.load(path, boot, m)
			if err != nil {
				return err
			}
			logger := c.logger(cfg, cmd.ErrOrStderr(), false)
			logWarnings(logger, c.warnings)
			if c.logLevel == "" {
				// The host logs through the boot logger.
				boot.SetLevel(hclog.LevelFromString(cfg.LogLevel))
			}
			a := runArgs{common: &c, path: path, cfg: cfg, host: h, metrics: m, logger: logger, boot: boot,
				statePath: statePath, httpAddr: httpAddr, stateFlag: statePath, httpFlag: httpAddr}
			if a.statePath == "" {
				a.statePath = cfg.StatePath
			}
			if a.httpAddr == "" {
				a.httpAddr = cfg.HTTPAddress
			}
			return run(cmd.Context(), a)
		},
	}
	c.register(cmd)
	cmd.Flags().StringVar(&path, "config", "config.hcl", "configuration file (or give it as the argument, as to validate)")
	cmd.Flags().StringVar(&httpAddr, "http", "", "HTTP listen address (default: the config's, else 127.0.0.1:9464)")
	cmd.Flags().StringVar(&statePath, "state", "", "state file (default: the config's, else ebb.db beside it)")
	return cmd
}

type runArgs struct {
	*common
	path      string
	cfg       *config.Config // the running configuration; reload replaces it
	host      *host.Host
	metrics   *metrics.Metrics
	logger    hclog.Logger
	boot      hclog.Logger // what the host logs through
	statePath string
	httpAddr  string
	// stateFlag and httpFlag are the --state and --http flags, which win
	// over the config on reload too.
	stateFlag, httpFlag string
	api                 *apiServer
	backend             *backend
}

func run(parent context.Context, a runArgs) error {
	b, err := openBackend(a)
	if err != nil {
		a.host.Close()
		return err
	}
	defer b.close()
	a.backend = b
	r := runner.New(a.cfg, runner.Options{Host: a.host, Store: b.store, Owner: b.owner, Metrics: a.metrics, Logger: a.logger})
	stopPprof, err := startPprof(a.logger)
	if err != nil {
		a.host.Close()
		return err
	}
	defer stopPprof()

	api, err := startAPI(r.Handler(), a.httpAddr, guardSettings(a.cfg), a.logger)
	if err != nil {
		a.host.Close()
		return err
	}
	defer api.Close()
	a.api = api
	a.logger.Info("ebb running", "config", a.path, "chains", len(a.cfg.Chains), "state", b.where)

	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	defer stop()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				reload(r, &a)
			}
		}
	}()
	if b.leases == nil {
		return r.Run(ctx)
	}
	// The leases outlive the chains: they are released only once the
	// runner has stopped every round, so the next owner never overlaps.
	leaseCtx, stopLeases := context.WithCancel(context.Background())
	leasesDone := make(chan error, 1)
	go func() { leasesDone <- b.leases(leaseCtx) }()
	err = r.Run(ctx)
	stopLeases()
	if lerr := <-leasesDone; err == nil {
		err = lerr
	}
	return err
}

// reload re-reads the configuration; a bad one is rejected with its
// diagnostics and the running one stays.
func reload(r *runner.Runner, a *runArgs) {
	vars, err := a.varMap()
	if err != nil {
		a.logger.Error("reload rejected", "error", err)
		return
	}
	res, err := a.resolver(a.host)
	if err != nil {
		a.logger.Error("reload rejected", "error", err)
		return
	}
	cfg, diags := config.Load(a.path, vars, res)
	if diags.HasErrors() {
		a.logger.Error("reload rejected; the running configuration stays", "diagnostics", config.FormatDiagnostics(diags))
		return
	}
	logWarnings(a.logger, diags)
	r.Reload(cfg)
	a.backend.setConfig(cfg)
	applied, restart, err := reloadSettings(a.cfg, cfg, *a)
	a.cfg = cfg
	if err != nil {
		a.logger.Error("reload could not apply a setting", "error", err)
	}
	a.logger.Info("configuration reloaded", "config", a.path, "chains", len(cfg.Chains), "applied", applied)
	if len(restart) > 0 {
		a.logger.Warn("settings changed that apply only after a restart of ebb; until then the old values hold", "settings", restart)
	}
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "print ebb's version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			v := version
			if bi, ok := debug.ReadBuildInfo(); ok && v == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
				v = bi.Main.Version
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ebb %s (plugin protocol %d)\n", v, sdk.ProtocolVersion)
		},
	}
}
