package shard

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/ebbscale/ebb/core/kstate"
	"github.com/ebbscale/ebb/internal/envtest"
)

func TestValidate(t *testing.T) {
	ok := Options{Shards: 4, LeaseDuration: 3 * time.Second, RenewDeadline: 2 * time.Second, RetryPeriod: time.Second}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		mod  func(*Options)
		want string
	}{
		{func(o *Options) { o.Shards = 0 }, "at least 1"},
		{func(o *Options) { o.RenewDeadline = o.LeaseDuration }, "shorter than the lease duration"},
		{func(o *Options) { o.RetryPeriod = o.RenewDeadline }, "shorter than the renew deadline"},
		{func(o *Options) { o.LeaseDuration = 500 * time.Millisecond }, "at least 1s"},
	} {
		o := ok
		tt.mod(&o)
		if err := o.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want %q", o, err, tt.want)
		}
	}
}

// TestTwoReplicas: two managers on a real API server split the shards
// evenly, never own a chain both, and when one stops the other takes its
// shards (released, so without waiting for them to expire).
func TestTwoReplicas(t *testing.T) {
	kube, err := kubernetes.NewForConfig(envtest.Start(t))
	if err != nil {
		t.Fatal(err)
	}
	var chains []string
	for i := range 40 {
		chains = append(chains, fmt.Sprintf("c-%d", i))
	}
	start := func(id string) (*Manager, context.CancelFunc, chan struct{}) {
		st, err := kstate.New(kstate.Options{Client: kube, Namespace: "default"})
		if err != nil {
			t.Fatal(err)
		}
		m, err := New(Options{Client: kube, Namespace: "default", ID: id, Shards: 8,
			LeaseDuration: 4 * time.Second, RenewDeadline: 3 * time.Second, RetryPeriod: 300 * time.Millisecond,
			Chains: func() []string { return chains }, Claim: st.Claim, Busy: st.Busy, Forget: st.Forget})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { _ = m.Run(ctx); close(done) }()
		t.Cleanup(func() { cancel(); <-done })
		return m, cancel, done
	}
	a, _, _ := start("a")
	b, stopB, doneB := start("b")
	wait := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("gave up waiting for %s: a owns %v, b owns %v", what, a.Owned(), b.Owned())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	owning := func(m *Manager) int {
		n := 0
		for _, c := range chains {
			if m.Owns(c) {
				n++
			}
		}
		return n
	}
	wait("4 shards each, every chain owned", func() bool {
		return len(a.Owned()) == 4 && len(b.Owned()) == 4 && owning(a)+owning(b) == len(chains)
	})
	for _, c := range chains {
		if a.Owns(c) && b.Owns(c) {
			t.Fatalf("chain %s owned by both", c)
		}
	}
	// a learns who holds b's shards when it next reads their Leases.
	wait("a to name an owner for every chain", func() bool {
		for _, c := range chains {
			if o := a.OwnerOf(c); o != "a" && o != "b" {
				return false
			}
		}
		return true
	})
	stopB()
	<-doneB
	wait("a to take every shard b released", func() bool { return len(a.Owned()) == 8 && owning(a) == len(chains) })
}
