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
	"sync"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/ebbscale/ebb/emulator/ams"
	"github.com/ebbscale/ebb/internal/optargs"
	k8s "github.com/ebbscale/ebb/plugins/realizer-k8s"
)

// kubelet plays the parts of a cluster that envtest does not run, for ebb's
// unit Deployments in one namespace: the Deployment controller and kubelet
// (after a boot delay it runs the unit's optimizer as an `ebb emulate
// optimizer` process and reports the pod in the Deployment's status) and
// the garbage collector (it lifts the foreground-deletion finalizer once the
// pod is gone).
//
// How a drain maps here: realizer-k8s deletes a unit's Deployment with
// foreground propagation, so the API server keeps it, with a deletion
// timestamp and the foregroundDeletion finalizer, until its pods are gone.
// The kubelet sends the optimizer SIGTERM (the optimizer stops polling and
// finishes its held tasks), SIGKILL only after the pod's
// terminationGracePeriodSeconds, and once the process has exited it removes
// the finalizer, which lets the API server delete the Deployment. A
// Deployment that disappears without that (a forced removal, grace period 0)
// has its optimizer SIGKILLed. A restart (a new ebbscale.io/restart-request
// annotation on the pod template) stops the optimizer and starts a new one
// with the same unit id, as the Recreate strategy does.
//
// It lists the Deployments ten times a second rather than watching them: an
// open watch keeps kube-apiserver from stopping gracefully within envtest's
// stop timeout, and the fault test stops the API server. Every Deployment
// seen is recorded by uid, so a unit created twice shows as one name with
// two uids; a second Deployment of a name cannot slip by between two lists,
// as nothing deletes it.
type kubelet struct {
	kube   kubernetes.Interface
	ns     string
	ebb    string
	boot   time.Duration
	logDir string

	stop chan struct{}
	done chan struct{}

	mu         sync.Mutex
	pods       map[types.UID]*pod
	seen       map[types.UID]bool
	created    []creation
	starts     map[string]int // optimizer processes started, by unit
	restarts   map[string]int // restarts carried out, by unit
	violations []string
	journal    []string
}

// creation is a Deployment the kubelet saw for the first time.
type creation struct {
	name, unit, requestID string
	uid                   types.UID
}

// pod is the single pod of one unit Deployment (by uid).
type pod struct {
	deployment string
	unit       string
	bootAt     time.Time // the container may start from then on
	template   string    // restart request the running container was started for
	opt        *optimizerProc
	termAt     time.Time // SIGTERM sent; zero when not terminating
	killed     bool
	reported   string // last status patched, "replicas/ready"
	finalizeAt time.Time
}

type optimizerProc struct {
	pid  int
	done chan struct{}
}

func (o *optimizerProc) running() bool {
	if o == nil {
		return false
	}
	select {
	case <-o.done:
		return false
	default:
		return true
	}
}

func startKubelet(t *testing.T, kube kubernetes.Interface, ns, ebb string, boot time.Duration) *kubelet {
	t.Helper()
	k := &kubelet{
		kube: kube, ns: ns, ebb: ebb, boot: boot,
		logDir: t.TempDir(),
		stop:   make(chan struct{}), done: make(chan struct{}),
		pods: map[types.UID]*pod{}, seen: map[types.UID]bool{},
		starts: map[string]int{}, restarts: map[string]int{},
	}
	go k.run()
	t.Cleanup(func() {
		k.close()
		if t.Failed() {
			t.Logf("kubelet journal:\n  %s", strings.Join(k.journalCopy(), "\n  "))
		}
	})
	return k
}

func (k *kubelet) observe(d *appsv1.Deployment) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.seen[d.UID] {
		return
	}
	k.seen[d.UID] = true
	k.created = append(k.created, creation{name: d.Name, unit: d.Labels[k8s.LabelUnit], uid: d.UID,
		requestID: d.Annotations[k8s.AnnotationRequestID]})
	k.logLocked("saw Deployment %s (uid %s, %s)", d.Name, d.UID, d.Annotations[k8s.AnnotationRequestID])
}

func (k *kubelet) logLocked(format string, args ...any) {
	k.journal = append(k.journal, time.Now().Format("15:04:05.000")+" "+fmt.Sprintf(format, args...))
}

func (k *kubelet) journalCopy() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.journal)
}

func (k *kubelet) run() {
	defer close(k.done)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-k.stop:
			return
		case <-tick.C:
			k.sync()
		}
	}
}

// close stops the kubelet and SIGKILLs every optimizer it runs.
func (k *kubelet) close() {
	select {
	case <-k.stop:
		return
	default:
	}
	close(k.stop)
	<-k.done
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, p := range k.pods {
		if p.opt.running() {
			_ = syscall.Kill(p.opt.pid, syscall.SIGKILL)
			<-p.opt.done
		}
	}
}

// sync is one pass of the controllers over the Deployments. API calls
// that fail (the API server may be down) are retried on a later pass.
func (k *kubelet) sync() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	list, err := k.kube.AppsV1().Deployments(k.ns).List(ctx, metav1.ListOptions{
		LabelSelector: labels.Set{k8s.LabelManagedBy: k8s.ManagedByValue}.String()})
	cancel()
	if err != nil {
		return // the API server may be down: nothing is known to be gone
	}
	now := time.Now()
	live := map[types.UID]bool{}
	for i := range list.Items {
		d := &list.Items[i]
		k.observe(d)
		live[d.UID] = true
		k.mu.Lock()
		p := k.pods[d.UID]
		if p == nil {
			p = &pod{deployment: d.Name, unit: d.Labels[k8s.LabelUnit], bootAt: now.Add(k.boot),
				template: d.Spec.Template.Annotations[k8s.AnnotationRestart]}
			k.pods[d.UID] = p
		}
		k.mu.Unlock()
		if d.DeletionTimestamp != nil {
			k.terminate(d, p, now)
			continue
		}
		k.runPod(d, p, now)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	for uid, p := range k.pods {
		if live[uid] {
			continue
		}
		// Gone without its pod having stopped: a forced removal deletes
		// pods with grace period 0.
		if p.opt.running() {
			if !p.killed {
				k.logLocked("Deployment %s gone with its optimizer running: SIGKILL pid %d", p.deployment, p.opt.pid)
				_ = syscall.Kill(p.opt.pid, syscall.SIGKILL)
				p.killed = true
			}
			continue
		}
		delete(k.pods, uid)
	}
}

// runPod keeps a live Deployment's pod running: boot, restart on a new
// restart request, container restart after a crash, status.
func (k *kubelet) runPod(d *appsv1.Deployment, p *pod, now time.Time) {
	want := d.Spec.Template.Annotations[k8s.AnnotationRestart]
	k.mu.Lock()
	switch {
	case want != p.template && p.opt.running():
		if p.termAt.IsZero() {
			k.logLocked("restart %s (%s): SIGTERM pid %d", p.deployment, want, p.opt.pid)
			_ = syscall.Kill(p.opt.pid, syscall.SIGTERM)
			p.termAt = now
		} else if !p.killed && now.Sub(p.termAt) > grace(d) {
			_ = syscall.Kill(p.opt.pid, syscall.SIGKILL)
			p.killed = true
		}
	case want != p.template:
		k.logLocked("restart %s (%s): new container after %s", p.deployment, want, k.boot)
		if p.opt != nil {
			k.restarts[p.unit]++ // a container was replaced, not merely not started yet
		}
		p.template, p.opt, p.termAt, p.killed = want, nil, time.Time{}, false
		p.bootAt = now.Add(k.boot)
	case p.opt != nil && !p.opt.running():
		// The container exited on its own: the kubelet restarts it.
		k.violations = append(k.violations, fmt.Sprintf("optimizer of %s exited without being stopped", p.deployment))
		k.logLocked("optimizer of %s exited on its own; restarting it", p.deployment)
		p.opt, p.termAt, p.killed = nil, time.Time{}, false
		p.bootAt = now.Add(k.boot)
	case p.opt == nil && !now.Before(p.bootAt):
		if err := k.startLocked(d, p); err != nil {
			k.violations = append(k.violations, err.Error())
		}
	}
	replicas, ready := 1, 0
	if p.opt.running() && p.termAt.IsZero() {
		ready = 1
	}
	status := fmt.Sprintf("%d/%d", replicas, ready)
	reported := p.reported
	k.mu.Unlock()
	if status == reported {
		return
	}
	patch := fmt.Sprintf(`{"status":{"observedGeneration":%d,"replicas":%d,"updatedReplicas":%d,"readyReplicas":%d,"availableReplicas":%d}}`,
		d.Generation, replicas, replicas, ready, ready)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := k.kube.AppsV1().Deployments(k.ns).Patch(ctx, d.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}, "status"); err != nil {
		return
	}
	k.mu.Lock()
	p.reported = status
	k.mu.Unlock()
}

// terminate stops a deleted Deployment's pod gracefully, then lets the API
// server finish the deletion.
func (k *kubelet) terminate(d *appsv1.Deployment, p *pod, now time.Time) {
	k.mu.Lock()
	if p.opt.running() {
		switch {
		case p.termAt.IsZero():
			k.logLocked("drain %s: SIGTERM pid %d", p.deployment, p.opt.pid)
			_ = syscall.Kill(p.opt.pid, syscall.SIGTERM)
			p.termAt = now
		case !p.killed && now.Sub(p.termAt) > grace(d):
			k.logLocked("drain %s: grace period over, SIGKILL pid %d", p.deployment, p.opt.pid)
			_ = syscall.Kill(p.opt.pid, syscall.SIGKILL)
			p.killed = true
		}
		k.mu.Unlock()
		return
	}
	if len(d.Finalizers) == 0 || now.Before(p.finalizeAt) {
		k.mu.Unlock()
		return
	}
	p.finalizeAt = now.Add(time.Second)
	k.logLocked("pod of %s gone: lifting finalizers %v", p.deployment, d.Finalizers)
	k.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, _ = k.kube.AppsV1().Deployments(k.ns).Patch(ctx, d.Name, types.MergePatchType, []byte(`{"metadata":{"finalizers":null}}`), metav1.PatchOptions{})
}

func grace(d *appsv1.Deployment) time.Duration {
	if g := d.Spec.Template.Spec.TerminationGracePeriodSeconds; g != nil {
		return time.Duration(*g) * time.Second
	}
	return 30 * time.Second
}

// startLocked runs the unit's container: the optimizer command line
// realizer-k8s wrote (`/entrypoint.sh optimizer HEAP -a AMS -p THREADS -g
// GROUP -id UNIT`) becomes an emulated optimizer with the same arguments.
func (k *kubelet) startLocked(d *appsv1.Deployment, p *pod) error {
	cs := d.Spec.Template.Spec.Containers
	if len(cs) == 0 {
		return fmt.Errorf("Deployment %s has no container", d.Name)
	}
	args := map[string]string{}
	for i := 0; i+1 < len(cs[0].Args); i++ {
		if strings.HasPrefix(cs[0].Args[i], "-") {
			args[cs[0].Args[i]] = cs[0].Args[i+1]
		}
	}
	for _, f := range []string{"-a", "-p", "-g", "-id"} {
		if args[f] == "" {
			return fmt.Errorf("Deployment %s: optimizer args %q lack %s", d.Name, cs[0].Args, f)
		}
	}
	if _, err := strconv.Atoi(args["-p"]); err != nil {
		return fmt.Errorf("Deployment %s: threads %q: %v", d.Name, args["-p"], err)
	}
	for uid, other := range k.pods {
		if other != p && other.unit == args["-id"] && other.opt.running() {
			k.violations = append(k.violations, fmt.Sprintf("unit %s would run twice: %s (uid %s) still has a running optimizer", args["-id"], other.deployment, uid))
		}
	}
	logf, err := os.OpenFile(filepath.Join(k.logDir, d.Name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	// The container's own arguments after `optimizer <heapMb>`, as the
	// image's entrypoint hands them to the optimizer: an option the
	// image's version lacks makes the emulated optimizer exit, as the real
	// one would. -hb (the last one wins) and --poll speed the story up.
	v, ok := optargs.FromImage(cs[0].Image)
	if !ok || len(cs[0].Args) < 2 || cs[0].Args[0] != "optimizer" {
		return fmt.Errorf("Deployment %s: image %q args %q: not an Amoro optimizer container", d.Name, cs[0].Image, cs[0].Args)
	}
	argv := append([]string{"emulate", "optimizer"}, cs[0].Args[2:]...)
	argv = append(argv, "-hb", "1000", "--poll", "200ms", ams.FlagOptimizerVersion, v.String())
	cmd := exec.Command(k.ebb, argv...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("starting the optimizer of %s: %w", d.Name, err)
	}
	o := &optimizerProc{pid: cmd.Process.Pid, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(o.done)
	}()
	p.opt, p.termAt, p.killed = o, time.Time{}, false
	k.starts[p.unit]++
	k.logLocked("started optimizer of %s: pid %d", d.Name, o.pid)
	return nil
}

// kubeletReport is what the kubelet saw over a test.
type kubeletReport struct {
	created    []creation
	starts     map[string]int
	restarts   map[string]int
	violations []string
	// running lists the units whose optimizer runs now, by Deployment name.
	running []string
}

func (k *kubelet) report() kubeletReport {
	k.mu.Lock()
	defer k.mu.Unlock()
	r := kubeletReport{
		created:    slices.Clone(k.created),
		starts:     map[string]int{},
		restarts:   map[string]int{},
		violations: slices.Clone(k.violations),
	}
	for u, n := range k.starts {
		r.starts[u] = n
	}
	for u, n := range k.restarts {
		r.restarts[u] = n
	}
	for _, p := range k.pods {
		if p.opt.running() {
			r.running = append(r.running, p.deployment)
		}
	}
	sort.Strings(r.running)
	return r
}

// duplicates lists Deployment names that were created more than once.
func (r kubeletReport) duplicates() []string {
	uids := map[string][]types.UID{}
	for _, c := range r.created {
		uids[c.name] = append(uids[c.name], c.uid)
	}
	var out []string
	for name, us := range uids {
		if len(us) > 1 {
			out = append(out, fmt.Sprintf("%s created %d times (uids %v)", name, len(us), us))
		}
	}
	sort.Strings(out)
	return out
}
