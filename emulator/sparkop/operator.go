// Package sparkop plays the Kubeflow spark-operator's SparkApplication
// controller on a real API server, for tests: the operator itself cannot run
// here. It follows the operator's own logic (kubeflow/spark-operator
// internal/controller/sparkapplication/controller.go and event_filter.go),
// not what ebb's realizer expects:
//
//   - a new application ("" state) is submitted: SUBMITTED, a submission
//     id, driverInfo.podName <name>-driver, lastSubmissionAttemptTime and
//     the attempt counters;
//   - after a boot delay its driver runs (a Driver the test supplies):
//     RUNNING, with the executors it starts with in status.executorState;
//   - a driver that exits on its own: FAILING then FAILED (restartPolicy
//     Never: the only one emulated), executors FAILED;
//   - any spec change but suspend and timeToLiveSeconds, in any state:
//     INVALIDATING, the driver is deleted (SIGTERM, SIGKILL after its
//     grace period), PENDING_RERUN with the status reset, then a new
//     submission. Resubmissions are counted;
//   - deletion: the driver pod is the application's dependent with
//     blockOwnerDeletion, so under foreground deletion the application
//     stays until the driver has stopped; then this stand-in, as the
//     garbage collector, deletes the driver pod and lifts the finalizers;
//   - the driver pod (<name>-driver, owned by the application) is created
//     at submission; one deleted with grace period 0 kills its driver.
//
// It lists the applications ten times a second instead of watching (a
// watch keeps envtest's API server from stopping in time). Status writes
// carry the resourceVersion read, so they conflict with other writers as
// the operator's do.
package sparkop

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
)

var (
	gvr  = schema.GroupVersionResource{Group: "sparkoperator.k8s.io", Version: "v1beta2", Resource: "sparkapplications"}
	pods = schema.GroupVersionResource{Version: "v1", Resource: "pods"}
)

// Options tunes an Operator.
type Options struct {
	// Boot is the time from submission to a running driver.
	Boot time.Duration
	// Driver runs drivers; nil: drivers that run until stopped (FakeDriver).
	Driver Driver
	// Interval between passes; default 100ms.
	Interval time.Duration
}

// Operator is the stand-in for one namespace.
type Operator struct {
	dyn  dynamic.Interface
	ns   string
	opts Options

	stop, done chan struct{}

	mu sync.Mutex
	// driverPods are the driver pods listed in this pass.
	driverPods map[string]bool
	apps       map[types.UID]*app
	hold       bool
	submits    map[string]int // submissions, by application name
	uids       map[string]map[types.UID]bool
	journal    []string
}

// app is what the operator remembers of one application (by uid).
type app struct {
	name      string
	submitted string // spec (less suspend and TTL) of the current submission
	bootAt    time.Time
	proc      Proc
	termAt    time.Time // SIGTERM sent
	killed    bool
	grace     time.Duration
}

// Start runs the stand-in until the returned Operator is closed.
func Start(dyn dynamic.Interface, ns string, opts Options) *Operator {
	if opts.Driver == nil {
		opts.Driver = &FakeDriver{}
	}
	if opts.Interval <= 0 {
		opts.Interval = 100 * time.Millisecond
	}
	o := &Operator{dyn: dyn, ns: ns, opts: opts, stop: make(chan struct{}), done: make(chan struct{}),
		apps: map[types.UID]*app{}, submits: map[string]int{},
		uids: map[string]map[types.UID]bool{}}
	go o.run()
	return o
}

// Close stops the operator and kills every driver it runs.
func (o *Operator) Close() {
	select {
	case <-o.stop:
		return
	default:
	}
	close(o.stop)
	<-o.done
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, a := range o.apps {
		if a.proc != nil && a.proc.Running() {
			a.proc.Kill()
		}
	}
}

// Hold stops (true) or resumes (false) submitting new applications, as an
// operator that is down or failing would.
func (o *Operator) Hold(hold bool) {
	o.mu.Lock()
	o.hold = hold
	o.mu.Unlock()
}

// Crash kills the running driver of the named application, as an
// out-of-memory kill would.
func (o *Operator) Crash(name string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, a := range o.apps {
		if a.name == name && a.proc != nil && a.proc.Running() {
			o.logLocked("crash driver of %s", name)
			a.proc.Kill()
			return true
		}
	}
	return false
}

// Submissions is how often the named application was submitted.
func (o *Operator) Submissions(name string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.submits[name]
}

// Created counts, by name, the distinct applications (uids) seen: more
// than one for a name means it was created again after a deletion.
func (o *Operator) Created() map[string]int {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := map[string]int{}
	for name, us := range o.uids {
		out[name] = len(us)
	}
	return out
}

// Running lists the applications whose driver runs now.
func (o *Operator) Running() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []string
	for _, a := range o.apps {
		if a.proc != nil && a.proc.Running() {
			out = append(out, a.name)
		}
	}
	slices.Sort(out)
	return out
}

// Journal is what the operator did, for a failing test's log.
func (o *Operator) Journal() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.journal)
}

func (o *Operator) logLocked(format string, args ...any) {
	if len(o.journal) >= 10000 {
		o.journal = o.journal[1:]
	}
	o.journal = append(o.journal, time.Now().Format("15:04:05.000")+" "+fmt.Sprintf(format, args...))
}

func (o *Operator) run() {
	defer close(o.done)
	tick := time.NewTicker(o.opts.Interval)
	defer tick.Stop()
	for {
		select {
		case <-o.stop:
			return
		case <-tick.C:
			o.sync()
		}
	}
}

func (o *Operator) sync() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	list, err := o.dyn.Resource(gvr).Namespace(o.ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return // the API server may be down: nothing is known to be gone
	}
	podList, err := o.dyn.Resource(pods).Namespace(o.ns).List(ctx, metav1.ListOptions{LabelSelector: "spark-role=driver"})
	if err != nil {
		return
	}
	o.mu.Lock()
	o.driverPods = map[string]bool{}
	for _, p := range podList.Items {
		if p.GetDeletionTimestamp() == nil {
			o.driverPods[p.GetName()] = true
		}
	}
	o.mu.Unlock()
	live := map[types.UID]bool{}
	for i := range list.Items {
		obj := &list.Items[i]
		live[obj.GetUID()] = true
		o.reconcile(ctx, obj)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for uid, a := range o.apps {
		if live[uid] {
			continue
		}
		// Gone without its driver having stopped: force deletion.
		if a.proc != nil && a.proc.Running() {
			if !a.killed {
				o.logLocked("%s gone with its driver running: kill", a.name)
				a.proc.Kill()
				a.killed = true
			}
			continue
		}
		delete(o.apps, uid)
	}
}

// reconcile is one pass over one application.
func (o *Operator) reconcile(ctx context.Context, obj *unstructured.Unstructured) {
	now := time.Now()
	o.mu.Lock()
	a := o.apps[obj.GetUID()]
	if a == nil {
		a = &app{name: obj.GetName()}
		o.apps[obj.GetUID()] = a
		if o.uids[a.name] == nil {
			o.uids[a.name] = map[types.UID]bool{}
		}
		o.uids[a.name][obj.GetUID()] = true
	}
	a.grace = driverGrace(obj)
	hold := o.hold
	// A driver whose pod was deleted with grace period 0 (a forced
	// removal) dies at once, as the kubelet kills it.
	if a.proc != nil && a.proc.Running() && !o.driverPods[obj.GetName()+"-driver"] && !a.killed {
		o.logLocked("%s: driver pod gone: kill", a.name)
		a.proc.Kill()
		a.killed = true
	}
	o.mu.Unlock()

	if obj.GetDeletionTimestamp() != nil {
		// The garbage collector deletes the dependent driver pod, then
		// lifts the foreground finalizer.
		if o.stopDriver(ctx, obj, a, now) && len(obj.GetFinalizers()) > 0 {
			obj.SetFinalizers(nil)
			_, _ = o.dyn.Resource(gvr).Namespace(o.ns).Update(ctx, obj, metav1.UpdateOptions{})
		}
		return
	}
	status, _, _ := unstructured.NestedMap(obj.Object, "status")
	if status == nil {
		status = map[string]any{}
	}
	state, _, _ := unstructured.NestedString(status, "applicationState", "state")
	spec := specKey(obj)

	// event_filter.go: a spec change invalidates the current run.
	if a.submitted != "" && spec != a.submitted && state != "INVALIDATING" && state != "PENDING_RERUN" {
		o.mu.Lock()
		o.logLocked("%s: spec changed in state %q: INVALIDATING", a.name, state)
		o.mu.Unlock()
		setState(status, "INVALIDATING", "")
		o.writeStatus(ctx, obj, status)
		return
	}
	switch state {
	case "":
		if hold {
			return
		}
		o.submit(ctx, obj, a, status, spec, now)
	case "INVALIDATING":
		if !o.stopDriver(ctx, obj, a, now) {
			return
		}
		// resetSparkApplicationStatus: DriverInfo becomes the empty struct
		// (the CRD requires the field), the rest is cleared.
		for _, k := range []string{"sparkApplicationId", "lastSubmissionAttemptTime", "terminationTime", "executorState"} {
			delete(status, k)
		}
		status["driverInfo"] = map[string]any{}
		status["submissionAttempts"], status["executionAttempts"] = int64(0), int64(0)
		setState(status, "PENDING_RERUN", "")
		o.writeStatus(ctx, obj, status)
	case "PENDING_RERUN":
		o.submit(ctx, obj, a, status, spec, now)
	case "SUBMITTED":
		o.mu.Lock()
		due := a.proc == nil && !now.Before(a.bootAt)
		o.mu.Unlock()
		if !due {
			return
		}
		if err := o.startDriver(obj, a); err != nil {
			setState(status, "FAILED", "driver container failed: "+err.Error())
			status["terminationTime"] = now.UTC().Format(time.RFC3339)
			o.writeStatus(ctx, obj, status)
			return
		}
		setState(status, "RUNNING", "")
		status["sparkApplicationId"] = "spark-" + string(obj.GetUID())[:8]
		status["executorState"] = initialExecutors(obj)
		o.writeStatus(ctx, obj, status)
	case "RUNNING":
		o.mu.Lock()
		exited := a.proc != nil && !a.proc.Running()
		o.mu.Unlock()
		if !exited {
			return
		}
		// The driver exited on its own: FAILING, then FAILED under
		// restartPolicy Never (ShouldRetry is false).
		setState(status, "FAILED", "driver container failed with ExitCode: 137, Reason: Error")
		status["terminationTime"] = now.UTC().Format(time.RFC3339)
		execs, _, _ := unstructured.NestedStringMap(status, "executorState")
		for k := range execs {
			execs[k] = "FAILED"
		}
		if execs != nil {
			_ = unstructured.SetNestedStringMap(status, execs, "executorState")
		}
		o.mu.Lock()
		o.logLocked("%s: driver exited: FAILED", a.name)
		o.mu.Unlock()
		o.writeStatus(ctx, obj, status)
	}
}

func (o *Operator) submit(ctx context.Context, obj *unstructured.Unstructured, a *app, status map[string]any, spec string, now time.Time) {
	attempts, _, _ := unstructured.NestedInt64(status, "submissionAttempts")
	execs, _, _ := unstructured.NestedInt64(status, "executionAttempts")
	status["submissionID"] = fmt.Sprintf("%s-%d", obj.GetUID(), now.UnixNano())
	status["driverInfo"] = map[string]any{"podName": obj.GetName() + "-driver"}
	status["lastSubmissionAttemptTime"] = now.UTC().Format(time.RFC3339)
	status["submissionAttempts"], status["executionAttempts"] = attempts+1, execs+1
	setState(status, "SUBMITTED", "")
	if !o.writeStatus(ctx, obj, status) {
		return
	}
	o.mu.Lock()
	a.submitted, a.bootAt = spec, now.Add(o.opts.Boot)
	a.proc, a.termAt, a.killed = nil, time.Time{}, false
	o.submits[a.name]++
	o.logLocked("%s: submitted (%d)", a.name, o.submits[a.name])
	o.mu.Unlock()
	o.createDriverPod(ctx, obj)
}

func (o *Operator) startDriver(obj *unstructured.Unstructured, a *app) error {
	mainClass, _, _ := unstructured.NestedString(obj.Object, "spec", "mainClass")
	args, _, _ := unstructured.NestedStringSlice(obj.Object, "spec", "arguments")
	p, err := o.opts.Driver.Start(obj.GetName(), mainClass, args, a.grace)
	o.mu.Lock()
	defer o.mu.Unlock()
	if err != nil {
		o.logLocked("%s: driver did not start: %v", a.name, err)
		return err
	}
	a.proc = p
	o.logLocked("%s: driver running", a.name)
	return nil
}

// stopDriver deletes the driver pod: SIGTERM, SIGKILL after the grace
// period, and the pod object once the driver is gone. It reports whether
// the driver and its pod are gone.
func (o *Operator) stopDriver(ctx context.Context, obj *unstructured.Unstructured, a *app, now time.Time) bool {
	o.mu.Lock()
	if a.proc == nil || !a.proc.Running() {
		a.proc = nil
		o.mu.Unlock()
		err := o.dyn.Resource(pods).Namespace(o.ns).Delete(ctx, obj.GetName()+"-driver", metav1.DeleteOptions{})
		return err == nil || apierrors.IsNotFound(err)
	}
	defer o.mu.Unlock()
	switch {
	case a.termAt.IsZero():
		o.logLocked("%s: delete driver pod: SIGTERM", a.name)
		a.proc.Stop()
		a.termAt = now
	case !a.killed && now.Sub(a.termAt) > a.grace:
		o.logLocked("%s: driver grace period over: SIGKILL", a.name)
		a.proc.Kill()
		a.killed = true
	}
	return false
}
