// Package canned is the world the scale benchmark runs against: a collector
// and a realizer that answer from memory, with no network and no disk, so
// that what `go run ./bench` measures is the runner (and the real
// evaluator-dra between them), not a platform.
//
// Every target gets a small Amoro-like optimizer group of its own: one to
// `units` optimizers of four threads, busy threads, planned tasks that come
// and go in a wave whose period and phase depend on the target's name, and a
// few pending tables. So chains decide differently from each other and over
// time (scale-ups while a wave lasts, idle units drained after it), as a
// fleet of real groups would.
package canned

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"sort"
	"sync"
	"time"

	"github.com/ebbscale/ebb/sdk"
)

// Names are the plugin names (and binary names) of the two plugins.
const (
	CollectorName = "canned-collector"
	RealizerName  = "canned-realizer"
	version       = "0.1.0"
	// threads per optimizer unit, as the benchmark's policy says.
	unitThreads = 4
)

// Config is both plugins' config block.
type Config struct {
	// Units is the most optimizers a target starts with.
	Units int64 `json:"units"`
	// Period is the longest wave of demand; each target's is a share of it.
	Period sdk.Duration `json:"period"`
}

func schema() sdk.Schema {
	return sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "units", Type: sdk.TypeNumber, Default: 4, Description: "most optimizer units a target starts with (at least 1)"},
		{Name: "period", Type: sdk.TypeDuration, Default: "2m", Description: "longest period of a target's demand wave"},
	}}
}

func configure(raw json.RawMessage) (Config, error) {
	c := Config{Units: 4, Period: sdk.Duration(2 * time.Minute)}
	if err := sdk.DecodeConfig(raw, &c); err != nil {
		return c, err
	}
	if c.Units < 1 || c.Units > 64 {
		return c, fmt.Errorf("units %d: want 1 to 64", c.Units)
	}
	if c.Period.D() < time.Second {
		return c, fmt.Errorf("period %s: want at least 1s", c.Period.D())
	}
	return c, nil
}

// group is a target's optimizer group as the platform started it.
type group struct {
	hash  uint32
	units int64
}

func groupOf(target string, c Config) group {
	h := fnv.New32a()
	h.Write([]byte(target))
	sum := h.Sum32()
	return group{hash: sum, units: 1 + int64(sum%uint32(c.Units))}
}

func baseUnitID(target string, i int64) string { return fmt.Sprintf("%s-base-%d", target, i) }

// busy says whether the target's demand wave is up at now: each target has
// its own period (a quarter of c.Period to all of it) and phase.
func (g group) busy(now time.Time, c Config) bool {
	period := c.Period.D()/4 + time.Duration(g.hash%1000)*(c.Period.D()*3/4)/1000
	phase := time.Duration(g.hash>>10) % period
	return (now.Add(phase).UnixNano()/int64(period/2))%2 == 0
}

// Collector reports each target's group from memory.
type Collector struct{ cfg Config }

// NewCollector returns a collector with the default config.
func NewCollector() *Collector {
	c, _ := configure(nil)
	return &Collector{cfg: c}
}

func (c *Collector) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: CollectorName, Kind: sdk.KindCollector, Version: version, ConfigSchema: schema()}, nil
}

func (c *Collector) Configure(_ context.Context, raw json.RawMessage) error {
	cfg, err := configure(raw)
	if err != nil {
		return err
	}
	c.cfg = cfg
	return nil
}

// Collect gives the group's workers (all registered, some busy) and its
// demand: while the wave is up, more planned tasks than threads; after it,
// none, so idle timers run.
func (c *Collector) Collect(_ context.Context, t sdk.Target) (sdk.Snapshot, error) {
	now := time.Now()
	g := groupOf(t.Name, c.cfg)
	up := g.busy(now, c.cfg)
	s := sdk.Snapshot{ObservedAt: now, Complete: true}
	var threads int64
	for i := range g.units {
		w := sdk.Worker{
			ID: fmt.Sprintf("optimizer-%s-%d", t.Name, i), UnitID: baseUnitID(t.Name, i),
			Threads: unitThreads, BusyKnown: true, State: sdk.WorkerRegistered,
			RegisteredAt: now.Add(-time.Hour),
			LastBusyAt:   now.Add(-time.Duration(g.hash%300) * time.Second),
		}
		if up {
			w.BusyThreads, w.LastBusyAt = unitThreads, now
		}
		threads += w.Threads
		s.Workers = append(s.Workers, w)
	}
	if up {
		s.Demand.RunningTasks = threads
		s.Demand.PlannedTasks = 2 + int64(g.hash%24)
		s.Demand.PendingTables = int64(g.hash % 3)
	}
	s.Demand.PlanningTables = int64(g.hash % 2)
	s.Metrics = map[string]float64{"canned_wave_up": map[bool]float64{true: 1}[up]}
	return s, nil
}

// Realizer keeps each target's units in memory: the group it started with
// until a decision touches the target, then what the decisions made of it.
type Realizer struct {
	mu  sync.Mutex
	cfg Config
	// targets holds the units of each target a decision changed; bounded by
	// maxTargets and maxUnits so a runaway caller cannot grow it forever.
	targets map[string]*units
}

type units struct {
	byID map[string]sdk.Unit
	// requests are the request ids already carried out, for idempotency.
	requests map[string]bool
}

const (
	maxTargets  = 100_000
	maxUnits    = 64
	maxRequests = 256
	// bootTime is how long an added unit boots before it runs.
	bootTime = 10 * time.Second
)

// NewRealizer returns a realizer with the default config.
func NewRealizer() *Realizer {
	c, _ := configure(nil)
	return &Realizer{cfg: c, targets: map[string]*units{}}
}

func (r *Realizer) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: RealizerName, Kind: sdk.KindRealizer, Version: version, ConfigSchema: schema()}, nil
}

func (r *Realizer) Configure(_ context.Context, raw json.RawMessage) error {
	cfg, err := configure(raw)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cfg = cfg
	return nil
}

// base is the group as the platform started it.
func (r *Realizer) base(target string) map[string]sdk.Unit {
	g := groupOf(target, r.cfg)
	created := time.Now().Add(-time.Hour)
	m := make(map[string]sdk.Unit, g.units)
	for i := range g.units {
		id := baseUnitID(target, i)
		m[id] = sdk.Unit{ID: id, Size: unitThreads, Phase: sdk.PhaseRunning, CreatedAt: created, Labels: map[string]string{"group": target}}
	}
	return m
}

// Inventory lists the target's units, sorted by id; added units boot for
// bootTime, then run.
func (r *Realizer) Inventory(_ context.Context, t sdk.Target) ([]sdk.Unit, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.base(t.Name)
	if u := r.targets[t.Name]; u != nil {
		m = u.byID
	}
	now := time.Now()
	out := make([]sdk.Unit, 0, len(m))
	for _, x := range m {
		if x.Phase == sdk.PhaseBooting && now.Sub(x.CreatedAt) > bootTime {
			x.Phase = sdk.PhaseRunning
		}
		out = append(out, x)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Realize applies a decision's unit actions once per request id: an add of a
// unit that exists, a drain of a draining one or a removal of one that does
// not exist changes nothing.
func (r *Realizer) Realize(_ context.Context, req sdk.RealizeRequest) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	name := req.Target.Name
	u := r.targets[name]
	if u == nil {
		if len(r.targets) >= maxTargets {
			return "", fmt.Errorf("canned-realizer holds %d targets already; %q is one too many", maxTargets, name)
		}
		u = &units{byID: r.base(name), requests: map[string]bool{}}
		r.targets[name] = u
	}
	if req.RequestID != "" && u.requests[req.RequestID] {
		return "already done", nil
	}
	now := time.Now()
	var added, drained, removed, restarted int
	for _, a := range req.Decision.Add {
		if _, ok := u.byID[a.UnitID]; ok {
			continue
		}
		if len(u.byID) >= maxUnits {
			return "", fmt.Errorf("target %q holds %d units, the most this realizer keeps", name, maxUnits)
		}
		u.byID[a.UnitID] = sdk.Unit{ID: a.UnitID, Size: a.Size, Phase: sdk.PhaseBooting, CreatedAt: now, Labels: map[string]string{"group": name}}
		added++
	}
	for _, id := range req.Decision.Drain {
		if x, ok := u.byID[id]; ok && x.Phase != sdk.PhaseDraining {
			x.Phase, x.DrainStartedAt = sdk.PhaseDraining, now
			u.byID[id] = x
			drained++
		}
	}
	for _, rm := range req.Decision.Remove {
		if _, ok := u.byID[rm.UnitID]; ok {
			delete(u.byID, rm.UnitID)
			removed++
		}
	}
	for _, id := range req.Decision.Restart {
		if x, ok := u.byID[id]; ok {
			x.Phase, x.CreatedAt = sdk.PhaseBooting, now
			u.byID[id] = x
			restarted++
		}
	}
	if req.RequestID != "" {
		if len(u.requests) >= maxRequests {
			clear(u.requests) // a retry follows its request closely, never 256 requests later
		}
		u.requests[req.RequestID] = true
	}
	return fmt.Sprintf("added %d, drained %d, removed %d, restarted %d", added, drained, removed, restarted), nil
}

func (r *Realizer) RealizeParallelismOverrides(context.Context, sdk.OverridesRequest[int64]) (string, error) {
	return "no parallelism to override", nil
}

func (r *Realizer) RealizeConfigOverrides(context.Context, sdk.OverridesRequest[string]) (string, error) {
	return "no config to override", nil
}
