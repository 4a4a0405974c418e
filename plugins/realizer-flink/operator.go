package flink

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/ebbscale/ebb/sdk"
)

// The Flink Kubernetes operator's resources (flink-kubernetes-operator-api,
// group flink.apache.org, version v1beta1).
var (
	gvrDeployment = schema.GroupVersionResource{Group: "flink.apache.org", Version: "v1beta1", Resource: "flinkdeployments"}
	gvrSessionJob = schema.GroupVersionResource{Group: "flink.apache.org", Version: "v1beta1", Resource: "flinksessionjobs"}
)

// Flink configuration keys the realizer writes.
const (
	keyOverrides   = "pipeline.jobvertex-parallelism-overrides" // PipelineOptions.PARALLELISM_OVERRIDES
	keyLoadBalance = "taskmanager.load-balance.mode"            // TaskManagerOptions, TASKS since 2.2
	keySlots       = "taskmanager.numberOfTaskSlots"
	keyMaxP        = "pipeline.max-parallelism"
	keyTMMemory    = "taskmanager.memory.process.size"
)

// resourceRef is a parsed deployment-mode Target.Name.
type resourceRef struct {
	gvr  schema.GroupVersionResource
	kind string
	name string
}

func (r resourceRef) String() string { return r.kind + " " + r.name }

func parseRef(target string) (resourceRef, error) {
	kind, name, ok := strings.Cut(target, "/")
	if !ok {
		kind, name = "flinkdeployment", target
	}
	var ref resourceRef
	switch strings.ToLower(kind) {
	case "flinkdeployment", "flinkdeployments":
		ref = resourceRef{gvr: gvrDeployment, kind: "FlinkDeployment", name: name}
	case "flinksessionjob", "flinksessionjobs":
		ref = resourceRef{gvr: gvrSessionJob, kind: "FlinkSessionJob", name: name}
	default:
		return ref, fmt.Errorf("target %q: want <name>, flinkdeployment/<name> or flinksessionjob/<name>", target)
	}
	if name == "" || strings.Contains(name, "/") {
		return ref, fmt.Errorf("target %q: want <name>, flinkdeployment/<name> or flinksessionjob/<name>", target)
	}
	return ref, nil
}

// updateSpec reads the resource, lets mutate change it, and writes it back
// only if it changed. The write carries the resourceVersion it read, so a
// concurrent edit is a conflict, retried on a fresh read, not a lost update.
func (r *Realizer) updateSpec(ctx context.Context, cfg Config, ref resourceRef, mutate func(obj *unstructured.Unstructured) (string, error)) (string, error) {
	res := r.dyn.Resource(ref.gvr).Namespace(cfg.Namespace)
	for attempt := 1; ; attempt++ {
		var obj *unstructured.Unstructured
		err := r.backoff.Do(ctx, fmt.Sprintf("get %s/%s", cfg.Namespace, ref), func() error {
			var err error
			obj, err = res.Get(ctx, ref.name, metav1.GetOptions{})
			return err
		})
		if err != nil {
			return "", err
		}
		before := obj.DeepCopy()
		summary, err := mutate(obj)
		if err != nil {
			return "", err
		}
		if reflect.DeepEqual(before.Object, obj.Object) {
			return summary + " (unchanged)", nil
		}
		err = r.backoff.Do(ctx, fmt.Sprintf("update %s/%s", cfg.Namespace, ref), func() error {
			_, err := res.Update(ctx, obj, metav1.UpdateOptions{})
			return err
		})
		if err == nil {
			return summary, nil
		}
		if !apierrors.IsConflict(err) || attempt >= conflictRetries {
			return "", err
		}
	}
}

// flinkConfiguration returns spec.flinkConfiguration, creating it. The
// operator also accepts nested YAML there; only flat keys are touched.
func flinkConfiguration(obj *unstructured.Unstructured) (map[string]any, error) {
	fc, found, err := unstructured.NestedFieldNoCopy(obj.Object, "spec", "flinkConfiguration")
	if err != nil {
		return nil, fmt.Errorf("spec.flinkConfiguration: %w", err)
	}
	if !found || fc == nil {
		m := map[string]any{}
		if err := unstructured.SetNestedField(obj.Object, m, "spec", "flinkConfiguration"); err != nil {
			return nil, err
		}
		fc, _, _ = unstructured.NestedFieldNoCopy(obj.Object, "spec", "flinkConfiguration")
	}
	m, ok := fc.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("spec.flinkConfiguration is a %T, not a map", fc)
	}
	return m, nil
}

// parseOverrides reads Flink's map syntax "vid:p,vid:p".
func parseOverrides(s string) (map[string]int64, error) {
	out := map[string]int64{}
	for _, kv := range strings.Split(s, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, ":")
		p, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
		if !ok || err != nil || p < 1 {
			return nil, fmt.Errorf("%s %q: entry %q is not vertex-id:parallelism", keyOverrides, s, kv)
		}
		out[strings.TrimSpace(k)] = p
	}
	return out, nil
}

func formatOverrides(m map[string]int64) string {
	parts := make([]string, 0, len(m))
	for _, k := range sortedKeys(m) {
		parts = append(parts, fmt.Sprintf("%s:%d", k, m[k]))
	}
	return strings.Join(parts, ",")
}

// operatorVersion reads the operator's FlinkVersion enum ("v1_20", "v2_2").
func operatorVersion(v string) (int, int, error) {
	var major, minor int
	if _, err := fmt.Sscanf(v, "v%d_%d", &major, &minor); err != nil || fmt.Sprintf("v%d_%d", major, minor) != v {
		return 0, 0, fmt.Errorf("flink-version %q: want the operator's FlinkVersion, e.g. v1_20 or v2_2", v)
	}
	return major, minor, nil
}

// checkOperatorBalanced refuses TASKS for a FlinkDeployment older than 2.2.
func checkOperatorBalanced(version string) error {
	major, minor, err := operatorVersion(version)
	if err != nil {
		return fmt.Errorf("balanced-tasks: spec.flinkVersion: %w", err)
	}
	if major < 2 || (major == 2 && minor < 2) {
		return fmt.Errorf("balanced-tasks needs Flink 2.2 or newer (taskmanager.load-balance.mode TASKS, FLIP-370); spec.flinkVersion is %s", version)
	}
	return nil
}

// deploymentVersion is the Flink version a resource runs: a FlinkDeployment's
// own, or that of the session cluster a FlinkSessionJob runs on.
func (r *Realizer) deploymentVersion(ctx context.Context, cfg Config, ref resourceRef, obj *unstructured.Unstructured) (string, error) {
	if ref.gvr == gvrDeployment {
		v, _, _ := unstructured.NestedString(obj.Object, "spec", "flinkVersion")
		return v, nil
	}
	dep, _, _ := unstructured.NestedString(obj.Object, "spec", "deploymentName")
	var d *unstructured.Unstructured
	err := r.backoff.Do(ctx, fmt.Sprintf("get %s/FlinkDeployment %s", cfg.Namespace, dep), func() error {
		var err error
		d, err = r.dyn.Resource(gvrDeployment).Namespace(cfg.Namespace).Get(ctx, dep, metav1.GetOptions{})
		return err
	})
	if err != nil {
		return "", fmt.Errorf("session cluster of %s: %w", ref, err)
	}
	v, _, _ := unstructured.NestedString(d.Object, "spec", "flinkVersion")
	return v, nil
}

// deploymentOverrides merges parallelism overrides into
// spec.flinkConfiguration["pipeline.jobvertex-parallelism-overrides"], as the
// operator's KubernetesScalingRealizer does: other vertices' entries stay,
// and when the merged map equals the current one nothing is written.
func (r *Realizer) deploymentOverrides(ctx context.Context, cfg Config, rc *restClient, target sdk.Target, overrides map[string]int64) (string, error) {
	ref, err := parseRef(target.Name)
	if err != nil {
		return "", err
	}
	return r.updateSpec(ctx, cfg, ref, func(obj *unstructured.Unstructured) (string, error) {
		fc, err := flinkConfiguration(obj)
		if err != nil {
			return "", err
		}
		cur, _ := fc[keyOverrides].(string)
		merged, err := parseOverrides(cur)
		if err != nil {
			return "", err
		}
		vertices, err := r.knownVertices(ctx, rc, obj)
		if err != nil {
			return "", err
		}
		slots, _ := strconv.Atoi(fmt.Sprint(fc[keySlots]))
		maxP, _ := strconv.Atoi(fmt.Sprint(fc[keyMaxP]))
		for _, k := range sortedKeys(overrides) {
			id, v := strings.ToLower(k), vertexDetails{MaxParallelism: maxP}
			if known, ok := vertices[k]; ok {
				id, v = known.ID, known
			} else if !isHexID(id) {
				return "", fmt.Errorf("parallelism override %q: not a vertex id (32 hex characters); vertex names need rest-url", k)
			}
			p := overrides[k]
			if p < 1 || (v.MaxParallelism > 0 && p > int64(v.MaxParallelism)) {
				return "", fmt.Errorf("parallelism override %s=%d: want 1..%d", k, p, v.MaxParallelism)
			}
			if cfg.BalancedTasks {
				current := v.Parallelism
				if current == 0 {
					current = int(merged[id])
				}
				p = int64(align(current, int(p), v.MaxParallelism, slots))
			}
			merged[id] = p
		}
		if cfg.BalancedTasks {
			version, err := r.deploymentVersion(ctx, cfg, ref, obj)
			if err != nil {
				return "", err
			}
			if err := checkOperatorBalanced(version); err != nil {
				return "", err
			}
			fc[keyLoadBalance] = "TASKS"
		}
		if old, err := parseOverrides(cur); err == nil && reflect.DeepEqual(old, merged) {
			return "parallelism overrides " + cur, nil
		}
		fc[keyOverrides] = formatOverrides(merged)
		return "parallelism overrides " + fc[keyOverrides].(string), nil
	})
}

// knownVertices reads the running job's vertices over REST when rest-url is
// set and the resource's status names its job, keyed by id and by name.
func (r *Realizer) knownVertices(ctx context.Context, rc *restClient, obj *unstructured.Unstructured) (map[string]vertexDetails, error) {
	out := map[string]vertexDetails{}
	jobID, _, _ := unstructured.NestedString(obj.Object, "status", "jobStatus", "jobId")
	if rc == nil || jobID == "" {
		return out, nil
	}
	job, err := rc.job(ctx, jobID)
	if err != nil {
		return nil, err
	}
	for _, v := range job.Vertices {
		out[v.ID], out[v.Name] = v, v
	}
	return out, nil
}

// deploymentConfig merges config overrides into spec.flinkConfiguration
// (an empty value removes the key, like ConfigChanges' removals) and the
// TaskManager's process memory into spec.taskManager.resource.memory, as
// KubernetesScalingRealizer.realizeConfigOverrides does.
func (r *Realizer) deploymentConfig(ctx context.Context, cfg Config, target sdk.Target, overrides map[string]string) (string, error) {
	ref, err := parseRef(target.Name)
	if err != nil {
		return "", err
	}
	return r.updateSpec(ctx, cfg, ref, func(obj *unstructured.Unstructured) (string, error) {
		fc, err := flinkConfiguration(obj)
		if err != nil {
			return "", err
		}
		var done []string
		for _, k := range sortedKeys(overrides) {
			v := overrides[k]
			if k == keyOverrides {
				return "", fmt.Errorf("config override %s: use parallelism overrides for it", k)
			}
			if strings.HasPrefix(k, "taskmanager.memory.") && ref.gvr == gvrSessionJob {
				return "", fmt.Errorf("config override %s: a FlinkSessionJob runs in its session cluster's TaskManagers; change the FlinkDeployment", k)
			}
			if v == "" {
				delete(fc, k)
				done = append(done, "-"+k)
				continue
			}
			fc[k] = v
			done = append(done, k+"="+v)
			if k == keyTMMemory {
				if err := unstructured.SetNestedField(obj.Object, v, "spec", "taskManager", "resource", "memory"); err != nil {
					return "", fmt.Errorf("spec.taskManager.resource.memory: %w", err)
				}
			}
		}
		return "config " + strings.Join(done, ","), nil
	})
}

// taskManagerThreads is the threads one TaskManager gives: its slots times
// threads-per-subtask.
func taskManagerThreads(cfg Config, obj *unstructured.Unstructured) float64 {
	slots := 1
	if fc, ok, _ := unstructured.NestedMap(obj.Object, "spec", "flinkConfiguration"); ok {
		if n, err := strconv.Atoi(fmt.Sprint(fc[keySlots])); err == nil && n > 0 {
			slots = n
		}
	}
	return float64(slots) * cfg.ThreadsPerSubtask
}

// deploymentRealize sets a FlinkDeployment's TaskManager count to
// ceil(desired capacity / threads per TaskManager) through its scale
// subresource. Which TaskManagers go is the operator's choice.
func (r *Realizer) deploymentRealize(ctx context.Context, cfg Config, req sdk.RealizeRequest) (string, error) {
	d := req.Decision
	if len(d.Restart) > 0 {
		return "", fmt.Errorf("deployment mode cannot restart single TaskManagers (%s)", strings.Join(d.Restart, ","))
	}
	if d.DesiredCapacity <= 0 && len(d.Add)+len(d.Drain)+len(d.Remove) == 0 {
		return "no action", nil
	}
	ref, err := parseRef(req.Target.Name)
	if err != nil {
		return "", err
	}
	if ref.gvr != gvrDeployment {
		return "", fmt.Errorf("%s has no TaskManagers of its own; scale its session cluster's FlinkDeployment, or use parallelism overrides", ref)
	}
	obj, err := r.getResource(ctx, cfg, ref)
	if err != nil {
		return "", err
	}
	want := int64(math.Ceil(float64(d.DesiredCapacity) / taskManagerThreads(cfg, obj)))
	from, set, err := r.setTaskManagers(ctx, cfg, ref, want)
	if err != nil {
		return "", err
	}
	switch {
	case !set:
		return fmt.Sprintf("taskmanagers set to %d (spec.taskManager.replicas was unset)", want), nil
	case from == want:
		return fmt.Sprintf("taskmanagers already %d", want), nil
	}
	return fmt.Sprintf("taskmanagers %d -> %d", from, want), nil
}

func (r *Realizer) getResource(ctx context.Context, cfg Config, ref resourceRef) (*unstructured.Unstructured, error) {
	var obj *unstructured.Unstructured
	err := r.backoff.Do(ctx, fmt.Sprintf("get %s/%s", cfg.Namespace, ref), func() error {
		var err error
		obj, err = r.dyn.Resource(ref.gvr).Namespace(cfg.Namespace).Get(ctx, ref.name, metav1.GetOptions{})
		return err
	})
	return obj, err
}

// tmScale is what the scale subresource says, with set false while
// spec.taskManager.replicas is unset.
type tmScale struct {
	set              bool
	replicas, status int64
	selector         string
	resourceVersion  string
}

// getScale reads FlinkDeployment/scale. The API server answers 500 while
// the spec replicas path is missing (the operator leaves
// spec.taskManager.replicas unset in native mode): then the resource itself
// is read, and its status stands in.
func (r *Realizer) getScale(ctx context.Context, cfg Config, ref resourceRef) (tmScale, error) {
	res := r.dyn.Resource(ref.gvr).Namespace(cfg.Namespace)
	var sc *unstructured.Unstructured
	err := r.backoff.Do(ctx, fmt.Sprintf("get scale of %s/%s", cfg.Namespace, ref), func() error {
		var err error
		sc, err = res.Get(ctx, ref.name, metav1.GetOptions{}, "scale")
		return err
	})
	if err == nil {
		replicas, _, _ := unstructured.NestedInt64(sc.Object, "spec", "replicas")
		status, _, _ := unstructured.NestedInt64(sc.Object, "status", "replicas")
		sel, _, _ := unstructured.NestedString(sc.Object, "status", "selector")
		return tmScale{set: true, replicas: replicas, status: status, selector: sel, resourceVersion: sc.GetResourceVersion()}, nil
	}
	if !apierrors.IsInternalError(err) {
		return tmScale{}, err
	}
	obj, gerr := r.getResource(ctx, cfg, ref)
	if gerr != nil {
		return tmScale{}, gerr
	}
	if _, found, _ := unstructured.NestedFieldNoCopy(obj.Object, "spec", "taskManager", "replicas"); found {
		return tmScale{}, err // the field is there: a real server error
	}
	status, _, _ := unstructured.NestedInt64(obj.Object, "status", "taskManager", "replicas")
	sel, _, _ := unstructured.NestedString(obj.Object, "status", "taskManager", "labelSelector")
	return tmScale{status: status, selector: sel, resourceVersion: obj.GetResourceVersion()}, nil
}

// setTaskManagers writes the scale subresource with the resourceVersion read
// (writing it also creates spec.taskManager.replicas when it was unset); a
// conflict is retried on a fresh read.
func (r *Realizer) setTaskManagers(ctx context.Context, cfg Config, ref resourceRef, want int64) (int64, bool, error) {
	res := r.dyn.Resource(ref.gvr).Namespace(cfg.Namespace)
	for attempt := 1; ; attempt++ {
		sc, err := r.getScale(ctx, cfg, ref)
		if err != nil {
			return 0, false, err
		}
		if sc.set && sc.replicas == want {
			return want, true, nil
		}
		obj := &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "autoscaling/v1", "kind": "Scale",
			"metadata": map[string]any{"name": ref.name, "namespace": cfg.Namespace, "resourceVersion": sc.resourceVersion},
			"spec":     map[string]any{"replicas": want},
		}}
		err = r.backoff.Do(ctx, fmt.Sprintf("update scale of %s/%s", cfg.Namespace, ref), func() error {
			_, err := res.Update(ctx, obj, metav1.UpdateOptions{}, "scale")
			return err
		})
		if err == nil {
			return sc.replicas, sc.set, nil
		}
		if !apierrors.IsConflict(err) || attempt >= conflictRetries {
			return 0, false, err
		}
	}
}

// deploymentInventory reports a FlinkDeployment's TaskManagers as units
// (status.taskManager.replicas running, the rest of spec requested).
func (r *Realizer) deploymentInventory(ctx context.Context, cfg Config, target sdk.Target) ([]sdk.Unit, error) {
	ref, err := parseRef(target.Name)
	if err != nil {
		return nil, err
	}
	obj, err := r.getResource(ctx, cfg, ref)
	if err != nil {
		return nil, err
	}
	if ref.gvr != gvrDeployment {
		return []sdk.Unit{}, nil
	}
	sc, err := r.getScale(ctx, cfg, ref)
	if err != nil {
		return nil, err
	}
	size := int64(math.Round(taskManagerThreads(cfg, obj)))
	units := []sdk.Unit{}
	for i := int64(0); i < sc.status; i++ {
		units = append(units, sdk.Unit{ID: fmt.Sprintf("taskmanager-%d", i+1), Size: size, Phase: sdk.PhaseRunning})
	}
	for i := sc.status; i < sc.replicas; i++ {
		units = append(units, sdk.Unit{ID: fmt.Sprintf("%s%d", requestedPrefix, i-sc.status+1), Size: size, Phase: sdk.PhaseRequested})
	}
	sort.Slice(units, func(i, j int) bool { return units[i].ID < units[j].ID })
	return units, nil
}
