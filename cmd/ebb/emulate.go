package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ebbscale/ebb/emulator/ams"
	"github.com/ebbscale/ebb/emulator/flink"
)

// The emulators stand in for systems that cannot run here (Amoro's AMS, its
// optimizers); tests, `ebb dev` and the simulator use them.
func newEmulateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "emulate",
		Short: "run an emulator of a system ebb integrates with (ams, optimizer, flink)",
	}
	cmd.AddCommand(newEmulateAMSCmd(), newEmulateOptimizerCmd(), newEmulateFlinkCmd())
	return cmd
}

func newEmulateAMSCmd() *cobra.Command {
	var (
		addr, metricsAddr, trace, apiKey, secretEnv string
		groups, amsScaled                           []string
		heartbeat                                   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "ams",
		Short: "serve an emulated Amoro management service: REST /api/ams/v1, the optimizer API and /metrics",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := ams.Options{HeartbeatTimeout: heartbeat}
			for _, g := range groups {
				opts.Groups = append(opts.Groups, ams.GroupConfig{Name: g})
			}
			for _, g := range amsScaled {
				opts.Groups = append(opts.Groups, ams.AMSScaledGroup(g))
			}
			if apiKey != "" {
				secret := os.Getenv(secretEnv)
				if secret == "" {
					return fmt.Errorf("--api-key needs a secret in $%s", secretEnv)
				}
				opts.Auth = ams.Auth{Type: ams.AuthToken, APIKey: apiKey, Secret: secret}
			}
			e, err := ams.New(opts)
			if err != nil {
				return err
			}
			if trace != "" {
				f, err := os.Open(trace)
				if err != nil {
					return err
				}
				rows, err := ams.LoadTrace(f)
				f.Close()
				if err != nil {
					return fmt.Errorf("%s: %w", trace, err)
				}
				if err := e.ScheduleTrace(rows); err != nil {
					return fmt.Errorf("%s: %w", trace, err)
				}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return e.Serve(ctx, addr, metricsAddr, func(rest, metrics net.Addr) {
				fmt.Fprintf(cmd.OutOrStdout(), "AMS emulator: REST http://%s/api/ams/v1, metrics http://%s/metrics, groups %v\n", rest, metrics, groups)
			})
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:19090", "REST and optimizer API address (AMS's http-server.bind-port is 19090)")
	cmd.Flags().StringVar(&metricsAddr, "metrics-addr", "127.0.0.1:7001", `Prometheus exporter address ("" serves /metrics on --addr)`)
	cmd.Flags().StringSliceVar(&groups, "group", []string{"default"}, "optimizer groups (repeatable)")
	cmd.Flags().StringSliceVar(&amsScaled, "ams-scaled-group", nil, "groups with AMS's own dynamic allocation on (container k8s), which ebb must refuse (repeatable)")
	cmd.Flags().StringVar(&trace, "trace", "", "workload trace CSV: submit,duration[,table] in seconds")
	cmd.Flags().StringVar(&apiKey, "api-key", "", "require AMS token auth with this api key")
	cmd.Flags().StringVar(&secretEnv, "secret-env", "AMS_SECRET", "environment variable holding the token auth secret")
	cmd.Flags().DurationVar(&heartbeat, "heartbeat-timeout", time.Minute, "expire optimizers silent this long")
	return cmd
}

func newEmulateOptimizerCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "optimizer -a AMS_URL -p THREADS -g GROUP [-id UNIT] [-hb MS] [-st MS] [...]",
		Short: "run an emulated Amoro optimizer: register, heartbeat, poll and run tasks; SIGTERM drains",
		Long: `Runs an emulated Amoro standalone optimizer against the AMS emulator.

It takes the real optimizer's options (OptimizerConfig), and rejects what
the chosen version rejects: -a (the AMS emulator's base URL, http://…),
-p threads, -g group, -id unit (resource) id, -hb heartbeat ms, and from
0.9 -st shutdown timeout ms, -msm, -ce …; long names (--group-name) and
name=value work too. Emulator-only settings:
  ` + ams.FlagOptimizerVersion + ` V   Amoro version to emulate (default 0.9): its options, and
                         whether SIGTERM finishes held tasks (0.9) or drops them (0.8)
  ` + ams.FlagPoll + ` D                wait after an empty poll (default 1s)
  ` + ams.FlagMemoryMB + ` MB          memory reported to AMS (default 1024)`,
		// The optimizer's own single-dash, multi-letter options (-id, -hb)
		// are not POSIX flags: optargs parses them as args4j does.
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, a := range args {
				if a == "-h" || a == "--help" || a == "-help" {
					return cmd.Help()
				}
			}
			args, exitWith, err := cutExitWith(args)
			if err != nil {
				return err
			}
			o, _, err := ams.ParseOptimizerArgs(args)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			out := cmd.ErrOrStderr()
			if exitWith > 0 {
				go exitWithProcess(exitWith, out)
			}
			o.Logf = func(format string, args ...any) {
				fmt.Fprintf(out, "%s optimizer %s: %s\n", time.Now().Format(time.TimeOnly), o.UnitID, fmt.Sprintf(format, args...))
			}
			return ams.RunOptimizer(ctx, o)
		},
	}
	return cmd
}

// cutExitWith takes ebb dev's own "--exit-with PID" out of an emulated
// optimizer's command line; the rest is the optimizer's.
func cutExitWith(args []string) ([]string, int, error) {
	var rest []string
	pid := 0
	for i := 0; i < len(args); i++ {
		name, val, inline := strings.Cut(args[i], "=")
		if name != "--exit-with" {
			rest = append(rest, args[i])
			continue
		}
		if !inline {
			if i+1 >= len(args) {
				return nil, 0, fmt.Errorf("--exit-with takes a process id")
			}
			i++
			val = args[i]
		}
		n, err := strconv.Atoi(val)
		if err != nil || n <= 0 {
			return nil, 0, fmt.Errorf("--exit-with %q: want a process id", val)
		}
		pid = n
	}
	return rest, pid, nil
}

// exitWithProcess ends this optimizer once process pid is gone. ebb dev
// uses it because it serves the AMS itself: if it dies, even by SIGKILL,
// there is nothing left to drain to, and the optimizer must not poll on.
func exitWithProcess(pid int, out io.Writer) {
	for {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			fmt.Fprintf(out, "%s optimizer: process %d is gone; exiting\n", time.Now().Format(time.TimeOnly), pid)
			os.Exit(1)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func newEmulateFlinkCmd() *cobra.Command {
	var (
		addr, amsURL string
		opts         flink.Options
		config       map[string]string
		demo         bool
	)
	cmd := &cobra.Command{
		Use:   "flink",
		Short: "serve an emulated Flink JobManager REST API with a running job; Amoro optimizer jobs register with --ams",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Config = config
			if demo {
				opts.Jobs = []flink.JobSpec{flink.DemoJob()}
			}
			out := cmd.ErrOrStderr()
			opts.Programs = map[string]flink.Program{flink.AmoroOptimizerClass: flink.AmoroOptimizer(
				func(ctx context.Context, o flink.OptimizerArgs, _ func() int) error {
					// -a is AMS's thrift URI for a real optimizer; an
					// http(s) URL there, or --ams, is the AMS emulator.
					base := amsURL
					if strings.HasPrefix(o.AMS, "http://") || strings.HasPrefix(o.AMS, "https://") {
						base = o.AMS
					}
					if base == "" {
						<-ctx.Done()
						return nil
					}
					return ams.RunOptimizer(ctx, ams.OptimizerOptions{BaseURL: base, Group: o.Group, UnitID: o.UnitID, Threads: o.Threads,
						MemoryMB: 1024, HeartbeatInterval: time.Second, PollInterval: 200 * time.Millisecond, ShutdownTimeout: time.Minute,
						Logf: func(format string, args ...any) {
							fmt.Fprintf(out, "%s flink optimizer %s: %s\n", time.Now().Format(time.TimeOnly), o.UnitID, fmt.Sprintf(format, args...))
						}})
				})}
			e, err := flink.New(opts)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return e.Serve(ctx, addr, func(a net.Addr) {
				fmt.Fprintf(cmd.OutOrStdout(), "Flink emulator: REST http://%s (Flink %s, %d x %d slots)\n", a, opts.Version, opts.TaskManagers, opts.SlotsPerTaskManager)
			})
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:8081", "REST address (Flink's rest.port is 8081)")
	cmd.Flags().StringVar(&opts.Version, "version", flink.DefaultVersion, "Flink version to report")
	cmd.Flags().IntVar(&opts.TaskManagers, "taskmanagers", 2, "TaskManagers")
	cmd.Flags().IntVar(&opts.SlotsPerTaskManager, "slots", 4, "slots per TaskManager")
	cmd.Flags().StringToStringVar(&config, "config", nil, "cluster configuration, e.g. taskmanager.load-balance.mode=TASKS (repeatable)")
	cmd.Flags().BoolVar(&demo, "demo-job", true, "run the job \"ebb-demo\" (adaptive scheduler) from the start")
	cmd.Flags().StringVar(&amsURL, "ams", "", "AMS emulator URL that Amoro optimizer jobs register with (empty: they only idle)")
	return cmd
}
