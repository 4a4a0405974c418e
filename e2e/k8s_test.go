package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	k8s "github.com/ebbscale/ebb/plugins/realizer-k8s"
	"github.com/ebbscale/ebb/sdk"
)

// The scenario's numbers: a floor of one 2-thread unit, a ceiling of eight,
// and a burst that keeps all of them busy for several seconds.
const (
	chainName   = "e2e"
	group       = "lake"
	floor       = 2
	ceiling     = 16
	unitThreads = 2
	burstTasks  = 200
	taskTime    = time.Second
	bootDelay   = time.Second
)

// k8sConfig runs collector-ams, evaluator-dra and realizer-k8s, each a
// process of its own, with timeouts of seconds so that the whole story
// plays out in about a minute.
const k8sConfig = `
log {
  level = "info"
}

collector "ams" {
  plugin  = "collector-ams"
  timeout = "5s"
  config {
    url               = "{{.AMS}}"
    metrics-url       = "{{.AMS}}/metrics"
    heartbeat-timeout = "5s"
    timeout           = "3s"
  }
}

evaluator "dra" {
  plugin  = "evaluator-dra"
  timeout = "5s"
}

realizer "k8s" {
  plugin  = "realizer-k8s"
  timeout = "10s"
  config {
    kubeconfig           = "{{.Kubeconfig}}"
    namespace            = "{{.Namespace}}"
    image                = "apache/amoro:0.9.0"
    ams-thrift-uri       = "{{.AMS}}"
    memory-per-thread-mb = 512
    drain-timeout        = "30s"
  }
}

chain "{{.Chain}}" {
  collectors = [collector.ams]
  evaluators = [evaluator.dra]
  realizer   = realizer.k8s
  target     = "{{.Group}}"
  interval   = "1s"
  policy {
    min-parallelism           = {{.Floor}}
    max-parallelism           = {{.Ceiling}}
    executor-parallelism      = {{.UnitThreads}}
    scheduler-backlog-timeout = "2s"
    sustained-backlog-timeout = "2s"
    scale-up-cooldown         = "2s"
    scale-down-cooldown       = "1s"
    executor-idle-timeout     = "{{.IdleTimeout}}"
    drain-timeout             = "30s"
    boot-timeout              = "20s"
    auto-restart {
      enabled      = true
      grace-period = "10s"
    }
  }
}
`

// k8sRun is one scenario's world: a control plane, the AMS emulator, the
// kubelet bridge and `ebb run`.
type k8sRun struct {
	t       *testing.T
	cluster *cluster
	ams     *amsServer
	kubelet *kubelet
	runner  *ebbRunner
}

func setupK8s(t *testing.T, idleTimeout time.Duration) *k8sRun {
	t.Helper()
	c := startCluster(t)
	bin := ebbBinary(t)
	dir := t.TempDir()
	a := startAMS(t, group)
	kl := startKubelet(t, c.kube, c.ns, bin, bootDelay)
	cfg := render(t, k8sConfig, map[string]any{
		"AMS": a.url, "Kubeconfig": c.realizerKubeconfig(t, dir), "Namespace": c.ns, "Chain": chainName, "Group": group,
		"Floor": floor, "Ceiling": ceiling, "UnitThreads": unitThreads, "IdleTimeout": idleTimeout.String(),
	})
	r := newRunner(t, bin, dir, cfg)
	r.start()
	return &k8sRun{t: t, cluster: c, ams: a, kubelet: kl, runner: r}
}

// world is everything the test can see at one moment.
type world struct {
	view    chainView
	viewErr error
	// deployments are the unit Deployments in the API server, by name;
	// "draining" marks those with a deletion timestamp.
	deployments map[string]string
	apiErr      error
	registered  []string // unit ids of the optimizers AMS lists
	amsErr      error
	running     []string // Deployments whose optimizer process runs
}

func (k *k8sRun) look() world {
	var w world
	w.view, w.viewErr = k.runner.chain(chainName)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	list, err := k.cluster.kube.AppsV1().Deployments(k.cluster.ns).List(ctx, metav1.ListOptions{
		LabelSelector: labels.Set{k8s.LabelManagedBy: k8s.ManagedByValue}.String()})
	w.apiErr = err
	if err == nil {
		w.deployments = map[string]string{}
		for _, d := range list.Items {
			w.deployments[d.Name] = "live"
			if d.DeletionTimestamp != nil {
				w.deployments[d.Name] = "draining"
			}
		}
	}
	w.registered, w.amsErr = k.ams.registeredUnits()
	w.running = k.kubelet.report().running
	return w
}

func (w world) String() string {
	var b strings.Builder
	if w.viewErr != nil {
		fmt.Fprintf(&b, "chain: %v; ", w.viewErr)
	} else if last := w.view.Chain.Last; last != nil {
		fmt.Fprintf(&b, "last evaluation %s: capacity %d -> %d, inventory [", last.At.Format("15:04:05.000"),
			last.Record.CurrentCapacity, last.Decision.DesiredCapacity)
		for _, u := range last.Inventory {
			fmt.Fprintf(&b, " %s:%s", u.ID, u.Phase)
		}
		fmt.Fprintf(&b, " ], %s; last error %q; ", last.Record.Summary, w.view.Chain.LastError)
	}
	fmt.Fprintf(&b, "deployments %v (err %v); AMS optimizers %v (err %v); optimizer processes %v",
		w.deployments, w.apiErr, w.registered, w.amsErr, w.running)
	return b.String()
}

// units is the chain's last inventory, by unit id and phase.
func (w world) units() map[string]sdk.Phase {
	out := map[string]sdk.Phase{}
	if w.view.Chain.Last != nil {
		for _, u := range w.view.Chain.Last.Inventory {
			out[u.ID] = u.Phase
		}
	}
	return out
}

// settledAt reports whether everything agrees on `want` running units and
// nothing else: the runner's inventory and decision, the API server, AMS's
// optimizer list and the optimizer processes.
func (w world) settledAt(want int) bool {
	last := w.view.Chain.Last
	if w.viewErr != nil || w.apiErr != nil || w.amsErr != nil || last == nil || w.view.Chain.LastError != "" {
		return false
	}
	units := w.units()
	if len(units) != want || last.Decision.HasActions() || last.Decision.DesiredCapacity != int64(want*unitThreads) ||
		last.Record.CurrentCapacity != int64(want*unitThreads) {
		return false
	}
	var names []string
	for id, ph := range units {
		if ph != sdk.PhaseRunning {
			return false
		}
		names = append(names, "ebb-optimizer-"+id)
	}
	sort.Strings(names)
	var deps []string
	for name, st := range w.deployments {
		if st != "live" {
			return false
		}
		deps = append(deps, name)
	}
	sort.Strings(deps)
	ids := make([]string, 0, len(units))
	for id := range units {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return slices.Equal(names, deps) && slices.Equal(names, w.running) && slices.Equal(ids, w.registered)
}

// waitFloor waits until the floor's unit runs and its optimizer registered.
func (k *k8sRun) waitFloor() world {
	var w world
	waitFor(k.t, 60*time.Second, "the floor to run", func() bool {
		w = k.look()
		return w.settledAt(floor / unitThreads)
	}, func() string { return w.String() })
	return w
}

// settle waits until only the floor is left, everywhere.
func (k *k8sRun) settle(limit time.Duration) world {
	var w world
	waitFor(k.t, limit, "scale-down to the floor, with no unit left behind", func() bool {
		w = k.look()
		return w.settledAt(floor / unitThreads)
	}, func() string { return w.String() })
	return w
}

// waitTasksDone waits until AMS has run every task and returns the moment
// it saw that: no task of the burst ended later.
func (k *k8sRun) waitTasksDone(limit time.Duration) time.Time {
	waitFor(k.t, limit, fmt.Sprintf("all %d tasks to succeed", burstTasks), func() bool {
		s := k.ams.stats(k.t)
		return s.Success == burstTasks && s.Planned+s.Scheduled+s.Acked == 0
	}, func() string { return fmt.Sprintf("%+v", k.ams.stats(k.t)) })
	return time.Now()
}

// checkEnd asserts what must hold once the story is over, faults or not.
func (k *k8sRun) checkEnd(w world, s story, tasksDone time.Time) {
	t := k.t
	t.Helper()
	log, err := decodeRecords(w.view.Decisions)
	if err != nil {
		t.Fatal(err)
	}
	if first := w.view.Decisions; len(first) > 0 && first[0].Seq != 1 && first[0].FirstSeq != 1 {
		t.Fatalf("the decision log lost its beginning (first record #%d): the run outgrew state.DefaultKeep", w.view.Decisions[0].Seq)
	}
	t.Logf("decision log (actions only):%s", describeLog(w.view.Decisions))
	var final []string
	for id := range w.units() {
		final = append(final, id)
	}
	if problems := s.check(log, final); len(problems) > 0 {
		t.Errorf("the decisions do not tell the story:\n  %s\ndecision log:%s", strings.Join(problems, "\n  "), describeLog(w.view.Decisions))
	}

	// No unit was ever created twice: every Deployment name has one uid,
	// and each unit's optimizer started once, plus once per restart.
	rep := k.kubelet.report()
	for _, d := range rep.duplicates() {
		t.Errorf("unit created twice: %s", d)
	}
	for _, v := range rep.violations {
		t.Errorf("kubelet: %s", v)
	}
	restartsLogged := map[string]int{}
	for _, r := range log {
		if r.Status == "realized" {
			for _, id := range r.D.Restart {
				restartsLogged[id]++
			}
		}
	}
	for unit, n := range rep.starts {
		if want := 1 + rep.restarts[unit]; n != want {
			t.Errorf("unit %s: %d optimizer processes started, want %d (1 + %d restarts)", unit, n, want, rep.restarts[unit])
		}
		if rep.restarts[unit] > restartsLogged[unit] {
			t.Errorf("unit %s restarted %d times, but the log has %d realized restarts", unit, rep.restarts[unit], restartsLogged[unit])
		}
	}
	if len(rep.created) != len(rep.starts) {
		t.Errorf("%d Deployments created, %d units got an optimizer", len(rep.created), len(rep.starts))
	}

	// Every task finished, once, and successfully.
	st := k.ams.stats(t)
	if st.Success != burstTasks || st.Failed+st.Canceled+st.Planned+st.Scheduled+st.Acked != 0 {
		t.Errorf("AMS task counts %+v, want %d successes and nothing else", st, burstTasks)
	}
	if v := k.ams.emu.InvariantViolations(); len(v) > 0 {
		t.Errorf("AMS emulator invariant violations: %v", v)
	}

	// Idle timers measure from the last work: a unit drained after every
	// task had ended must report having been idle since then at least,
	// whatever restarted in between.
	drains := 0
	for _, r := range log {
		if !r.At.After(tasksDone) || len(r.D.Drain) == 0 {
			continue
		}
		for _, m := range idleDrain.FindAllStringSubmatch(r.Reason, -1) {
			idle, err := time.ParseDuration(m[2])
			if err != nil {
				t.Errorf("#%d: idle time %q: %v", r.Seq, m[2], err)
				continue
			}
			drains++
			if lastBusy := r.At.Add(-idle); lastBusy.After(tasksDone.Add(time.Millisecond)) {
				t.Errorf("#%d drains %s idle for %s, so busy until %s, after every task had ended (%s): its idle timer was reset",
					r.Seq, m[1], idle, lastBusy.Format("15:04:05.000"), tasksDone.Format("15:04:05.000"))
			}
		}
	}
	if drains == 0 {
		t.Errorf("no idle drain after the tasks ended (%s): the idle timers went unchecked%s", tasksDone.Format("15:04:05.000"), describeLog(w.view.Decisions))
	}
}

// idleDrain matches evaluator-dra's reason for an idle scale-down.
var idleDrain = regexp.MustCompile(`(\S+) idle (\S+) >= \S+ with no demand: drain`)

// TestKubernetesScenario: idle at the floor, a burst of 200 tasks, the
// ramp-up, the tasks draining, and scale-down to the floor; every part out
// of process, realizer-k8s against a real API server.
func TestKubernetesScenario(t *testing.T) {
	long(t)
	k := setupK8s(t, 30*time.Second) // Amoro's minimum executor-idle-timeout
	k.waitFloor()
	// Idle at the floor for a few rounds: nothing may happen.
	v, err := k.runner.chain(chainName)
	if err != nil {
		t.Fatal(err)
	}
	ticks := v.Chain.Ticks
	waitFor(t, 30*time.Second, "three quiet rounds at the floor", func() bool {
		v, err = k.runner.chain(chainName)
		return err == nil && v.Chain.Ticks >= ticks+3
	}, nil)
	if acted := countActions(v); acted != 1 {
		t.Fatalf("%d decisions with actions while idle at the floor, want only the floor's:%s", acted, describeLog(v.Decisions))
	}

	k.ams.burst(t, "db.burst", burstTasks, taskTime)
	done := k.waitTasksDone(3 * time.Minute)
	w := k.settle(2 * time.Minute)
	k.runner.stop()
	k.checkEnd(w, story{floor: floor, ceiling: ceiling, unitThreads: unitThreads, clean: true}, done)
}

func countActions(v chainView) int {
	n := 0
	for _, r := range v.Decisions {
		if r.Status != "skipped" {
			n++
		}
	}
	return n
}

// faults kills ebb's plugin processes at random moments, and the runner
// itself on demand, never both at once. A plugin is killed only after the
// chain has completed an evaluation since the previous kill: otherwise the
// kills would outpace the runner's restart backoff (doubling up to 30s per
// quick death) and the chain would never get all three plugins up at once.
type faults struct {
	r   *ebbRunner
	rng *rand.Rand
	max int

	mu          sync.Mutex // held while killing anything
	kills       map[string]int
	total       int
	runnerKills int
	leaked      []int
	stop, done  chan struct{}
}

func startFaults(t *testing.T, r *ebbRunner, seed uint64, maxKills int) *faults {
	f := &faults{r: r, rng: rand.New(rand.NewPCG(seed, seed^0x5eed)), max: maxKills, kills: map[string]int{},
		stop: make(chan struct{}), done: make(chan struct{})}
	go f.loop()
	t.Cleanup(f.halt)
	return f
}

func (f *faults) loop() {
	defer close(f.done)
	var lastKill time.Time
	for {
		f.mu.Lock()
		wait := time.Duration(1200+f.rng.IntN(1600)) * time.Millisecond
		enough := f.total >= f.max
		f.mu.Unlock()
		if enough {
			return
		}
		select {
		case <-f.stop:
			return
		case <-time.After(wait):
		}
		f.mu.Lock()
		v, err := f.r.chain(chainName)
		progressed := err == nil && v.Chain.LastAt != nil && v.Chain.LastAt.After(lastKill) && v.Chain.LastError == ""
		if ps := f.leastKilled(f.r.plugins()); progressed && len(ps) > 0 {
			p := ps[f.rng.IntN(len(ps))]
			if syscall.Kill(p.pid, syscall.SIGKILL) == nil {
				f.kills[p.name]++
				f.total++
				lastKill = time.Now()
			}
		}
		f.mu.Unlock()
	}
}

// leastKilled keeps the plugins killed at most once more than the least
// killed one, so that every plugin gets its share of the kills.
func (f *faults) leastKilled(ps []proc) []proc {
	least := -1
	for _, p := range ps {
		if n := f.kills[p.name]; least < 0 || n < least {
			least = n
		}
	}
	var out []proc
	for _, p := range ps {
		if f.kills[p.name] <= least+1 {
			out = append(out, p)
		}
	}
	return out
}

func (f *faults) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.total
}

// killRunner SIGKILLs `ebb run` and starts it again on the same state.
func (f *faults) killRunner() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.leaked = append(f.leaked, f.r.kill()...)
	f.runnerKills++
	f.r.start()
}

func (f *faults) halt() {
	select {
	case <-f.stop:
	default:
		close(f.stop)
	}
	<-f.done
}

// TestKubernetesFaults runs the scenario while plugin processes are
// SIGKILLed at random (at least 20 times), the runner is SIGKILLed and
// restarted twice (during the ramp-up and while units idle), and the API
// server is stopped and restarted. Afterwards: no unit was created twice,
// no unit or optimizer is left over, no task was lost, and the idle timers
// were not reset by the restarts.
func TestKubernetesFaults(t *testing.T) {
	long(t)
	const minKills, maxKills = 20, 24
	k := setupK8s(t, 30*time.Second) // Amoro's minimum executor-idle-timeout
	k.waitFloor()
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv("EBB_E2E_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("EBB_E2E_SEED=%q: %v", v, err)
		}
		seed = n
	}
	t.Logf("fault schedule seed %d (replay the same choices with EBB_E2E_SEED=%d)", seed, seed)
	f := startFaults(t, k.runner, seed, maxKills)

	k.ams.burst(t, "db.burst", burstTasks, taskTime)
	// The runner dies in the middle of the ramp: after its first scale-up
	// for the backlog.
	waitFor(t, time.Minute, "the first scale-up for the backlog", func() bool {
		v, err := k.runner.chain(chainName)
		if err != nil {
			return false
		}
		for _, r := range v.Decisions {
			if r.Direction == "up" && strings.Contains(r.Reason, "backlog") {
				return true
			}
		}
		return false
	}, nil)
	f.killRunner()

	// The API server goes away for a few seconds while the ramp goes on.
	time.Sleep(2 * time.Second)
	if err := k.cluster.env.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	if err := k.cluster.env.StartAPIServer(); err != nil {
		t.Fatal(err)
	}

	done := k.waitTasksDone(3 * time.Minute)
	// The runner dies again while the units idle, before any is due for
	// scale-down: their idle timers must survive it.
	time.Sleep(1500 * time.Millisecond)
	f.killRunner()

	waitFor(t, 3*time.Minute, fmt.Sprintf("%d plugin kills", minKills), func() bool { return f.count() >= minKills }, nil)
	f.halt()
	w := k.settle(2 * time.Minute)
	k.runner.stop()

	t.Logf("plugin processes SIGKILLed: %v (total %d); runner SIGKILLed %d times", f.kills, f.count(), f.runnerKills)
	if len(f.leaked) > 0 {
		t.Errorf("SIGKILLing ebb run left %d plugin processes running: pids %v", len(f.leaked), f.leaked)
	}
	if f.count() < minKills || len(f.kills) < 3 {
		t.Errorf("only %d plugin kills over %d plugins (%v), want at least %d over all three", f.count(), len(f.kills), f.kills, minKills)
	}
	k.checkEnd(w, story{floor: floor, ceiling: ceiling, unitThreads: unitThreads}, done)
}
