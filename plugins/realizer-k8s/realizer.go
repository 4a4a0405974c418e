// Package k8s is ebb's Kubernetes realizer.
//
// Unit mode (Amoro-compatible): one Deployment per optimizer unit, replicas 1,
// named name-prefix + unit id. Target.Name is the optimizer group; Target.Chain
// goes into a label. Workload mode: Target.Name names a resource with a scale
// subresource, "<resource>[.<version>].<group>/<name>" as kubectl writes it
// ("deployments.apps/web", "statefulsets.apps/db", "flinkjobs.v1.example.com/etl",
// "deployments/web" when the resource name is unambiguous). See README.md.
package k8s

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/ebbscale/ebb/internal/kubeapi"
	"github.com/ebbscale/ebb/sdk"
)

// Name is the plugin's name in configurations.
const Name = "realizer-k8s"

// Version of this plugin.
const Version = "0.1.0"

// Realizer is the Kubernetes realizer. The zero value is not usable; use New.
type Realizer struct {
	mu  sync.Mutex
	cfg Config
	// restConfig, when set before Configure, is used instead of loading a
	// kubeconfig: tests and an embedding runner hand in their own.
	restConfig *rest.Config
	kube       kubernetes.Interface
	dyn        dynamic.Interface
	mapper     *restmapper.DeferredDiscoveryRESTMapper
	// overrides are config overrides per target (unit mode); they shape the
	// template of units added later.
	overrides map[sdk.Target]map[string]string
	now       func() time.Time
	backoff   kubeapi.Backoff
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

// WithRESTConfig makes Configure use cfg instead of a kubeconfig or the
// in-cluster config.
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
		return fmt.Errorf("realizer-k8s: %w", err)
	}
	cl, err := cfg.Connect(r.restConfig, "ebb-realizer-k8s/"+Version)
	if err != nil {
		return fmt.Errorf("realizer-k8s: %w", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cfg, r.kube, r.dyn = cfg, cl.Kube, cl.Dyn
	r.mapper = restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(cl.Kube.Discovery()))
	return nil
}

// state returns the configuration and clients, or an error before Configure.
func (r *Realizer) state() (Config, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.kube == nil {
		return Config{}, errors.New("realizer-k8s: not configured")
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

// Realize implements sdk.Realizer. Every action is idempotent, so the runner
// may retry a failed decision with the same request id.
func (r *Realizer) Realize(ctx context.Context, req sdk.RealizeRequest) (string, error) {
	cfg, err := r.state()
	if err != nil {
		return "", err
	}
	if req.Decision.Vetoed {
		return "vetoed: nothing done", nil
	}
	if len(req.Decision.ParallelismOverrides) > 0 {
		return "", errParallelism
	}
	if len(req.Decision.ConfigOverrides) > 0 {
		if _, err := r.RealizeConfigOverrides(ctx, sdk.OverridesRequest[string]{
			Target: req.Target, Overrides: req.Decision.ConfigOverrides, RequestID: req.RequestID,
		}); err != nil {
			return "", err
		}
	}
	if cfg.Mode == ModeWorkload {
		return r.workloadRealize(ctx, cfg, req)
	}
	return r.unitRealize(ctx, r.unitConfig(cfg, req.Target), req)
}

var errParallelism = errors.New("realizer-k8s: parallelism overrides are not a Kubernetes concept " +
	"(they set per-operator parallelism inside a Flink job); use realizer-flink for them")

// RealizeParallelismOverrides implements sdk.Realizer: Kubernetes has no such thing.
func (r *Realizer) RealizeParallelismOverrides(context.Context, sdk.OverridesRequest[int64]) (string, error) {
	return "", errParallelism
}

// RealizeConfigOverrides implements sdk.Realizer. In unit mode the overrides
// (keys: see overridableKeys) change the template of units added from now on;
// running units are left alone. They are held by this plugin process, which
// the runner reconfigures and replays after a restart.
func (r *Realizer) RealizeConfigOverrides(_ context.Context, req sdk.OverridesRequest[string]) (string, error) {
	cfg, err := r.state()
	if err != nil {
		return "", err
	}
	if cfg.Mode != ModeUnit {
		return "", errors.New("realizer-k8s: config overrides apply to unit mode only; in workload mode change the workload's own spec")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	merged := map[string]string{}
	for k, v := range r.overrides[req.Target] {
		merged[k] = v
	}
	for k, v := range req.Overrides {
		merged[k] = v
	}
	if _, err := cfg.withOverrides(merged); err != nil {
		return "", fmt.Errorf("realizer-k8s: %w", err)
	}
	r.overrides[req.Target] = merged
	return fmt.Sprintf("config overrides for new units of %s: %d keys", req.Target, len(merged)), nil
}

// unitConfig is the configuration with the target's overrides applied; they
// were validated when they were accepted.
func (r *Realizer) unitConfig(cfg Config, t sdk.Target) Config {
	r.mu.Lock()
	ov := r.overrides[t]
	r.mu.Unlock()
	if len(ov) == 0 {
		return cfg
	}
	out, err := cfg.withOverrides(ov)
	if err != nil {
		return cfg
	}
	return out
}
