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
)

// The emulators stand in for systems that cannot run here (Amoro's AMS, its
// optimizers); tests, `ebb dev` and the simulator use them.
func newEmulateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "emulate",
		Short: "run an emulator of a system ebb integrates with (ams, optimizer)",
	}
	cmd.AddCommand(newEmulateAMSCmd(), newEmulateOptimizerCmd())
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
