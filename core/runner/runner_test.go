package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ebbscale/ebb/core/config"
	"github.com/ebbscale/ebb/core/host"
	"github.com/ebbscale/ebb/core/metrics"
	"github.com/ebbscale/ebb/core/state"
	"github.com/ebbscale/ebb/sdk"
	"github.com/ebbscale/ebb/sdk/sdktest"
)

// env is a runner wired to real plugin processes: the test plugin binary
// under three names in a plugin_dir, a snapshot file the collector reads and
// a directory the realizer keeps its units in.
type env struct {
	t         testing.TB
	dir       string
	pluginDir string
	snap      string
	units     string
	metrics   *metrics.Metrics
	host      *host.Host
	cfg       *config.Config
	// warnings holds what the runner logs at WARN and above.
	warnings *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newEnv(t testing.TB) *env {
	t.Helper()
	bin := sdktest.Build(t, "github.com/ebbscale/ebb/core/testdata/testplugin")
	dir := t.TempDir()
	e := &env{t: t, dir: dir, pluginDir: filepath.Join(dir, "plugins"), snap: filepath.Join(dir, "snapshot.json"),
		units: filepath.Join(dir, "units"), metrics: metrics.New(), warnings: &lockedBuffer{}}
	if err := os.MkdirAll(e.pluginDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"test-collector", "test-evaluator", "test-realizer", "test-capper", "test-guard"} {
		if err := os.Symlink(bin, filepath.Join(e.pluginDir, name)); err != nil {
			t.Fatal(err)
		}
	}
	e.setDemand(`{"tasks": 0}`)
	e.host = host.New(host.Options{Metrics: e.metrics, Backoff: 50 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
	t.Cleanup(e.host.Close)
	return e
}

func (e *env) setDemand(js string) {
	e.t.Helper()
	// Write then rename, so the collector never reads half a file.
	tmp := e.snap + ".tmp"
	if err := os.WriteFile(tmp, []byte(js), 0o644); err != nil {
		e.t.Fatal(err)
	}
	if err := os.Rename(tmp, e.snap); err != nil {
		e.t.Fatal(err)
	}
}

// chainHCL is a chain named name on target, with extra collector config.
func (e *env) chainHCL(name, target, interval, collectorExtra string) string {
	return fmt.Sprintf(`
collector %[1]q {
  plugin = "test-collector"
  config {
    file = %[4]q
    %[5]s
  }
}
chain %[1]q {
  collectors = [collector.%[1]s]
  evaluators = [evaluator.count]
  realizer   = realizer.files
  target     = %[2]q
  interval   = %[3]q
  timeout    = "2s"
}
`, name, target, interval, e.snap, collectorExtra)
}

func (e *env) load(chains ...string) *config.Config {
	e.t.Helper()
	src := fmt.Sprintf(`
plugin_dir = %q
evaluator "count" {
  plugin = "test-evaluator"
}
realizer "files" {
  plugin = "test-realizer"
  config {
    dir = %q
  }
}
`, e.pluginDir, e.units) + strings.Join(chains, "\n")
	return e.loadHCL(src)
}

// loadHCL writes src as the config file and loads it.
func (e *env) loadHCL(src string) *config.Config {
	e.t.Helper()
	path := filepath.Join(e.dir, "ebb.hcl")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		e.t.Fatal(err)
	}
	cfg, diags := config.Load(path, nil, e.host)
	if diags.HasErrors() {
		e.t.Fatalf("config: %s", config.FormatDiagnostics(diags))
	}
	e.cfg = cfg
	return cfg
}

func (e *env) unitIDs() []string {
	entries, _ := os.ReadDir(e.units)
	var ids []string
	for _, en := range entries {
		if !strings.HasPrefix(en.Name(), ".") {
			ids = append(ids, en.Name())
		}
	}
	return ids
}

// running starts a runner in the background; the returned function stops it
// and waits.
func (e *env) running(cfg *config.Config, store *state.Store, onEval func(*Evaluation, error)) (*Runner, func()) {
	logger := hclog.New(&hclog.LoggerOptions{Output: e.warnings, Level: hclog.Warn})
	r := New(cfg, Options{Host: e.host, Store: store, Metrics: e.metrics, OnEvaluation: onEval, Logger: logger})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	return r, func() { cancel(); <-done }
}

// waitFor polls cond until it holds; a deadline only bounds a hung test.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func openStore(t *testing.T, path string) *state.Store {
	t.Helper()
	s, err := state.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPlanRoundTripsThroughRealPluginProcesses(t *testing.T) {
	e := newEnv(t)
	e.setDemand(`{"tasks": 3}`)
	r := New(e.load(e.chainHCL("a", "t1", "1s", "")), Options{Host: e.host, Metrics: e.metrics})
	evs, err := r.Plan(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	ev := evs[0]
	if ev.Snapshot.Demand.PlannedTasks != 3 || !ev.Snapshot.Complete {
		t.Fatalf("snapshot did not cross the wire intact: %+v", ev.Snapshot)
	}
	if got := ev.Decision.Summary(); got != "+3 units (u-1,u-2,u-3)" {
		t.Fatalf("decision %q", got)
	}
	if len(e.unitIDs()) != 0 {
		t.Fatalf("plan realized units: %v", e.unitIDs())
	}
	if _, err := r.Plan(context.Background(), "nope"); err == nil {
		t.Fatal("planning an unknown chain succeeded")
	}
}

func TestRunScalesUpAndDownAndServesHTTP(t *testing.T) {
	e := newEnv(t)
	store := openStore(t, filepath.Join(e.dir, "ebb.db"))
	defer store.Close()
	e.setDemand(`{"tasks": 2}`)
	r, stop := e.running(e.load(e.chainHCL("a", "t1", "50ms", "")), store, nil)
	defer stop()
	waitFor(t, "two units", func() bool { return len(e.unitIDs()) == 2 })
	e.setDemand(`{"tasks": 1}`)
	waitFor(t, "a drain", func() bool {
		b, _ := os.ReadFile(filepath.Join(e.units, "u-2"))
		return strings.Contains(string(b), "draining")
	})
	if got := testutil.ToFloat64(e.metrics.Decisions.WithLabelValues("a", "up", "realized")); got < 1 {
		t.Fatalf("up decisions counted: %v", got)
	}

	srv := httptest.NewServer(r.Handler())
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, page := get("/"); code != 200 || !strings.Contains(page, "<title>ebb</title>") {
		t.Fatalf("web page: %d", code)
	}
	if code, _ := get("/v1/health"); code != 200 {
		t.Fatalf("health %d", code)
	}
	waitFor(t, "ready", func() bool { code, _ := get("/v1/ready"); return code == 200 })
	code, body := get("/v1/chains/a?n=5")
	if code != 200 || !strings.Contains(body, `"reason": "evaluation`) || !strings.Contains(body, "drain u-2") {
		t.Fatalf("chain detail %d: %s", code, body)
	}
	if code, _ := get("/v1/chains/zzz"); code != 404 {
		t.Fatalf("unknown chain: %d", code)
	}
	if code, _ := get("/v1/chains/a?n=x"); code != 400 {
		t.Fatalf("bad n: %d", code)
	}
	_, metricsText := get("/metrics")
	for _, want := range []string{`ebb_decisions_total{chain="a",direction="up",outcome="realized"}`, "ebb_plugin_call_duration_seconds_bucket", `ebb_chain_current_capacity{chain="a"}`} {
		if !strings.Contains(metricsText, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// evalLog collects a running chain's successful evaluations.
type evalLog struct {
	mu  sync.Mutex
	evs []*Evaluation
}

// next waits for k more evaluations and returns the last.
func (l *evalLog) next(t *testing.T, k int) *Evaluation {
	t.Helper()
	n := func() int { l.mu.Lock(); defer l.mu.Unlock(); return len(l.evs) }
	start := n()
	waitFor(t, fmt.Sprintf("%d more evaluations", k), func() bool { return n() >= start+k })
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.evs[len(l.evs)-1]
}

// twoUnitsRunning runs chain "a" on target t1 until the test evaluator has
// two units for two tasks; the chain stops when the test ends.
func twoUnitsRunning(t *testing.T) (*env, *evalLog) {
	t.Helper()
	e := newEnv(t)
	store := openStore(t, filepath.Join(e.dir, "ebb.db"))
	t.Cleanup(func() { store.Close() })
	e.setDemand(`{"tasks": 2}`)
	log := &evalLog{}
	_, stop := e.running(e.load(e.chainHCL("a", "t1", "30ms", "")), store, func(ev *Evaluation, err error) {
		log.mu.Lock()
		defer log.mu.Unlock()
		if err == nil {
			log.evs = append(log.evs, ev)
		}
	})
	t.Cleanup(stop)
	waitFor(t, "two units", func() bool { return len(e.unitIDs()) == 2 })
	return e, log
}

func TestStalenessRuleSuppressesScaleDown(t *testing.T) {
	for _, tc := range []struct{ name, demand, why string }{
		{"incomplete", `{"tasks": 0, "complete": false}`, "snapshot incomplete"},
		{"stale", `{"tasks": 0, "age": "1h"}`, "snapshot stale"},
		{"collector failed", `{"tasks": 0, "fail": "AMS unreachable"}`, "AMS unreachable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, log := twoUnitsRunning(t)
			e.setDemand(tc.demand)
			last := log.next(t, 5)
			if len(last.Decision.Drain) > 0 || last.Suppressed != "drain u-1,u-2" {
				t.Fatalf("degraded snapshot: decision %q, suppressed %q", last.Decision.Summary(), last.Suppressed)
			}
			if !strings.Contains(last.Decision.Reason, "scale-down suppressed") || !strings.Contains(last.Decision.Reason, tc.why) {
				t.Fatalf("reason does not explain the suppression: %q", last.Decision.Reason)
			}
			for _, id := range e.unitIDs() {
				b, _ := os.ReadFile(filepath.Join(e.units, id))
				if strings.Contains(string(b), "draining") {
					t.Fatalf("unit %s was drained on a degraded snapshot", id)
				}
			}
		})
	}
}

// A target something else already scales gets no change at all: no drain on
// a complete snapshot with no demand, no unit for new demand; the decision,
// the metric and a WARN line say why.
func TestConflictRefusesEveryChange(t *testing.T) {
	e, log := twoUnitsRunning(t)
	for _, demand := range []string{
		`{"tasks": 0, "conflict": "group t1: dynamic-allocation.enabled=true"}`,
		`{"tasks": 9, "conflict": "group t1: dynamic-allocation.enabled=true"}`,
	} {
		e.setDemand(demand)
		last := log.next(t, 5)
		if last.Decision.HasActions() || last.Conflict == "" || last.Suppressed == "" {
			t.Fatalf("%s: decision %q, conflict %q, suppressed %q", demand, last.Decision.Summary(), last.Conflict, last.Suppressed)
		}
		if !strings.Contains(last.Decision.Reason, "no change: collector \"a\": group t1: dynamic-allocation.enabled=true") {
			t.Fatalf("reason does not name the conflict: %q", last.Decision.Reason)
		}
		if got := e.unitIDs(); len(got) != 2 {
			t.Fatalf("%s: units %v, want the two there were", demand, got)
		}
		for _, id := range e.unitIDs() {
			b, _ := os.ReadFile(filepath.Join(e.units, id))
			if strings.Contains(string(b), "draining") {
				t.Fatalf("unit %s was drained on a conflicting target", id)
			}
		}
	}
	if w := e.warnings.String(); !strings.Contains(w, "[WARN]  target is scaled by something else: no change: chain=a target=t1") || !strings.Contains(w, "dynamic-allocation.enabled=true") {
		t.Fatalf("no WARN line names the conflict:\n%s", w)
	}
	if v := testutil.ToFloat64(e.metrics.TargetConflicts.WithLabelValues("a")); v != 1 {
		t.Fatalf("ebb_target_conflicts = %v, want 1", v)
	}
	e.setDemand(`{"tasks": 2}`)
	waitFor(t, "the conflict to clear", func() bool { return testutil.ToFloat64(e.metrics.TargetConflicts.WithLabelValues("a")) == 0 })
}

func TestKilledPluginIsRestartedAndChainResumes(t *testing.T) {
	e := newEnv(t)
	store := openStore(t, filepath.Join(e.dir, "ebb.db"))
	defer store.Close()
	var mu sync.Mutex
	okAfterKill := 0
	killed := false
	r, stop := e.running(e.load(e.chainHCL("a", "t1", "30ms", "")), store, func(ev *Evaluation, err error) {
		mu.Lock()
		defer mu.Unlock()
		if killed && err == nil {
			okAfterKill++
		}
	})
	defer stop()
	waitFor(t, "first evaluation", ready(r))
	for _, kind := range []string{"collector", "evaluator", "realizer"} {
		inst := instanceOf(r, kind)
		pid := inst.Pid()
		if pid == 0 {
			t.Fatalf("%s has no process", kind)
		}
		mu.Lock()
		killed, okAfterKill = true, 0
		mu.Unlock()
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitFor(t, kind+" restarted and chain evaluating again", func() bool {
			mu.Lock()
			defer mu.Unlock()
			return okAfterKill >= 3 && inst.Pid() != 0 && inst.Pid() != pid
		})
		if got := testutil.ToFloat64(e.metrics.PluginRestarts.WithLabelValues(inst.Spec().Block)); got < 1 {
			t.Fatalf("%s restarts metric %v", kind, got)
		}
	}
	// The realizer's process died three times over, yet each unit exists once.
	e.setDemand(`{"tasks": 2}`)
	waitFor(t, "two units", func() bool { return len(e.unitIDs()) == 2 })
}

func instanceOf(r *Runner, kind string) *host.Instance {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, inst := range r.instances {
		if inst.Spec().Kind.String() == kind {
			return inst
		}
	}
	return nil
}

func TestDeadlineExpiresInsidePluginNotTheRunner(t *testing.T) {
	e := newEnv(t)
	marker := filepath.Join(e.dir, "deadline")
	slow := e.chainHCL("slow", "t-slow", "50ms", fmt.Sprintf("sleep = \"1h\"\n    marker = %q", marker))
	fast := e.chainHCL("fast", "t-fast", "30ms", "")
	var mu sync.Mutex
	var slowEv *Evaluation
	fastOK := 0
	_, stop := e.running(e.load(slow, fast), nil, func(ev *Evaluation, err error) {
		mu.Lock()
		defer mu.Unlock()
		if ev != nil && ev.Chain == "slow" && err == nil && slowEv == nil {
			slowEv = ev
		}
		if ev != nil && ev.Chain == "fast" && err == nil {
			fastOK++
		}
	})
	defer stop()
	waitFor(t, "the slow chain's evaluation", func() bool { mu.Lock(); defer mu.Unlock(); return slowEv != nil })
	mu.Lock()
	defer mu.Unlock()
	if slowEv.Snapshot.Complete || !strings.Contains(strings.Join(slowEv.Snapshot.IncompleteReasons, ";"), "DeadlineExceeded") {
		t.Fatalf("a collector past its deadline must make the snapshot incomplete: %+v", slowEv.Snapshot)
	}
	// The plugin process itself saw the deadline (2s) and gave up at it.
	seen, err := os.ReadFile(marker)
	if err != nil {
		t.Fatal(err)
	}
	left, err := time.ParseDuration(string(seen))
	if err != nil || left <= 0 || left > 2*time.Second {
		t.Fatalf("deadline seen inside the plugin: %q", seen)
	}
	// gRPC ends the call on the plugin's side at the deadline, as a deadline
	// or as the runner's cancellation, whichever the plugin sees first.
	if b, err := os.ReadFile(marker + ".done"); err != nil || !(strings.Contains(string(b), "deadline exceeded") || strings.Contains(string(b), "context canceled")) {
		t.Fatalf("plugin did not stop at the deadline: %q %v", b, err)
	}
	if fastOK < 3 {
		t.Fatalf("the fast chain was held up by the slow one: %d evaluations", fastOK)
	}
}

func TestStateSurvivesRunnerRestart(t *testing.T) {
	e := newEnv(t)
	dbPath := filepath.Join(e.dir, "ebb.db")
	cfg := e.load(e.chainHCL("a", "t1", "30ms", ""))

	store := openStore(t, dbPath)
	r, stop := e.running(cfg, store, nil)
	// Idle rounds are compacted into one record: count rounds by sequence.
	waitFor(t, "five rounds", func() bool { d, _ := r.Decisions("a", 1); return len(d) == 1 && d[0].Seq >= 5 })
	stop()
	before, _ := store.Decisions("a", 1)
	store.Close()
	e.host.Close()

	// A new runner, a new host, new plugin processes: only the file remains.
	e.host = host.New(host.Options{Metrics: e.metrics, PluginDir: e.pluginDir})
	defer e.host.Close()
	store = openStore(t, dbPath)
	defer store.Close()
	r, stop = e.running(cfg, store, nil)
	defer stop()
	waitFor(t, "a decision after the restart", func() bool {
		d, _ := r.Decisions("a", 1)
		return len(d) == 1 && d[0].Seq > before[0].Seq
	})
	after, _ := r.Decisions("a", 1)
	var n1, n2 int
	fmt.Sscanf(before[0].Reason, "evaluation %d", &n1)
	fmt.Sscanf(after[0].Reason, "evaluation %d", &n2)
	if n1 < 5 || n2 <= n1 {
		t.Fatalf("evaluator state did not carry over: %q then %q", before[0].Reason, after[0].Reason)
	}
}

func TestReloadKeepsUnchangedChains(t *testing.T) {
	e := newEnv(t)
	store := openStore(t, filepath.Join(e.dir, "ebb.db"))
	defer store.Close()
	r, stop := e.running(e.load(e.chainHCL("a", "t1", "30ms", "")), store, nil)
	defer stop()
	waitFor(t, "ready", ready(r))
	pid := instanceOf(r, "collector").Pid()

	r.Reload(e.load(e.chainHCL("a", "t1", "30ms", ""), e.chainHCL("b", "t2", "30ms", "")))
	waitFor(t, "chain b running", func() bool {
		for _, c := range r.Chains() {
			if c.Name == "b" && c.Ticks > 0 {
				return true
			}
		}
		return false
	})
	for _, c := range r.Chains() {
		if c.Name == "a" && c.Ticks < 2 {
			t.Fatalf("chain a restarted by the reload: %d ticks", c.Ticks)
		}
	}
	r.mu.Lock()
	kept := false
	for _, inst := range r.instances {
		if inst.Spec().Block == "a" && inst.Spec().Kind == sdk.KindCollector && inst.Pid() == pid {
			kept = true
		}
	}
	r.mu.Unlock()
	if !kept {
		t.Fatal("the unchanged chain's collector process was replaced")
	}

	// Chain b removed: its collector's process stops, a's stays.
	var bCollector *host.Instance
	r.mu.Lock()
	for _, inst := range r.instances {
		if inst.Spec().Block == "b" {
			bCollector = inst
		}
	}
	r.mu.Unlock()
	if bCollector == nil || bCollector.Pid() == 0 {
		t.Fatal("chain b's collector is not running")
	}
	r.Reload(e.load(e.chainHCL("a", "t1", "30ms", "")))
	if bCollector.Pid() != 0 {
		t.Fatal("the removed chain's collector process still runs")
	}
	if instanceOf(r, "collector").Pid() != pid {
		t.Fatal("chain a's collector was replaced when b was removed")
	}
}

func TestDecisionJSONIsReadable(t *testing.T) {
	rec := (&Runner{}).record(&Evaluation{Decision: sdk.Decision{Add: []sdk.UnitAdd{{UnitID: "u-1", Size: 2}}, Reason: "why"}})
	var d sdk.Decision
	if err := json.Unmarshal(rec.Decision, &d); err != nil || d.Add[0].UnitID != "u-1" || rec.Direction != "up" {
		t.Fatalf("record %+v", rec)
	}
}
