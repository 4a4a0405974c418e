package spark

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/ebbscale/ebb/sdk"
)

// override is one config override, resolved to the place in a
// SparkApplication's spec that carries it.
type override struct {
	key, value string
	// field is set for the keys that spec.dynamicAllocation carries; the
	// operator renders those as spark.dynamicAllocation.* at submit
	// (internal/controller/sparkapplication/submission.go,
	// dynamicAllocationOption), so writing them to sparkConf as well would
	// leave two values for one key.
	field string
	// parsed is the typed value of a dynamicAllocation field; nil removes it.
	parsed any
}

type fieldKind int

const (
	kindBool fieldKind = iota
	kindInt32
	kindInt64
)

// dynamicAllocationFields maps Spark's property names to the fields of the
// spark-operator's DynamicAllocation (api/v1beta2/sparkapplication_types.go).
var dynamicAllocationFields = map[string]struct {
	field string
	kind  fieldKind
}{
	"spark.dynamicAllocation.enabled":                 {"enabled", kindBool},
	"spark.dynamicAllocation.initialExecutors":        {"initialExecutors", kindInt32},
	"spark.dynamicAllocation.minExecutors":            {"minExecutors", kindInt32},
	"spark.dynamicAllocation.maxExecutors":            {"maxExecutors", kindInt32},
	"spark.dynamicAllocation.shuffleTracking.enabled": {"shuffleTrackingEnabled", kindBool},
	// The operator's field is in milliseconds, as Spark reads a bare number.
	"spark.dynamicAllocation.shuffleTracking.timeout": {"shuffleTrackingTimeout", kindInt64},
}

// parseOverrides checks config overrides and resolves each to its place in
// the spec: spark.dynamicAllocation.* keys that the operator has a field for
// go to spec.dynamicAllocation, every other spark.* key to spec.sparkConf.
// An empty value removes the key. The result is sorted by key.
func parseOverrides(m map[string]string) ([]override, error) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]override, 0, len(keys))
	for _, k := range keys {
		v := m[k]
		o := override{key: k, value: v}
		if !strings.HasPrefix(k, "spark.") || len(k) == len("spark.") {
			return nil, fmt.Errorf("config override %q: not a Spark property (want spark.*, e.g. spark.dynamicAllocation.maxExecutors)", k)
		}
		if f, ok := dynamicAllocationFields[k]; ok {
			o.field = f.field
			if v != "" {
				p, err := parseField(f.kind, v)
				if err != nil {
					return nil, fmt.Errorf("config override %s=%q: %w", k, v, err)
				}
				o.parsed = p
			}
		}
		out = append(out, o)
	}
	return out, nil
}

func parseField(kind fieldKind, v string) (any, error) {
	switch kind {
	case kindBool:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("not true or false")
		}
		return b, nil
	case kindInt32:
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("not a count of executors")
		}
		return n, nil
	default:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("not a duration in milliseconds")
		}
		return n, nil
	}
}

// applyOverrides writes the overrides into an application object, keeping
// every other key the user set, and returns the keys whose value changed:
// none means the spec is as wanted and nothing needs writing.
func applyOverrides(obj map[string]any, ovs []override) ([]string, error) {
	var changed []string
	for _, o := range ovs {
		c, err := applyOne(obj, o)
		if err != nil {
			return nil, fmt.Errorf("override %s: %w", o.key, err)
		}
		if c {
			changed = append(changed, o.key)
		}
	}
	return changed, nil
}

func applyOne(obj map[string]any, o override) (bool, error) {
	if o.field != "" {
		path := []string{"spec", "dynamicAllocation", o.field}
		cur, found, err := unstructured.NestedFieldNoCopy(obj, path...)
		if err != nil {
			return false, err
		}
		if o.parsed == nil {
			if !found {
				return false, nil
			}
			unstructured.RemoveNestedField(obj, path...)
			return true, nil
		}
		if found && sameValue(cur, o.parsed) {
			return false, nil
		}
		return true, unstructured.SetNestedField(obj, o.parsed, path...)
	}
	conf, _, err := unstructured.NestedStringMap(obj, "spec", "sparkConf")
	if err != nil {
		return false, err
	}
	cur, found := conf[o.key]
	switch {
	case o.value == "" && !found, o.value != "" && found && cur == o.value:
		return false, nil
	case o.value == "":
		delete(conf, o.key)
	default:
		if conf == nil {
			conf = map[string]string{}
		}
		conf[o.key] = o.value
	}
	return true, unstructured.SetNestedStringMap(obj, conf, "spec", "sparkConf")
}

// sameValue compares a value read from the API server (JSON numbers decode
// to int64 or float64) with one parseField made.
func sameValue(cur, want any) bool {
	switch w := want.(type) {
	case bool:
		c, ok := cur.(bool)
		return ok && c == w
	case int64:
		switch c := cur.(type) {
		case int64:
			return c == w
		case float64:
			return c == float64(w)
		}
	}
	return false
}

// mergeOverrides adds next to prev; a later value for a key wins.
func mergeOverrides(prev, next map[string]string) map[string]string {
	out := make(map[string]string, len(prev)+len(next))
	for k, v := range prev {
		out[k] = v
	}
	for k, v := range next {
		out[k] = v
	}
	return out
}

// heldBack is an override the realizer refused to write because it would
// restart a live application.
type heldBack struct {
	app, state string
	keys       []string
}

func (h *heldBack) Error() string {
	return fmt.Sprintf("held back %s on SparkApplication %s (%s): the spark-operator kills and resubmits a live application "+
		"when its spec changes, losing its in-flight work; set allow-restart = true in the realizer's config to allow it",
		strings.Join(h.keys, ", "), h.app, stateLabel(h.state))
}

// overrideApps merges the request's overrides into the named applications.
func (r *Realizer) overrideApps(ctx context.Context, cfg Config, req sdk.OverridesRequest[string], names []string) (string, error) {
	ovs, err := parseOverrides(req.Overrides)
	if err != nil {
		return "", err
	}
	var done []string
	var errs []error
	for _, name := range names {
		var changed []string
		wrote, err := r.update(ctx, cfg.Namespace, name, func(obj *unstructured.Unstructured) error {
			v, err := viewOf(obj)
			if err != nil {
				return err
			}
			if v.DeletionTimestamp != nil {
				return errUnchanged
			}
			changed, err = applyOverrides(obj.Object, ovs)
			switch {
			case err != nil:
				return err
			case len(changed) == 0:
				return errUnchanged
			case live(v.state()) && !cfg.AllowRestart:
				return &heldBack{app: cfg.Namespace + "/" + name, state: v.state(), keys: describeKeys(changed, req.Overrides)}
			}
			return nil
		})
		switch {
		case err != nil:
			errs = append(errs, err)
		case !wrote:
			done = append(done, name+" unchanged")
		default:
			done = append(done, fmt.Sprintf("%s: set %s", name, strings.Join(describeKeys(changed, req.Overrides), ", ")))
		}
	}
	if cfg.Mode == ModeUnit {
		done = append(done, fmt.Sprintf("new units of %s get %d override keys", req.Target, len(r.targetOverrides(req.Target))))
	}
	summary := strings.Join(done, "; ")
	if len(names) == 0 && cfg.Mode == ModeUnit {
		summary = "no units yet; " + summary
	}
	if len(errs) > 0 {
		return summary, fmt.Errorf("realizer-spark: chain %q: config overrides (done: %s): %w", req.Target.Chain, summary, errors.Join(errs...))
	}
	return summary, nil
}

func describeKeys(keys []string, m map[string]string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = fmt.Sprintf("%s=%q", k, m[k])
	}
	return out
}
