// Package runner schedules chains: every chain ticks at a fixed rate on its
// own phase, one evaluation in flight per target, and the chains due
// together collect, evaluate and realize through supervised plugin
// processes in batched calls.
package runner

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/ebbscale/ebb/core/config"
	"github.com/ebbscale/ebb/core/host"
	"github.com/ebbscale/ebb/core/metrics"
	"github.com/ebbscale/ebb/core/state"
	"github.com/ebbscale/ebb/sdk"
)

// Options configure a Runner.
type Options struct {
	Host  *host.Host
	Store Store // nil: nothing persists (ebb plan)
	// Owner, when set, says which chains this replica evaluates (several
	// replicas sharing the chains); nil: all of them.
	Owner   Owner
	Metrics *metrics.Metrics
	Logger  hclog.Logger
	Clock   func() time.Time
	// OnEvaluation, when set, sees every evaluation (ebb dev prints them).
	OnEvaluation func(*Evaluation, error)
}

// Runner runs the chains of a configuration.
type Runner struct {
	opts Options
	// time drives the schedule; tests replace it before Run.
	time timeSource
	// linger bounds how long a chain waits for peers to share a call.
	linger time.Duration

	mu        sync.Mutex
	config    *config.Config
	instances map[string]*host.Instance // by instanceKey
	chains    map[string]*chainLoop
	targets   map[string]bool // targets with an evaluation in flight
	ctx       context.Context
	sched     *scheduler // nil until Run
	pool      *pool
}

// chainLoop is a running chain.
type chainLoop struct {
	cfg     *config.Chain
	plugins chainPlugins
	ctx     context.Context // done when the chain stops
	cancel  context.CancelFunc
	entry   *entry // its place in the schedule
	// sig names the plugin blocks the chain calls: chains due together
	// are sorted by it, so that those sharing blocks share a round.
	sig string

	mu      sync.Mutex
	last    *Evaluation // slim: what the API shows
	lastErr error
	lastAt  time.Time
	ticks   int
	// loggedReason is the shape (reasonShape) of the last "no action"
	// reason logged at info.
	loggedReason string
}

// chain is the chain's definition; a reload may swap in an equal one.
func (l *chainLoop) chain() *config.Chain {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cfg
}

// failure is why a chain is failed: one of its plugins cannot be started or
// configured (the host retries it with backoff). Other errors, such as a
// platform that does not answer, leave the chain running. Empty when none.
func (l *chainLoop) failure() string {
	all := append(append(append([]*host.Instance(nil), l.plugins.collectors...), l.plugins.evaluators...), l.plugins.realizer)
	for _, inst := range all {
		if err := inst.Failure(); err != nil {
			return fmt.Sprintf("%s %q cannot run: %v", inst.Spec().Kind, inst.Spec().Block, err)
		}
	}
	return ""
}

// New returns a runner for cfg. Nothing starts until Run.
func New(cfg *config.Config, opts Options) *Runner {
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.Metrics == nil {
		opts.Metrics = metrics.New()
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if isNil(opts.Store) {
		opts.Store = nil
	}
	if isNil(opts.Owner) {
		opts.Owner = nil
	}
	r := &Runner{
		opts:      opts,
		time:      realTime{},
		linger:    linger,
		instances: map[string]*host.Instance{},
		chains:    map[string]*chainLoop{},
		targets:   map[string]bool{},
	}
	r.config = cfg
	return r
}

func (r *Runner) cfg() *config.Config {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.config
}

// Run starts every enabled chain and blocks until ctx is done; then it stops
// the chains and their plugin processes.
func (r *Runner) Run(ctx context.Context) error {
	r.mu.Lock()
	r.ctx = ctx
	r.pool = newPool(workerCount())
	r.sched = newScheduler(r.time, r.dispatch, r.missed)
	cfg := r.config
	r.mu.Unlock()
	scheduling := make(chan struct{})
	go func() { r.sched.run(ctx); close(scheduling) }()
	r.apply(cfg)
	<-ctx.Done()
	<-scheduling
	r.mu.Lock()
	loops := r.chains
	r.chains = map[string]*chainLoop{}
	r.mu.Unlock()
	for _, l := range loops {
		l.cancel()
		r.sched.remove(l.entry)
	}
	r.pool.close()
	r.opts.Host.Close()
	return nil
}

// Reload switches to a new configuration. Chains whose definition did not
// change keep running undisturbed, with their schedule and state; changed
// chains restart; removed chains stop. Evaluator state is kept by chain
// name either way.
func (r *Runner) Reload(cfg *config.Config) {
	r.mu.Lock()
	r.config = cfg
	running := r.sched != nil
	r.mu.Unlock()
	if running {
		r.apply(cfg)
	}
}

func (r *Runner) apply(cfg *config.Config) {
	wanted := map[string]*config.Chain{}
	for _, ch := range cfg.Chains {
		if ch.Enabled {
			wanted[ch.Name] = ch
		}
	}
	// Stop changed and removed chains outside the lock: a tick in flight
	// needs the lock to finish.
	var stopping []*chainLoop
	r.mu.Lock()
	for name, l := range r.chains {
		if ch, ok := wanted[name]; ok && ch.Fingerprint == l.chain().Fingerprint {
			l.mu.Lock()
			l.cfg = ch // same definition; the round reads it under l.mu
			l.mu.Unlock()
			continue
		}
		stopping = append(stopping, l)
		delete(r.chains, name)
	}
	r.mu.Unlock()
	for _, l := range stopping {
		l.cancel()
		r.sched.remove(l.entry) // waits for its evaluation in flight
		name := l.chain().Name
		if _, kept := wanted[name]; !kept {
			r.opts.Metrics.ForgetChain(name)
		}
		r.opts.Logger.Info("chain stopped", "chain", name)
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ch := range cfg.Chains {
		if !ch.Enabled {
			continue
		}
		if _, ok := r.chains[ch.Name]; ok {
			continue
		}
		ctx, cancel := context.WithCancel(r.ctx)
		l := &chainLoop{cfg: ch, plugins: r.pluginsLocked(cfg, ch), ctx: ctx, cancel: cancel,
			sig: strings.Join(ch.Collectors, ",") + "|" + ch.Realizer + "|" + strings.Join(ch.Evaluators, ",")}
		l.entry = &entry{name: ch.Name, interval: ch.Interval, phase: phaseOf(ch.Name, ch.Interval, ch.Jitter), index: -1, loop: l}
		r.chains[ch.Name] = l
		r.sched.add(l.entry)
		r.opts.Logger.Info("chain started", "chain", ch.Name, "target", ch.Target, "interval", ch.Interval)
	}
	used := usedInstances(cfg)
	for key, inst := range r.instances {
		if !used[key] {
			inst.Stop()
			delete(r.instances, key)
		}
	}
}

// usedInstances are the instance keys of the plugin blocks that some enabled
// chain uses; the processes of all others are stopped.
func usedInstances(cfg *config.Config) map[string]bool {
	enabled := make(map[string]bool, len(cfg.Chains))
	for _, ch := range cfg.Chains {
		enabled[ch.Name] = ch.Enabled
	}
	used := map[string]bool{}
	for _, blocks := range []map[string]*config.PluginBlock{cfg.Collectors, cfg.Evaluators, cfg.Realizers} {
		for _, b := range blocks {
			for _, name := range b.UsedBy {
				if enabled[name] {
					used[instanceKey(b)] = true
				}
			}
		}
	}
	return used
}

// instanceKey identifies a plugin block by everything that defines its
// process, so a block whose config changed on reload gets a new process.
func instanceKey(b *config.PluginBlock) string {
	return fmt.Sprintf("%v\x00%s\x00%s\x00%s\x00%s", b.Kind, b.Name, b.Plugin, b.SHA256, b.Config)
}

// pluginsLocked returns the instances a chain calls, sharing one process per
// plugin block among chains. r.mu must be held.
func (r *Runner) pluginsLocked(cfg *config.Config, ch *config.Chain) chainPlugins {
	get := func(kind sdk.Kind, name string) *host.Instance {
		b := cfg.Block(kind, name)
		key := instanceKey(b)
		if inst, ok := r.instances[key]; ok {
			return inst
		}
		inst := r.opts.Host.Instance(host.Spec{Block: name, Kind: kind, Plugin: b.Plugin, SHA256: b.SHA256, Config: b.Config})
		r.instances[key] = inst
		return inst
	}
	var p chainPlugins
	for _, c := range ch.Collectors {
		p.collectors = append(p.collectors, get(sdk.KindCollector, c))
	}
	for _, e := range ch.Evaluators {
		p.evaluators = append(p.evaluators, get(sdk.KindEvaluator, e))
	}
	p.realizer = get(sdk.KindRealizer, ch.Realizer)
	return p
}

// lockTarget takes a chain's target for one evaluation; false when another
// evaluation of the same target is in flight.
func (r *Runner) lockTarget(ch *config.Chain) (func(), bool) {
	key := ch.Realizer + "\x00" + ch.Target
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.targets[key] {
		return nil, false
	}
	r.targets[key] = true
	return func() {
		r.mu.Lock()
		delete(r.targets, key)
		r.mu.Unlock()
	}, true
}

// Plan evaluates chains once without persisting or realizing anything. An
// empty name plans every enabled chain. Chains that share plugin blocks are
// batched as in ebb run.
func (r *Runner) Plan(ctx context.Context, name string) ([]*Evaluation, error) {
	cfg := r.cfg()
	var ms []*member
	for _, ch := range cfg.Chains {
		if name != "" && ch.Name != name {
			continue
		}
		if name == "" && !ch.Enabled {
			continue
		}
		r.mu.Lock()
		p := r.pluginsLocked(cfg, ch)
		r.mu.Unlock()
		ms = append(ms, &member{ctx: ctx, ch: ch, p: p})
	}
	if len(ms) == 0 {
		return nil, fmt.Errorf("no chain %q in %s", name, cfg.Path)
	}
	r.runNow(ctx, ms, false, nil)
	var out []*Evaluation
	var errs []error
	for _, m := range ms {
		if m.ev != nil {
			out = append(out, m.ev)
		}
		if m.err != nil {
			errs = append(errs, m.err)
		}
	}
	return out, errors.Join(errs...)
}

// ChainStatus is what the HTTP API shows of a chain.
type ChainStatus struct {
	Name       string   `json:"name"`
	Target     string   `json:"target"`
	Collectors []string `json:"collectors"`
	Evaluators []string `json:"evaluators"`
	Realizer   string   `json:"realizer"`
	Interval   string   `json:"interval"`
	Running    bool     `json:"running"`
	// Status is "running", "failed" (a plugin cannot start or rejected its
	// configuration; Reason says why, and it is retried with backoff),
	// "starting" (no evaluation yet) or "disabled".
	Status    string      `json:"status"`
	Reason    string      `json:"reason,omitempty"`
	Ticks     int         `json:"ticks"`
	LastAt    *time.Time  `json:"last_at,omitempty"`
	LastError string      `json:"last_error,omitempty"`
	Last      *Evaluation `json:"last,omitempty"`
	// Owner is the replica that evaluates the chain, when several share
	// the chains; empty when none owns it yet or with one process.
	Owner string `json:"owner,omitempty"`
}

// Chains reports every configured chain, sorted by name.
func (r *Runner) Chains() []ChainStatus {
	cfg := r.cfg()
	r.mu.Lock()
	loops := make(map[string]*chainLoop, len(r.chains))
	for k, v := range r.chains {
		loops[k] = v
	}
	r.mu.Unlock()
	var out []ChainStatus
	for _, ch := range cfg.Chains {
		s := ChainStatus{
			Name: ch.Name, Target: ch.Target, Collectors: ch.Collectors, Evaluators: ch.Evaluators,
			Realizer: ch.Realizer, Interval: ch.Interval.String(), Status: "disabled",
			Owner: r.ownerOf(ch.Name),
		}
		if l, ok := loops[ch.Name]; ok {
			failed := l.failure()
			l.mu.Lock()
			s.Running, s.Ticks, s.Last = true, l.ticks, l.last
			switch {
			case failed != "":
				s.Status, s.Reason = "failed", failed
			case l.ticks == 0:
				s.Status = "starting"
			default:
				s.Status = "running"
			}
			if !l.lastAt.IsZero() {
				at := l.lastAt
				s.LastAt = &at
			}
			if l.lastErr != nil {
				s.LastError = l.lastErr.Error()
			}
			l.mu.Unlock()
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Ready is true once every running chain has finished a first evaluation,
// successful or not, and none is failed. failed maps each failed chain to
// why.
func (r *Runner) Ready() (ready bool, failed map[string]string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ctx == nil {
		return false, nil
	}
	ready = true
	for name, l := range r.chains {
		l.mu.Lock()
		if l.ticks == 0 && r.owns(name) {
			ready = false
		}
		l.mu.Unlock()
		if why := l.failure(); why != "" {
			if failed == nil {
				failed = map[string]string{}
			}
			failed[name] = why
		}
	}
	return ready && failed == nil, failed
}

// Decisions returns a chain's most recent decision records, newest first.
func (r *Runner) Decisions(chain string, n int) ([]state.Record, error) {
	if r.opts.Store == nil {
		return nil, nil
	}
	return r.opts.Store.Decisions(chain, n)
}

// reasonShape is a reason without its figures. A waiting evaluator's reason
// changes every round only in its numbers ("backlog 7 tasks for 1.2s, next
// add in 58.8s"); a user needs one info line per kind of wait, not one per
// tick, so rounds that differ only in figures log at debug.
func reasonShape(reason string) string {
	return figure.ReplaceAllString(reason, "#")
}

// figure is a number with the unit glued to it: 7, 1.5, 104ms, 1m0.03s.
var figure = regexp.MustCompile(`[0-9][0-9.]*[a-zµ]*([0-9][0-9.]*[a-zµ]*)*`)
