package spark

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/ebbscale/ebb/internal/kubeapi"
	"github.com/ebbscale/ebb/sdk"
)

// Labels ebb puts on the applications it manages. The optimizer-* ones are
// those Amoro's SparkOptimizerContainer puts on driver and executor pods,
// so Amoro's tooling recognizes ebb's units.
const (
	LabelManagedBy      = kubeapi.LabelManagedBy
	ManagedByValue      = kubeapi.ManagedByValue
	LabelChain          = kubeapi.LabelChain
	LabelUnit           = kubeapi.LabelUnit
	LabelThreads        = kubeapi.LabelThreads
	LabelGroup          = "optimizer-group"
	LabelOptimizerID    = "optimizer-id"
	LabelImplementation = "optimizer-implementation"
	ImplementationValue = "spark-native-kubernetes"
	// LabelState is set on inventory units (not on objects): the
	// application's state, "NEW" before the operator submitted it.
	LabelState = "ebbscale.io/spark-state"
	// AnnotationRequestID records the decision that created a unit.
	AnnotationRequestID = kubeapi.AnnotationRequestID
	// AnnotationRestart, in spec.driver.annotations, holds the request id of
	// the last restart. Being in the spec, it makes the operator resubmit
	// the application; a retried restart finds it set and does nothing.
	AnnotationRestart = kubeapi.AnnotationRestart
)

func (r *Realizer) unitRealize(ctx context.Context, cfg Config, req sdk.RealizeRequest) (string, error) {
	if err := checkTarget(req.Target); err != nil {
		return "", err
	}
	return kubeapi.UnitOps{
		Add:         func(a sdk.UnitAdd) (string, error) { return r.addUnit(ctx, cfg, req, a) },
		Drain:       func(id string) (string, error) { return r.drainUnit(ctx, cfg, id) },
		ForceRemove: func(id string) (string, error) { return r.forceRemoveUnit(ctx, cfg, id) },
		Restart:     func(id string) (string, error) { return r.restartUnit(ctx, cfg, id, req.RequestID) },
		Finally:     func() (string, error) { return r.forceOverdue(ctx, cfg, req.Target) },
	}.Realize(fmt.Sprintf("realizer-spark: %s", req.Target), req.Decision)
}

func checkTarget(t sdk.Target) error {
	if err := checkLabelValue("chain", t.Chain); err != nil {
		return err
	}
	return checkLabelValue("optimizer group (target name)", t.Name)
}

func checkLabelValue(what, v string) error {
	if msgs := validation.IsValidLabelValue(v); len(msgs) > 0 {
		return fmt.Errorf("%s %q cannot be a Kubernetes label value: %s", what, v, strings.Join(msgs, "; "))
	}
	return nil
}

func checkName(name string) error {
	if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
		return fmt.Errorf("SparkApplication name %q: %s", name, strings.Join(msgs, "; "))
	}
	return nil
}

func unitName(cfg Config, unitID string) (string, error) {
	if err := checkLabelValue("unit id", unitID); err != nil {
		return "", err
	}
	name := cfg.NamePrefix + unitID
	// The operator names the driver pod <name>-driver and its UI service
	// <name>-ui-svc: the name must leave room for them as a label value.
	if msgs := validation.IsDNS1123Label(name + "-ui-svc"); len(msgs) > 0 {
		return "", fmt.Errorf("unit id %q gives SparkApplication name %q, too long or invalid: %s", unitID, name, strings.Join(msgs, "; "))
	}
	return name, nil
}

// executorsFor is how many executors a unit of threads needs at most: the
// Spark optimizer runs one task per thread, executor-cores at a time per
// executor (SparkOptimizer.main: executorNum = ceil(parallel / cores)).
func executorsFor(cfg Config, threads int64) int64 {
	return int64(math.Ceil(float64(threads) / float64(cfg.ExecutorCores)))
}

// buildApplication renders one optimizer unit the way Amoro's Spark
// container submits it: main class SparkOptimizer, the optimizer arguments
// -a -p -g -id, and Spark's dynamic allocation on with maxExecutors sized
// from the unit's threads (Amoro's defaults, which spark-conf may change).
// Then the configured spark-conf and the target's config overrides merge in.
func buildApplication(cfg Config, t sdk.Target, name, unitID string, threads int64, requestID string, ov map[string]string) (*unstructured.Unstructured, error) {
	unitLabels := map[string]any{
		LabelManagedBy:   ManagedByValue,
		LabelChain:       t.Chain,
		LabelUnit:        unitID,
		LabelThreads:     strconv.FormatInt(threads, 10),
		LabelGroup:       t.Name,
		LabelOptimizerID: unitID,
	}
	podLabels := map[string]any{
		LabelGroup:          t.Name,
		LabelOptimizerID:    unitID,
		LabelImplementation: ImplementationValue,
		LabelManagedBy:      ManagedByValue,
	}
	// The optimizer finishes in-flight tasks on SIGTERM; the driver pod's
	// grace covers the drain timeout, as realizer-k8s does for pods.
	grace := int64(math.Ceil(cfg.DrainTimeout.D().Seconds())) + 30
	driver := map[string]any{
		"cores":                         cfg.DriverCores,
		"memory":                        cfg.DriverMemory,
		"labels":                        podLabels,
		"terminationGracePeriodSeconds": grace,
	}
	if cfg.ServiceAccount != "" {
		driver["serviceAccount"] = cfg.ServiceAccount
	}
	obj := map[string]any{
		"apiVersion": GVR.GroupVersion().String(),
		"kind":       "SparkApplication",
		"metadata": map[string]any{
			"name":        name,
			"namespace":   cfg.Namespace,
			"labels":      unitLabels,
			"annotations": map[string]any{AnnotationRequestID: requestID},
		},
		"spec": map[string]any{
			"type":                "Java",
			"mode":                "cluster",
			"sparkVersion":        cfg.SparkVersion,
			"image":               cfg.Image,
			"imagePullPolicy":     cfg.ImagePullPolicy,
			"mainClass":           optimizerMainClass,
			"mainApplicationFile": cfg.JobURI,
			"arguments": []any{"-a", cfg.AMSThriftURI, "-p", strconv.FormatInt(threads, 10),
				"-g", t.Name, "-id", unitID},
			"dynamicAllocation": map[string]any{
				"enabled":      true,
				"maxExecutors": executorsFor(cfg, threads),
			},
			"driver": driver,
			"executor": map[string]any{
				"cores":  cfg.ExecutorCores,
				"memory": cfg.ExecutorMemory,
				"labels": podLabels,
			},
			// Restarts are evaluator-dra's auto-restart (bounded, counted,
			// after a grace period); the operator restarting too would be a
			// second restarter nobody counts.
			"restartPolicy": map[string]any{"type": "Never"},
		},
	}
	for _, m := range []map[string]string{cfg.SparkConf, ov} {
		ovs, err := parseOverrides(m)
		if err != nil {
			return nil, err
		}
		if _, err := applyOverrides(obj, ovs); err != nil {
			return nil, err
		}
	}
	return &unstructured.Unstructured{Object: obj}, nil
}

func (r *Realizer) addUnit(ctx context.Context, cfg Config, req sdk.RealizeRequest, a sdk.UnitAdd) (string, error) {
	if a.Size <= 0 {
		return "", fmt.Errorf("add unit %q: size must be at least 1 thread, got %d", a.UnitID, a.Size)
	}
	name, err := unitName(cfg, a.UnitID)
	if err != nil {
		return "", err
	}
	app, err := buildApplication(cfg, req.Target, name, a.UnitID, a.Size, req.RequestID, r.targetOverrides(req.Target))
	if err != nil {
		return "", fmt.Errorf("add unit %q: %w", a.UnitID, err)
	}
	apps := r.dyn.Resource(GVR).Namespace(cfg.Namespace)
	return r.backoff.CreateUnit(ctx, kubeapi.NewUnit{
		Kind: "SparkApplication", Namespace: cfg.Namespace, Name: name, UnitID: a.UnitID, Target: req.Target, Keys: unitKeys,
	}, func() error {
		_, err := apps.Create(ctx, app, metav1.CreateOptions{})
		return err
	}, func() (kubeapi.Existing, error) {
		// The unit id is the name, so a retried request lands here.
		u, err := apps.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return kubeapi.Existing{}, err
		}
		return kubeapi.Existing{Labels: u.GetLabels(), Draining: u.GetDeletionTimestamp() != nil}, nil
	})
}

// unitKeys are the labels that mark a SparkApplication as ebb's unit.
var unitKeys = kubeapi.UnitKeys{
	ManagedBy: LabelManagedBy, ManagedByValue: ManagedByValue, Unit: LabelUnit, Chain: LabelChain, Group: LabelGroup,
}

// drainUnit deletes a unit's application with foreground propagation: the
// driver pod holds it (an owner reference with blockOwnerDeletion, as the
// operator builds the driver's template), so the application stays, with a
// deletion timestamp, until the driver has finished its in-flight tasks and
// exited.
func (r *Realizer) drainUnit(ctx context.Context, cfg Config, unitID string) (string, error) {
	name, err := unitName(cfg, unitID)
	if err != nil {
		return "", err
	}
	fg := metav1.DeletePropagationForeground
	err = r.backoff.Do(ctx, fmt.Sprintf("drain SparkApplication %s/%s", cfg.Namespace, name), func() error {
		return r.dyn.Resource(GVR).Namespace(cfg.Namespace).Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &fg})
	})
	if apierrors.IsNotFound(err) {
		return "already gone " + unitID, nil
	}
	if err != nil {
		return "", err
	}
	return "draining " + unitID, nil
}

// forceRemoveUnit deletes the driver pod with grace period 0 and the
// application without waiting for it.
func (r *Realizer) forceRemoveUnit(ctx context.Context, cfg Config, unitID string) (string, error) {
	name, err := unitName(cfg, unitID)
	if err != nil {
		return "", err
	}
	apps := r.dyn.Resource(GVR).Namespace(cfg.Namespace)
	var obj *unstructured.Unstructured
	err = r.backoff.Do(ctx, "get SparkApplication "+cfg.Namespace+"/"+name, func() error {
		var err error
		obj, err = apps.Get(ctx, name, metav1.GetOptions{})
		return err
	})
	if apierrors.IsNotFound(err) {
		return "already gone " + unitID, nil
	}
	if err != nil {
		return "", err
	}
	v, err := viewOf(obj)
	if err != nil {
		return "", err
	}
	zero := int64(0)
	// The operator's default driver pod name (pkg/util GetDriverPodName).
	driver := v.Status.DriverInfo.PodName
	if driver == "" {
		driver = name + "-driver"
	}
	err = r.backoff.Do(ctx, fmt.Sprintf("force-delete driver pod %s/%s", cfg.Namespace, driver), func() error {
		return r.kube.CoreV1().Pods(cfg.Namespace).Delete(ctx, driver, metav1.DeleteOptions{GracePeriodSeconds: &zero})
	})
	if err != nil && !apierrors.IsNotFound(err) {
		return "", err
	}
	// Background propagation also lifts the foreground finalizer of an
	// earlier drain, so the application goes now.
	bg := metav1.DeletePropagationBackground
	err = r.backoff.Do(ctx, fmt.Sprintf("force-delete SparkApplication %s/%s", cfg.Namespace, name), func() error {
		return apps.Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: &zero, PropagationPolicy: &bg})
	})
	if apierrors.IsNotFound(err) {
		return "already gone " + unitID, nil
	}
	if err != nil {
		return "", err
	}
	return "force-removed " + unitID, nil
}

// restartUnit makes the operator run the unit's application again with the
// same unit id: the restart request id goes into spec.driver.annotations,
// a spec change, which the operator answers by deleting the driver (if any)
// and resubmitting. That works from every state, FAILED included.
func (r *Realizer) restartUnit(ctx context.Context, cfg Config, unitID, requestID string) (string, error) {
	name, err := unitName(cfg, unitID)
	if err != nil {
		return "", err
	}
	wrote, err := r.update(ctx, cfg.Namespace, name, func(obj *unstructured.Unstructured) error {
		if obj.GetDeletionTimestamp() != nil {
			return fmt.Errorf("restart unit %q: it is draining", unitID)
		}
		ann, _, err := unstructured.NestedStringMap(obj.Object, "spec", "driver", "annotations")
		if err != nil {
			return err
		}
		if ann[AnnotationRestart] == requestID {
			return errUnchanged
		}
		if ann == nil {
			ann = map[string]string{}
		}
		ann[AnnotationRestart] = requestID
		return unstructured.SetNestedStringMap(obj.Object, ann, "spec", "driver", "annotations")
	})
	if apierrors.IsNotFound(err) {
		return "", fmt.Errorf("restart unit %q: SparkApplication %s/%s not found", unitID, cfg.Namespace, name)
	}
	if err != nil {
		return "", err
	}
	if !wrote {
		return "already restarted " + unitID, nil
	}
	return "restarted " + unitID, nil
}

// forceOverdue force-removes units draining longer than the drain timeout.
func (r *Realizer) forceOverdue(ctx context.Context, cfg Config, t sdk.Target) (string, error) {
	units, err := r.unitInventory(ctx, cfg, t)
	if err != nil {
		return "", err
	}
	return kubeapi.ForceOverdue(units, r.now(), cfg.DrainTimeout.D(), func(id string) (string, error) {
		return r.forceRemoveUnit(ctx, cfg, id)
	})
}
