// Package kubeconfig finds the Kubernetes client configuration the
// Kubernetes-facing plugins use, the same way for all of them.
package kubeconfig

import (
	"fmt"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Load returns, in order of precedence: a copy of explicit (tests and
// embedding runners hand in their own), the pod's service account when
// inCluster is set, else the kubeconfig at path ("" means $KUBECONFIG, then
// ~/.kube/config) with context ("" means its current context).
func Load(explicit *rest.Config, inCluster bool, path, context string) (*rest.Config, error) {
	if explicit != nil {
		return rest.CopyConfig(explicit), nil
	}
	if inCluster {
		rc, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("in-cluster config: %w", err)
		}
		return rc, nil
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if path != "" {
		rules.ExplicitPath = path
	}
	rc, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules,
		&clientcmd.ConfigOverrides{CurrentContext: context}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("loading kubeconfig: %w", err)
	}
	return rc, nil
}
