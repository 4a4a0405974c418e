package k8s

import (
	"context"
	"fmt"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/ebbscale/ebb/internal/optargs"
	"github.com/ebbscale/ebb/sdk"
)

// optimizerArgs is the container's argument list after /entrypoint.sh, in
// the order of Amoro's AbstractOptimizerContainer.buildOptimizerStartupArgsString:
// `optimizer <heapMb> -a <uri> -p <threads> -g <group> [-st <ms>] -id <unit> [-msm]`.
// The image's entrypoint runs `optimizer.sh start-foreground <heapMb> …`.
// -st exists from 0.9.0 (cfg.version refuses settings a version lacks).
func optimizerArgs(cfg Config, v optargs.Version, heapMB, threads int64, group, unitID string, shutdownMs int64) []string {
	args := []string{"optimizer", strconv.FormatInt(heapMB, 10),
		"-a", cfg.AMSThriftURI,
		"-p", strconv.FormatInt(threads, 10),
		"-g", group}
	if optargs.Accepts(v, "-st") {
		args = append(args, "-st", strconv.FormatInt(shutdownMs, 10))
	}
	args = append(args, "-id", unitID)
	if cfg.MasterSlaveMode {
		args = append(args, "-msm")
	}
	return args
}

// ownedUnit reads a unit's Deployment and makes sure ebb created it for this
// chain and group: a Deployment that merely has the unit's name (someone
// else's, or another chain's) is never drained, restarted or deleted. A
// missing Deployment is (nil, nil).
func (r *Realizer) ownedUnit(ctx context.Context, cfg Config, t sdk.Target, unitID string) (*appsv1.Deployment, string, error) {
	name, err := r.unitName(cfg, unitID)
	if err != nil {
		return nil, "", err
	}
	var dep *appsv1.Deployment
	err = r.backoff.Do(ctx, "get Deployment "+cfg.Namespace+"/"+name, func() error {
		var err error
		dep, err = r.kube.AppsV1().Deployments(cfg.Namespace).Get(ctx, name, metav1.GetOptions{})
		return err
	})
	if apierrors.IsNotFound(err) {
		return nil, name, nil
	}
	if err != nil {
		return nil, name, err
	}
	l := dep.Labels
	if l[LabelManagedBy] != ManagedByValue || l[LabelUnit] != unitID || l[LabelChain] != t.Chain || l[LabelAmoroGroup] != t.Name {
		return nil, name, fmt.Errorf("unit %q: Deployment %s/%s is not ebb's unit of chain %q group %q "+
			"(labels %s=%q %s=%q %s=%q %s=%q): left alone", unitID, cfg.Namespace, name, t.Chain, t.Name,
			LabelManagedBy, l[LabelManagedBy], LabelChain, l[LabelChain], LabelAmoroGroup, l[LabelAmoroGroup], LabelUnit, l[LabelUnit])
	}
	return dep, name, nil
}

// unitVersion is the version a unit was started as; units created before
// the annotation existed take the configured one.
func unitVersion(cfg Config, dep *appsv1.Deployment) optargs.Version {
	if v, err := optargs.ParseVersion(dep.Annotations[AnnotationVersion]); err == nil {
		return v
	}
	v, _ := cfg.version()
	return v
}

// onlyThis makes a delete fail if the object is no longer the one checked.
func onlyThis(dep *appsv1.Deployment) *metav1.Preconditions {
	uid := dep.UID
	return &metav1.Preconditions{UID: &uid}
}

// drainUnit starts a unit's drain (remove false) or ends it (remove true).
//
// Optimizer >= 0.9 finishes its in-flight tasks on SIGTERM within -st: both
// delete with foreground propagation, which keeps the Deployment (with a
// deletion timestamp) until its pod has terminated, so Inventory reports
// the unit as draining for as long as it finishes work.
//
// Before 0.9 SIGTERM never reaches the JVM and the pod is killed at the end
// of its grace period, tasks and all. So a drain only marks the Deployment
// (annotation, so that a restarted runner sees it too) and the unit is
// reported as draining; the evaluator sends Remove once the collector shows
// the unit holds no task, or at the drain timeout, and Remove deletes it at
// once: a grace period would only let the optimizer poll another task.
func (r *Realizer) drainUnit(ctx context.Context, cfg Config, t sdk.Target, unitID string, remove bool) (string, error) {
	dep, name, err := r.ownedUnit(ctx, cfg, t, unitID)
	if err != nil {
		return "", err
	}
	if dep == nil {
		return "already gone " + unitID, nil
	}
	v := unitVersion(cfg, dep)
	switch {
	case !v.GracefulShutdown() && remove:
		s, err := r.deleteNow(ctx, cfg, t, unitID, name, dep)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%s (optimizer %s has no graceful shutdown: removed after its drain)", s, v), nil
	case !v.GracefulShutdown():
		if draining(dep) {
			return "already draining " + unitID, nil
		}
		patch := fmt.Sprintf(`{"metadata":{"uid":%q,"annotations":{%q:%q}}}`, dep.UID, AnnotationDrainStarted, r.now().UTC().Format(time.RFC3339Nano))
		err := r.backoff.Do(ctx, fmt.Sprintf("mark Deployment %s/%s draining", cfg.Namespace, name), func() error {
			_, err := r.kube.AppsV1().Deployments(cfg.Namespace).Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
			return err
		})
		if apierrors.IsNotFound(err) {
			return "already gone " + unitID, nil
		}
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("draining %s (optimizer %s: removed once it holds no task)", unitID, v), nil
	case dep.DeletionTimestamp != nil:
		return "already draining " + unitID, nil
	}
	fg := metav1.DeletePropagationForeground
	err = r.backoff.Do(ctx, fmt.Sprintf("drain Deployment %s/%s", cfg.Namespace, name), func() error {
		return r.kube.AppsV1().Deployments(cfg.Namespace).Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &fg, Preconditions: onlyThis(dep)})
	})
	if apierrors.IsNotFound(err) {
		return "already gone " + unitID, nil
	}
	if err != nil {
		return "", err
	}
	return "draining " + unitID, nil
}

// forceRemoveUnit skips the drain.
func (r *Realizer) forceRemoveUnit(ctx context.Context, cfg Config, t sdk.Target, unitID string) (string, error) {
	dep, name, err := r.ownedUnit(ctx, cfg, t, unitID)
	if err != nil {
		return "", err
	}
	s, err := r.deleteNow(ctx, cfg, t, unitID, name, dep)
	if err != nil {
		return "", err
	}
	if s == "removed "+unitID {
		s = "force-removed " + unitID
	}
	return s, nil
}

// deleteNow deletes the unit's pods with grace period 0 and its Deployment
// (dep, nil when already gone) without waiting for its dependents. Pods are
// picked by all of ebb's labels for the unit, so no one else's are touched.
func (r *Realizer) deleteNow(ctx context.Context, cfg Config, t sdk.Target, unitID, name string, dep *appsv1.Deployment) (string, error) {
	pods := r.kube.CoreV1().Pods(cfg.Namespace)
	sel := labels.Set{LabelApp: name, LabelManagedBy: ManagedByValue, LabelChain: t.Chain, LabelUnit: unitID}.String()
	var list *corev1.PodList
	if err := r.backoff.Do(ctx, "list pods of unit "+unitID, func() error {
		var err error
		list, err = pods.List(ctx, metav1.ListOptions{LabelSelector: sel})
		return err
	}); err != nil {
		return "", err
	}
	zero := int64(0)
	for _, p := range list.Items {
		uid := p.UID
		err := r.backoff.Do(ctx, fmt.Sprintf("force-delete pod %s/%s", cfg.Namespace, p.Name), func() error {
			return pods.Delete(ctx, p.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &uid}})
		})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return "", err
		}
	}
	if dep == nil {
		return "already gone " + unitID, nil
	}
	// Background propagation also lifts the foreground finalizer of an
	// earlier drain, so the Deployment goes now; the garbage collector
	// removes its ReplicaSet afterwards.
	bg := metav1.DeletePropagationBackground
	err := r.backoff.Do(ctx, fmt.Sprintf("force-delete Deployment %s/%s", cfg.Namespace, name), func() error {
		return r.kube.AppsV1().Deployments(cfg.Namespace).Delete(ctx, name,
			metav1.DeleteOptions{GracePeriodSeconds: &zero, PropagationPolicy: &bg, Preconditions: onlyThis(dep)})
	})
	if apierrors.IsNotFound(err) {
		return "already gone " + unitID, nil
	}
	if err != nil {
		return "", err
	}
	return "removed " + unitID, nil
}

// restartUnit rolls the unit's pod, as `kubectl rollout restart` does, and
// keeps its id: the new optimizer registers with AMS under the same unit id.
// The request id in the template makes a retried restart a no-op.
func (r *Realizer) restartUnit(ctx context.Context, cfg Config, t sdk.Target, unitID, requestID string) (string, error) {
	dep, name, err := r.ownedUnit(ctx, cfg, t, unitID)
	if err != nil {
		return "", err
	}
	if dep == nil {
		return "", fmt.Errorf("restart unit %q: Deployment %s/%s not found", unitID, cfg.Namespace, name)
	}
	if draining(dep) {
		return "", fmt.Errorf("restart unit %q: it is draining", unitID)
	}
	if dep.Spec.Template.Annotations[AnnotationRestart] == requestID {
		return "already restarted " + unitID, nil
	}
	// The uid makes the patch fail if the object was replaced since the
	// ownership check.
	patch := fmt.Sprintf(`{"metadata":{"uid":%q},"spec":{"template":{"metadata":{"annotations":{%q:%q}}}}}`, dep.UID, AnnotationRestart, requestID)
	err = r.backoff.Do(ctx, fmt.Sprintf("restart Deployment %s/%s", cfg.Namespace, name), func() error {
		_, err := r.kube.AppsV1().Deployments(cfg.Namespace).Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{})
		return err
	})
	if err != nil {
		return "", err
	}
	return "restarted " + unitID, nil
}
