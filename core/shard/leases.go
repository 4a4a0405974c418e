package shard

import (
	"context"
	"fmt"
	"sync"
	"time"

	coordv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/ebbscale/ebb/core/kstate"
)

// The Lease API calls: the heartbeat, renewals, taking and giving up a
// shard. Their semantics follow client-go's tools/leaderelection
// (resourcelock/leaselock.go): holder, renew time and transitions in the
// Lease's spec, every write optimistic on its resourceVersion.

func (m *Manager) leaseSpec(transitions int32) coordv1.LeaseSpec {
	now := metav1.NewMicroTime(time.Now())
	secs := int32(m.opts.LeaseDuration / time.Second)
	id := m.opts.ID
	return coordv1.LeaseSpec{HolderIdentity: &id, LeaseDurationSeconds: &secs, AcquireTime: &now, RenewTime: &now, LeaseTransitions: &transitions}
}

// heartbeat renews this replica's own Lease, creating it at first.
func (m *Manager) heartbeat(ctx context.Context) error {
	leases := m.opts.Client.CoordinationV1().Leases(m.opts.Namespace)
	ctx, cancel := m.call(ctx)
	defer cancel()
	m.mu.Lock()
	self := m.self
	m.mu.Unlock()
	var out *coordv1.Lease
	var err error
	if self == nil {
		l := &coordv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: m.replicaName(), Labels: m.labels(RoleReplica),
			Annotations: map[string]string{AnnotationID: m.opts.ID}}, Spec: m.leaseSpec(0)}
		out, err = leases.Create(ctx, l, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			// Left by an earlier process of the same name: take it over.
			if out, err = leases.Get(ctx, l.Name, metav1.GetOptions{}); err == nil {
				out.Spec = m.leaseSpec(0)
				out, err = leases.Update(ctx, out, metav1.UpdateOptions{})
			}
		}
	} else {
		l := self.DeepCopy()
		now := metav1.NewMicroTime(time.Now())
		l.Spec.RenewTime = &now
		out, err = leases.Update(ctx, l, metav1.UpdateOptions{})
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			m.self = nil
		}
		return err
	}
	m.self = out
	return nil
}

func (m *Manager) list(ctx context.Context) ([]coordv1.Lease, error) {
	ctx, cancel := m.call(ctx)
	defer cancel()
	sel := fmt.Sprintf("%s=%s,%s=%s", kstate.LabelManagedBy, kstate.ManagedBy, LabelPrefix, m.opts.Prefix)
	l, err := m.opts.Client.CoordinationV1().Leases(m.opts.Namespace).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("listing leases: %w", err)
	}
	return l.Items, nil
}

func holder(l *coordv1.Lease) string {
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// renew renews every held shard. A conflict means someone else wrote the
// lease: the shard is lost at once.
func (m *Manager) renew(ctx context.Context) {
	m.mu.Lock()
	var shards []int
	for s := range m.held {
		shards = append(shards, s)
	}
	m.mu.Unlock()
	// In parallel: one slow answer must not push the others past their
	// renew deadline. At most Shards goroutines, each bounded by call().
	var wg sync.WaitGroup
	for _, s := range shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.renewOne(ctx, s)
		}()
	}
	wg.Wait()
}

func (m *Manager) renewOne(ctx context.Context, s int) {
	m.mu.Lock()
	h := m.held[s]
	m.mu.Unlock()
	if h == nil {
		return
	}
	l := h.lease.DeepCopy()
	sent := time.Now()
	now := metav1.NewMicroTime(sent)
	l.Spec.RenewTime = &now
	cctx, cancel := m.call(ctx)
	out, err := m.opts.Client.CoordinationV1().Leases(m.opts.Namespace).Update(cctx, l, metav1.UpdateOptions{})
	cancel()
	m.mu.Lock()
	switch {
	case err == nil:
		if m.held[s] == h {
			h.lease, h.until = out, sent.Add(m.opts.RenewDeadline)
		}
		m.mu.Unlock()
	case apierrors.IsConflict(err) || apierrors.IsNotFound(err):
		mine := m.held[s] == h
		if mine {
			delete(m.held, s)
		}
		m.mu.Unlock()
		if mine { // else released meanwhile
			m.dropped(s, "lost", earliest(h.until, time.Now()), "lease written by another replica: "+err.Error())
		}
	default:
		m.mu.Unlock()
		m.log.Warn("shard lease not renewed; retrying until the renew deadline", "shard", s, "until", h.until.UTC().Format(time.RFC3339Nano), "error", err)
	}
}

// acquire takes a free shard: a new Lease, or the old one with this
// replica as holder and the epoch (leaseTransitions) one higher. The
// update carries the resourceVersion this replica listed, so two replicas
// taking the same shard cannot both win.
func (m *Manager) acquire(ctx context.Context, s int, old *coordv1.Lease) bool {
	leases := m.opts.Client.CoordinationV1().Leases(m.opts.Namespace)
	cctx, cancel := m.call(ctx)
	defer cancel()
	sent := time.Now()
	var out *coordv1.Lease
	var err error
	if old == nil {
		l := &coordv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: m.shardName(s), Labels: m.labels(RoleShard)}, Spec: m.leaseSpec(1)}
		out, err = leases.Create(cctx, l, metav1.CreateOptions{})
	} else {
		l := old.DeepCopy()
		var tr int32
		if l.Spec.LeaseTransitions != nil {
			tr = *l.Spec.LeaseTransitions
		}
		l.Spec = m.leaseSpec(tr + 1)
		out, err = leases.Update(cctx, l, metav1.UpdateOptions{})
	}
	if err != nil {
		if !apierrors.IsConflict(err) && !apierrors.IsAlreadyExists(err) {
			m.log.Warn("cannot take a free shard", "shard", s, "error", err)
		}
		return false
	}
	m.mu.Lock()
	m.held[s] = &held{lease: out, epoch: int64(*out.Spec.LeaseTransitions), until: sent.Add(m.opts.RenewDeadline), claimed: map[string]bool{}}
	m.holders[s] = m.opts.ID
	m.mu.Unlock()
	m.changes.WithLabelValues("acquired").Inc()
	m.log.Info("shard acquired", "shard", s, "epoch", *out.Spec.LeaseTransitions, "at", time.Now().UTC().Format(time.RFC3339Nano))
	return true
}

// release hands a shard over: no new round starts on it at once; once no
// round of it is between commit and finish, the lease is given up (holder
// cleared, as client-go's ReleaseOnCancel does) so the next owner need not
// wait for it to expire.
func (m *Manager) release(ctx context.Context, s int) {
	m.mu.Lock()
	h := m.held[s]
	if h == nil {
		m.mu.Unlock()
		return
	}
	h.releasing = true
	m.mu.Unlock()
	for _, c := range m.chainsOf(s) {
		if m.opts.Busy != nil && m.opts.Busy(c) {
			return // next round
		}
	}
	m.mu.Lock()
	delete(m.held, s)
	m.mu.Unlock()
	// From here on nothing of the shard acts: log the hand-over now.
	m.dropped(s, "released", time.Now(), "rebalancing")
	l := h.lease.DeepCopy()
	empty, one := "", int32(1)
	l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds = &empty, &one
	cctx, cancel := m.call(ctx)
	defer cancel()
	if _, err := m.opts.Client.CoordinationV1().Leases(m.opts.Namespace).Update(cctx, l, metav1.UpdateOptions{}); err != nil {
		m.log.Warn("cannot clear a released shard lease; it expires on its own", "shard", s, "error", err)
	}
}

// shutdown releases every shard and deletes the heartbeat Lease. The
// runner has stopped its chains by now.
func (m *Manager) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), m.opts.RenewDeadline)
	defer cancel()
	m.mu.Lock()
	var shards []int
	for s := range m.held {
		shards = append(shards, s)
	}
	m.mu.Unlock()
	for _, s := range shards {
		m.release(ctx, s)
	}
	cctx, ccancel := m.call(ctx)
	defer ccancel()
	if err := m.opts.Client.CoordinationV1().Leases(m.opts.Namespace).Delete(cctx, m.replicaName(), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		m.log.Warn("cannot delete the heartbeat lease; it expires on its own", "error", err)
	}
}
