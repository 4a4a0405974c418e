package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/ebbscale/ebb/core/config"
)

// sharedChains is n chains that share one collector, two evaluators and
// one realizer (real plugin processes), on targets target(i), every
// second and all on one phase (a jitter of one phase step). The chains
// beyond the first are copies of it, so that loading the config does not
// check n policies.
func (e *env) sharedChains(n int, target func(int) string) *config.Config {
	e.t.Helper()
	cfg := e.loadHCL(fmt.Sprintf(`
plugin_dir = %q
collector "shared" {
  plugin = "test-collector"
  config {
    file = %q
  }
}
evaluator "count" {
  plugin = "test-evaluator"
}
evaluator "guard" {
  plugin = "test-guard"
}
realizer "files" {
  plugin = "test-realizer"
  config {
    dir = %q
  }
}
chain "c0" {
  collectors = [collector.shared]
  evaluators = [evaluator.count, evaluator.guard]
  realizer   = realizer.files
  target     = %q
  interval   = "1s"
  jitter     = "10ms"
  timeout    = "10s"
}
`, e.pluginDir, e.snap, e.units, target(0)))
	base := cfg.Chains[0]
	for i := 1; i < n; i++ {
		c := *base
		c.Name, c.Target = fmt.Sprintf("c%d", i), target(i)
		cfg.Chains = append(cfg.Chains, &c)
		for _, b := range []*config.PluginBlock{cfg.Collectors["shared"], cfg.Evaluators["count"], cfg.Evaluators["guard"], cfg.Realizers["files"]} {
			b.UsedBy = append(b.UsedBy, c.Name)
		}
	}
	return cfg
}

// batchCalls is how many batched calls of method the runner made and how
// many targets they carried.
func batchCalls(t *testing.T, e *env, method string) (calls, targets int) {
	t.Helper()
	var m dto.Metric
	if err := e.metrics.BatchTargets.WithLabelValues(method).(prometheus.Histogram).Write(&m); err != nil {
		t.Fatal(err)
	}
	return int(m.Histogram.GetSampleCount()), int(m.Histogram.GetSampleSum())
}

func wantCalls(t *testing.T, e *env, method string, calls, targets int) {
	t.Helper()
	if c, n := batchCalls(t, e, method); c != calls || n != targets {
		t.Errorf("%s: %d calls for %d targets, want %d calls for %d", method, c, n, calls, targets)
	}
}

// Chains due in the same slot that share plugin blocks are served by one
// call per block and evaluator position, slot after slot.
func TestChainsDueTogetherShareOneCallPerBlock(t *testing.T) {
	e := newEnv(t)
	const n = 12
	cfg := e.sharedChains(n, func(i int) string { return fmt.Sprintf("t%d", i) })
	var mu sync.Mutex
	evals := 0
	logger := hclogFor(e)
	r := New(cfg, Options{Host: e.host, Metrics: e.metrics, Logger: logger, OnEvaluation: func(ev *Evaluation, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			t.Errorf("evaluation: %v", err)
		}
		evals++
	}})
	ft := &fakeTime{now: t0.Add(500 * time.Millisecond)}
	r.time = ft
	stop := runInBackground(r)
	defer stop()
	waitFor(t, "every chain scheduled", func() bool { return len(r.Chains()) == n && chainStatus(r, "c0").Running && allRunning(r) })
	count := func() int { mu.Lock(); defer mu.Unlock(); return evals }
	for slot := 1; slot <= 2; slot++ {
		ft.set(t0.Add(time.Duration(slot) * time.Second))
		waitFor(t, fmt.Sprintf("slot %d evaluated", slot), func() bool { return count() == slot*n })
		wantCalls(t, e, "Collect", slot, slot*n)
		wantCalls(t, e, "Inventory", slot, slot*n)
		wantCalls(t, e, "Evaluate", 2*slot, 2*slot*n) // count, then guard
	}
	var late dto.Metric
	if err := e.metrics.ScheduleLateness.Write(&late); err != nil || late.Histogram.GetSampleCount() != 2*n || late.Histogram.GetSampleSum() != 0 {
		t.Errorf("lateness: %d samples, sum %v (err %v); want %d on time", late.Histogram.GetSampleCount(), late.Histogram.GetSampleSum(), err, 2*n)
	}
}

// runInBackground runs r; the returned function stops it and waits.
func runInBackground(r *Runner) func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	return func() { cancel(); <-done }
}

// hclogFor logs WARN and above into the env's buffer, as env.running does.
func hclogFor(e *env) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Output: e.warnings, Level: hclog.Warn})
}

func allRunning(r *Runner) bool {
	for _, c := range r.Chains() {
		if !c.Running {
			return false
		}
	}
	return true
}

// One chain's failure in a batched call is its own: a collector error for
// one target makes only that chain's snapshot incomplete, an inventory
// error for one target fails only that chain, and the others decide.
func TestOneChainsFailureInABatchIsItsOwn(t *testing.T) {
	e := newEnv(t)
	names := []string{"t-ok", "t-collect-fails", "no-inventory-here", "t-ok-too"}
	cfg := e.sharedChains(len(names), func(i int) string { return names[i] })
	e.setDemand(`{"tasks": 0, "fail_targets": ["t-collect-fails"]}`)
	r := New(cfg, Options{Host: e.host, Metrics: e.metrics})
	evs, err := r.Plan(t.Context(), "")
	if err == nil || !strings.Contains(err.Error(), `chain "c2": inventory: `) || !strings.Contains(err.Error(), "no inventory for target no-inventory-here") {
		t.Fatalf("plan error %v; want chain c2's inventory error", err)
	}
	if strings.Contains(err.Error(), "c0") || strings.Contains(err.Error(), "c1") || strings.Contains(err.Error(), "c3") {
		t.Fatalf("the other chains failed too: %v", err)
	}
	byName := map[string]*Evaluation{}
	for _, ev := range evs {
		byName[ev.Chain] = ev
	}
	for _, name := range []string{"c0", "c3"} {
		if ev := byName[name]; ev == nil || !ev.Snapshot.Complete || ev.Record.Status != "planned" {
			t.Errorf("%s: %+v", name, ev)
		}
	}
	if ev := byName["c1"]; ev == nil || ev.Snapshot.Complete || ev.Record.Status != "planned" ||
		!strings.Contains(strings.Join(ev.Snapshot.IncompleteReasons, ";"), "target t-collect-fails fails") {
		t.Errorf("c1: %+v", ev)
	}
	if ev := byName["c2"]; ev != nil && ev.Record.Status != "" {
		t.Errorf("c2 decided without an inventory: %+v", ev.Record)
	}
	wantCalls(t, e, "Collect", 1, 4)
	wantCalls(t, e, "Inventory", 1, 4)
	wantCalls(t, e, "Evaluate", 2, 6) // c2 dropped out
}

// A thousand chains are a thousand heap entries, not a thousand goroutines:
// while they all evaluate, the runner's goroutines stay within the pool,
// the scheduler and the plugin connections.
func TestThousandChainsFewGoroutines(t *testing.T) {
	if testing.Short() {
		t.Skip("a thousand evaluations")
	}
	e := newEnv(t)
	const n = 1000
	cfg := e.sharedChains(n, func(i int) string { return fmt.Sprintf("t%d", i) })
	for _, ch := range cfg.Chains {
		ch.Interval, ch.Jitter = 2*time.Second, 0 // spread over the interval
	}
	var mu sync.Mutex
	seen := map[string]bool{}
	r := New(cfg, Options{Host: e.host, Metrics: e.metrics, Logger: hclogFor(e), OnEvaluation: func(ev *Evaluation, err error) {
		if ev != nil && err == nil {
			mu.Lock()
			seen[ev.Chain] = true
			mu.Unlock()
		}
	}})
	before := runtime.NumGoroutine()
	stop := runInBackground(r)
	defer stop()
	peak := 0
	waitFor(t, "every chain evaluated", func() bool {
		peak = max(peak, runtime.NumGoroutine())
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == n
	})
	// Pool (at most 256), scheduler, plugin processes' connections.
	if peak-before > 400 {
		t.Fatalf("%d goroutines for %d chains (%d before)", peak, n, before)
	}
	t.Logf("%d chains: %d goroutines before, peak %d", n, before, peak)
}

// A reload keeps an unchanged chain's place in the schedule (same entry,
// same next tick), restarts a changed one and takes a removed one out.
func TestReloadKeepsTheSchedule(t *testing.T) {
	e := newEnv(t)
	r := New(e.load(e.chainHCL("a", "t1", "1s", "")), Options{Host: e.host, Metrics: e.metrics})
	ft := &fakeTime{now: t0}
	r.time = ft
	stop := runInBackground(r)
	defer stop()
	entryOf := func(name string) (*entry, time.Time) {
		r.mu.Lock()
		l := r.chains[name]
		r.mu.Unlock()
		if l == nil {
			return nil, time.Time{}
		}
		r.sched.mu.Lock()
		defer r.sched.mu.Unlock()
		return l.entry, l.entry.due
	}
	waitFor(t, "chain a scheduled", func() bool { e, _ := entryOf("a"); return e != nil })
	a, due := entryOf("a")
	ft.set(t0.Add(300 * time.Millisecond)) // time passes; nothing is due yet
	r.Reload(e.load(e.chainHCL("a", "t1", "1s", ""), e.chainHCL("b", "t2", "1s", "")))
	if got, gotDue := entryOf("a"); got != a || !gotDue.Equal(due) {
		t.Fatalf("the unchanged chain was rescheduled: due %s, was %s", gotDue, due)
	}
	b, _ := entryOf("b")
	if b == nil {
		t.Fatal("the new chain is not scheduled")
	}
	r.Reload(e.load(e.chainHCL("a", "t1", "2s", "")))
	if got, _ := entryOf("a"); got == a || got.interval != 2*time.Second {
		t.Fatal("the changed chain kept its old schedule")
	}
	r.sched.mu.Lock()
	removed := b.index == -1
	r.sched.mu.Unlock()
	if !removed {
		t.Fatal("the removed chain is still in the schedule")
	}
}

// A running chain keeps of its last evaluation what the API shows: the
// decision, the inventory, the record and the outcomes, not the snapshot,
// each evaluator's full decision or a second copy of the decision as JSON.
func TestLastEvaluationKeepsWhatTheAPIShows(t *testing.T) {
	e := newEnv(t)
	store := openStore(t, filepath.Join(e.dir, "ebb.db"))
	defer store.Close()
	s := e.stepper(e.editedChain(0), store, time.Date(2026, 3, 2, 20, 0, 0, 0, time.UTC))
	e.setDemand(`{"tasks": 2}`)
	s.tick(t, time.Minute)
	full := s.tick(t, time.Minute) // the units exist now
	if len(full.Steps) != 2 || len(full.Record.Decision) == 0 || len(full.Inventory) != 2 {
		t.Fatalf("the full evaluation lacks what it should have: %+v", full)
	}
	s.l.mu.Lock()
	last := s.l.last
	s.l.mu.Unlock()
	if len(last.Steps) != 0 || last.Record.Decision != nil || last.Snapshot.ObservedAt != (time.Time{}) || last.round.Steps != nil {
		t.Errorf("the chain keeps more than the API shows: %+v", last)
	}
	if len(last.Inventory) != 2 || last.Decision.Reason != full.Decision.Reason || len(last.Record.Steps) != 2 || last.Outcomes == nil || !last.At.Equal(full.At) {
		t.Errorf("the chain lost what the API shows: %+v", last)
	}
	b, err := json.Marshal(chainStatus(s.r, "a"))
	if err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{`"snapshot"`, `"steps":[{"evaluator":"count","decision"`} {
		if strings.Contains(string(b), gone) {
			t.Errorf("/v1/chains still shows %s: %s", gone, b)
		}
	}
}

// Chains with collectors of their own that share an evaluator and a
// realizer still share those calls: each waits for the others of its round.
func TestChainsSharingOnlyLaterBlocksShareThoseCalls(t *testing.T) {
	e := newEnv(t)
	cfg := e.load(e.chainHCL("a", "t1", "1s", ""), e.chainHCL("b", "t2", "1s", ""), e.chainHCL("c", "t3", "1s", ""))
	r := New(cfg, Options{Host: e.host, Metrics: e.metrics})
	r.linger = time.Hour // every call waits for all its chains: the count below cannot depend on speed
	evs, err := r.Plan(t.Context(), "")
	if err != nil || len(evs) != 3 {
		t.Fatalf("plan: %d evaluations, %v", len(evs), err)
	}
	wantCalls(t, e, "Collect", 3, 3)
	wantCalls(t, e, "Inventory", 1, 3)
	wantCalls(t, e, "Evaluate", 1, 3)
}
