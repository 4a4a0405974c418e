package sparkop

import (
	"context"
	"encoding/json"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// The objects the operator writes: application status and driver pods.

// createDriverPod makes the pod spark-submit would: <name>-driver, owned by
// the application as its controller with blockOwnerDeletion (the operator's
// buildDriverPodTemplate), labelled as the operator labels it. Nothing runs
// it but this stand-in.
func (o *Operator) createDriverPod(ctx context.Context, obj *unstructured.Unstructured) {
	image, _, _ := unstructured.NestedString(obj.Object, "spec", "image")
	if image == "" {
		image = "apache/spark"
	}
	pod := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{
			"name": obj.GetName() + "-driver", "namespace": o.ns,
			"labels": map[string]any{"spark-role": "driver", "sparkoperator.k8s.io/app-name": obj.GetName(),
				"sparkoperator.k8s.io/launched-by-spark-operator": "true"},
			"ownerReferences": []any{map[string]any{"apiVersion": obj.GetAPIVersion(), "kind": obj.GetKind(),
				"name": obj.GetName(), "uid": string(obj.GetUID()), "controller": true, "blockOwnerDeletion": true}},
		},
		"spec": map[string]any{"containers": []any{map[string]any{"name": "spark-kubernetes-driver", "image": image}},
			"terminationGracePeriodSeconds": int64(driverGrace(obj).Seconds())},
	}}
	if _, err := o.dyn.Resource(pods).Namespace(o.ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		o.mu.Lock()
		o.logLocked("%s: driver pod: %v", obj.GetName(), err)
		o.mu.Unlock()
		return
	}
	o.mu.Lock()
	o.driverPods[obj.GetName()+"-driver"] = true
	o.mu.Unlock()
}

func (o *Operator) writeStatus(ctx context.Context, obj *unstructured.Unstructured, status map[string]any) bool {
	obj = obj.DeepCopy()
	obj.Object["status"] = status
	_, err := o.dyn.Resource(gvr).Namespace(o.ns).UpdateStatus(ctx, obj, metav1.UpdateOptions{})
	if err != nil {
		// A conflict is retried on the next pass, as the operator requeues.
		o.mu.Lock()
		o.logLocked("%s: status update: %v", obj.GetName(), err)
		o.mu.Unlock()
	}
	return err == nil
}

func setState(status map[string]any, state, msg string) {
	as := map[string]any{"state": state}
	if msg != "" {
		as["errorMessage"] = msg
	}
	status["applicationState"] = as
}

// specKey is the spec as event_filter.go compares it: suspend and
// timeToLiveSeconds changes do not invalidate a run.
func specKey(obj *unstructured.Unstructured) string {
	spec, _, _ := unstructured.NestedMap(obj.Object, "spec")
	delete(spec, "suspend")
	delete(spec, "timeToLiveSeconds")
	b, _ := json.Marshal(spec)
	return string(b)
}

func driverGrace(obj *unstructured.Unstructured) time.Duration {
	if g, ok, _ := unstructured.NestedInt64(obj.Object, "spec", "driver", "terminationGracePeriodSeconds"); ok {
		return time.Duration(g) * time.Second
	}
	return 30 * time.Second
}

// initialExecutors is what the driver starts with: Spark's initial
// executors, max(minExecutors, initialExecutors, spark.executor.instances)
// with dynamic allocation on, else spec.executor.instances.
func initialExecutors(obj *unstructured.Unstructured) map[string]any {
	n, _, _ := unstructured.NestedInt64(obj.Object, "spec", "executor", "instances")
	if on, _, _ := unstructured.NestedBool(obj.Object, "spec", "dynamicAllocation", "enabled"); on {
		for _, f := range []string{"minExecutors", "initialExecutors"} {
			if v, ok, _ := unstructured.NestedInt64(obj.Object, "spec", "dynamicAllocation", f); ok && v > n {
				n = v
			}
		}
	} else if n == 0 {
		n = 1
	}
	out := map[string]any{}
	for i := int64(1); i <= n && i <= 1000; i++ {
		out[obj.GetName()+"-exec-"+strconv.FormatInt(i, 10)] = "RUNNING"
	}
	return out
}
