// Package flink is ebb's Flink realizer.
//
// Job mode rescales one running job in place through the JobManager's REST
// API (FLIP-291, adaptive scheduler, Flink 1.18+); Target.Name is the job's
// id or name. Deployment mode writes parallelism and config overrides into a
// FlinkDeployment or FlinkSessionJob of the Flink Kubernetes operator and
// sets a FlinkDeployment's TaskManager count through its scale subresource;
// Target.Name is the FlinkDeployment's name, or "flinksessionjob/<name>".
// Unit mode runs one Amoro Flink optimizer job per unit, as a FlinkDeployment
// in application mode or as a job on a session cluster; Target.Name is the
// optimizer group. See README.md.
package flink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"

	"github.com/ebbscale/ebb/internal/kubeapi"
	"github.com/ebbscale/ebb/sdk"
)

// Name is the plugin's name in configurations.
const Name = "realizer-flink"

// Version of this plugin.
const Version = "0.1.0"

// Realizer is the Flink realizer. Use New.
type Realizer struct {
	mu         sync.Mutex
	cfg        Config
	configured bool
	restConfig *rest.Config
	rc         *restClient
	dyn        dynamic.Interface
	// jarID caches the session cluster's id of the optimizer jar.
	jarID string
	// added are the units decisions added per target (job mode, see
	// jobInventory).
	added map[sdk.Target][]sdk.UnitAdd
	now   func() time.Time
	// backoff bounds the retries of Kubernetes API calls.
	backoff kubeapi.Backoff
}

var _ sdk.Realizer = (*Realizer)(nil)

// New returns an unconfigured realizer.
func New() *Realizer {
	return &Realizer{now: time.Now, added: map[sdk.Target][]sdk.UnitAdd{}, backoff: kubeapi.DefaultBackoff}
}

// WithRESTConfig makes Configure use cfg for Kubernetes instead of a
// kubeconfig: tests and embedding runners hand in their own.
func (r *Realizer) WithRESTConfig(cfg *rest.Config) *Realizer {
	r.restConfig = rest.CopyConfig(cfg)
	return r
}

// Info implements sdk.Plugin.
func (r *Realizer) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: Name, Kind: sdk.KindRealizer, Version: Version, ProtocolVersion: sdk.ProtocolVersion, ConfigSchema: configSchema()}, nil
}

// Configure implements sdk.Plugin.
func (r *Realizer) Configure(_ context.Context, raw json.RawMessage) error {
	cfg, err := parseConfig(raw)
	if err != nil {
		return fmt.Errorf("realizer-flink: %w", err)
	}
	var rc *restClient
	if cfg.RESTURL != "" {
		rc = newRESTClient(cfg.RESTURL)
	}
	var dyn dynamic.Interface
	if cfg.needsKube() {
		kc, err := cfg.RESTConfig(r.restConfig, "ebb-realizer-flink/"+Version)
		if err != nil {
			return fmt.Errorf("realizer-flink: %w", err)
		}
		if dyn, err = dynamic.NewForConfig(kc); err != nil {
			return fmt.Errorf("realizer-flink: kubernetes client: %w", err)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cfg, r.rc, r.dyn, r.configured, r.jarID = cfg, rc, dyn, true, ""
	return nil
}

func (r *Realizer) state() (Config, *restClient, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.configured {
		return Config{}, nil, errors.New("realizer-flink: not configured")
	}
	return r.cfg, r.rc, nil
}

func wrap(t sdk.Target, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("realizer-flink: %s: %w", t, err)
}

// Inventory implements sdk.Realizer.
func (r *Realizer) Inventory(ctx context.Context, target sdk.Target) ([]sdk.Unit, error) {
	cfg, rc, err := r.state()
	if err != nil {
		return nil, err
	}
	var units []sdk.Unit
	switch cfg.Mode {
	case ModeJob:
		units, err = r.jobInventory(ctx, cfg, rc, target)
	case ModeDeployment:
		units, err = r.deploymentInventory(ctx, cfg, target)
	default:
		units, err = r.unitInventory(ctx, cfg, rc, target)
	}
	return units, wrap(target, err)
}

// Realize implements sdk.Realizer; every action is idempotent.
func (r *Realizer) Realize(ctx context.Context, req sdk.RealizeRequest) (string, error) {
	cfg, rc, err := r.state()
	if err != nil {
		return "", err
	}
	if req.Decision.Vetoed {
		return "vetoed: nothing done", nil
	}
	var s string
	switch cfg.Mode {
	case ModeJob:
		s, err = r.jobRealize(ctx, cfg, rc, req)
	case ModeDeployment:
		s, err = r.deploymentRealize(ctx, cfg, req)
	default:
		s, err = r.unitRealize(ctx, cfg, rc, req)
	}
	return s, wrap(req.Target, err)
}

// RealizeParallelismOverrides implements sdk.Realizer (seed 002's
// realizeParallelismOverrides): per vertex, in place over REST in job mode,
// through pipeline.jobvertex-parallelism-overrides in deployment mode.
func (r *Realizer) RealizeParallelismOverrides(ctx context.Context, req sdk.OverridesRequest[int64]) (string, error) {
	cfg, rc, err := r.state()
	if err != nil {
		return "", err
	}
	if len(req.Overrides) == 0 {
		return "no overrides", nil
	}
	var s string
	switch cfg.Mode {
	case ModeJob:
		s, err = r.jobOverrides(ctx, cfg, rc, req.Target, req.Overrides)
	case ModeDeployment:
		s, err = r.deploymentOverrides(ctx, cfg, rc, req.Target, req.Overrides)
	default:
		err = errors.New("unit mode runs whole optimizer jobs; parallelism overrides need mode \"job\" or \"deployment\"")
	}
	return s, wrap(req.Target, err)
}

// RealizeConfigOverrides implements sdk.Realizer (seed 002's
// realizeConfigOverrides): merged into the resource's spec.flinkConfiguration
// in deployment mode. A running job's configuration cannot change over REST.
func (r *Realizer) RealizeConfigOverrides(ctx context.Context, req sdk.OverridesRequest[string]) (string, error) {
	cfg, _, err := r.state()
	if err != nil {
		return "", err
	}
	if len(req.Overrides) == 0 {
		return "no overrides", nil
	}
	if cfg.Mode != ModeDeployment {
		return "", wrap(req.Target, errors.New("config overrides change a job's Flink configuration, which only the Flink operator can redeploy: use mode \"deployment\""))
	}
	s, err := r.deploymentConfig(ctx, cfg, req.Target, req.Overrides)
	return s, wrap(req.Target, err)
}
