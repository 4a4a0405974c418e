package spark

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/ebbscale/ebb/sdk"
)

// Workload mode: Target.Name is an existing SparkApplication in the
// namespace, and its executors are the units.
//
// How a running application can be resized (shared/reference
// spark-keda-hpa.md §2.2): the operator resubmits it on any spec change, and
// its CRD has no scale subresource; only Spark's own dynamic allocation
// moves executors of a running application, within
// spec.dynamicAllocation's bounds. So a desired size inside those bounds
// needs no write (Spark gets there by itself), and anything else is a spec
// change: free while no driver runs, a restart otherwise, which needs
// allow-restart.

func (r *Realizer) workloadApp(ctx context.Context, cfg Config, name string) (*unstructured.Unstructured, *view, error) {
	if err := checkName(name); err != nil {
		return nil, nil, err
	}
	var obj *unstructured.Unstructured
	err := r.backoff.Do(ctx, fmt.Sprintf("get SparkApplication %s/%s", cfg.Namespace, name), func() error {
		var err error
		obj, err = r.dyn.Resource(GVR).Namespace(cfg.Namespace).Get(ctx, name, metav1.GetOptions{})
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("realizer-spark: workload %s: %w", name, err)
	}
	v, err := viewOf(obj)
	if err != nil {
		return nil, nil, err
	}
	return obj, v, nil
}

func executorCores(cfg Config, v *view) int64 {
	if c := v.Spec.Executor.Cores; c != nil && *c > 0 {
		return *c
	}
	return cfg.ExecutorCores
}

// workloadInventory lists the executors the operator records in
// status.executorState (pod name -> PENDING, RUNNING, COMPLETED, FAILED,
// UNKNOWN); finished ones are not capacity and are left out.
func (r *Realizer) workloadInventory(ctx context.Context, cfg Config, t sdk.Target) ([]sdk.Unit, error) {
	_, v, err := r.workloadApp(ctx, cfg, t.Name)
	if err != nil {
		return nil, err
	}
	size := executorCores(cfg, v)
	created := v.CreationTimestamp.Time.UTC()
	if at := v.Status.LastSubmissionAttemptTime; at != nil && !at.IsZero() {
		created = at.Time.UTC()
	}
	var units []sdk.Unit
	for pod, state := range v.Status.ExecutorState {
		var phase sdk.Phase
		switch state {
		case "RUNNING":
			phase = sdk.PhaseRunning
		case "PENDING":
			phase = sdk.PhaseBooting
		case "COMPLETED", "FAILED":
			continue
		default:
			phase = sdk.PhaseUnknown
		}
		u := sdk.Unit{ID: pod, Size: size, Phase: phase, CreatedAt: created,
			Labels: map[string]string{LabelState: state}}
		if v.DeletionTimestamp != nil {
			u.Phase, u.DrainStartedAt = sdk.PhaseDraining, v.DeletionTimestamp.Time.UTC()
		}
		units = append(units, u)
	}
	sort.Slice(units, func(i, j int) bool { return units[i].ID < units[j].ID })
	return units, nil
}

func (r *Realizer) workloadRealize(ctx context.Context, cfg Config, req sdk.RealizeRequest) (string, error) {
	d := req.Decision
	if len(d.Restart) > 0 {
		return "", fmt.Errorf("realizer-spark: chain %q: restarting executors %v of SparkApplication %s is not supported: "+
			"the driver replaces a deleted executor, and a restart of the application is a spec change", req.Target.Chain, d.Restart, req.Target.Name)
	}
	if d.DesiredCapacity <= 0 && len(d.Add)+len(d.Drain)+len(d.Remove) == 0 {
		return "no change: no desired capacity", nil
	}
	if d.DesiredCapacity < 0 {
		return "", fmt.Errorf("realizer-spark: chain %q: desired capacity %d is negative", req.Target.Chain, d.DesiredCapacity)
	}
	name := req.Target.Name
	var summary string
	wrote, err := r.update(ctx, cfg.Namespace, name, func(obj *unstructured.Unstructured) error {
		v, err := viewOf(obj)
		if err != nil {
			return err
		}
		if v.DeletionTimestamp != nil {
			return fmt.Errorf("SparkApplication %s/%s is being deleted", cfg.Namespace, name)
		}
		n := int64(math.Ceil(float64(d.DesiredCapacity) / float64(executorCores(cfg, v))))
		var key, from, to string
		if da := v.Spec.DynamicAllocation; da != nil && da.Enabled {
			lo, hi := int64(0), int64(math.MaxInt32)
			if da.MinExecutors != nil {
				lo = *da.MinExecutors
			}
			if da.MaxExecutors != nil {
				hi = *da.MaxExecutors
			}
			switch {
			case n >= lo && n <= hi:
				summary = fmt.Sprintf("%d executors are within spec.dynamicAllocation [%d, %s]: Spark's dynamic allocation reaches them without a restart; nothing written",
					n, lo, bound(da.MaxExecutors))
				return errUnchanged
			case n > hi:
				key, from, to = "maxExecutors", bound(da.MaxExecutors), strconv.FormatInt(n, 10)
			default:
				key, from, to = "minExecutors", strconv.FormatInt(lo, 10), strconv.FormatInt(n, 10)
			}
			if err := unstructured.SetNestedField(obj.Object, n, "spec", "dynamicAllocation", key); err != nil {
				return err
			}
			key = "spec.dynamicAllocation." + key
		} else {
			n = max(n, 1) // the operator's minimum for spec.executor.instances
			if cur := v.Spec.Executor.Instances; cur != nil && *cur == n {
				summary = fmt.Sprintf("already %d executors", n)
				return errUnchanged
			}
			key, from, to = "spec.executor.instances", bound(v.Spec.Executor.Instances), strconv.FormatInt(n, 10)
			if err := unstructured.SetNestedField(obj.Object, n, "spec", "executor", "instances"); err != nil {
				return err
			}
		}
		if live(v.state()) && !cfg.AllowRestart {
			return fmt.Errorf("resizing SparkApplication %s/%s (%s) to %d executors needs %s %s -> %s, and the spark-operator kills and "+
				"resubmits a live application on any spec change: refused (allow-restart = false). Without a restart only Spark's "+
				"own dynamic allocation moves executors, within spec.dynamicAllocation's bounds",
				cfg.Namespace, name, stateLabel(v.state()), n, key, from, to)
		}
		summary = fmt.Sprintf("%s %s -> %s", key, from, to)
		if live(v.state()) {
			summary += " (allow-restart: the operator resubmits the application)"
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("realizer-spark: chain %q: %w", req.Target.Chain, err)
	}
	if len(d.Drain)+len(d.Remove) > 0 && wrote {
		summary += "; Spark picks which executors go"
	}
	return summary, nil
}

func bound(p *int64) string {
	if p == nil {
		return "unset"
	}
	return strconv.FormatInt(*p, 10)
}
