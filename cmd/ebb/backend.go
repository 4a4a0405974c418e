package main

import (
	"context"
	"fmt"
	"sync/atomic"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/ebbscale/ebb/core/config"
	"github.com/ebbscale/ebb/core/kstate"
	"github.com/ebbscale/ebb/core/runner"
	"github.com/ebbscale/ebb/core/shard"
	"github.com/ebbscale/ebb/core/state"
	"github.com/ebbscale/ebb/internal/kubeconfig"
)

// backend is where ebb run keeps its state: the bbolt file (one process),
// or ConfigMaps shared by replicas that split the chains through Leases.
type backend struct {
	store runner.Store
	// bolt is store with the bbolt backend, nil with kubernetes.
	bolt  *state.Store
	owner runner.Owner // nil with bbolt: this process owns every chain
	// leases runs the shard leases until its context ends; nil with bbolt.
	leases func(context.Context) error
	close  func() error
	where  string
	// chains is the running configuration's chain names, for the leases.
	chains atomic.Pointer[[]string]
}

func openBackend(a runArgs) (*backend, error) {
	b := &backend{}
	b.setConfig(a.cfg)
	st := a.cfg.State
	if st.Backend != config.BackendKubernetes {
		s, err := state.Open(a.statePath)
		if err != nil {
			return nil, err
		}
		s.SetRetention(retention(a.cfg))
		b.store, b.bolt, b.close, b.where = s, s, s.Close, a.statePath
		return b, nil
	}
	rc, err := kubeconfig.Load(nil, st.InCluster, st.Kubeconfig, st.Context)
	if err != nil {
		return nil, fmt.Errorf("state backend kubernetes: %w", err)
	}
	// Two clients, so two rate limiters: the leases' renewals must never
	// queue behind the state writes (each owned chain writes twice a round).
	rc.UserAgent = "ebb-runner"
	stateRC, leaseRC := rest.CopyConfig(rc), rest.CopyConfig(rc)
	stateRC.QPS, stateRC.Burst = 200, 400
	leaseRC.QPS, leaseRC.Burst = 100, 200
	kube, err := kubernetes.NewForConfig(stateRC)
	if err != nil {
		return nil, fmt.Errorf("state backend kubernetes: client: %w", err)
	}
	leaseKube, err := kubernetes.NewForConfig(leaseRC)
	if err != nil {
		return nil, fmt.Errorf("state backend kubernetes: client: %w", err)
	}
	id := shard.ReplicaID()
	var mgr *shard.Manager
	ks, err := kstate.New(kstate.Options{Client: kube, Namespace: st.Namespace, Prefix: st.Name, Keep: a.cfg.KeepDecisions,
		Fence:  fenceFunc(func(chain string) (kstate.Token, bool) { return mgr.Token(chain) }),
		Logger: a.logger.Named("state")})
	if err != nil {
		return nil, err
	}
	mgr, err = shard.New(shard.Options{
		Client: leaseKube, Namespace: st.Namespace, Prefix: st.Name, ID: id, Shards: st.Shards,
		LeaseDuration: st.LeaseDuration, RenewDeadline: st.RenewDeadline, RetryPeriod: st.RetryPeriod,
		Chains: func() []string { return *b.chains.Load() },
		Claim:  ks.Claim, Busy: ks.Busy, Forget: ks.Forget,
		Registerer: a.metrics.Registry, Logger: a.logger,
	})
	if err != nil {
		return nil, fmt.Errorf("state backend kubernetes: %w", err)
	}
	b.store, b.owner, b.leases, b.close = ks, mgr, mgr.Run, ks.Close
	b.where = fmt.Sprintf("kubernetes namespace %s (replica %s, %d shards)", st.Namespace, id, st.Shards)
	return b, nil
}

// setConfig tells the leases which chains there are (at start and reload).
func (b *backend) setConfig(cfg *config.Config) {
	names := make([]string, 0, len(cfg.Chains))
	for _, ch := range cfg.Chains {
		names = append(names, ch.Name)
	}
	b.chains.Store(&names)
}

// fenceFunc adapts the shard manager, made after the store, as its Fence.
type fenceFunc func(chain string) (kstate.Token, bool)

func (f fenceFunc) Token(chain string) (kstate.Token, bool) { return f(chain) }
