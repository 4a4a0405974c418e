// Package kstate keeps what the runner must not forget (each chain's
// evaluator state, outcomes and a bounded decision log) in Kubernetes
// ConfigMaps, one per chain, so that it survives the node and several
// replicas can share the chains. Every write is optimistic (resourceVersion)
// and fenced: the object records the owner and lease epoch that wrote it
// last, and a replica whose epoch is older, or whose lease is no longer
// valid, gets ErrFenced and must not realize the round.
package kstate

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/ebbscale/ebb/core/state"
)

// ErrFenced means this replica no longer owns the chain: its lease lapsed,
// or another replica with a newer epoch has written the chain's state. The
// round that gets it stops before realizing anything.
var ErrFenced = errors.New("fenced: this replica no longer owns the chain")

// Token is the fencing token a write carries: who writes, for which shard,
// under which epoch of the shard's Lease (its leaseTransitions when this
// replica acquired it). Epochs of one shard only grow.
type Token struct {
	Owner string `json:"owner"`
	Shard int    `json:"shard"`
	// Shards is the shard count the shard number belongs to: epochs of
	// different shardings do not compare.
	Shards int   `json:"shards"`
	Epoch  int64 `json:"epoch"`
}

// newer is true when t was issued after o for the same shard.
func (t Token) newer(o Token) bool {
	if t.Shards != o.Shards || t.Shard != o.Shard {
		return false
	}
	return t.Epoch > o.Epoch
}

// Fence issues the token under which this replica may write a chain now;
// ok is false when it does not own the chain (then nothing is written).
type Fence interface {
	Token(chain string) (tok Token, ok bool)
}

// Limits of one ConfigMap. The API server refuses a ConfigMap whose data
// passes 1 MiB (corev1 validation, MaxSecretSize); the budget leaves room
// for metadata and the fence.
const (
	ConfigMapLimit = 1 << 20
	DataBudget     = 900 << 10
	// DefaultKeep is how many decisions per chain the log keeps: fewer
	// than the bbolt file's, because every write rewrites the whole object.
	DefaultKeep = 100
)

// Options configure a Store.
type Options struct {
	Client    kubernetes.Interface
	Namespace string
	// Prefix starts every object's name ("ebb"), so that two ebb
	// installations can share a namespace.
	Prefix string
	// Keep bounds the decision log of each chain (DefaultKeep); older
	// records are dropped, and more when the object nears DataBudget.
	Keep int
	// Fence, when set, fences every write; nil means this process is the
	// only writer (resourceVersion conflicts still fail a write).
	Fence Fence
	// Timeout bounds each API call (default 10s).
	Timeout time.Duration
	// Logger logs every committed round at debug, with the time its
	// fenced write began: the audit trail of who acted on what, when.
	Logger hclog.Logger
}

// Store is the Kubernetes state backend. It is safe for concurrent use.
type Store struct {
	opts Options

	mu      sync.Mutex
	entries map[string]*entry
	// busy holds, with when, the chains between a Commit and the write
	// that finishes the round: their shard is not handed over until it is
	// done, or until maxBusy passed (a round never finishes that late: the
	// realizer's calls have deadlines).
	busy map[string]time.Time
}

// entry caches a chain's object as this replica last wrote or read it: while
// it owns the chain nobody else writes it, so rounds need no read.
type entry struct {
	mu sync.Mutex
	cm *corev1.ConfigMap // nil: not read yet
	// absent is true when the object was read and does not exist.
	absent bool
}

// New returns a store; it touches the API server on first use.
func New(opts Options) (*Store, error) {
	if opts.Client == nil {
		return nil, errors.New("kubernetes state: no client")
	}
	if opts.Namespace == "" {
		return nil, errors.New("kubernetes state: no namespace")
	}
	if opts.Prefix == "" {
		opts.Prefix = "ebb"
	}
	if opts.Keep <= 0 {
		opts.Keep = DefaultKeep
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	return &Store{opts: opts, entries: map[string]*entry{}, busy: map[string]time.Time{}}, nil
}

func (s *Store) entry(chain string) *entry {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[chain]
	if e == nil {
		e = &entry{}
		s.entries[chain] = e
	}
	return e
}

func (s *Store) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.opts.Timeout)
}

// Where names a chain's object, for messages and operators.
func (s *Store) Where(chain string) string {
	return fmt.Sprintf("ConfigMap %s/%s", s.opts.Namespace, ObjectName(s.opts.Prefix, chain))
}

// read fetches a chain's object into e. e.mu must be held.
func (s *Store) read(chain string, e *entry) error {
	ctx, cancel := s.ctx()
	defer cancel()
	cm, err := s.opts.Client.CoreV1().ConfigMaps(s.opts.Namespace).Get(ctx, ObjectName(s.opts.Prefix, chain), metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		e.cm, e.absent = nil, true
		return nil
	case err != nil:
		return fmt.Errorf("reading %s: %w", s.Where(chain), err)
	}
	e.cm, e.absent = cm, false
	return nil
}

// doc returns the chain's decoded object, reading it when not cached.
func (s *Store) doc(chain string) (*doc, error) {
	e := s.entry(chain)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cm == nil && !e.absent || !s.owned(chain) {
		// A chain this replica does not own may change under it: read.
		if err := s.read(chain, e); err != nil {
			return nil, err
		}
	}
	d, err := decode(e.cm)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.Where(chain), err)
	}
	return d, nil
}

func (s *Store) owned(chain string) bool {
	if s.opts.Fence == nil {
		return true
	}
	_, ok := s.opts.Fence.Token(chain)
	return ok
}

// LoadState returns a chain's saved evaluator states, empty if none.
func (s *Store) LoadState(chain string) (state.ChainState, error) {
	d, err := s.doc(chain)
	if err != nil {
		return nil, fmt.Errorf("loading state of chain %q: %w", chain, err)
	}
	return orEmpty(d.State), nil
}

// LoadOutcomes returns the outcomes saved with the chain's last round.
func (s *Store) LoadOutcomes(chain string) (state.ChainState, error) {
	d, err := s.doc(chain)
	if err != nil {
		return nil, fmt.Errorf("loading outcomes of chain %q: %w", chain, err)
	}
	return orEmpty(d.Outcomes), nil
}

// Decisions returns up to n of a chain's most recent records, newest first.
func (s *Store) Decisions(chain string, n int) ([]state.Record, error) {
	d, err := s.doc(chain)
	if err != nil {
		return nil, fmt.Errorf("reading the decision log of chain %q: %w", chain, err)
	}
	var out []state.Record
	for i := len(d.Decisions) - 1; i >= 0 && len(out) < n; i-- {
		out = append(out, d.Decisions[i])
	}
	return out, nil
}

// Commit saves the round's states, appends its record (assigning r.Seq) and,
// when outcomes is set, the pending outcomes, in one fenced write.
func (s *Store) Commit(chain string, st state.ChainState, r *state.Record, outcomes func(seq uint64) state.ChainState) error {
	seq := r.Seq
	var tok Token
	var at time.Time
	err := s.mutate(chain, func(d *doc) error {
		tok, at = d.Fence, time.Now()
		d.State = st
		d.Seq++
		r.Seq = d.Seq
		d.Decisions = append(d.Decisions, *r)
		if outcomes != nil {
			d.Outcomes = outcomes(d.Seq)
		}
		return nil
	})
	if err != nil {
		r.Seq = seq
		return fmt.Errorf("committing state and decision of chain %q: %w", chain, err)
	}
	s.setBusy(chain, true)
	s.opts.Logger.Debug("round committed", "chain", chain, "seq", r.Seq, "owner", tok.Owner, "shard", tok.Shard,
		"epoch", tok.Epoch, "at", at.UTC().Format(time.RFC3339Nano), "summary", r.Summary)
	return nil
}

// Busy is true between a chain's Commit and the Finish that ends
// its round: it may be realizing now.
func (s *Store) Busy(chain string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	since, ok := s.busy[chain]
	return ok && time.Since(since) < maxBusy
}

const maxBusy = 2 * time.Minute

func (s *Store) setBusy(chain string, b bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b {
		s.busy[chain] = time.Now()
	} else {
		delete(s.busy, chain)
	}
}

// Finish writes the round's final outcomes with its final record (the one
// Commit appended, now with its status), and ends the round (Busy).
func (s *Store) Finish(chain string, outcomes state.ChainState, r state.Record) error {
	defer s.setBusy(chain, false)
	err := s.mutate(chain, func(d *doc) error {
		if outcomes != nil {
			d.Outcomes = outcomes
		}
		return d.replace(r)
	})
	if err != nil {
		return fmt.Errorf("finishing the round of chain %q: %w", chain, err)
	}
	return nil
}

// Claim makes this replica the chain's writer under tok before it acts on
// the chain: it reads the object afresh and writes tok into it, so that a
// replica holding an older token fails its next write (ErrFenced) even if
// it has not noticed yet that it lost the lease. A newer token already in
// the object fails the claim.
func (s *Store) Claim(chain string, tok Token) error {
	e := s.entry(chain)
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := s.read(chain, e); err != nil {
		return fmt.Errorf("claiming chain %q: %w", chain, err)
	}
	if err := s.write(chain, e, tok, func(*doc) error { return nil }); err != nil {
		return fmt.Errorf("claiming chain %q: %w", chain, err)
	}
	return nil
}

// Forget drops the cached object of a chain this replica stopped owning.
func (s *Store) Forget(chain string) {
	s.mu.Lock()
	delete(s.entries, chain)
	s.mu.Unlock()
}

// Close releases nothing: the objects stay for the next owner.
func (s *Store) Close() error { return nil }

// mutate applies fn to the chain's object and writes it under this
// replica's token.
func (s *Store) mutate(chain string, fn func(*doc) error) error {
	var tok Token
	if s.opts.Fence != nil {
		var ok bool
		if tok, ok = s.opts.Fence.Token(chain); !ok {
			return ErrFenced
		}
	}
	e := s.entry(chain)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cm == nil && !e.absent {
		if err := s.read(chain, e); err != nil {
			return err
		}
	}
	return s.write(chain, e, tok, fn)
}

// maxAttempts bounds the retries of a write that lost a resourceVersion race.
const maxAttempts = 4

// write applies fn to e's object and writes it with e's resourceVersion;
// on a conflict it reads the object again and checks the fence before
// trying again. e.mu must be held.
func (s *Store) write(chain string, e *entry, tok Token, fn func(*doc) error) error {
	cms := s.opts.Client.CoreV1().ConfigMaps(s.opts.Namespace)
	for attempt := 1; ; attempt++ {
		d, err := decode(e.cm)
		if err != nil {
			return fmt.Errorf("%s: %w", s.Where(chain), err)
		}
		if s.opts.Fence != nil {
			if d.Fence.newer(tok) || (d.Fence.Epoch == tok.Epoch && d.Fence.Shard == tok.Shard &&
				d.Fence.Shards == tok.Shards && d.Fence.Owner != "" && d.Fence.Owner != tok.Owner) {
				return fmt.Errorf("%w: %s was written by %s (shard %d epoch %d), this replica %s holds epoch %d",
					ErrFenced, s.Where(chain), d.Fence.Owner, d.Fence.Shard, d.Fence.Epoch, tok.Owner, tok.Epoch)
			}
			// The lease may have lapsed while waiting for the API server.
			if _, ok := s.opts.Fence.Token(chain); !ok {
				return ErrFenced
			}
		}
		d.Chain, d.Fence = chain, tok
		if err := fn(d); err != nil {
			return err
		}
		cm, err := d.encode(s.opts.Keep)
		if err != nil {
			return fmt.Errorf("%s: %w", s.Where(chain), err)
		}
		cm.Name, cm.Namespace = ObjectName(s.opts.Prefix, chain), s.opts.Namespace
		cm.Labels = map[string]string{LabelManagedBy: ManagedBy, LabelRole: RoleChainState}
		cm.Annotations = map[string]string{AnnotationChain: chain}
		ctx, cancel := s.ctx()
		var out *corev1.ConfigMap
		if e.cm == nil {
			out, err = cms.Create(ctx, cm, metav1.CreateOptions{})
		} else {
			cm.ResourceVersion = e.cm.ResourceVersion
			out, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
		}
		cancel()
		if err == nil {
			e.cm, e.absent = out, false
			return nil
		}
		if !(apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err)) || attempt >= maxAttempts {
			// The write may have happened with its answer lost: read
			// again before the next one rather than trust the cache.
			e.cm, e.absent = nil, false
			return fmt.Errorf("writing %s: %w", s.Where(chain), err)
		}
		if err := s.read(chain, e); err != nil {
			return err
		}
	}
}

func orEmpty(c state.ChainState) state.ChainState {
	if c == nil {
		return state.ChainState{}
	}
	return c
}
