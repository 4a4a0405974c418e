package flink

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/ebbscale/ebb/internal/kubeapi"
	k8s "github.com/ebbscale/ebb/plugins/realizer-k8s"
	"github.com/ebbscale/ebb/sdk"
)

// Labels on ebb's units: ebb's own are realizer-k8s's, so one selector finds
// a chain's units whatever runs them. The amoro.* ones are those Amoro's own
// FlinkOptimizerContainer puts on an optimizer's JobManager and TaskManager
// pods in Kubernetes application mode (amoro.md §3.4).
const (
	LabelManagedBy      = k8s.LabelManagedBy
	ManagedByValue      = k8s.ManagedByValue
	LabelChain          = k8s.LabelChain
	LabelUnit           = k8s.LabelUnit
	LabelThreads        = k8s.LabelThreads
	LabelAmoroGroup     = "amoro.optimizing-group"
	LabelAmoroID        = "amoro.optimizer-id"
	LabelAmoroImplement = "amoro.optimizer-implement"
	AnnotationRequestID = k8s.AnnotationRequestID
	AnnotationRestart   = k8s.AnnotationRestart
)

// unitRealize carries out a unit-mode decision: adds, drains, removes,
// restarts, then force-removes units draining longer than the drain timeout.
// Every action is idempotent: a retried request finds its work done.
func (r *Realizer) unitRealize(ctx context.Context, cfg Config, rc *restClient, req sdk.RealizeRequest) (string, error) {
	for what, v := range map[string]string{"chain": req.Target.Chain, "optimizer group (target name)": req.Target.Name} {
		if err := checkLabelValue(what, v); err != nil {
			return "", err
		}
	}
	b := r.backend(cfg, rc)
	t := req.Target
	// wrap (Realize) leads the error with the plugin and target.
	return kubeapi.UnitOps{
		Add: func(a sdk.UnitAdd) (string, error) {
			if a.Size <= 0 {
				return "", fmt.Errorf("add unit %q: size must be at least 1 thread, got %d", a.UnitID, a.Size)
			}
			if err := checkLabelValue("unit id", a.UnitID); err != nil {
				return "", err
			}
			return b.add(ctx, t, a, req.RequestID)
		},
		Drain:       func(id string) (string, error) { return b.release(ctx, t, id, false) },
		ForceRemove: func(id string) (string, error) { return b.release(ctx, t, id, true) },
		Restart:     func(id string) (string, error) { return b.restart(ctx, t, id, req.RequestID) },
		Finally:     func() (string, error) { return r.forceOverdue(ctx, cfg, b, t) },
	}.Realize("", req.Decision)
}

// unitBackend is where optimizer jobs run.
type unitBackend interface {
	add(ctx context.Context, t sdk.Target, a sdk.UnitAdd, requestID string) (string, error)
	release(ctx context.Context, t sdk.Target, unitID string, force bool) (string, error)
	restart(ctx context.Context, t sdk.Target, unitID, requestID string) (string, error)
	inventory(ctx context.Context, t sdk.Target) ([]sdk.Unit, error)
}

func (r *Realizer) backend(cfg Config, rc *restClient) unitBackend {
	if cfg.UnitBackend == BackendSession {
		return &sessionUnits{r: r, cfg: cfg, rc: rc}
	}
	return &deploymentUnits{r: r, cfg: cfg}
}

func (r *Realizer) unitInventory(ctx context.Context, cfg Config, rc *restClient, t sdk.Target) ([]sdk.Unit, error) {
	for what, v := range map[string]string{"chain": t.Chain, "optimizer group (target name)": t.Name} {
		if err := checkLabelValue(what, v); err != nil {
			return nil, err
		}
	}
	units, err := r.backend(cfg, rc).inventory(ctx, t)
	if err != nil {
		return nil, err
	}
	kubeapi.SortUnits(units)
	return units, nil
}

// forceOverdue force-removes units that drained longer than the drain
// timeout: their optimizer had its chance to finish.
func (r *Realizer) forceOverdue(ctx context.Context, cfg Config, b unitBackend, t sdk.Target) (string, error) {
	units, err := b.inventory(ctx, t)
	if err != nil {
		return "", err
	}
	var done []string
	var errs []error
	for _, u := range units {
		if u.Phase != sdk.PhaseDraining || u.DrainStartedAt.IsZero() || r.now().Sub(u.DrainStartedAt) <= cfg.DrainTimeout.D() {
			continue
		}
		s, err := b.release(ctx, t, u.ID, true)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		done = append(done, s+" (drain timeout)")
	}
	return strings.Join(done, "; "), errors.Join(errs...)
}

func checkLabelValue(what, v string) error {
	if v == "" {
		return fmt.Errorf("%s must not be empty", what)
	}
	if msgs := validation.IsValidLabelValue(v); len(msgs) > 0 {
		return fmt.Errorf("%s %q cannot be a label value: %s", what, v, strings.Join(msgs, "; "))
	}
	return nil
}

// optimizerArgs are Amoro's optimizer arguments (amoro.md §3.1, §3.4).
func optimizerArgs(cfg Config, group, unitID string, threads int64) []string {
	return []string{"-a", cfg.AMSThriftURI, "-p", strconv.FormatInt(threads, 10), "-g", group, "-id", unitID}
}

// optimizerClass is FlinkOptimizerContainer's entry class.
const optimizerClass = "org.apache.amoro.optimizer.flink.FlinkOptimizer"

// deploymentUnits run each optimizer as a FlinkDeployment in application
// mode, which the Flink operator turns into a JobManager and TaskManagers.
type deploymentUnits struct {
	r   *Realizer
	cfg Config
}

func (d *deploymentUnits) name(unitID string) (string, error) {
	name := d.cfg.NamePrefix + unitID
	if msgs := validation.IsDNS1123Label(name); len(msgs) > 0 {
		return "", fmt.Errorf("unit id %q gives FlinkDeployment name %q, which is not valid: %s", unitID, name, strings.Join(msgs, "; "))
	}
	return name, nil
}

// build renders one optimizer unit. The TaskManager has one slot per thread
// and the job's parallelism is the thread count, as Amoro runs -p threads in
// one Flink job; task.cancellation.timeout exceeds the drain timeout, so a
// cancelled optimizer finishes its tasks before Flink kills the TaskManager
// (FlinkExecutor caps its drain just below that timeout).
func (d *deploymentUnits) build(t sdk.Target, name, unitID string, threads int64, requestID string) *unstructured.Unstructured {
	cfg := d.cfg
	fc := map[string]any{}
	for k, v := range cfg.FlinkConfiguration {
		fc[k] = v
	}
	podLabels := fmt.Sprintf("%s:%s,%s:flink-native-kubernetes,%s:%s", LabelAmoroGroup, t.Name, LabelAmoroImplement, LabelAmoroID, unitID)
	fc[keySlots] = strconv.FormatInt(threads, 10)
	fc["kubernetes.jobmanager.labels"] = podLabels
	fc["kubernetes.taskmanager.labels"] = podLabels
	if _, ok := fc["task.cancellation.timeout"]; !ok {
		fc["task.cancellation.timeout"] = strconv.FormatInt(cfg.DrainTimeout.D().Milliseconds()+30_000, 10)
	}
	if cfg.BalancedTasks {
		fc[keyLoadBalance] = "TASKS"
	}
	args := []any{}
	for _, a := range optimizerArgs(cfg, t.Name, unitID, threads) {
		args = append(args, a)
	}
	memMB := int64(math.Ceil(cfg.MemoryPerThreadMB * float64(threads)))
	cpu := math.Ceil(cfg.CPUPerThread * float64(threads))
	lbl := map[string]any{LabelManagedBy: ManagedByValue, LabelChain: t.Chain, LabelUnit: unitID,
		LabelThreads: strconv.FormatInt(threads, 10), LabelAmoroGroup: t.Name, LabelAmoroID: unitID}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": gvrDeployment.GroupVersion().String(), "kind": "FlinkDeployment",
		"metadata": map[string]any{"name": name, "namespace": cfg.Namespace, "labels": lbl,
			"annotations": map[string]any{AnnotationRequestID: requestID}},
		"spec": map[string]any{
			"image": cfg.Image, "flinkVersion": cfg.FlinkVersion, "serviceAccount": cfg.ServiceAccount,
			"flinkConfiguration": fc,
			"jobManager":         map[string]any{"resource": map[string]any{"memory": cfg.JobManagerMemory, "cpu": 1.0}},
			"taskManager":        map[string]any{"resource": map[string]any{"memory": fmt.Sprintf("%dm", memMB), "cpu": cpu}},
			"job": map[string]any{"jarURI": cfg.JarURI, "entryClass": optimizerClass, "args": args,
				"parallelism": threads, "upgradeMode": "stateless", "state": "running"},
		},
	}}
}

func (d *deploymentUnits) res() interface {
	Create(context.Context, *unstructured.Unstructured, metav1.CreateOptions, ...string) (*unstructured.Unstructured, error)
	Get(context.Context, string, metav1.GetOptions, ...string) (*unstructured.Unstructured, error)
	Delete(context.Context, string, metav1.DeleteOptions, ...string) error
	List(context.Context, metav1.ListOptions) (*unstructured.UnstructuredList, error)
	Update(context.Context, *unstructured.Unstructured, metav1.UpdateOptions, ...string) (*unstructured.Unstructured, error)
} {
	return d.r.dyn.Resource(gvrDeployment).Namespace(d.cfg.Namespace)
}

func (d *deploymentUnits) add(ctx context.Context, t sdk.Target, a sdk.UnitAdd, requestID string) (string, error) {
	if d.cfg.BalancedTasks {
		if err := checkOperatorBalanced(d.cfg.FlinkVersion); err != nil {
			return "", err
		}
	}
	name, err := d.name(a.UnitID)
	if err != nil {
		return "", err
	}
	return d.r.backoff.CreateUnit(ctx, kubeapi.NewUnit{
		Kind: "FlinkDeployment", Namespace: d.cfg.Namespace, Name: name, UnitID: a.UnitID, Target: t, Keys: unitKeys,
	}, func() error {
		_, err := d.res().Create(ctx, d.build(t, name, a.UnitID, a.Size, requestID), metav1.CreateOptions{})
		return err
	}, func() (kubeapi.Existing, error) {
		// The name comes from the unit id, so a retried request lands here.
		u, err := d.res().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return kubeapi.Existing{}, err
		}
		return kubeapi.Existing{Labels: u.GetLabels(), Draining: u.GetDeletionTimestamp() != nil}, nil
	})
}

// unitKeys are the labels that mark a FlinkDeployment as ebb's unit.
var unitKeys = kubeapi.UnitKeys{
	ManagedBy: LabelManagedBy, ManagedByValue: ManagedByValue, Unit: LabelUnit, Chain: LabelChain, Group: LabelAmoroGroup,
}

// release deletes the FlinkDeployment. The operator's finalizer cancels the
// job (stateless upgrade mode: no savepoint) before the resource goes;
// foreground propagation keeps it visible, with its deletion timestamp, as a
// draining unit until then. Force deletes in the background with no grace.
func (d *deploymentUnits) release(ctx context.Context, _ sdk.Target, unitID string, force bool) (string, error) {
	name, err := d.name(unitID)
	if err != nil {
		return "", err
	}
	prop, verb := metav1.DeletePropagationForeground, "draining "
	opts := metav1.DeleteOptions{PropagationPolicy: &prop}
	if force {
		zero := int64(0)
		prop, verb = metav1.DeletePropagationBackground, "force-removed "
		opts = metav1.DeleteOptions{PropagationPolicy: &prop, GracePeriodSeconds: &zero}
	}
	err = d.r.backoff.Do(ctx, fmt.Sprintf("delete FlinkDeployment %s/%s", d.cfg.Namespace, name), func() error {
		return d.res().Delete(ctx, name, opts)
	})
	if apierrors.IsNotFound(err) {
		return "already gone " + unitID, nil
	}
	if err != nil {
		return "", err
	}
	return verb + unitID, nil
}

// restart bumps spec.restartNonce, which makes the operator redeploy the job;
// the request id in an annotation makes a retry a no-op.
func (d *deploymentUnits) restart(ctx context.Context, _ sdk.Target, unitID, requestID string) (string, error) {
	name, err := d.name(unitID)
	if err != nil {
		return "", err
	}
	ref := resourceRef{gvr: gvrDeployment, kind: "FlinkDeployment", name: name}
	s, err := d.r.updateSpec(ctx, d.cfg, ref, func(obj *unstructured.Unstructured) (string, error) {
		if obj.GetDeletionTimestamp() != nil {
			return "", fmt.Errorf("restart unit %q: it is draining", unitID)
		}
		ann := obj.GetAnnotations()
		if ann[AnnotationRestart] == requestID {
			return "already restarted " + unitID, nil
		}
		nonce, _, _ := unstructured.NestedInt64(obj.Object, "spec", "restartNonce")
		if err := unstructured.SetNestedField(obj.Object, nonce+1, "spec", "restartNonce"); err != nil {
			return "", err
		}
		if ann == nil {
			ann = map[string]string{}
		}
		ann[AnnotationRestart] = requestID
		obj.SetAnnotations(ann)
		return "restarted " + unitID, nil
	})
	if apierrors.IsNotFound(err) {
		return "", fmt.Errorf("restart unit %q: FlinkDeployment %s/%s not found", unitID, d.cfg.Namespace, name)
	}
	return strings.TrimSuffix(s, " (unchanged)"), err
}

// inventory lists the group's FlinkDeployments by label. Phase: draining
// once deleted, running when the operator reports the job RUNNING, booting
// once it reports anything, requested before that.
func (d *deploymentUnits) inventory(ctx context.Context, t sdk.Target) ([]sdk.Unit, error) {
	sel := labels.Set{LabelManagedBy: ManagedByValue, LabelChain: t.Chain, LabelAmoroGroup: t.Name}.String()
	var list *unstructured.UnstructuredList
	if err := d.r.backoff.Do(ctx, fmt.Sprintf("list FlinkDeployments in %s (%s)", d.cfg.Namespace, sel), func() error {
		var err error
		list, err = d.res().List(ctx, metav1.ListOptions{LabelSelector: sel})
		return err
	}); err != nil {
		return nil, err
	}
	units := []sdk.Unit{}
	for _, o := range list.Items {
		l := o.GetLabels()
		size, _ := strconv.ParseInt(l[LabelThreads], 10, 64)
		u := sdk.Unit{ID: l[LabelUnit], Size: size, CreatedAt: o.GetCreationTimestamp().UTC(), Labels: l}
		state, _, _ := unstructured.NestedString(o.Object, "status", "jobStatus", "state")
		lifecycle, _, _ := unstructured.NestedString(o.Object, "status", "lifecycleState")
		switch {
		case o.GetDeletionTimestamp() != nil:
			u.Phase, u.DrainStartedAt = sdk.PhaseDraining, o.GetDeletionTimestamp().UTC()
		case state == "RUNNING":
			u.Phase = sdk.PhaseRunning
		case state != "" || lifecycle != "":
			u.Phase = sdk.PhaseBooting
		default:
			u.Phase = sdk.PhaseRequested
		}
		units = append(units, u)
	}
	return units, nil
}
