// Package shard shares the chains among several ebb replicas: chains hash
// into a fixed number of shards, each owned by one replica at a time through
// a coordination.k8s.io Lease (the semantics of client-go's leader election:
// a holder renews within the lease duration, another may take the lease only
// once it has seen no renewal for a whole lease duration). Replicas find each
// other through one heartbeat Lease each and aim for ceil(shards/replicas)
// shards: extras are released when a replica joins, orphans taken when one
// leaves. A replica stops acting on a shard at its renew deadline, before the
// lease can expire for the others.
package shard

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	coordv1 "k8s.io/api/coordination/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ebbscale/ebb/core/kstate"
)

// Defaults: client-go's leader election defaults.
const (
	DefaultShards        = 32
	DefaultLeaseDuration = 15 * time.Second
	DefaultRenewDeadline = 10 * time.Second
	DefaultRetryPeriod   = 2 * time.Second
)

// Labels of the Leases.
const (
	LabelRole    = "ebb.io/role"
	RoleShard    = "shard"
	RoleReplica  = "replica"
	LabelPrefix  = "ebb.io/instance"
	AnnotationID = "ebb.io/replica"
)

// Of is the shard of a chain.
func Of(chain string, shards int) int {
	h := fnv.New32a()
	h.Write([]byte(chain))
	return int(h.Sum32() % uint32(shards))
}

// ReplicaID names this process: $POD_NAME in a pod, else host name and pid.
func ReplicaID() string {
	if p := os.Getenv("POD_NAME"); p != "" {
		return p
	}
	h, _ := os.Hostname()
	if h == "" {
		h = "ebb"
	}
	return fmt.Sprintf("%s-%d", h, os.Getpid())
}

// Options configure a Manager.
type Options struct {
	Client    kubernetes.Interface
	Namespace string
	// Prefix starts the Leases' names ("ebb").
	Prefix string
	ID     string
	Shards int
	// LeaseDuration > RenewDeadline > RetryPeriod, as in client-go.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// Chains lists the running configuration's chains.
	Chains func() []string
	// Claim writes this replica's token into a chain's state before the
	// chain counts as owned (kstate.Store.Claim).
	Claim func(chain string, tok kstate.Token) error
	// Busy tells whether a chain is between commit and finish of a round;
	// a shard is released only once none of its chains is (kstate.Store.Busy).
	Busy func(chain string) bool
	// Forget drops what the store caches of a chain this replica stopped
	// owning.
	Forget     func(chain string)
	Registerer prometheus.Registerer
	Logger     hclog.Logger
}

// Validate checks the durations and counts.
func (o Options) Validate() error {
	switch {
	case o.Shards < 1:
		return fmt.Errorf("shards %d: must be at least 1", o.Shards)
	case o.LeaseDuration < time.Second:
		return fmt.Errorf("lease duration %s: must be at least 1s (a Lease counts whole seconds)", o.LeaseDuration)
	case o.RenewDeadline >= o.LeaseDuration:
		return fmt.Errorf("renew deadline %s must be shorter than the lease duration %s: a replica must stop acting before another may take over", o.RenewDeadline, o.LeaseDuration)
	case o.RetryPeriod <= 0 || o.RetryPeriod >= o.RenewDeadline:
		return fmt.Errorf("retry period %s must be positive and shorter than the renew deadline %s", o.RetryPeriod, o.RenewDeadline)
	}
	return nil
}

// Manager holds this replica's shards.
type Manager struct {
	opts Options
	log  hclog.Logger

	changes *prometheus.CounterVec
	owned   prometheus.Gauge

	mu   sync.Mutex
	held map[int]*held
	// seen is, by Lease name, its last resourceVersion and when this
	// replica saw it change: expiry is judged on this replica's clock.
	seen map[string]observation
	// holders is each shard's holder as last listed ("" when free).
	holders map[int]string
	live    []string
	self    *coordv1.Lease // this replica's heartbeat Lease as last written
}

type held struct {
	lease *coordv1.Lease
	epoch int64
	// until is when this replica stops acting on the shard unless a
	// renewal succeeds: the time the last successful renewal was sent
	// plus the renew deadline, on the monotonic clock.
	until     time.Time
	claimed   map[string]bool
	releasing bool
}

type observation struct {
	rv     string
	holder string
	at     time.Time
}

// New returns a manager; Run starts it.
func New(opts Options) (*Manager, error) {
	if opts.Prefix == "" {
		opts.Prefix = "ebb"
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	m := &Manager{opts: opts, log: opts.Logger.Named("shard"), held: map[int]*held{},
		seen: map[string]observation{}, holders: map[int]string{}}
	m.changes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ebb_shard_ownership_changes_total",
		Help: "Shards this replica acquired, released (handed over on rebalance) or lost (lease not renewed in time, or taken).",
	}, []string{"change"})
	m.owned = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "ebb_shards_owned",
		Help: "Shards of chains this replica owns now.",
	})
	if opts.Registerer != nil {
		for _, c := range []prometheus.Collector{m.changes, m.owned} {
			if err := opts.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("registering shard metrics: %w", err)
			}
		}
	}
	return m, nil
}

// ID is this replica's identity.
func (m *Manager) ID() string { return m.opts.ID }

// Owns is true while this replica may start an evaluation of chain.
func (m *Manager) Owns(chain string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	h := m.valid(Of(chain, m.opts.Shards))
	return h != nil && !h.releasing && h.claimed[chain]
}

// Token is the fencing token for a write to chain's state: valid while the
// shard's lease is, and during a release for a round still finishing.
func (m *Manager) Token(chain string) (kstate.Token, bool) {
	shard := Of(chain, m.opts.Shards)
	m.mu.Lock()
	h := m.valid(shard)
	m.mu.Unlock()
	if h == nil {
		return kstate.Token{}, false
	}
	if h.releasing && (m.opts.Busy == nil || !m.opts.Busy(chain)) {
		return kstate.Token{}, false
	}
	return kstate.Token{Owner: m.opts.ID, Shard: shard, Shards: m.opts.Shards, Epoch: h.epoch}, true
}

// OwnerOf is the replica that held chain's shard when last seen.
func (m *Manager) OwnerOf(chain string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.holders[Of(chain, m.opts.Shards)]
}

// valid returns the held shard whose renew deadline has not passed. m.mu
// must be held.
func (m *Manager) valid(shard int) *held {
	h := m.held[shard]
	if h == nil || !time.Now().Before(h.until) {
		return nil
	}
	return h
}

// Owned lists the shards held now, sorted.
func (m *Manager) Owned() []int {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []int
	for s := range m.held {
		if m.valid(s) != nil {
			out = append(out, s)
		}
	}
	sort.Ints(out)
	return out
}

// Live lists the replicas this one saw alive at its last round.
func (m *Manager) Live() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.live...)
}

// Run keeps the leases until ctx ends, then releases them (after the rounds
// in flight finish) and removes the heartbeat, so the others take over at
// once rather than after a lease duration.
func (m *Manager) Run(ctx context.Context) error {
	// Renewals have a loop of their own, as each of client-go's electors
	// does: claims and acquisitions on a slow API server must not push
	// them past the renew deadline.
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		m.every(ctx, func() {
			if err := m.heartbeat(ctx); err != nil {
				m.log.Warn("heartbeat lease not renewed", "error", err)
			}
			m.renew(ctx)
		})
	}()
	m.every(ctx, func() { m.round(ctx) })
	<-renewed
	m.shutdown()
	return nil
}

// every runs f each retry period until ctx ends.
func (m *Manager) every(ctx context.Context, f func()) {
	t := time.NewTicker(m.opts.RetryPeriod)
	defer t.Stop()
	for {
		f()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// round is one pass: drop shards past their deadline, list the Leases,
// claim the chains of new shards, then release extras or take free shards.
func (m *Manager) round(ctx context.Context) {
	defer func() { m.owned.Set(float64(len(m.Owned()))) }()
	m.expire()
	leases, err := m.list(ctx)
	if err != nil {
		m.log.Warn("cannot list leases; keeping the shards held until their renew deadline", "error", err)
		return
	}
	m.observe(leases)
	m.claim()
	m.balance(ctx, leases)
	m.claim() // the shards just taken start acting this round, not next
}

func (m *Manager) call(ctx context.Context) (context.Context, context.CancelFunc) {
	// No call may outlast the renew deadline: a renewal answered after it
	// would extend nothing.
	return context.WithTimeout(ctx, m.opts.RenewDeadline/2)
}

func (m *Manager) shardName(i int) string {
	return fmt.Sprintf("%s-shard-%d-of-%d", m.opts.Prefix, i, m.opts.Shards)
}

var notDNS = regexp.MustCompile(`[^a-z0-9.-]+`)

func (m *Manager) replicaName() string {
	id := strings.Trim(notDNS.ReplaceAllString(strings.ToLower(m.opts.ID), "-"), "-.")
	name := m.opts.Prefix + "-replica-" + id
	if len(name) > 253 {
		name = name[:253]
	}
	return name
}

func (m *Manager) labels(role string) map[string]string {
	return map[string]string{kstate.LabelManagedBy: kstate.ManagedBy, LabelRole: role, LabelPrefix: m.opts.Prefix}
}

// expire drops the shards whose renew deadline passed: this replica
// already stopped acting on them (Owns and Token say so).
func (m *Manager) expire() {
	m.mu.Lock()
	var lost []int
	var untils []time.Time
	for s, h := range m.held {
		if !time.Now().Before(h.until) {
			lost = append(lost, s)
			untils = append(untils, h.until)
			delete(m.held, s)
		}
	}
	m.mu.Unlock()
	for i, s := range lost {
		m.dropped(s, "lost", untils[i], "lease not renewed before the renew deadline")
	}
}

// dropped records that this replica stopped acting on a shard at until.
func (m *Manager) dropped(shard int, change string, until time.Time, why string) {
	m.changes.WithLabelValues(change).Inc()
	m.log.Info("shard "+change, "shard", shard, "until", until.UTC().Format(time.RFC3339Nano), "why", why)
	if m.opts.Forget != nil {
		for _, c := range m.chainsOf(shard) {
			m.opts.Forget(c)
		}
	}
}

func (m *Manager) chainsOf(shard int) []string {
	var out []string
	if m.opts.Chains == nil {
		return nil
	}
	for _, c := range m.opts.Chains() {
		if Of(c, m.opts.Shards) == shard {
			out = append(out, c)
		}
	}
	return out
}

// observe notes which leases changed and computes the live replicas and
// the shards' holders.
func (m *Manager) observe(leases []coordv1.Lease) {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	live := map[string]bool{m.opts.ID: true}
	holders := map[int]string{}
	for i := range leases {
		l := &leases[i]
		o, ok := m.seen[l.Name]
		if !ok || o.rv != l.ResourceVersion {
			o = observation{rv: l.ResourceVersion, holder: holder(l), at: now}
			m.seen[l.Name] = o
		}
		fresh := o.holder != "" && now.Sub(o.at) < m.opts.LeaseDuration
		switch l.Labels[LabelRole] {
		case RoleReplica:
			if fresh {
				live[o.holder] = true
			}
		case RoleShard:
			if s, ok := m.shardOf(l.Name); ok && fresh {
				holders[s] = o.holder
			}
		}
	}
	m.live = m.live[:0]
	for id := range live {
		m.live = append(m.live, id)
	}
	sort.Strings(m.live)
	for s := range m.held {
		if m.valid(s) != nil {
			holders[s] = m.opts.ID
		}
	}
	m.holders = holders
}

func (m *Manager) shardOf(name string) (int, bool) {
	var i, n int
	if _, err := fmt.Sscanf(strings.TrimPrefix(name, m.opts.Prefix+"-"), "shard-%d-of-%d", &i, &n); err != nil || n != m.opts.Shards || i < 0 || i >= n {
		return 0, false
	}
	return i, true
}

// claim writes this replica's token into the state of every chain of a
// held shard not yet claimed (a new shard, or chains added by a reload).
func (m *Manager) claim() {
	m.mu.Lock()
	type todo struct {
		shard int
		chain string
		tok   kstate.Token
	}
	var work []todo
	for s, h := range m.held {
		if m.valid(s) == nil || h.releasing {
			continue
		}
		for _, c := range m.chainsOf(s) {
			if !h.claimed[c] {
				work = append(work, todo{s, c, kstate.Token{Owner: m.opts.ID, Shard: s, Shards: m.opts.Shards, Epoch: h.epoch}})
			}
		}
	}
	m.mu.Unlock()
	sem := make(chan struct{}, claimWorkers)
	var wg sync.WaitGroup
	for _, w := range work {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			m.claimOne(w.shard, w.chain, w.tok)
		}()
	}
	wg.Wait()
}

// claimWorkers bounds the claims in flight; maxAcquire bounds the shards
// taken in one round, so that a round (and the renewals of the next) stays
// well inside the renew deadline even when one replica takes every shard.
const (
	claimWorkers = 8
	maxAcquire   = 8
)

// claimOne claims one chain. A fenced claim means a newer owner has
// written the chain: the shard is not this replica's any more.
func (m *Manager) claimOne(shard int, chain string, tok kstate.Token) {
	var err error
	if m.opts.Claim != nil {
		err = m.opts.Claim(chain, tok)
	}
	m.mu.Lock()
	h := m.held[shard]
	if h == nil || h.epoch != tok.Epoch {
		m.mu.Unlock()
		return
	}
	if err == nil {
		h.claimed[chain] = true
		m.mu.Unlock()
		return
	}
	fenced := errors.Is(err, kstate.ErrFenced)
	if fenced {
		delete(m.held, shard)
	}
	m.mu.Unlock()
	m.log.Warn("cannot claim a chain of a held shard", "shard", shard, "chain", chain, "error", err)
	if fenced {
		m.dropped(shard, "lost", earliest(h.until, time.Now()), err.Error())
	}
}

// balance releases shards beyond this replica's share, or takes free ones
// up to it. The share is ceil(shards/live replicas); which shards go where is
// rendezvous hashing, so replicas agree without talking and few shards move.
func (m *Manager) balance(ctx context.Context, leases []coordv1.Lease) {
	m.mu.Lock()
	live := append([]string(nil), m.live...)
	share := (m.opts.Shards + len(live) - 1) / len(live)
	var mine []int
	for s := range m.held {
		mine = append(mine, s)
	}
	m.mu.Unlock()
	prefer := func(s int) bool { return preferred(s, live) == m.opts.ID }
	// Least wanted first: shards another replica is preferred for.
	sort.Slice(mine, func(i, j int) bool {
		pi, pj := prefer(mine[i]), prefer(mine[j])
		if pi != pj {
			return !pi
		}
		return mine[i] > mine[j]
	})
	if extra := len(mine) - share; extra > 0 {
		for _, s := range mine[:extra] {
			m.release(ctx, s)
		}
		return
	}
	want := min(share-len(mine), maxAcquire)
	if want <= 0 {
		return
	}
	byName := map[string]*coordv1.Lease{}
	for i := range leases {
		byName[leases[i].Name] = &leases[i]
	}
	var free []int
	m.mu.Lock()
	for s := 0; s < m.opts.Shards; s++ {
		if _, ok := m.held[s]; ok {
			continue
		}
		if l := byName[m.shardName(s)]; l != nil {
			o := m.seen[l.Name]
			if o.holder != "" && time.Since(o.at) < m.opts.LeaseDuration {
				continue
			}
		}
		free = append(free, s)
	}
	m.mu.Unlock()
	sort.SliceStable(free, func(i, j int) bool { return prefer(free[i]) && !prefer(free[j]) })
	for _, s := range free {
		if want == 0 {
			break
		}
		if m.acquire(ctx, s, byName[m.shardName(s)]) {
			want--
		}
	}
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// preferred is the live replica a shard goes to by rendezvous hashing.
func preferred(shard int, live []string) string {
	best, bestH := "", uint32(0)
	for _, id := range live {
		h := fnv.New32a()
		fmt.Fprintf(h, "%d\x00%s", shard, id)
		if v := h.Sum32(); best == "" || v > bestH {
			best, bestH = id, v
		}
	}
	return best
}
