package k8s

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ebbscale/ebb/sdk"
)

const (
	// AnnotationDeletionCost is read by the ReplicaSet controller: on
	// scale-in, pods with a lower cost are deleted first.
	AnnotationDeletionCost = "controller.kubernetes.io/pod-deletion-cost"
	// AnnotationCostRequest marks a deletion cost ebb set, so a later
	// decision can clear costs it no longer wants without touching costs
	// that someone else set.
	AnnotationCostRequest = "ebbscale.io/deletion-cost-request"
	// requestedPrefix names the replicas asked for that have no pod yet.
	requestedPrefix = "requested-"
	conflictRetries = 5
)

// scaleTarget is a parsed workload-mode Target.Name.
type scaleTarget struct {
	gvr  schema.GroupVersionResource
	name string
}

func (s scaleTarget) String() string {
	return fmt.Sprintf("%s.%s.%s/%s", s.gvr.Resource, s.gvr.Version, s.gvr.Group, s.name)
}

// resolveTarget parses "<resource>[.<version>].<group>/<name>" and resolves it
// against the API server's discovery, so custom resources work and a typo
// gets a clear error.
func (r *Realizer) resolveTarget(target sdk.Target) (scaleTarget, error) {
	res, name, ok := strings.Cut(target.Name, "/")
	if !ok || res == "" || name == "" || strings.Contains(name, "/") {
		return scaleTarget{}, fmt.Errorf("workload target %q: want <resource>[.<version>].<group>/<name>, e.g. deployments.apps/web", target.Name)
	}
	fully, partial := schema.ParseResourceArg(strings.ToLower(res))
	var gvr schema.GroupVersionResource
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		if fully != nil {
			gvr, err = r.mapper.ResourceFor(*fully)
			if err != nil {
				gvr, err = r.mapper.ResourceFor(partial.WithVersion(""))
			}
		} else {
			gvr, err = r.mapper.ResourceFor(partial.WithVersion(""))
		}
		if err == nil {
			break
		}
		// A custom resource installed after the first lookup is not in the
		// cached discovery yet.
		r.mapper.Reset()
	}
	if err != nil {
		return scaleTarget{}, fmt.Errorf("workload target %q: unknown resource %q: %w", target.Name, res, err)
	}
	return scaleTarget{gvr: gvr, name: name}, nil
}

// scale is the part of an autoscaling/v1 Scale that ebb uses.
type scale struct {
	obj      *unstructured.Unstructured
	replicas int64
	current  int64
	selector string
}

func (r *Realizer) getScale(ctx context.Context, cfg Config, st scaleTarget) (scale, error) {
	var obj *unstructured.Unstructured
	err := r.backoff.Do(ctx, fmt.Sprintf("get scale of %s in %s", st, cfg.Namespace), func() error {
		var err error
		obj, err = r.dyn.Resource(st.gvr).Namespace(cfg.Namespace).Get(ctx, st.name, metav1.GetOptions{}, "scale")
		return err
	})
	if err != nil {
		if apierrors.IsNotFound(err) {
			return scale{}, fmt.Errorf("%w (does %s exist, and does it have a scale subresource?)", err, st)
		}
		return scale{}, err
	}
	replicas, _, _ := unstructured.NestedInt64(obj.Object, "spec", "replicas")
	current, _, _ := unstructured.NestedInt64(obj.Object, "status", "replicas")
	selector, _, _ := unstructured.NestedString(obj.Object, "status", "selector")
	return scale{obj: obj, replicas: replicas, current: current, selector: selector}, nil
}

// setReplicas updates the scale subresource. The update carries the
// resourceVersion that was read, so a concurrent change is a conflict rather
// than a lost write; on a conflict the scale is read afresh and set again.
func (r *Realizer) setReplicas(ctx context.Context, cfg Config, st scaleTarget, replicas int64) (from int64, err error) {
	for attempt := 1; ; attempt++ {
		sc, err := r.getScale(ctx, cfg, st)
		if err != nil {
			return 0, err
		}
		if sc.replicas == replicas {
			return sc.replicas, nil
		}
		if err := unstructured.SetNestedField(sc.obj.Object, replicas, "spec", "replicas"); err != nil {
			return 0, fmt.Errorf("set replicas of %s: %w", st, err)
		}
		err = r.backoff.Do(ctx, fmt.Sprintf("update scale of %s in %s", st, cfg.Namespace), func() error {
			_, err := r.dyn.Resource(st.gvr).Namespace(cfg.Namespace).Update(ctx, sc.obj, metav1.UpdateOptions{}, "scale")
			return err
		})
		if err == nil {
			return sc.replicas, nil
		}
		if !apierrors.IsConflict(err) || attempt >= conflictRetries {
			return 0, err
		}
	}
}

// workloadPods lists the pods the scale's selector picks.
func (r *Realizer) workloadPods(ctx context.Context, cfg Config, st scaleTarget, sc scale) ([]corev1.Pod, error) {
	if sc.selector == "" {
		return nil, nil
	}
	var list *corev1.PodList
	err := r.backoff.Do(ctx, fmt.Sprintf("list pods of %s (%s)", st, sc.selector), func() error {
		var err error
		list, err = r.kube.CoreV1().Pods(cfg.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sc.selector})
		return err
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(list.Items, func(i, j int) bool { return list.Items[i].Name < list.Items[j].Name })
	return list.Items, nil
}

// workloadInventory reports each pod of the workload as a unit of
// threads-per-replica threads. Replicas asked for that have no pod yet are
// reported as requested units named "requested-N", so capacity on its way
// is not asked for twice.
func (r *Realizer) workloadInventory(ctx context.Context, cfg Config, target sdk.Target) ([]sdk.Unit, error) {
	st, err := r.resolveTarget(target)
	if err != nil {
		return nil, fmt.Errorf("realizer-k8s: %w", err)
	}
	sc, err := r.getScale(ctx, cfg, st)
	if err != nil {
		return nil, fmt.Errorf("realizer-k8s: inventory of %s: %w", target, err)
	}
	pods, err := r.workloadPods(ctx, cfg, st, sc)
	if err != nil {
		return nil, fmt.Errorf("realizer-k8s: inventory of %s: %w", target, err)
	}
	size := int64(math.Round(cfg.ThreadsPerReplica))
	units := make([]sdk.Unit, 0, len(pods))
	var live int64
	for _, p := range pods {
		u := sdk.Unit{ID: p.Name, Size: size, Phase: podPhase(&p), CreatedAt: p.CreationTimestamp.Time.UTC(), Labels: p.Labels}
		if p.DeletionTimestamp != nil {
			u.DrainStartedAt = p.DeletionTimestamp.Time.UTC()
		} else {
			live++
		}
		units = append(units, u)
	}
	for i := live; i < sc.replicas; i++ {
		units = append(units, sdk.Unit{ID: fmt.Sprintf("%s%d", requestedPrefix, i-live+1), Size: size, Phase: sdk.PhaseRequested})
	}
	return units, nil
}

// podPhase maps a pod to a unit phase: draining once it is being deleted,
// running when Ready, booting once scheduled, requested before that.
func podPhase(p *corev1.Pod) sdk.Phase {
	if p.DeletionTimestamp != nil {
		return sdk.PhaseDraining
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return sdk.PhaseRunning
		}
	}
	if p.Spec.NodeName != "" {
		return sdk.PhaseBooting
	}
	return sdk.PhaseRequested
}

// workloadRealize sets replicas to ceil(DesiredCapacity / threads-per-replica).
// On scale-in it first gives the pods the decision drains or removes (in the
// decision's order, least busy first) the lowest pod-deletion-cost, so the
// ReplicaSet controller deletes those. Restart deletes the named pods, which
// their controller replaces. A decision with DesiredCapacity 0 and no unit
// actions changes nothing: scaling to zero must name the units that go.
func (r *Realizer) workloadRealize(ctx context.Context, cfg Config, req sdk.RealizeRequest) (string, error) {
	st, err := r.resolveTarget(req.Target)
	if err != nil {
		return "", fmt.Errorf("realizer-k8s: %w", err)
	}
	d := req.Decision
	var done []string
	fail := func(err error) (string, error) {
		return strings.Join(done, "; "), fmt.Errorf("realizer-k8s: %s: %w", req.Target, err)
	}
	for _, a := range d.Add {
		if a.Size <= 0 {
			return fail(fmt.Errorf("add unit %q: size must be at least 1 thread, got %d", a.UnitID, a.Size))
		}
	}

	leaving := append([]string(nil), d.Drain...)
	force := map[string]bool{}
	for _, rm := range d.Remove {
		leaving = append(leaving, rm.UnitID)
		force[rm.UnitID] = rm.Force
	}
	if len(leaving) > 0 {
		if err := r.setDeletionCosts(ctx, cfg, st, leaving, req.RequestID); err != nil {
			return fail(err)
		}
		done = append(done, "deletion cost set on "+strings.Join(leaving, ","))
	}

	if d.DesiredCapacity > 0 || len(d.Add)+len(leaving) > 0 {
		want := int64(math.Ceil(float64(d.DesiredCapacity) / cfg.ThreadsPerReplica))
		from, err := r.setReplicas(ctx, cfg, st, want)
		if err != nil {
			return fail(err)
		}
		if from == want {
			done = append(done, fmt.Sprintf("replicas already %d", want))
		} else {
			done = append(done, fmt.Sprintf("replicas %d -> %d", from, want))
		}
	}

	pods := r.kube.CoreV1().Pods(cfg.Namespace)
	zero := int64(0)
	for _, id := range leaving {
		if !force[id] || strings.HasPrefix(id, requestedPrefix) {
			continue
		}
		err := r.backoff.Do(ctx, fmt.Sprintf("force-delete pod %s/%s", cfg.Namespace, id), func() error {
			return pods.Delete(ctx, id, metav1.DeleteOptions{GracePeriodSeconds: &zero})
		})
		if err != nil && !apierrors.IsNotFound(err) {
			return fail(err)
		}
		done = append(done, "force-removed "+id)
	}
	for _, id := range d.Restart {
		err := r.backoff.Do(ctx, fmt.Sprintf("delete pod %s/%s for restart", cfg.Namespace, id), func() error {
			return pods.Delete(ctx, id, metav1.DeleteOptions{})
		})
		if apierrors.IsNotFound(err) {
			done = append(done, "already gone "+id)
			continue
		}
		if err != nil {
			return fail(err)
		}
		done = append(done, "restarted "+id)
	}
	if len(done) == 0 {
		return "no action", nil
	}
	return strings.Join(done, "; "), nil
}

// setDeletionCosts gives the leaving pods costs below any unset (0) cost,
// the first listed lowest, and clears costs an earlier decision of ebb set on
// pods that now stay.
func (r *Realizer) setDeletionCosts(ctx context.Context, cfg Config, st scaleTarget, leaving []string, requestID string) error {
	sc, err := r.getScale(ctx, cfg, st)
	if err != nil {
		return err
	}
	if sc.selector == "" {
		return fmt.Errorf("%s reports no pod selector in its scale subresource; cannot choose which pods go", st)
	}
	pods, err := r.workloadPods(ctx, cfg, st, sc)
	if err != nil {
		return err
	}
	byName := map[string]bool{}
	for _, p := range pods {
		byName[p.Name] = true
	}
	rank := map[string]int{}
	for i, id := range leaving {
		if strings.HasPrefix(id, requestedPrefix) {
			continue // no pod to mark; fewer replicas takes it away
		}
		if !byName[id] {
			return fmt.Errorf("pod %q to drain is not a pod of %s", id, st)
		}
		rank[id] = i - len(leaving)
	}
	var errs []error
	for _, p := range pods {
		var ann map[string]any
		if cost, ok := rank[p.Name]; ok {
			ann = map[string]any{AnnotationDeletionCost: strconv.Itoa(cost), AnnotationCostRequest: requestID}
		} else if _, ours := p.Annotations[AnnotationCostRequest]; ours {
			ann = map[string]any{AnnotationDeletionCost: nil, AnnotationCostRequest: nil}
		} else {
			continue
		}
		patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": ann}})
		if err != nil {
			return fmt.Errorf("encoding deletion-cost patch: %w", err)
		}
		err = r.backoff.Do(ctx, fmt.Sprintf("set pod-deletion-cost on pod %s/%s", cfg.Namespace, p.Name), func() error {
			_, err := r.kube.CoreV1().Pods(cfg.Namespace).Patch(ctx, p.Name, types.MergePatchType, patch, metav1.PatchOptions{})
			return err
		})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
