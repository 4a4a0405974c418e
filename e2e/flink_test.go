package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ebbscale/ebb/emulator/ams"
	"github.com/ebbscale/ebb/emulator/flink"
)

const flinkConfig = `
collector "ams" {
  plugin = "collector-ams"
  config {
    url               = "{{.AMS}}"
    heartbeat-timeout = "5s"
  }
}

evaluator "dra" {
  plugin = "evaluator-dra"
}

# Amoro's Flink optimizer, one job per unit on the session cluster.
realizer "units" {
  plugin = "realizer-flink"
  config {
    mode           = "unit"
    unit-backend   = "session"
    rest-url       = "{{.Flink}}"
    jar-path       = "{{.Jar}}"
    ams-thrift-uri = "{{.AMS}}"
  }
}

# A running job rescaled in place.
realizer "inplace" {
  plugin = "realizer-flink"
  config {
    mode     = "job"
    rest-url = "{{.Flink}}"
  }
}

chain "optimizers" {
  collectors = [collector.ams]
  evaluators = [evaluator.dra]
  realizer   = realizer.units
  target     = "group-a"
  interval   = "1s"
  timeout    = "20s"
  policy {
    min-parallelism      = 2
    max-parallelism      = 8
    executor-parallelism = 2
    scale-up-cooldown    = "1s"
    scheduler-backlog-timeout = "1s"
    sustained-backlog-timeout = "1s"
  }
}

chain "stream" {
  collectors = [collector.ams]
  evaluators = [evaluator.dra]
  realizer   = realizer.inplace
  target     = "ebb-demo"
  interval   = "1s"
  timeout    = "20s"
  policy {
    min-parallelism      = 4
    max-parallelism      = 8
    executor-parallelism = 2
    boot-timeout         = "10m"
  }
}
`

// TestFlinkChains runs the real ebb binary with realizer-flink as plugin
// processes against the AMS and Flink JobManager emulators: one chain scales
// Amoro Flink optimizer units (jobs on a session cluster, whose optimizers
// register with AMS and run the burst), the other rescales a running job in
// place. A restarted runner finds its units and creates none twice.
func TestFlinkChains(t *testing.T) {
	long(t)
	bin := ebbBinary(t)
	amsEmu, err := ams.New(ams.Options{Groups: []ams.GroupConfig{{Name: "group-a"}, {Name: "ebb-demo"}}, HeartbeatTimeout: amsHeartbeatTimeout})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", amsEmu.MetricsHandler())
	mux.Handle("/", amsEmu.Handler())
	amsSrv := httptest.NewServer(mux)
	t.Cleanup(amsSrv.Close)
	a := &amsServer{emu: amsEmu, url: amsSrv.URL, group: "group-a"}

	// Optimizer jobs run an emulated optimizer that registers with AMS under
	// its unit id, polls tasks, and drains when Flink cancels its job.
	fe, err := flink.New(flink.Options{TaskManagers: 4, Jobs: []flink.JobSpec{flink.DemoJob()},
		Programs: map[string]flink.Program{flink.AmoroOptimizerClass: flink.AmoroOptimizer(
			func(ctx context.Context, o flink.OptimizerArgs, _ func() int) error {
				return ams.RunOptimizer(ctx, ams.OptimizerOptions{BaseURL: o.AMS, Group: o.Group, UnitID: o.UnitID, Threads: o.Threads,
					HeartbeatInterval: time.Second, PollInterval: 100 * time.Millisecond, ShutdownTimeout: 30 * time.Second})
			})}})
	if err != nil {
		t.Fatal(err)
	}
	flinkSrv := httptest.NewServer(fe.Handler())
	t.Cleanup(func() { flinkSrv.Close(); fe.Close() })

	dir := t.TempDir()
	jar := filepath.Join(dir, "optimizer-job.jar")
	if err := os.WriteFile(jar, []byte("PK\x03\x04"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := newRunner(t, bin, dir, render(t, flinkConfig, map[string]string{"AMS": a.url, "Flink": flinkSrv.URL, "Jar": jar}))
	r.start()

	optimizerJobs := func() (running int, names []string) {
		for _, j := range fe.Jobs() {
			if j.Name == "amoro-flink-optimizer" && j.State == flink.StateRunning {
				running++
				names = append(names, j.UserConfig["ebb.unit"])
			}
		}
		return running, names
	}
	demoParallelism := func() (int, int, string) {
		for _, j := range fe.Jobs() {
			if j.Name == "ebb-demo" {
				return j.Parallelism["KeyedProcess -> Sink: totals"], j.Rescales, j.State
			}
		}
		return 0, 0, "gone"
	}
	world := func() string {
		n, names := optimizerJobs()
		p, rescales, st := demoParallelism()
		reg, _ := a.registeredUnits()
		return fmt.Sprintf("optimizer jobs %d %v, AMS optimizers %v, demo job %s at %d (%d rescales)", n, names, reg, st, p, rescales)
	}

	// The floor: one unit of two threads, registered with AMS; the demo job
	// rescaled in place from 2 to the stream chain's floor of 4.
	waitFor(t, 60*time.Second, "the floor unit registered and the job rescaled in place", func() bool {
		reg, _ := a.registeredUnits()
		p, _, st := demoParallelism()
		return len(reg) >= 1 && p == 4 && st == flink.StateRunning
	}, world)
	if _, rescales, _ := demoParallelism(); rescales != 1 {
		t.Fatalf("demo job rescaled %d times, want once (then no PUT while nothing changes): %s", rescales, world())
	}

	// A burst scales optimizer units up to the ceiling, each a Flink job.
	a.burst(t, "orders", 40, 3*time.Second)
	waitFor(t, 90*time.Second, "four optimizer units (8 threads) running the burst", func() bool {
		n, _ := optimizerJobs()
		reg, _ := a.registeredUnits()
		return n == 4 && len(reg) == 4
	}, world)

	// The runner restarts: the units are found on the cluster, none twice.
	r.stop()
	before, _ := optimizerJobs()
	r.start()
	waitFor(t, 30*time.Second, "the restarted runner to evaluate both chains", func() bool {
		v, err := r.chain("optimizers")
		w, err2 := r.chain("stream")
		return err == nil && err2 == nil && len(v.Decisions) > 0 && len(w.Decisions) > 0
	}, world)
	time.Sleep(3 * time.Second) // a few more rounds of both chains
	after, names := optimizerJobs()
	if after > before {
		t.Fatalf("the restarted runner created units again: %d -> %d optimizer jobs (%v)", before, after, names)
	}
	v, err := r.chain("optimizers")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range v.Decisions {
		if strings.Contains(d.Error, "realizer-flink") {
			t.Errorf("decision %d failed: %s", d.Seq, d.Error)
		}
	}
	if p, _, _ := demoParallelism(); p != 4 {
		t.Fatalf("demo job at %d after the restart", p)
	}
}
