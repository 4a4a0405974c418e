package k8s

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/ebbscale/ebb/internal/kubeapi"
	"github.com/ebbscale/ebb/internal/optargs"
	"github.com/ebbscale/ebb/sdk"
)

// Labels and annotations ebb puts on the objects it manages. The Amoro ones
// are what AMS's own Kubernetes container sets on optimizer pods, so Amoro's
// tooling and dashboards recognize ebb's units.
const (
	LabelManagedBy     = kubeapi.LabelManagedBy
	ManagedByValue     = kubeapi.ManagedByValue
	LabelChain         = kubeapi.LabelChain
	LabelUnit          = kubeapi.LabelUnit
	LabelThreads       = kubeapi.LabelThreads
	LabelApp           = "app"
	LabelAmoroGroup    = "AmoroOptimizerGroup"
	LabelAmoroResource = "AmoroResourceId"
	// AnnotationRequestID records the decision that created a unit.
	AnnotationRequestID = kubeapi.AnnotationRequestID
	// AnnotationRestart on the pod template holds the request id of the last
	// restart: a retried restart finds it already set and does nothing.
	AnnotationRestart = kubeapi.AnnotationRestart
	// AnnotationVersion records the Amoro version the unit was started as,
	// which decides how it drains even after the config's image changed.
	AnnotationVersion = "ebbscale.io/optimizer-version"
	// AnnotationDrainStarted marks a unit of an optimizer without graceful
	// shutdown (< 0.9) as draining (RFC 3339): it is deleted on the later
	// Remove, once it holds no task, or at the drain timeout.
	AnnotationDrainStarted = "ebbscale.io/drain-started-at"
	containerName          = "optimizer"
)

// unitRealize carries out a unit-mode decision: adds, drains, removes,
// restarts, then force-removes units draining longer than the drain timeout.
func (r *Realizer) unitRealize(ctx context.Context, cfg Config, req sdk.RealizeRequest) (string, error) {
	if err := checkLabelValue("chain", req.Target.Chain); err != nil {
		return "", err
	}
	if err := checkLabelValue("optimizer group (target name)", req.Target.Name); err != nil {
		return "", err
	}
	tmpl, err := loadPodTemplate(cfg.PodTemplate)
	if err != nil {
		return "", err
	}
	t := req.Target
	return kubeapi.UnitOps{
		Add:         func(a sdk.UnitAdd) (string, error) { return r.addUnit(ctx, cfg, tmpl, req, a) },
		Drain:       func(id string) (string, error) { return r.drainUnit(ctx, cfg, t, id, false) },
		Remove:      func(id string) (string, error) { return r.drainUnit(ctx, cfg, t, id, true) },
		ForceRemove: func(id string) (string, error) { return r.forceRemoveUnit(ctx, cfg, t, id) },
		Restart:     func(id string) (string, error) { return r.restartUnit(ctx, cfg, t, id, req.RequestID) },
		Finally:     func() (string, error) { return r.forceOverdue(ctx, cfg, t) },
	}.Realize(fmt.Sprintf("realizer-k8s: %s", t), req.Decision)
}

func (r *Realizer) unitName(cfg Config, unitID string) (string, error) {
	if err := checkLabelValue("unit id", unitID); err != nil {
		return "", err
	}
	name := cfg.NamePrefix + unitID
	// The name is also the value of the pods' `app` label, hence a label.
	if msgs := validation.IsDNS1123Label(name); len(msgs) > 0 {
		return "", fmt.Errorf("unit id %q gives Deployment name %q, which is not a valid name: %s", unitID, name, strings.Join(msgs, "; "))
	}
	return name, nil
}

func checkLabelValue(what, v string) error {
	if msgs := validation.IsValidLabelValue(v); len(msgs) > 0 {
		return fmt.Errorf("%s %q cannot be a Kubernetes label value: %s", what, v, strings.Join(msgs, "; "))
	}
	return nil
}

func (r *Realizer) addUnit(ctx context.Context, cfg Config, tmpl *corev1.PodTemplateSpec, req sdk.RealizeRequest, a sdk.UnitAdd) (string, error) {
	if a.Size <= 0 {
		return "", fmt.Errorf("add unit %q: size must be at least 1 thread, got %d", a.UnitID, a.Size)
	}
	name, err := r.unitName(cfg, a.UnitID)
	if err != nil {
		return "", err
	}
	v, err := cfg.version()
	if err != nil {
		return "", fmt.Errorf("add unit %q: %w", a.UnitID, err)
	}
	dep := buildDeployment(cfg, v, tmpl, req.Target, name, a.UnitID, a.Size, req.RequestID)
	deps := r.kube.AppsV1().Deployments(cfg.Namespace)
	return r.backoff.CreateUnit(ctx, kubeapi.NewUnit{
		Kind: "Deployment", Namespace: cfg.Namespace, Name: name, UnitID: a.UnitID, Target: req.Target, Keys: unitKeys,
	}, func() error {
		_, err := deps.Create(ctx, dep, metav1.CreateOptions{})
		return err
	}, func() (kubeapi.Existing, error) {
		// A retried request lands here: the unit it asked for exists.
		d, err := deps.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return kubeapi.Existing{}, err
		}
		return kubeapi.Existing{Labels: d.Labels, Draining: draining(d)}, nil
	})
}

// unitKeys are the labels that mark a Deployment as ebb's unit.
var unitKeys = kubeapi.UnitKeys{
	ManagedBy: LabelManagedBy, ManagedByValue: ManagedByValue, Unit: LabelUnit, Chain: LabelChain, Group: LabelAmoroGroup,
}

// graceBufferSeconds is what Amoro adds to the optimizer's shutdown timeout
// for the pod's grace period (KubernetesOptimizerContainer
// TERMINATION_GRACE_BUFFER_SECONDS): thread joins, result reporting, logs.
const graceBufferSeconds = 30

// buildDeployment renders one optimizer unit the way Amoro's Kubernetes
// container does: memory = memory-per-thread * threads (MiB), cpu =
// ceil(cpu-per-thread * threads), requests = limits, heap = memory * heap-ratio.
func buildDeployment(cfg Config, v optargs.Version, tmpl *corev1.PodTemplateSpec, t sdk.Target, name, unitID string, threads int64, requestID string) *appsv1.Deployment {
	memMB := int64(math.Ceil(cfg.MemoryPerThreadMB * float64(threads)))
	cpu := int64(math.Ceil(cfg.CPUPerThread * float64(threads)))
	heapMB := int64(float64(memMB) * cfg.HeapRatio)
	shutdownMs := cfg.DrainTimeout.D().Milliseconds()

	unitLabels := map[string]string{
		LabelManagedBy:     ManagedByValue,
		LabelChain:         t.Chain,
		LabelUnit:          unitID,
		LabelThreads:       strconv.FormatInt(threads, 10),
		LabelAmoroGroup:    t.Name,
		LabelAmoroResource: unitID,
	}
	var pod corev1.PodTemplateSpec
	if tmpl != nil {
		pod = *tmpl.DeepCopy()
	}
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	for k, v := range unitLabels {
		pod.Labels[k] = v
	}
	pod.Labels[LabelApp] = name

	if len(pod.Spec.Containers) == 0 {
		pod.Spec.Containers = []corev1.Container{{}}
	}
	c := &pod.Spec.Containers[0]
	if c.Name == "" {
		c.Name = containerName
	}
	c.Image = cfg.Image
	c.ImagePullPolicy = corev1.PullPolicy(cfg.ImagePullPolicy)
	c.Command = []string{"/entrypoint.sh"}
	c.Args = optimizerArgs(cfg, v, heapMB, threads, t.Name, unitID, shutdownMs)
	if c.Resources.Requests == nil {
		c.Resources.Requests = corev1.ResourceList{}
	}
	if c.Resources.Limits == nil {
		c.Resources.Limits = corev1.ResourceList{}
	}
	for _, rl := range []corev1.ResourceList{c.Resources.Requests, c.Resources.Limits} {
		rl[corev1.ResourceCPU] = *resource.NewQuantity(cpu, resource.DecimalSI)
		rl[corev1.ResourceMemory] = resource.MustParse(strconv.FormatInt(memMB, 10) + "Mi")
	}
	// Amoro derives the grace period from -st: ceil(ms / 1000) + 30 s, so
	// the pod is never killed before the optimizer's own budget ends. A
	// template's longer grace is kept. An optimizer before 0.9 never sees
	// SIGTERM, so a grace period would only delay its removal: it keeps the
	// template's (or Kubernetes' default).
	if v.GracefulShutdown() {
		grace := (shutdownMs+999)/1000 + graceBufferSeconds
		if pod.Spec.TerminationGracePeriodSeconds == nil || *pod.Spec.TerminationGracePeriodSeconds < grace {
			pod.Spec.TerminationGracePeriodSeconds = &grace
		}
	}
	for _, name := range cfg.ImagePullSecrets {
		if !slices.ContainsFunc(pod.Spec.ImagePullSecrets, func(r corev1.LocalObjectReference) bool { return r.Name == name }) {
			pod.Spec.ImagePullSecrets = append(pod.Spec.ImagePullSecrets, corev1.LocalObjectReference{Name: name})
		}
	}

	depLabels := map[string]string{LabelApp: name}
	for k, v := range unitLabels {
		depLabels[k] = v
	}
	one := int32(1)
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Namespace:   cfg.Namespace,
			Labels:      depLabels,
			Annotations: map[string]string{AnnotationRequestID: requestID, AnnotationVersion: v.String()},
		},
		Spec: appsv1.DeploymentSpec{
			Replicas: &one,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{LabelApp: name}},
			Template: pod,
			// Two pods with one unit id would register twice with AMS: a
			// restart stops the old pod before it starts the new one.
			Strategy: appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType},
		},
	}
}

// forceOverdue force-removes units that have drained for longer than the
// drain timeout: their optimizer had its chance to finish.
func (r *Realizer) forceOverdue(ctx context.Context, cfg Config, t sdk.Target) (string, error) {
	units, err := r.unitInventory(ctx, cfg, t)
	if err != nil {
		return "", err
	}
	return kubeapi.ForceOverdue(units, r.now(), cfg.DrainTimeout.D(), func(id string) (string, error) {
		return r.forceRemoveUnit(ctx, cfg, t, id)
	})
}

// unitInventory lists the target's units from their Deployments, only those
// carrying ebb's labels for this chain and group. Phase:
//   - draining: the Deployment has a deletion timestamp, or (optimizer
//     < 0.9) the drain annotation (DrainStartedAt: the earlier of the two);
//   - running:  at least one ready replica;
//   - booting:  a pod exists (status.replicas > 0) but is not ready;
//   - requested: no pod yet.
func (r *Realizer) unitInventory(ctx context.Context, cfg Config, t sdk.Target) ([]sdk.Unit, error) {
	if err := checkLabelValue("chain", t.Chain); err != nil {
		return nil, err
	}
	if err := checkLabelValue("optimizer group (target name)", t.Name); err != nil {
		return nil, err
	}
	sel := labels.Set{LabelManagedBy: ManagedByValue, LabelChain: t.Chain, LabelAmoroGroup: t.Name}.String()
	var list *appsv1.DeploymentList
	err := r.backoff.Do(ctx, fmt.Sprintf("list Deployments in %s (%s)", cfg.Namespace, sel), func() error {
		var err error
		list, err = r.kube.AppsV1().Deployments(cfg.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("realizer-k8s: inventory of %s: %w", t, err)
	}
	units := make([]sdk.Unit, 0, len(list.Items))
	for _, d := range list.Items {
		if d.Labels[LabelUnit] == "" {
			continue // labelled by hand, not a unit ebb created
		}
		size, _ := strconv.ParseInt(d.Labels[LabelThreads], 10, 64)
		u := sdk.Unit{
			ID:        d.Labels[LabelUnit],
			Size:      size,
			Phase:     deploymentPhase(&d),
			CreatedAt: d.CreationTimestamp.Time.UTC(),
			Labels:    d.Labels,
		}
		if at, ok := drainStarted(&d); ok {
			u.DrainStartedAt = at
		}
		units = append(units, u)
	}
	kubeapi.SortUnits(units)
	return units, nil
}

func deploymentPhase(d *appsv1.Deployment) sdk.Phase {
	switch {
	case draining(d):
		return sdk.PhaseDraining
	case d.Status.ReadyReplicas > 0:
		return sdk.PhaseRunning
	case d.Status.Replicas > 0:
		return sdk.PhaseBooting
	}
	return sdk.PhaseRequested
}

// draining is true for a Deployment being deleted or marked to drain.
func draining(d *appsv1.Deployment) bool {
	_, ok := drainStarted(d)
	return ok
}

// drainStarted is when a unit's drain began: the drain annotation of an
// optimizer before 0.9, or the deletion timestamp, whichever is earlier.
// An unreadable annotation (edited by hand) counts as a drain from the
// Deployment's creation, so that the drain timeout ends it rather than
// the unit staying half-drained forever.
func drainStarted(d *appsv1.Deployment) (time.Time, bool) {
	var at time.Time
	if v, ok := d.Annotations[AnnotationDrainStarted]; ok {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			t = d.CreationTimestamp.Time
		}
		at = t.UTC()
	}
	if d.DeletionTimestamp != nil && (at.IsZero() || d.DeletionTimestamp.Time.Before(at)) {
		at = d.DeletionTimestamp.Time.UTC()
	}
	return at, !at.IsZero()
}
