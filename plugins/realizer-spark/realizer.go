// Package spark is ebb's Spark realizer, for the Kubeflow spark-operator's
// SparkApplication (sparkoperator.k8s.io/v1beta2).
//
// Unit mode (Amoro-compatible): one SparkApplication per Amoro Spark
// optimizer unit, named name-prefix + unit id; Target.Name is the optimizer
// group. Workload mode: Target.Name names one existing SparkApplication,
// whose executors follow the decision's desired capacity. Editing a running
// SparkApplication makes the operator kill and resubmit it, so changes that
// would do that are refused unless allow-restart is set. See README.md.
package spark

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/ebbscale/ebb/internal/kubeapi"
	"github.com/ebbscale/ebb/sdk"
)

// Name is the plugin's name in configurations.
const Name = "realizer-spark"

// Version of this plugin.
const Version = "0.1.0"

// Realizer is the Spark realizer. The zero value is not usable; use New.
type Realizer struct {
	mu         sync.Mutex
	cfg        Config
	restConfig *rest.Config
	kube       kubernetes.Interface
	dyn        dynamic.Interface
	// overrides are the config overrides accepted per target; units added
	// later are created with them. The runner replays them after a restart.
	overrides map[sdk.Target]map[string]string
	now       func() time.Time
	backoff   kubeapi.Backoff
	// beforeWrite, set by tests, runs between reading an application and
	// writing it back: the place another writer's change makes a conflict.
	beforeWrite func(name string)
}

var _ sdk.Realizer = (*Realizer)(nil)

// New returns an unconfigured realizer.
func New() *Realizer {
	return &Realizer{
		overrides: map[sdk.Target]map[string]string{},
		now:       time.Now,
		backoff:   kubeapi.DefaultBackoff,
	}
}

// WithRESTConfig makes Configure use cfg instead of a kubeconfig.
func (r *Realizer) WithRESTConfig(cfg *rest.Config) *Realizer {
	r.restConfig = rest.CopyConfig(cfg)
	return r
}

// Info implements sdk.Plugin.
func (r *Realizer) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{
		Name:            Name,
		Kind:            sdk.KindRealizer,
		Version:         Version,
		ProtocolVersion: sdk.ProtocolVersion,
		ConfigSchema:    configSchema(),
	}, nil
}

// Configure implements sdk.Plugin.
func (r *Realizer) Configure(_ context.Context, raw json.RawMessage) error {
	cfg, err := parseConfig(raw)
	if err != nil {
		return fmt.Errorf("realizer-spark: %w", err)
	}
	cl, err := cfg.Connect(r.restConfig, "ebb-realizer-spark/"+Version)
	if err != nil {
		return fmt.Errorf("realizer-spark: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cfg, r.kube, r.dyn = cfg, cl.Kube, cl.Dyn
	return nil
}

func (r *Realizer) state() (Config, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dyn == nil {
		return Config{}, errors.New("realizer-spark: not configured")
	}
	return r.cfg, nil
}

// Inventory implements sdk.Realizer.
func (r *Realizer) Inventory(ctx context.Context, target sdk.Target) ([]sdk.Unit, error) {
	cfg, err := r.state()
	if err != nil {
		return nil, err
	}
	if cfg.Mode == ModeWorkload {
		return r.workloadInventory(ctx, cfg, target)
	}
	return r.unitInventory(ctx, cfg, target)
}

// Realize implements sdk.Realizer. Every action is idempotent. Config and
// parallelism overrides in the decision are left to the methods the runner
// calls for them (RealizeConfigOverrides, RealizeParallelismOverrides), so a
// held-back override never stops the units' actions.
func (r *Realizer) Realize(ctx context.Context, req sdk.RealizeRequest) (string, error) {
	cfg, err := r.state()
	if err != nil {
		return "", err
	}
	if req.Decision.Vetoed {
		return "vetoed: nothing done", nil
	}
	if cfg.Mode == ModeWorkload {
		return r.workloadRealize(ctx, cfg, req)
	}
	return r.unitRealize(ctx, cfg, req)
}

// RealizeParallelismOverrides implements sdk.Realizer: Spark has none.
func (r *Realizer) RealizeParallelismOverrides(_ context.Context, req sdk.OverridesRequest[int64]) (string, error) {
	return "", fmt.Errorf("realizer-spark: chain %q (target %q): parallelism overrides have no meaning for Spark "+
		"(they set per-operator parallelism inside a Flink job; a Spark application is sized by its executors): "+
		"send config overrides of spark.dynamicAllocation.* instead, or use realizer-flink", req.Target.Chain, req.Target.Name)
}

// RealizeConfigOverrides implements sdk.Realizer. The overrides (spark.*
// keys; spark.dynamicAllocation.* go to spec.dynamicAllocation) merge into
// each application of the target, keeping every other key the user set. An
// application whose spec would not change is not written. One that is live
// (a driver may run) is left alone unless allow-restart is set, because the
// operator resubmits it on any spec change; the error then names each
// held-back override and why, and the runner records it in the decision log.
// In unit mode the overrides also shape units added later.
func (r *Realizer) RealizeConfigOverrides(ctx context.Context, req sdk.OverridesRequest[string]) (string, error) {
	cfg, err := r.state()
	if err != nil {
		return "", err
	}
	if _, err := parseOverrides(req.Overrides); err != nil {
		return "", fmt.Errorf("realizer-spark: chain %q: %w", req.Target.Chain, err)
	}
	var names []string
	if cfg.Mode == ModeWorkload {
		if err := checkName(req.Target.Name); err != nil {
			return "", err
		}
		names = []string{req.Target.Name}
	} else {
		r.mu.Lock()
		merged := mergeOverrides(r.overrides[req.Target], req.Overrides)
		r.overrides[req.Target] = merged
		r.mu.Unlock()
		units, err := r.unitApps(ctx, cfg, req.Target)
		if err != nil {
			return "", err
		}
		for _, u := range units {
			if u.GetDeletionTimestamp() == nil {
				names = append(names, u.GetName())
			}
		}
	}
	return r.overrideApps(ctx, cfg, req, names)
}

// targetOverrides returns the overrides accepted for a target.
func (r *Realizer) targetOverrides(t sdk.Target) map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.overrides[t]
}
