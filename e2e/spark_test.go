package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/dynamic"

	"github.com/ebbscale/ebb/emulator/sparkop"
	spark "github.com/ebbscale/ebb/plugins/realizer-spark"
	"github.com/ebbscale/ebb/sdk"
)

// sparkConfig scales Amoro Spark optimizer units (one SparkApplication
// each) with collector-ams, evaluator-dra and realizer-spark, each its own
// process, on timeouts of seconds.
const sparkConfig = `
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

realizer "spark" {
  plugin  = "realizer-spark"
  timeout = "10s"
  config {
    kubeconfig     = "{{.Kubeconfig}}"
    namespace      = "{{.Namespace}}"
    image          = "apache/amoro-spark-optimizer:0.8.1"
    ams-thrift-uri = "{{.AMS}}"
    drain-timeout  = "30s"
  }
}

chain "{{.Chain}}" {
  collectors = [collector.ams]
  evaluators = [evaluator.dra]
  realizer   = realizer.spark
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
    executor-idle-timeout     = "30s" # Amoro's minimum
    drain-timeout             = "30s"
    boot-timeout              = "20s"
    auto-restart {
      enabled      = true
      grace-period = "3s"
    }
  }
}
`

const (
	sparkCeiling = 8
	sparkTasks   = 60
)

// optimizerDriver runs a SparkApplication's driver as Amoro's Spark
// optimizer would run: main class SparkOptimizer with the optimizer's
// arguments becomes an emulated optimizer process with the same ones.
type optimizerDriver struct {
	bin, logDir string
}

type driverProc struct {
	pid  int
	done chan struct{}
}

func (p *driverProc) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}
func (p *driverProc) Stop() { _ = syscall.Kill(p.pid, syscall.SIGTERM) }
func (p *driverProc) Kill() { _ = syscall.Kill(p.pid, syscall.SIGKILL) }

func (d *optimizerDriver) Start(app, mainClass string, args []string, grace time.Duration) (sparkop.Proc, error) {
	if mainClass != "org.apache.amoro.optimizer.spark.SparkOptimizer" {
		return nil, fmt.Errorf("main class %q is not Amoro's Spark optimizer", mainClass)
	}
	flags := map[string]string{}
	for i := 0; i+1 < len(args); i++ {
		if strings.HasPrefix(args[i], "-") {
			flags[args[i]] = args[i+1]
		}
	}
	for _, f := range []string{"-a", "-p", "-g", "-id"} {
		if flags[f] == "" {
			return nil, fmt.Errorf("optimizer arguments %q lack %s", args, f)
		}
	}
	logf, err := os.OpenFile(filepath.Join(d.logDir, app+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(d.bin, "emulate", "optimizer", "-a", flags["-a"], "-g", flags["-g"], "-p", flags["-p"],
		"-id", flags["-id"], "-hb", "1000", "--poll", "200ms", "-st", strconv.FormatInt(grace.Milliseconds(), 10))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	p := &driverProc{pid: cmd.Process.Pid, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// sparkWorld is what the test sees at one moment.
type sparkWorld struct {
	view       chainView
	viewErr    error
	apps       map[string]string // name -> state, "draining" when deleted
	apiErr     error
	registered []string
	amsErr     error
	running    []string
}

func (w sparkWorld) String() string {
	s := fmt.Sprintf("apps %v (err %v); AMS optimizers %v (err %v); drivers %v", w.apps, w.apiErr, w.registered, w.amsErr, w.running)
	if last := w.view.Chain.Last; last != nil {
		s = fmt.Sprintf("last evaluation: %s, error %q; ", last.Record.Summary, w.view.Chain.LastError) + s
	}
	return s
}

// settled: exactly the floor's one unit, running everywhere.
func (w sparkWorld) settled() (string, bool) {
	last := w.view.Chain.Last
	if w.viewErr != nil || w.apiErr != nil || w.amsErr != nil || last == nil || last.Decision.HasActions() || len(last.Inventory) != floor/unitThreads {
		return "", false
	}
	u := last.Inventory[0]
	name := "ebb-optimizer-" + u.ID
	ok := u.Phase == sdk.PhaseRunning && len(w.apps) == 1 && w.apps[name] == spark.StateRunning &&
		slices.Equal(w.registered, []string{u.ID}) && slices.Equal(w.running, []string{name})
	return u.ID, ok
}

func lookSpark(r *ebbRunner, dyn dynamic.Interface, ns string, a *amsServer, op *sparkop.Operator) sparkWorld {
	var w sparkWorld
	w.view, w.viewErr = r.chain(chainName)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	list, err := dyn.Resource(spark.GVR).Namespace(ns).List(ctx, metav1.ListOptions{
		LabelSelector: labels.Set{spark.LabelManagedBy: spark.ManagedByValue}.String()})
	w.apiErr = err
	if err == nil {
		w.apps = map[string]string{}
		for _, it := range list.Items {
			st, _, _ := unstructuredString(it.Object, "status", "applicationState", "state")
			if it.GetDeletionTimestamp() != nil {
				st = "draining"
			}
			w.apps[it.GetName()] = st
		}
	}
	w.registered, w.amsErr = a.registeredUnits()
	w.running = op.Running()
	return w
}

func unstructuredString(obj map[string]any, path ...string) (string, bool, error) {
	var cur any = obj
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return "", false, nil
		}
		cur = m[p]
	}
	s, ok := cur.(string)
	return s, ok, nil
}

// A chain scales Amoro Spark optimizer units through plugin processes: the
// ebb binary with its builtins, the AMS emulator, and the spark-operator
// stand-in running each application's driver as an optimizer process. The
// floor comes up, a burst scales out (the runner is SIGKILLed and restarted
// in the middle), the work is done, idle units drain back to the floor; then
// the floor's driver crashes (FAILED) and auto-restart resubmits it under
// the same unit id.
func TestSparkScenario(t *testing.T) {
	long(t)
	c := startCluster(t, filepath.Join("..", "plugins", "realizer-spark", "testdata", "crds"))
	env := c.env
	dyn := dynamic.NewForConfigOrDie(env.Config)
	dir := t.TempDir()
	kubeconfig := c.roleKubeconfig(t, dir, "realizer-spark-role.yaml",
		authorizationv1.ResourceAttributes{Verb: "list", Group: "sparkoperator.k8s.io", Resource: "sparkapplications"})
	bin := ebbBinary(t)
	a := startAMS(t, group)
	op := sparkop.Start(dyn, c.ns, sparkop.Options{Boot: bootDelay, Driver: &optimizerDriver{bin: bin, logDir: t.TempDir()}})
	t.Cleanup(func() {
		op.Close()
		if t.Failed() {
			t.Logf("operator journal:\n  %s", strings.Join(op.Journal(), "\n  "))
		}
	})
	r := newRunner(t, bin, dir, render(t, sparkConfig, map[string]any{
		"AMS": a.url, "Kubeconfig": kubeconfig, "Namespace": c.ns, "Chain": chainName, "Group": group,
		"Floor": floor, "Ceiling": sparkCeiling, "UnitThreads": unitThreads,
	}))
	r.start()
	look := func() sparkWorld { return lookSpark(r, dyn, c.ns, a, op) }

	var w sparkWorld
	waitFor(t, 60*time.Second, "the floor's optimizer application to run", func() bool {
		w = look()
		_, ok := w.settled()
		return ok
	}, func() string { return w.String() })

	a.burst(t, "db.orders", sparkTasks, taskTime)
	waitFor(t, 60*time.Second, "a scale-up", func() bool { w = look(); return len(w.apps) > 1 }, func() string { return w.String() })
	// The runner dies between creating units and seeing them run; the new
	// one finds them in the API server and creates none twice.
	r.kill()
	r.start()
	peak := 0
	waitFor(t, 120*time.Second, fmt.Sprintf("all %d tasks to succeed", sparkTasks), func() bool {
		w = look()
		peak = max(peak, len(w.running))
		s := a.stats(t)
		return s.Success == sparkTasks && s.Planned+s.Scheduled+s.Acked == 0
	}, func() string { return fmt.Sprintf("%+v; %s", a.stats(t), w) })
	if peak < 2 {
		t.Errorf("at most %d optimizer drivers ran at once; the burst should have scaled out", peak)
	}
	var floorID string
	waitFor(t, 90*time.Second, "scale-down to the floor", func() bool {
		w = look()
		id, ok := w.settled()
		floorID = id
		return ok
	}, func() string { return w.String() })

	// The floor's driver crashes: FAILED, its optimizer leaves AMS, and
	// evaluator-dra's auto-restart resubmits the same unit.
	name := "ebb-optimizer-" + floorID
	before := op.Submissions(name)
	if !op.Crash(name) {
		t.Fatalf("no driver of %s to crash", name)
	}
	waitFor(t, 60*time.Second, "the crashed unit restarted with its id", func() bool {
		w = look()
		id, ok := w.settled()
		return ok && id == floorID && op.Submissions(name) == before+1
	}, func() string { return w.String() })

	var dups []string
	for n, count := range op.Created() {
		if count > 1 {
			dups = append(dups, fmt.Sprintf("%s created %d times", n, count))
		}
		if s := op.Submissions(n); n != name && s > 1 {
			dups = append(dups, fmt.Sprintf("%s submitted %d times", n, s))
		}
	}
	sort.Strings(dups)
	if len(dups) > 0 {
		t.Errorf("duplicates: %v", dups)
	}
	t.Logf("peak %d drivers at once, %d units created, floor unit %s submitted %d times", peak, len(op.Created()), floorID, op.Submissions(name))
	if len(op.Created()) < 2 {
		t.Errorf("only %d units were ever created", len(op.Created()))
	}
}
