package main

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"text/template"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/ebbscale/ebb/core/metrics"
	"github.com/ebbscale/ebb/core/runner"
	"github.com/ebbscale/ebb/core/state"
	"github.com/ebbscale/ebb/emulator/ams"
	process "github.com/ebbscale/ebb/plugins/realizer-process"
	"github.com/ebbscale/ebb/sdk"
)

// The bundled workload: a trickle for 20s, a burst of 120 tasks over 12
// tables in the next 15s (a batch ingestion), then a trickle again.
//
//go:embed devdata/workload.csv
var devWorkload []byte

// devConfig is the chain `ebb dev` runs: every plugin a real process, the
// optimizers real processes too. Timeouts are shortened (the idle timeout to
// Amoro's minimum, 30s) so that the whole
// story (floor, burst, ramp-up, drain, scale-down) plays out in minutes.
var devConfig = template.Must(template.New("dev").Parse(`
state {
  path = "{{.Dir}}/ebb.db"
}

collector "ams" {
  plugin = "collector-ams"
  config {
    url               = "{{.AMS}}"
    metrics-url       = "{{.AMS}}/metrics"
    heartbeat-timeout = "10s"
  }
}

evaluator "dra" {
  plugin = "evaluator-dra"
}

realizer "local" {
  plugin = "realizer-process"
  config {
    command   = ["{{.Self}}", "emulate", "optimizer", "-a", "{ams}", "-g", "{group}", "-p", "{threads}", "-id", "{unit}", "-hb", "1000", "--poll", "200ms", "--exit-with", "{{.Pid}}"]
    vars      = { ams = "{{.AMS}}" }
    state-dir = "{{.Dir}}/units"
    boot-time = "1s"
  }
}

chain "dev" {
  collectors = [collector.ams]
  evaluators = [evaluator.dra]
  realizer   = realizer.local
  target     = "dev"
  interval   = "1s"
  policy {
    min-parallelism           = 2
    max-parallelism           = 24
    executor-parallelism      = 2
    scheduler-backlog-timeout = "3s"
    sustained-backlog-timeout = "3s"
    scale-up-cooldown         = "3s"
    scale-down-cooldown       = "2s"
    executor-idle-timeout     = "30s"
    drain-timeout             = "1m"
    boot-timeout              = "20s"
    auto-restart {
      enabled      = true
      grace-period = "10s"
    }
  }
}
`))

func newDevCmd() *cobra.Command {
	var httpAddr, trace string
	var duration time.Duration
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "run the whole story locally: an emulated Amoro, a bundled workload, real plugin and optimizer processes",
		Long: `ebb dev starts an AMS emulator replaying a bundled workload (quiet, a burst,
quiet), and a runner whose chain (collector-ams, evaluator-dra,
realizer-process) scales emulated optimizer processes. One line per decision;
http://ADDR/ shows demand and capacity over time. Ctrl-C stops everything.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			workload := devWorkload
			if trace != "" {
				b, err := os.ReadFile(trace)
				if err != nil {
					return err
				}
				workload = b
			}
			// SIGHUP: the terminal closed. It stops ebb dev like Ctrl-C, so
			// that its optimizers are released.
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
			defer stop()
			if duration > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, duration)
				defer cancel()
			}
			return dev(ctx, cmd.OutOrStdout(), cmd.ErrOrStderr(), httpAddr, workload)
		},
	}
	cmd.Flags().StringVar(&httpAddr, "http", "127.0.0.1:9464", "address of the web page and API")
	cmd.Flags().StringVar(&trace, "trace", "", "replay this workload CSV (submit,duration[,table] in seconds) instead of the bundled one")
	cmd.Flags().DurationVar(&duration, "for", 0, "stop after this long (default: until Ctrl-C)")
	return cmd
}

func dev(ctx context.Context, out, errOut io.Writer, httpAddr string, workload []byte) error {
	dir, err := os.MkdirTemp("", "ebb-dev-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	logger := hclog.New(&hclog.LoggerOptions{Name: "ebb", Level: hclog.Warn, Output: errOut})

	// The emulated AMS, in this process.
	emu, err := ams.New(ams.Options{Groups: []ams.GroupConfig{{Name: "dev"}}, HeartbeatTimeout: 10 * time.Second})
	if err != nil {
		return err
	}
	rows, err := ams.LoadTrace(bytes.NewReader(workload))
	if err != nil {
		return err
	}
	if err := emu.ScheduleTrace(rows); err != nil {
		return err
	}
	amsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	amsURL := "http://" + amsLn.Addr().String()
	amsMux := http.NewServeMux()
	amsMux.Handle("/metrics", emu.MetricsHandler())
	amsMux.Handle("/", emu.Handler())
	amsSrv := &http.Server{Handler: amsMux, ReadHeaderTimeout: 10 * time.Second}
	go amsSrv.Serve(amsLn)
	defer amsSrv.Close()

	// The chain, written out and loaded like any user's configuration.
	var src bytes.Buffer
	// --exit-with covers what no deferred cleanup can: ebb dev SIGKILLed.
	if err := devConfig.Execute(&src, map[string]string{"Dir": dir, "AMS": amsURL, "Self": self(), "Pid": fmt.Sprint(os.Getpid())}); err != nil {
		return err
	}
	cfgPath := filepath.Join(dir, "dev.hcl")
	if err := os.WriteFile(cfgPath, src.Bytes(), 0o644); err != nil {
		return err
	}
	m := metrics.New()
	var c common
	cfg, h, err := c.load(cfgPath, logger, m)
	if err != nil {
		return err
	}
	store, err := state.Open(cfg.StatePath)
	if err != nil {
		h.Close()
		return err
	}
	defer store.Close()
	store.SetRetention(retention(cfg))
	// Whatever happens, no optimizer outlives ebb dev.
	defer releaseUnits(cfg.Realizers["local"].Config)

	r := runner.New(cfg, runner.Options{Host: h, Store: store, Metrics: m, Logger: logger,
		OnEvaluation: func(ev *runner.Evaluation, err error) { printDevLine(out, ev, err) }})
	ln, err := net.Listen("tcp", httpAddr)
	if err != nil {
		h.Close()
		return fmt.Errorf("http: %w (choose another address with --http)", err)
	}
	srv := &http.Server{Handler: runner.NewGuard(r.Handler(), guardSettings(cfg)), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()

	fmt.Fprintf(out, "ebb dev: AMS emulator at %s replaying %s; optimizers are local processes\n", amsURL, sdk.Count(len(rows), "task"))
	fmt.Fprintf(out, "ebb dev: chart and decisions at http://%s/   (Ctrl-C to stop)\n", ln.Addr())
	fmt.Fprintf(out, "%-8s  %-22s  %-16s  %s\n", "time", "demand", "capacity", "action: reason")
	err = r.Run(ctx)
	fmt.Fprintln(out, "ebb dev: stopping; releasing every optimizer")
	return err
}

// printDevLine prints one compact line per evaluation that did something,
// failed, or was degraded.
func printDevLine(w io.Writer, ev *runner.Evaluation, err error) {
	now := time.Now().Format(time.TimeOnly)
	if err != nil {
		fmt.Fprintf(w, "%-8s  error: %v\n", now, err)
		return
	}
	if !ev.Decision.HasActions() && len(ev.Degraded) == 0 {
		return
	}
	rec := ev.Record
	demand := sdk.Count(rec.DemandTasks, "task") + ", " + sdk.Count(rec.PendingTables, "table")
	capacity := fmt.Sprintf("%d -> %d thr", rec.CurrentCapacity, rec.DesiredCapacity)
	fmt.Fprintf(w, "%-8s  %-22s  %-16s  %s: %s\n", now, demand, capacity, rec.Summary, rec.Reason)
}

// releaseUnits force-removes every unit the process realizer started.
func releaseUnits(cfg []byte) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := process.New()
	if err := r.Configure(ctx, cfg); err != nil {
		return
	}
	units, err := r.Inventory(ctx, sdk.Target{Chain: "dev", Name: "dev"})
	if err != nil || len(units) == 0 {
		return
	}
	var d sdk.Decision
	for _, u := range units {
		d.Remove = append(d.Remove, sdk.UnitRemove{UnitID: u.ID, Force: true})
	}
	r.Realize(ctx, sdk.RealizeRequest{Target: sdk.Target{Chain: "dev", Name: "dev"}, Decision: d, RequestID: "dev-shutdown"})
}
