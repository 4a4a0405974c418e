package k8s

import (
	"context"
	"encoding/json"
	"fmt"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/ebbscale/ebb/sdk"
)

var _ sdk.TargetIdentifier = (*Realizer)(nil)

// TargetIdentity names what a target means on the cluster: the API server,
// the namespace and the optimizer group (unit mode, whose units are found by
// the group label whatever their name prefix) or the workload. It reads the
// kubeconfig file but does not contact the cluster.
func (r *Realizer) TargetIdentity(_ context.Context, raw json.RawMessage, target string) (string, error) {
	cfg := defaultConfig()
	if err := sdk.DecodeConfig(raw, &cfg); err != nil {
		return "", fmt.Errorf("%s: %w", Name, err)
	}
	what := "optimizer group"
	if cfg.Mode == ModeWorkload {
		what = "workload"
	}
	return fmt.Sprintf("cluster %s, namespace %s, %s %s", clusterOf(cfg), cfg.Namespace, what, target), nil
}

// clusterOf is the API server the config points at, or as much of the
// config as names it when the kubeconfig cannot be read.
func clusterOf(cfg Config) string {
	if cfg.InCluster {
		return "in-cluster"
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if cfg.Kubeconfig != "" {
		rules.ExplicitPath = cfg.Kubeconfig
	}
	kc, err := rules.Load()
	if err == nil {
		name := cfg.Context
		if name == "" {
			name = kc.CurrentContext
		}
		if ctx, ok := kc.Contexts[name]; ok {
			if cl, ok := kc.Clusters[ctx.Cluster]; ok && cl.Server != "" {
				return cl.Server
			}
		}
	}
	return fmt.Sprintf("of kubeconfig %q context %q", cfg.Kubeconfig, cfg.Context)
}
