package runner

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ebbscale/ebb/core/config"
	"github.com/ebbscale/ebb/sdk"
	"github.com/ebbscale/ebb/sdk/sdktest"
)

// draChain is evaluator-dra chained before test-capper (2 adds an hour)
// and test-guard (no scale-down 9-17 UTC), all real plugin processes, over
// the file realizer (failing every failEvery-th call) and a collector that
// reports a worker for each of the realizer's units.
func (e *env) draChain(failEvery int) *config.Config {
	e.t.Helper()
	dra := sdktest.Build(e.t, "github.com/ebbscale/ebb/plugins/evaluator-dra/cmd/evaluator-dra")
	if err := os.Symlink(dra, filepath.Join(e.pluginDir, "evaluator-dra")); err != nil && !os.IsExist(err) {
		e.t.Fatal(err)
	}
	src := fmt.Sprintf(`
plugin_dir = %q
collector "snap" {
  plugin = "test-collector"
  config {
    file      = %q
    units-dir = %q
  }
}
evaluator "dra" {
  plugin = "evaluator-dra"
  config {
    unit-prefix = "default"
  }
}
evaluator "cap" {
  plugin = "test-capper"
}
evaluator "guard" {
  plugin = "test-guard"
}
realizer "files" {
  plugin = "test-realizer"
  config {
    dir        = %q
    fail-every = %d
  }
}
chain "a" {
  collectors       = [collector.snap]
  evaluators       = [evaluator.dra, evaluator.cap, evaluator.guard]
  realizer         = realizer.files
  target           = "default"
  interval         = "5m"
  timeout          = "10s"
  max_snapshot_age = "10m"
  policy {
    max-parallelism           = 16
    executor-parallelism      = 2
    scheduler-backlog-timeout = "1m"
    sustained-backlog-timeout = "1m"
    scale-up-cooldown         = "1m"
    scale-down-cooldown       = "5m"
    executor-idle-timeout     = "10m"
    drain-timeout             = "30m"
    boot-timeout              = "15m"
    max-adds-per-hour         = 2
    business-start            = 9
    business-end              = 17
  }
}
`, e.pluginDir, e.snap, e.units, e.units, failEvery)
	return e.loadHCL(src)
}

// chainRun checks a day of the dra, cap, guard chain on a virtual clock:
// bursts of work in the morning and at noon, idle afternoons and evenings.
func chainRun(t *testing.T, failEvery int, staleEvery int) {
	e := newEnv(t)
	store := openStore(t, filepath.Join(e.dir, "ebb.db"))
	defer store.Close()
	start := time.Date(2026, 3, 2, 6, 0, 0, 0, time.UTC)
	s := e.stepper(e.draChain(failEvery), store, start)
	created := map[string]bool{}
	var vetoes, caps, failures, stale int
	for i := 0; s.now.Before(start.Add(16 * time.Hour)); i++ {
		h := s.now.Add(5 * time.Minute).Hour()
		tasks := 0
		if h == 6 || h == 7 || h == 12 {
			tasks = 24
		}
		observed := s.now.Add(5 * time.Minute)
		if staleEvery > 0 && i%staleEvery == staleEvery-1 {
			observed = observed.Add(-time.Hour)
			stale++
		}
		snap, _ := json.Marshal(map[string]any{"tasks": tasks, "busy": tasks > 0, "observed_at": observed.Format(time.RFC3339)})
		e.setDemand(string(snap))
		ev := s.tick(t, 5*time.Minute)
		if ev == nil || ev.At != s.now {
			s.l.mu.Lock()
			err := s.l.lastErr
			s.l.mu.Unlock()
			t.Fatalf("%s: no evaluation: %v", s.now, err)
		}
		inv := map[string]sdk.Unit{}
		var invThreads int64
		for _, u := range ev.Inventory {
			inv[u.ID] = u
			created[u.ID] = true
			if u.Phase != sdk.PhaseDraining {
				invThreads += u.Size
			}
		}
		dra := ev.round.Steps[0].Decision
		// The realizer makes units at once, so nothing real is in flight:
		// all dra counts is in the inventory.
		if got := int64(dra.Metrics["effective_threads"]); got != invThreads {
			t.Fatalf("%s: dra counts %d threads, the inventory has %d: phantom capacity\n%s", s.now, got, invThreads, dra.Reason)
		}
		for _, rm := range ev.Decision.Remove {
			u, ok := inv[rm.UnitID]
			if !ok || u.Phase != sdk.PhaseDraining {
				t.Fatalf("%s: %s of a unit that was never drained (%+v)\n%s", s.now, ev.Decision.Summary(), u, dra.Reason)
			}
			if rm.Force && tasks > 0 {
				t.Fatalf("%s: force-remove %s while busy", s.now, rm.UnitID)
			}
		}
		if len(ev.round.Steps[2].Decision.Add) < len(dra.Add) {
			caps++
		}
		if ev.round.Steps[2].Decision.Vetoed {
			vetoes++
		}
		if ev.Record.Status == "failed" {
			failures++
		}
	}
	// No id burned: every unit dra ever named exists or existed, in order.
	var seqs []int
	for id := range created {
		n, err := strconv.Atoi(strings.TrimPrefix(id, "default-"))
		if err != nil {
			t.Fatalf("unit %q is not dra's", id)
		}
		seqs = append(seqs, n)
	}
	slices.Sort(seqs)
	for i, n := range seqs {
		if n != i+1 {
			t.Fatalf("unit ids %v: default-%d was never created", seqs, i+1)
		}
	}
	if vetoes == 0 || caps == 0 || (failEvery > 0 && failures == 0) || len(seqs) < 4 {
		t.Fatalf("the day did not exercise the chain: %d vetoes, %d capped rounds, %d failures, %d units", vetoes, caps, failures, len(seqs))
	}
	if got := testutil.ToFloat64(e.metrics.Adjustments.WithLabelValues("a", "dra", "cap")); got != float64(caps) {
		t.Errorf("adjustments of dra by cap = %v, want the %d capped rounds", got, caps)
	}
	if left := e.unitIDs(); len(left) != 0 {
		t.Errorf("after an idle evening units remain: %v", left)
	}
	t.Logf("%d units, %d vetoes, %d capped rounds, %d realizer failures, %d stale snapshots", len(seqs), vetoes, caps, failures, stale)
}

func TestDraChainWithCapAndGuard(t *testing.T) { chainRun(t, 0, 0) }

func TestDraChainUnderFailingRealizerAndStaleSnapshots(t *testing.T) { chainRun(t, 3, 7) }
