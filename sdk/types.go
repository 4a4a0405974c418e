// Package sdk is what ebb plugin authors import: the three plugin kinds as Go
// interfaces, the values they exchange, and Serve, which turns a plugin value
// into a plugin process. It imports nothing from ebb's core or plugins.
package sdk

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// ProtocolVersion is the version of ebb.proto this SDK speaks: 2 added the
// batch RPCs (batch.go). The runner also speaks MinProtocolVersion, and
// refuses plugins that report a version outside the two.
const ProtocolVersion = 2

// Kind says which role a plugin plays in a chain.
type Kind int

const (
	KindUnknown Kind = iota
	KindCollector
	KindEvaluator
	KindRealizer
)

func (k Kind) String() string {
	switch k {
	case KindCollector:
		return "collector"
	case KindEvaluator:
		return "evaluator"
	case KindRealizer:
		return "realizer"
	}
	return "unknown"
}

// ParseKind is the inverse of Kind.String.
func ParseKind(s string) (Kind, error) {
	for _, k := range []Kind{KindCollector, KindEvaluator, KindRealizer} {
		if k.String() == s {
			return k, nil
		}
	}
	return KindUnknown, fmt.Errorf("unknown plugin kind %q (want collector, evaluator or realizer)", s)
}

// Info names a plugin and publishes the schemas of its HCL blocks.
type Info struct {
	Name            string
	Kind            Kind
	Version         string
	ProtocolVersion uint32
	// ConfigSchema describes the plugin block's `config { }`.
	ConfigSchema Schema
	// PolicySchema (evaluators only) describes the chain `policy { }` keys
	// this evaluator reads.
	PolicySchema Schema
}

// Target says what a chain scales.
type Target struct {
	Chain string `json:"chain"`
	Name  string `json:"name"`
}

func (t Target) String() string { return t.Chain + "/" + t.Name }

// Snapshot is what a collector observed at one moment.
type Snapshot struct {
	ObservedAt time.Time `json:"observed_at,omitzero"`
	// Complete is false when part of the picture could not be observed; a
	// runner never lets an incomplete snapshot lead to a scale-down.
	Complete          bool               `json:"complete"`
	IncompleteReasons []string           `json:"incomplete_reasons,omitempty"`
	Demand            Demand             `json:"demand"`
	Workers           []Worker           `json:"workers,omitempty"`
	Metrics           map[string]float64 `json:"metrics,omitempty"`
	// Conflict is set when something else already scales the target (the
	// platform's own autoscaler): the runner changes nothing and reports it.
	Conflict string `json:"conflict,omitempty"`
}

// Demand is the work waiting for or held by workers.
type Demand struct {
	PlannedTasks   int64 `json:"planned_tasks"`
	ScheduledTasks int64 `json:"scheduled_tasks"`
	RunningTasks   int64 `json:"running_tasks"`
	PendingTables  int64 `json:"pending_tables"`
	PlanningTables int64 `json:"planning_tables"`
	// ServiceablePlannedTasks counts the planned tasks that the tables'
	// quotas let run now (Amoro's quota-aware demand). Valid only when
	// ServiceableKnown is set; collectors that cannot tell leave both zero.
	ServiceablePlannedTasks int64 `json:"serviceable_planned_tasks"`
	ServiceableKnown        bool  `json:"serviceable_known"`
}

// Tasks is the immediate demand: tasks planned, scheduled or running.
func (d Demand) Tasks() int64 { return d.PlannedTasks + d.ScheduledTasks + d.RunningTasks }

// ServiceablePlanned is the planned work that could start now: the quota-aware
// count when the collector knows it, every planned task otherwise.
func (d Demand) ServiceablePlanned() int64 {
	if d.ServiceableKnown {
		return d.ServiceablePlannedTasks
	}
	return d.PlannedTasks
}

// WorkerState is a worker's registration state as the collector sees it.
type WorkerState int

const (
	WorkerUnknown WorkerState = iota
	WorkerRegistered
	WorkerDraining
	WorkerStale
)

func (s WorkerState) String() string {
	switch s {
	case WorkerRegistered:
		return "registered"
	case WorkerDraining:
		return "draining"
	case WorkerStale:
		return "stale"
	}
	return "unknown"
}

// Worker is one registered worker process (an Amoro optimizer, a task manager).
type Worker struct {
	ID     string `json:"id"`
	UnitID string `json:"unit_id"`
	// Threads is how many tasks the worker runs at once.
	Threads     int64 `json:"threads"`
	BusyThreads int64 `json:"busy_threads"`
	// BusyKnown is false when the collector could not learn BusyThreads; an
	// evaluator must then not treat the worker as idle.
	BusyKnown    bool        `json:"busy_known"`
	LastBusyAt   time.Time   `json:"last_busy_at,omitzero"`
	RegisteredAt time.Time   `json:"registered_at,omitzero"`
	State        WorkerState `json:"state"`
}

// Phase is where a realizer unit is in its life.
type Phase int

const (
	PhaseUnknown Phase = iota
	PhaseRequested
	PhaseBooting
	PhaseRunning
	PhaseDraining
)

func (p Phase) String() string {
	switch p {
	case PhaseRequested:
		return "requested"
	case PhaseBooting:
		return "booting"
	case PhaseRunning:
		return "running"
	case PhaseDraining:
		return "draining"
	}
	return "unknown"
}

// Unit is one piece of capacity a realizer manages (a pod, a process, a job).
type Unit struct {
	ID             string            `json:"id"`
	Size           int64             `json:"size"`
	Phase          Phase             `json:"phase"`
	CreatedAt      time.Time         `json:"created_at,omitzero"`
	DrainStartedAt time.Time         `json:"drain_started_at,omitzero"`
	Labels         map[string]string `json:"labels,omitempty"`
}

// UnitAdd asks for a new unit. UnitID is chosen by the evaluator and stays
// the same on a retry, so a realizer that finds it already exists does nothing.
type UnitAdd struct {
	UnitID string `json:"unit_id"`
	Size   int64  `json:"size"`
}

// UnitRemove releases a unit; Force skips waiting for in-flight work.
type UnitRemove struct {
	UnitID string `json:"unit_id"`
	Force  bool   `json:"force"`
}

// Direction summarizes a decision for metrics and logs.
type Direction int

const (
	DirectionNone Direction = iota
	DirectionUp
	DirectionDown
	DirectionMixed
)

func (d Direction) String() string {
	switch d {
	case DirectionUp:
		return "up"
	case DirectionDown:
		return "down"
	case DirectionMixed:
		return "mixed"
	}
	return "none"
}

// Decision is what an evaluator wants done.
type Decision struct {
	// DesiredCapacity is the total threads wanted once this is carried out.
	DesiredCapacity      int64             `json:"desired_capacity"`
	Add                  []UnitAdd         `json:"add,omitempty"`
	Drain                []string          `json:"drain,omitempty"`
	Remove               []UnitRemove      `json:"remove,omitempty"`
	Restart              []string          `json:"restart,omitempty"`
	ParallelismOverrides map[string]int64  `json:"parallelism_overrides,omitempty"`
	ConfigOverrides      map[string]string `json:"config_overrides,omitempty"`
	Reason               string            `json:"reason"`
	// Vetoed by a later evaluator in the chain: nothing is realized.
	Vetoed bool `json:"vetoed,omitempty"`
	// Metrics are figures only the evaluator knows (its backlog timer, its
	// ramp), keyed by snake_case names; the runner exports each as the gauge
	// ebb_evaluator_<name>{chain,target}. They never change what is realized.
	Metrics map[string]float64 `json:"metrics,omitempty"`
}

// Direction tells whether the decision adds capacity, takes it away, both or
// neither. Restarts replace capacity, so they count as neither.
func (d Decision) Direction() Direction {
	up := len(d.Add) > 0
	down := len(d.Drain) > 0 || len(d.Remove) > 0
	switch {
	case d.Vetoed:
		return DirectionNone
	case up && down:
		return DirectionMixed
	case up:
		return DirectionUp
	case down:
		return DirectionDown
	}
	return DirectionNone
}

// HasActions is true when realizing the decision would change something.
func (d Decision) HasActions() bool {
	if d.Vetoed {
		return false
	}
	return len(d.Add)+len(d.Drain)+len(d.Remove)+len(d.Restart)+len(d.ParallelismOverrides)+len(d.ConfigOverrides) > 0
}

// Summary is a compact one-line description of the actions, e.g.
// "+2 units (u-7,u-8); drain u-3".
func (d Decision) Summary() string {
	if d.Vetoed {
		return "vetoed"
	}
	var parts []string
	if len(d.Add) > 0 {
		ids := make([]string, len(d.Add))
		for i, a := range d.Add {
			ids[i] = a.UnitID
		}
		parts = append(parts, fmt.Sprintf("+%s (%s)", Count(len(d.Add), "unit"), strings.Join(ids, ",")))
	}
	if len(d.Drain) > 0 {
		parts = append(parts, "drain "+strings.Join(d.Drain, ","))
	}
	for _, r := range d.Remove {
		if r.Force {
			parts = append(parts, "force-remove "+r.UnitID)
		} else {
			parts = append(parts, "remove "+r.UnitID)
		}
	}
	if len(d.Restart) > 0 {
		parts = append(parts, "restart "+strings.Join(d.Restart, ","))
	}
	if len(d.ParallelismOverrides) > 0 {
		parts = append(parts, "parallelism "+formatMap(d.ParallelismOverrides))
	}
	if len(d.ConfigOverrides) > 0 {
		parts = append(parts, "config "+formatMap(d.ConfigOverrides))
	}
	if len(parts) == 0 {
		return "no action"
	}
	return strings.Join(parts, "; ")
}

// Count writes n and a noun, singular for one: "1 unit", "2 units".
func Count[N int | int64](n N, noun string) string {
	if n == 1 || n == -1 {
		return fmt.Sprintf("%d %s", n, noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func formatMap[V any](m map[string]V) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%v", k, m[k])
	}
	return strings.Join(parts, ",")
}

// EvaluateRequest is everything an evaluator may look at. Evaluators are pure:
// the same request gives the same response.
type EvaluateRequest struct {
	Target Target
	// Policy is this evaluator's keys of the chain's policy block, as JSON.
	Policy    json.RawMessage
	Snapshot  Snapshot
	Inventory []Unit
	// State is what this evaluator returned last time; nil the first time.
	State []byte
	Now   time.Time
	// Previous is the decision of the evaluator before this one in the chain.
	Previous *Decision
	// SnapshotDegraded is set by the runner when the snapshot is stale or
	// incomplete: the evaluator may only scale up or do nothing.
	SnapshotDegraded bool
	// Outcome is what became of this evaluator's previous decision: nil the
	// first time. Reconcile State against it (see Outcome).
	Outcome *Outcome
}

// EvaluateResponse is an evaluator's decision and its new state.
type EvaluateResponse struct {
	Decision Decision
	State    []byte
}

// RealizeRequest carries a decision to a realizer. RequestID is unique per
// decision, so a realizer can recognize a retry.
type RealizeRequest struct {
	Target    Target
	Decision  Decision
	RequestID string
}

// OverridesRequest carries parallelism or config overrides to a realizer.
type OverridesRequest[V int64 | string] struct {
	Target    Target
	Overrides map[string]V
	RequestID string
}

// The enums read and write as their names in JSON ("registered", not 1), as
// the HTTP API and plan --json show them.

func (k Kind) MarshalText() ([]byte, error)        { return []byte(k.String()), nil }
func (s WorkerState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
func (p Phase) MarshalText() ([]byte, error)       { return []byte(p.String()), nil }
func (d Direction) MarshalText() ([]byte, error)   { return []byte(d.String()), nil }
func (k *Kind) UnmarshalText(b []byte) error       { return parseEnum(b, k, KindUnknown, KindRealizer) }
func (s *WorkerState) UnmarshalText(b []byte) error {
	return parseEnum(b, s, WorkerUnknown, WorkerStale)
}
func (p *Phase) UnmarshalText(b []byte) error { return parseEnum(b, p, PhaseUnknown, PhaseDraining) }
func (d *Direction) UnmarshalText(b []byte) error {
	return parseEnum(b, d, DirectionNone, DirectionMixed)
}

// parseEnum finds the value from first to last whose name is b.
func parseEnum[E ~int](b []byte, dst *E, first, last E) error {
	for v := first; v <= last; v++ {
		if fmt.Sprint(v) == string(b) {
			*dst = v
			return nil
		}
	}
	return fmt.Errorf("unknown value %q", b)
}
