package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
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
		groups                                      []string
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
	cmd.Flags().StringVar(&trace, "trace", "", "workload trace CSV: submit,duration[,table] in seconds")
	cmd.Flags().StringVar(&apiKey, "api-key", "", "require AMS token auth with this api key")
	cmd.Flags().StringVar(&secretEnv, "secret-env", "AMS_SECRET", "environment variable holding the token auth secret")
	cmd.Flags().DurationVar(&heartbeat, "heartbeat-timeout", time.Minute, "expire optimizers silent this long")
	return cmd
}

func newEmulateOptimizerCmd() *cobra.Command {
	var o ams.OptimizerOptions
	var exitWith int
	cmd := &cobra.Command{
		Use:   "optimizer",
		Short: "run an emulated Amoro optimizer: register, heartbeat, poll and run tasks; SIGTERM drains",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.UnitID == "" {
				return fmt.Errorf("--id is required (the unit id the optimizer registers with)")
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
	// Flag names follow the optimizer's own command line (amoro.md §3.1).
	cmd.Flags().StringVarP(&o.BaseURL, "ams", "a", "http://127.0.0.1:19090", "AMS emulator base URL")
	cmd.Flags().StringVarP(&o.Group, "group", "g", "default", "optimizer group")
	cmd.Flags().IntVarP(&o.Threads, "threads", "p", 1, "threads (tasks run at once)")
	cmd.Flags().StringVar(&o.UnitID, "id", "", "unit (resource) id to register with")
	cmd.Flags().IntVarP(&o.MemoryMB, "memory", "m", 1024, "memory in MB, as reported to AMS")
	cmd.Flags().DurationVar(&o.HeartbeatInterval, "heartbeat", 10*time.Second, "heartbeat interval")
	cmd.Flags().DurationVar(&o.PollInterval, "poll", time.Second, "wait after an empty poll")
	cmd.Flags().DurationVar(&o.ShutdownTimeout, "shutdown-timeout", 10*time.Minute, "on SIGTERM, finish held tasks within this")
	cmd.Flags().IntVar(&exitWith, "exit-with", 0, "exit at once when the process with this pid is gone (ebb dev passes its own)")
	return cmd
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
