package dra

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/ebbscale/ebb/sdk"
)

// Policy is the chain `policy { }` block this evaluator reads. Parallelism is
// counted in threads (Amoro's unit); a unit (one optimizer process) runs
// ExecutorParallelism threads.
type Policy struct {
	// MinParallelism is the floor in threads.
	MinParallelism int64 `json:"min-parallelism"`
	// MaxParallelism is the ceiling in threads. It is required, as in
	// Amoro's merged allocation (DynamicAllocationConfig.validate): an
	// autoscaler without a ceiling is a cost bomb.
	MaxParallelism int64 `json:"max-parallelism"`
	// ExecutorParallelism is the threads per unit (Spark's executor cores).
	ExecutorParallelism     int64        `json:"executor-parallelism"`
	ExecutorIdleTimeout     sdk.Duration `json:"executor-idle-timeout"`
	SchedulerBacklogTimeout sdk.Duration `json:"scheduler-backlog-timeout"`
	SustainedBacklogTimeout sdk.Duration `json:"sustained-backlog-timeout"`
	ScaleUpCooldown         sdk.Duration `json:"scale-up-cooldown"`
	ScaleDownCooldown       sdk.Duration `json:"scale-down-cooldown"`
	DrainTimeout            sdk.Duration `json:"drain-timeout"`
	// BootTimeout bounds how long a requested unit may take to register
	// before it stops counting as booting capacity and becomes an orphan.
	BootTimeout sdk.Duration `json:"boot-timeout"`
	AutoRestart AutoRestart  `json:"auto-restart"`
	// BacklogStep and ScaleDownStep size one round's scale-up and
	// scale-down (steps.go); the defaults are Amoro's.
	BacklogStep   string `json:"backlog-step"`
	ScaleDownStep string `json:"scale-down-step"`
	// UnitSize: whole units of ExecutorParallelism, or a fitted last unit.
	UnitSize string `json:"unit-size"`
	// Headroom is spare threads kept above the tasks while there is work:
	// what arrives during a boot finds a thread (ebb only).
	Headroom int64 `json:"headroom"`
	// ColdBacklogTimeout replaces SchedulerBacklogTimeout for the first
	// scale-up when the group has no capacity at all; unset (nil) means
	// the same, 0 means at once.
	ColdBacklogTimeout *sdk.Duration `json:"cold-backlog-timeout"`
}

// AutoRestart is seed 001's policy for units whose worker is gone.
type AutoRestart struct {
	Enabled     bool         `json:"enabled"`
	MaxRetries  int64        `json:"max-retries"`
	GracePeriod sdk.Duration `json:"grace-period"`
}

// DefaultPolicy holds the defaults of every optional key; MaxParallelism
// has none (0: unset), so a policy must name it.
func DefaultPolicy() Policy {
	return Policy{
		MinParallelism:          0,
		MaxParallelism:          0,
		ExecutorParallelism:     1,
		ExecutorIdleTimeout:     sdk.Duration(5 * time.Minute),
		SchedulerBacklogTimeout: sdk.Duration(time.Minute),
		SustainedBacklogTimeout: sdk.Duration(30 * time.Second),
		ScaleUpCooldown:         sdk.Duration(30 * time.Second),
		ScaleDownCooldown:       sdk.Duration(time.Minute),
		DrainTimeout:            sdk.Duration(15 * time.Minute),
		BootTimeout:             sdk.Duration(3 * time.Minute),
		BacklogStep:             BacklogStepRamp,
		ScaleDownStep:           ScaleDownStepOne,
		UnitSize:                UnitSizeWhole,
		AutoRestart: AutoRestart{
			Enabled:     false,
			MaxRetries:  5,
			GracePeriod: sdk.Duration(5 * time.Minute),
		},
	}
}

// minIdleTimeout is Amoro's DYNAMIC_ALLOCATION_EXECUTOR_IDLE_TIMEOUT_MIN.
const minIdleTimeout = 30 * time.Second

// maxCount bounds every count the evaluator accepts, so sums of threads can
// never overflow int64 whatever a policy or a collector sends.
const maxCount = 1 << 40

// PolicySchema is what Info publishes, so the runner type-checks the policy
// block at load time; defaults mirror DefaultPolicy.
func PolicySchema() sdk.Schema {
	d := DefaultPolicy()
	dur := func(v sdk.Duration) string { return fmtDur(v.D()) }
	return sdk.Schema{
		Attributes: []sdk.Attribute{
			{Name: "min-parallelism", Type: sdk.TypeNumber, Default: d.MinParallelism,
				Description: "Floor in threads: below it units are added at once, and scale-down never goes under it."},
			{Name: "max-parallelism", Type: sdk.TypeNumber, Required: true,
				Description: "Ceiling in threads (required). Above it (after lowering it) units are drained down to it."},
			{Name: "executor-parallelism", Type: sdk.TypeNumber, Default: d.ExecutorParallelism,
				Description: "Threads per unit (one optimizer process): every unit has exactly this many, or at most this many with unit-size \"fit\"; 1 to max-parallelism."},
			{Name: "executor-idle-timeout", Type: sdk.TypeDuration, Default: dur(d.ExecutorIdleTimeout),
				Description: "Drain a unit once it has been idle this long (and there is no demand); at least 30s."},
			{Name: "scheduler-backlog-timeout", Type: sdk.TypeDuration, Default: dur(d.SchedulerBacklogTimeout),
				Description: "How long a backlog must last before the first scale-up."},
			{Name: "sustained-backlog-timeout", Type: sdk.TypeDuration, Default: dur(d.SustainedBacklogTimeout),
				Description: "Interval between later scale-up rounds while the backlog lasts; at most half of executor-idle-timeout."},
			{Name: "scale-up-cooldown", Type: sdk.TypeDuration, Default: dur(d.ScaleUpCooldown),
				Description: "Minimum time between two demand-driven scale-ups."},
			{Name: "scale-down-cooldown", Type: sdk.TypeDuration, Default: dur(d.ScaleDownCooldown),
				Description: "Minimum time between two idle scale-downs."},
			{Name: "drain-timeout", Type: sdk.TypeDuration, Default: dur(d.DrainTimeout),
				Description: "A draining unit is force-removed after this long even if work is still in flight."},
			{Name: "boot-timeout", Type: sdk.TypeDuration, Default: dur(d.BootTimeout),
				Description: "A requested unit that has not registered by then no longer counts as booting capacity."},
			{Name: "backlog-step", Type: sdk.TypeString, Default: d.BacklogStep,
				Description: "Units one backlog round adds: \"ramp\" (1, 2, 4... per round, as Amoro and Spark) or \"shortfall\" (what the backlog needs, at once)."},
			{Name: "cold-backlog-timeout", Type: sdk.TypeDuration,
				Description: "How long a backlog must last before the first scale-up when the running tasks could not take it over by finishing (more threads short than tasks running; on a cold group any backlog); 0s: at once; unset: scheduler-backlog-timeout."},
			{Name: "scale-down-step", Type: sdk.TypeString, Default: d.ScaleDownStep,
				Description: "Units one scale-down round drains: \"one\" (the longest idle, as Amoro) or \"idle\" (every unit idle past executor-idle-timeout that the floor and the tasks do not need)."},
			{Name: "headroom", Type: sdk.TypeNumber, Default: d.Headroom,
				Description: "Spare threads kept above the tasks while there is work (tasks or pending tables): scale-up aims at tasks + headroom and scale-down keeps them; none once the work is gone."},
			{Name: "unit-size", Type: sdk.TypeString, Default: d.UnitSize,
				Description: "Threads of the units a scale-up adds: \"whole\" (executor-parallelism each, as Amoro) or \"fit\" (the last unit only the threads still short, at least 1)."},
		},
		Blocks: []sdk.Block{{
			Name:        "auto-restart",
			Description: "Restart units whose worker never registered or vanished (seed 001).",
			Schema: sdk.Schema{Attributes: []sdk.Attribute{
				{Name: "enabled", Type: sdk.TypeBool, Default: d.AutoRestart.Enabled,
					Description: "Restart orphaned units with the same id; when false they are released after the grace period."},
				{Name: "max-retries", Type: sdk.TypeNumber, Default: d.AutoRestart.MaxRetries,
					Description: "Restarts per orphan before it is released."},
				{Name: "grace-period", Type: sdk.TypeDuration, Default: dur(d.AutoRestart.GracePeriod),
					Description: "Wait after detecting an orphan, and between restarts, before acting."},
			}},
		}},
	}
}

// ParsePolicy decodes and checks a policy object; the error lists every
// problem found.
func ParsePolicy(raw json.RawMessage) (Policy, error) {
	p, problems := CheckPolicy(raw)
	if len(problems) > 0 {
		return p, problemsError(problems)
	}
	return p, nil
}

// ValidatePolicy reports whether a policy object is usable, for the runner
// and `ebb validate`.
func ValidatePolicy(raw json.RawMessage) error {
	_, err := ParsePolicy(raw)
	return err
}

func problemsError(problems []sdk.PolicyProblem) error {
	msgs := make([]string, len(problems))
	for i, p := range problems {
		if p.Attribute == "" {
			msgs[i] = p.Message
		} else {
			msgs[i] = p.Attribute + ": " + p.Message
		}
	}
	return errors.New("policy: " + strings.Join(msgs, "; "))
}

// CheckPolicy decodes a policy object over the defaults and returns every
// problem, each naming the attribute at fault, so the runner can point at
// its file:line:col.
func CheckPolicy(raw json.RawMessage) (Policy, []sdk.PolicyProblem) {
	p := DefaultPolicy()
	var problems []sdk.PolicyProblem
	add := func(attr, format string, args ...any) {
		problems = append(problems, sdk.PolicyProblem{Attribute: attr, Message: fmt.Sprintf(format, args...)})
	}
	obj, err := decodeObject(raw)
	if err != nil {
		add("", "%v", err)
		return p, problems
	}
	for _, key := range sortedKeys(obj) {
		v := obj[key]
		switch key {
		case "min-parallelism":
			decodeInt(v, &p.MinParallelism, key, add)
		case "max-parallelism":
			decodeInt(v, &p.MaxParallelism, key, add)
		case "executor-parallelism":
			decodeInt(v, &p.ExecutorParallelism, key, add)
		case "executor-idle-timeout":
			decodeDuration(v, &p.ExecutorIdleTimeout, key, add)
		case "scheduler-backlog-timeout":
			decodeDuration(v, &p.SchedulerBacklogTimeout, key, add)
		case "sustained-backlog-timeout":
			decodeDuration(v, &p.SustainedBacklogTimeout, key, add)
		case "scale-up-cooldown":
			decodeDuration(v, &p.ScaleUpCooldown, key, add)
		case "scale-down-cooldown":
			decodeDuration(v, &p.ScaleDownCooldown, key, add)
		case "drain-timeout":
			decodeDuration(v, &p.DrainTimeout, key, add)
		case "boot-timeout":
			decodeDuration(v, &p.BootTimeout, key, add)
		case "auto-restart":
			decodeAutoRestart(v, &p.AutoRestart, add)
		case "backlog-step":
			decodeChoice(v, &p.BacklogStep, backlogSteps, key, add)
		case "scale-down-step":
			decodeChoice(v, &p.ScaleDownStep, scaleDownSteps, key, add)
		case "unit-size":
			decodeChoice(v, &p.UnitSize, unitSizes, key, add)
		case "headroom":
			decodeInt(v, &p.Headroom, key, add)
		case "cold-backlog-timeout":
			if string(bytes.TrimSpace(v)) == "null" { // unset: the schema has no default
				continue
			}
			var d sdk.Duration
			decodeDuration(v, &d, key, add)
			p.ColdBacklogTimeout = &d
		default:
			add(key, "unknown policy attribute (the dra evaluator knows %s)", knownKeys())
		}
	}
	if len(problems) > 0 {
		// Consistency checks on half-decoded values would only add noise.
		return p, problems
	}
	if _, ok := obj["max-parallelism"]; !ok {
		add("max-parallelism", "is required: the ceiling in threads (Amoro requires dynamic-allocation.max-parallelism too)")
	}
	if p.MinParallelism < 0 {
		add("min-parallelism", "must not be negative, got %d", p.MinParallelism)
	}
	if _, ok := obj["max-parallelism"]; ok && p.MaxParallelism < 1 {
		add("max-parallelism", "must be at least 1 thread, got %d", p.MaxParallelism)
	}
	if p.ExecutorParallelism < 1 {
		add("executor-parallelism", "must be at least 1 thread per unit, got %d", p.ExecutorParallelism)
	}
	if p.Headroom < 0 {
		add("headroom", "must not be negative, got %d", p.Headroom)
	}
	for _, c := range []struct {
		attr string
		v    int64
	}{{"min-parallelism", p.MinParallelism}, {"max-parallelism", p.MaxParallelism}, {"executor-parallelism", p.ExecutorParallelism}, {"headroom", p.Headroom}} {
		if c.v > maxCount {
			add(c.attr, "%d is too large (at most %d)", c.v, int64(maxCount))
		}
	}
	// The checks of Amoro's DynamicAllocationConfig.validate, in its order.
	if p.MaxParallelism > 0 && p.MinParallelism > p.MaxParallelism {
		add("min-parallelism", "min-parallelism %d is above max-parallelism %d", p.MinParallelism, p.MaxParallelism)
	}
	if p.MaxParallelism > 0 && p.ExecutorParallelism > p.MaxParallelism {
		add("executor-parallelism", "executor-parallelism %d is above max-parallelism %d: not even one full unit fits", p.ExecutorParallelism, p.MaxParallelism)
	}
	if k := p.ExecutorParallelism; k >= 1 && k <= maxCount && p.MinParallelism >= 0 && p.MinParallelism <= maxCount &&
		p.MaxParallelism > 0 && p.MinParallelism <= p.MaxParallelism && k <= p.MaxParallelism {
		if floor := ceilDiv(p.MinParallelism, k) * k; floor > p.MaxParallelism {
			add("min-parallelism", "min-parallelism %d needs %d units of executor-parallelism %d = %d threads, above max-parallelism %d: the floor could never be reached in whole units",
				p.MinParallelism, floor/k, k, floor, p.MaxParallelism)
		}
	}
	if p.ExecutorIdleTimeout.D() < minIdleTimeout {
		add("executor-idle-timeout", "must be at least %s, got %s", fmtDur(minIdleTimeout), fmtDur(p.ExecutorIdleTimeout.D()))
	}
	for _, c := range []struct {
		attr string
		v    sdk.Duration
		why  string
	}{
		{"scheduler-backlog-timeout", p.SchedulerBacklogTimeout, "with 0 any backlog would scale up at once"},
		{"sustained-backlog-timeout", p.SustainedBacklogTimeout, "with 0 every round of a backlog would scale up again"},
		{"scale-up-cooldown", p.ScaleUpCooldown, "use a short one such as 1s to let sustained-backlog-timeout alone space scale-ups"},
		{"scale-down-cooldown", p.ScaleDownCooldown, "with 0 idle units would be drained all at once"},
		{"drain-timeout", p.DrainTimeout, "with 0 every drain would be a force removal"},
		{"boot-timeout", p.BootTimeout, "with 0 every new unit would be an orphan before it could register"},
	} {
		if c.v <= 0 {
			add(c.attr, "must be positive: %s", c.why)
		}
	}
	// Amoro: the evaluation cadence is also the idle observation's
	// resolution; sampling slower than half the idle timeout can drain a
	// unit that worked between two samples.
	if p.SustainedBacklogTimeout > 0 && p.ExecutorIdleTimeout >= sdk.Duration(minIdleTimeout) && 2*p.SustainedBacklogTimeout.D() > p.ExecutorIdleTimeout.D() {
		add("sustained-backlog-timeout", "%s is more than half of executor-idle-timeout %s", fmtDur(p.SustainedBacklogTimeout.D()), fmtDur(p.ExecutorIdleTimeout.D()))
	}
	if p.AutoRestart.MaxRetries < 0 {
		add("auto-restart.max-retries", "must not be negative, got %d", p.AutoRestart.MaxRetries)
	}
	if p.AutoRestart.GracePeriod <= 0 {
		add("auto-restart.grace-period", "must be positive: with 0 an orphan would be restarted or released the moment it is seen")
	}
	sort.SliceStable(problems, func(i, j int) bool { return problems[i].Attribute < problems[j].Attribute })
	return p, problems
}

func knownKeys() string {
	var names []string
	for _, a := range PolicySchema().Attributes {
		names = append(names, a.Name)
	}
	return strings.Join(append(names, "auto-restart { }"), ", ")
}

func decodeObject(raw json.RawMessage) (map[string]json.RawMessage, error) {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return map[string]json.RawMessage{}, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, fmt.Errorf("policy is not a JSON object: %w", err)
	}
	return obj, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

type addProblem func(attr, format string, args ...any)

// decodeInt accepts whole JSON numbers only: HCL numbers arrive as JSON
// numbers, and 2.5 threads is a mistake worth reporting.
func decodeInt(v json.RawMessage, dst *int64, attr string, add addProblem) {
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	var anyv any
	if err := dec.Decode(&anyv); err != nil {
		add(attr, "not a number: %v", err)
		return
	}
	n, ok := anyv.(json.Number)
	if !ok {
		add(attr, "must be a whole number, got %s", strings.TrimSpace(string(v)))
		return
	}
	if i, err := n.Int64(); err == nil {
		*dst = i
		return
	}
	f, err := n.Float64()
	if err != nil || f != math.Trunc(f) || math.Abs(f) > maxCount {
		add(attr, "must be a whole number of at most %d, got %s", int64(maxCount), n)
		return
	}
	*dst = int64(f)
}

func decodeDuration(v json.RawMessage, dst *sdk.Duration, attr string, add addProblem) {
	var d sdk.Duration
	if err := json.Unmarshal(v, &d); err != nil {
		add(attr, "%v", err)
		return
	}
	*dst = d
}

func decodeBool(v json.RawMessage, dst *bool, attr string, add addProblem) {
	if err := json.Unmarshal(v, dst); err != nil {
		add(attr, "must be true or false, got %s", strings.TrimSpace(string(v)))
	}
}

func decodeAutoRestart(v json.RawMessage, dst *AutoRestart, add addProblem) {
	// HCL blocks may reach us as an object or as a list holding one object,
	// depending on how the runner encodes a block that appears at most once.
	var list []json.RawMessage
	if err := json.Unmarshal(v, &list); err == nil {
		switch len(list) {
		case 0:
			return
		case 1:
			v = list[0]
		default:
			add("auto-restart", "the block may appear at most once, got %d", len(list))
			return
		}
	}
	obj, err := decodeObject(v)
	if err != nil {
		add("auto-restart", "must be a block: %v", err)
		return
	}
	for _, key := range sortedKeys(obj) {
		attr := "auto-restart." + key
		switch key {
		case "enabled":
			decodeBool(obj[key], &dst.Enabled, attr, add)
		case "max-retries":
			decodeInt(obj[key], &dst.MaxRetries, attr, add)
		case "grace-period":
			decodeDuration(obj[key], &dst.GracePeriod, attr, add)
		default:
			add(attr, "unknown attribute (auto-restart knows enabled, max-retries, grace-period)")
		}
	}
}

// fmtDur prints durations the way people write them in the policy: "30s",
// "5m", "65s", "1h".
func fmtDur(d time.Duration) string {
	neg := d < 0
	if neg {
		d = -d
	}
	var s string
	switch {
	case d == 0:
		s = "0s"
	case d%time.Hour == 0:
		s = fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		s = fmt.Sprintf("%dm", d/time.Minute)
	case d%time.Second == 0:
		s = fmt.Sprintf("%ds", d/time.Second)
	default:
		s = d.Round(time.Millisecond).String()
	}
	if neg {
		return "-" + s
	}
	return s
}
