// Package ams emulates Apache Amoro's management service (AMS) closely enough
// for ebb's collector, its tests, `ebb dev` and the simulator: the dashboard
// REST API under /api/ams/v1 with AMS's envelope and auth schemes, the
// Prometheus exposition of the optimizer-group gauges, and an optimizer-facing
// API that mirrors the Thrift OptimizingService over JSON. Behind them is a
// queue model of DefaultOptimizingService: tables become pending, get planned
// into tasks only when an optimizer polls, tasks go PLANNED -> SCHEDULED ->
// ACKED -> SUCCESS/FAILED, and a silent optimizer expires after the heartbeat
// timeout with its tasks put back to PLANNED.
//
// Every shape and rule here comes from shared/reference/amoro.md; comments
// name the section and the Amoro source file it cites.
//
// The emulator never runs a goroutine of its own. It catches up with its clock
// whenever it is asked something (an HTTP request, a method call), processing
// due events in time order, so under a VirtualClock it is fully deterministic.
package ams

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"
)

// Defaults from AmoroManagementConf (amoro.md §1.2).
const (
	DefaultHeartbeatTimeout       = time.Minute      // optimizer.heart-beat-timeout
	DefaultTaskAckTimeout         = 30 * time.Second // optimizer.task-ack-timeout
	DefaultMaxPlanningParallelism = 1                // optimizer.max-planning-parallelism
	// DefaultHeartbeatInterval is the optimizer's own default (`-hb`, amoro.md §1.2).
	DefaultHeartbeatInterval = 10 * time.Second
	// DefaultMaxTaskRetries bounds FAILED -> PLANNED retries before the
	// process fails. Amoro's limit is a table property not covered by
	// amoro.md; the emulator picks a small number.
	DefaultMaxTaskRetries = 3
	// DefaultGroup is the group created when Options.Groups is empty.
	DefaultGroup = "default"
	// ExternalContainer is Amoro's reserved container name for optimizers
	// started outside AMS (Constants.EXTERNAL_RESOURCE_CONTAINER, amoro.md §1.1).
	ExternalContainer = "external"
)

// AuthType is AMS's `http-server.rest-auth-type` (amoro.md §4.3).
type AuthType string

const (
	AuthNone  AuthType = "none"
	AuthToken AuthType = "token"
	AuthBasic AuthType = "basic"
)

// Auth configures how the REST API authenticates API clients (amoro.md §4.3).
type Auth struct {
	Type AuthType
	// APIKey and Secret: `token` auth, signature = md5(apiKey + params + secret).
	APIKey string
	Secret string
	// Username and Password: `basic` auth (admin-username / admin-password).
	Username string
	Password string
	// Location is the time zone of the yyyyMMdd date signed when a request
	// has no other query parameters (the AMS JVM default time zone). Nil
	// means UTC.
	Location *time.Location
}

// GroupConfig is one resource group ("optimizer group", amoro.md §1.1).
type GroupConfig struct {
	Name string
	// Container defaults to "external".
	Container  string
	Properties map[string]string
}

// AMSScaledGroup is a group AMS scales itself: container "k8s" with
// dynamic-allocation.enabled (OptimizerProperties.java, amoro.md §6.2), as
// GET /optimize/resourceGroups shows it. The emulator does not run AMS's
// scale keeper; the group is there so that clients can be seen refusing it.
func AMSScaledGroup(name string) GroupConfig {
	return GroupConfig{Name: name, Container: "k8s", Properties: map[string]string{
		"memory": "2048", "dynamic-allocation.enabled": "true",
		"dynamic-allocation.max-parallelism": "16", "dynamic-allocation.executor-parallelism": "4",
	}}
}

// Options configures an Emulator. Zero values mean Amoro's defaults.
type Options struct {
	// Clock defaults to the wall clock. With a *VirtualClock, Advance and
	// Step move time.
	Clock                  Clock
	HeartbeatTimeout       time.Duration
	TaskAckTimeout         time.Duration
	MaxPlanningParallelism int
	// PlanningDuration is how long planning a table takes; 0 plans at once
	// (still only when an optimizer polls).
	PlanningDuration time.Duration
	// CommitDuration is how long a table stays COMMITTING after its last task.
	CommitDuration time.Duration
	MaxTaskRetries int
	Groups         []GroupConfig
	Auth           Auth
	// Catalog and Database qualify table names given without them.
	Catalog  string
	Database string
	// Seed makes optimizer tokens reproducible.
	Seed uint64
	// Start is the origin of trace submit times; defaults to the clock's
	// time when New is called.
	Start time.Time
	// QuotaLimit makes polls respect each table's quota as a hard cap on the
	// threads its tasks hold, as OptimizingQueue.pollTask does with
	// self-optimizing.break-quota-limit-enabled=false (amoro.md §2.2). Off,
	// any planned task may be taken (the default break-quota-limit when no
	// table is planning).
	QuotaLimit bool
	// OnTaskDone, when set, is called (under the emulator's lock: it must not
	// call back) each time a task succeeds.
	OnTaskDone func(TaskDone)
}

// TaskDone is one task that succeeded: when its work was submitted, when a
// thread took it (SCHEDULED) and when it finished.
type TaskDone struct {
	Table                        string
	Submitted, Started, Finished time.Time
}

// Emulator is one emulated AMS. All methods are safe for concurrent use.
type Emulator struct {
	opts  Options
	clock Clock

	mu            sync.Mutex
	now           time.Time
	groups        map[string]*group
	groupOrder    []*group
	tables        map[string]*table // by full name
	optimizers    []*optimizer      // registration order
	byToken       map[string]*optimizer
	resources     map[string]*group // resource rows of optimizers AMS launched, by resource id
	trace         []traceEvent
	traceNext     int
	traceSeq      int
	nextProcessID int64
	nextTableID   int64
	rng           *rand.Rand
	faults        []*Fault
	// invariant records transitions the model refused; tests assert it stays
	// empty.
	invariant []string
}

type traceEvent struct {
	at       time.Time
	group    string
	table    string
	duration time.Duration
}

// New builds an emulator. It fails on invalid options.
func New(opts Options) (*Emulator, error) {
	if opts.Clock == nil {
		opts.Clock = RealClock{}
	}
	if opts.HeartbeatTimeout == 0 {
		opts.HeartbeatTimeout = DefaultHeartbeatTimeout
	}
	if opts.TaskAckTimeout == 0 {
		opts.TaskAckTimeout = DefaultTaskAckTimeout
	}
	if opts.MaxPlanningParallelism == 0 {
		opts.MaxPlanningParallelism = DefaultMaxPlanningParallelism
	}
	if opts.MaxTaskRetries == 0 {
		opts.MaxTaskRetries = DefaultMaxTaskRetries
	}
	if opts.Catalog == "" {
		opts.Catalog = "emulator"
	}
	if opts.Database == "" {
		opts.Database = "db"
	}
	if opts.Auth.Type == "" {
		opts.Auth.Type = AuthNone
	}
	if opts.Auth.Location == nil {
		opts.Auth.Location = time.UTC
	}
	switch {
	case opts.HeartbeatTimeout < 0, opts.TaskAckTimeout < 0, opts.PlanningDuration < 0, opts.CommitDuration < 0:
		return nil, errors.New("ams emulator: durations must not be negative")
	case opts.MaxPlanningParallelism < 0 || opts.MaxTaskRetries < 0:
		return nil, errors.New("ams emulator: max planning parallelism and max task retries must not be negative")
	}
	switch opts.Auth.Type {
	case AuthNone:
	case AuthToken:
		if opts.Auth.APIKey == "" || opts.Auth.Secret == "" {
			return nil, errors.New("ams emulator: token auth needs an api key and a secret")
		}
	case AuthBasic:
		if opts.Auth.Username == "" || opts.Auth.Password == "" {
			return nil, errors.New("ams emulator: basic auth needs a username and a password")
		}
	default:
		return nil, fmt.Errorf("ams emulator: unknown auth type %q (want none, token or basic)", opts.Auth.Type)
	}
	if len(opts.Groups) == 0 {
		opts.Groups = []GroupConfig{{Name: DefaultGroup}}
	}
	now := opts.Clock.Now()
	if opts.Start.IsZero() {
		opts.Start = now
	}
	e := &Emulator{
		opts:          opts,
		clock:         opts.Clock,
		now:           now,
		groups:        map[string]*group{},
		tables:        map[string]*table{},
		byToken:       map[string]*optimizer{},
		resources:     map[string]*group{},
		nextProcessID: 1,
		nextTableID:   1,
		rng:           rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)),
	}
	for _, gc := range opts.Groups {
		if err := validGroupName(gc.Name); err != nil {
			return nil, err
		}
		if _, dup := e.groups[gc.Name]; dup {
			return nil, fmt.Errorf("ams emulator: group %q defined twice", gc.Name)
		}
		g := &group{name: gc.Name, container: gc.Container, properties: map[string]string{}}
		if g.container == "" {
			g.container = ExternalContainer
		}
		for k, v := range gc.Properties {
			g.properties[k] = v
		}
		e.groups[g.name] = g
		e.groupOrder = append(e.groupOrder, g)
	}
	return e, nil
}

// validGroupName applies the check of the resource-group REST endpoints,
// ^[A-Za-z0-9_-]{1,50}$ (amoro.md §4.2).
func validGroupName(name string) error {
	if len(name) < 1 || len(name) > 50 {
		return fmt.Errorf("ams emulator: group name %q must be 1 to 50 characters", name)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return fmt.Errorf("ams emulator: group name %q may only contain letters, digits, '_' and '-'", name)
		}
	}
	return nil
}

// Now is the emulator's current time.
func (e *Emulator) Now() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.syncLocked()
	return e.now
}

// Sync processes everything due up to the clock's current time. Callers that
// own an external virtual clock call it after moving that clock.
func (e *Emulator) Sync() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.syncLocked()
}

// Advance moves a *VirtualClock forward by d, processing every event in
// between at its own time.
func (e *Emulator) Advance(d time.Duration) error {
	vc, ok := e.clock.(*VirtualClock)
	if !ok {
		return errors.New("ams emulator: Advance needs a *VirtualClock")
	}
	if d < 0 {
		return errors.New("ams emulator: cannot advance by a negative duration")
	}
	vc.Advance(d)
	e.Sync()
	return nil
}

// Step moves a *VirtualClock to the next event and processes it. It reports
// false when nothing is scheduled.
func (e *Emulator) Step() (time.Time, bool, error) {
	vc, ok := e.clock.(*VirtualClock)
	if !ok {
		return time.Time{}, false, errors.New("ams emulator: Step needs a *VirtualClock")
	}
	e.mu.Lock()
	e.syncLocked()
	next, ok := e.nextEventLocked()
	e.mu.Unlock()
	if !ok {
		return time.Time{}, false, nil
	}
	vc.Set(next)
	e.Sync()
	return next, true, nil
}

// NextEventAt is when the next scheduled event happens, for simulators that
// own the clock.
func (e *Emulator) NextEventAt() (time.Time, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.syncLocked()
	return e.nextEventLocked()
}

// InvariantViolations lists task transitions the model refused because
// TaskRuntime's transition table forbids them; it is empty unless the
// emulator has a bug.
func (e *Emulator) InvariantViolations() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.invariant...)
}

func (e *Emulator) syncLocked() { e.advanceLocked(e.clock.Now()) }

// advanceLocked processes due events one instant at a time, so that every
// event happens at its own time even when nobody looked for a while.
func (e *Emulator) advanceLocked(to time.Time) {
	for {
		next, ok := e.nextEventLocked()
		if !ok || next.After(to) {
			break
		}
		if next.After(e.now) {
			e.now = next
		}
		if !e.fireDueLocked() {
			// Nothing changed although an event looked due: stop rather
			// than spin; record it, it is a model bug.
			e.invariant = append(e.invariant, fmt.Sprintf("event at %s did not fire", next.Format(time.RFC3339Nano)))
			break
		}
		e.dispatchLocked()
	}
	if to.After(e.now) {
		e.now = to
	}
	e.dispatchLocked()
}

func minTime(a time.Time, ok bool, b time.Time) (time.Time, bool) {
	if b.IsZero() {
		return a, ok
	}
	if !ok || b.Before(a) {
		return b, true
	}
	return a, ok
}

func (e *Emulator) nextEventLocked() (time.Time, bool) {
	var at time.Time
	var ok bool
	if e.traceNext < len(e.trace) {
		at, ok = e.trace[e.traceNext].at, true
	}
	for _, g := range e.groupOrder {
		for _, t := range g.tables {
			switch t.status {
			case TablePlanning:
				at, ok = minTime(at, ok, t.planDoneAt)
			case TableCommitting:
				at, ok = minTime(at, ok, t.commitDoneAt)
			}
		}
		for _, p := range g.active {
			for _, tk := range p.tasks {
				switch tk.status {
				case TaskAcked:
					at, ok = minTime(at, ok, tk.finishAt)
				case TaskScheduled:
					at, ok = minTime(at, ok, tk.startTime.Add(e.opts.TaskAckTimeout))
				}
			}
		}
	}
	for _, o := range e.optimizers {
		at, ok = minTime(at, ok, e.expiresAtLocked(o))
	}
	return at, ok
}

// lastTouchLocked is the optimizer's last heartbeat. An in-process optimizer
// heartbeats every interval from registration until it stops, so its touch
// time is computed rather than driven by timers.
func (e *Emulator) lastTouchLocked(o *optimizer) time.Time {
	if o.virt == nil {
		return o.touchTime
	}
	until := e.now
	if !o.virt.stoppedAt.IsZero() {
		until = o.virt.stoppedAt
	}
	n := until.Sub(o.registeredAt) / o.hbInterval
	return o.registeredAt.Add(n * o.hbInterval)
}

// expiresAtLocked is when OptimizerKeeper would expire the optimizer: its last
// touch plus optimizer.heart-beat-timeout (amoro.md §2.4). Zero for a live
// in-process optimizer, which keeps heartbeating.
func (e *Emulator) expiresAtLocked(o *optimizer) time.Time {
	if o.virt != nil && o.virt.stoppedAt.IsZero() {
		return time.Time{}
	}
	return e.lastTouchLocked(o).Add(e.opts.HeartbeatTimeout)
}

// fireDueLocked processes every event due at e.now. It reports whether
// anything happened.
func (e *Emulator) fireDueLocked() bool {
	fired := false
	for e.traceNext < len(e.trace) && !e.trace[e.traceNext].at.After(e.now) {
		ev := e.trace[e.traceNext]
		e.traceNext++
		if err := e.submitLocked(ev.group, ev.table, []time.Duration{ev.duration}); err != nil {
			e.invariant = append(e.invariant, "trace: "+err.Error())
		}
		fired = true
	}
	for _, g := range e.groupOrder {
		for _, t := range g.tables {
			if t.status == TablePlanning && !t.planDoneAt.After(e.now) {
				e.finishPlanningLocked(t)
				fired = true
			}
		}
		// Completions first, then ack timeouts: a task finishing at the
		// same instant as a timeout elsewhere is not affected by it.
		for _, p := range append([]*process(nil), g.active...) {
			for _, tk := range p.tasks {
				if tk.status == TaskAcked && !tk.finishAt.IsZero() && !tk.finishAt.After(e.now) {
					o := e.byToken[tk.token]
					e.releaseSlotLocked(o, tk)
					e.completeLocked(tk, "")
					fired = true
				}
			}
		}
		for _, p := range append([]*process(nil), g.active...) {
			for _, tk := range p.tasks {
				// OptimizerKeeper: SCHEDULED and not acked within
				// task-ack-timeout goes back to PLANNED (amoro.md §2.4).
				if tk.status == TaskScheduled && !tk.startTime.Add(e.opts.TaskAckTimeout).After(e.now) {
					e.resetLocked(tk)
					fired = true
				}
			}
		}
		for _, t := range g.tables {
			if t.status == TableCommitting && !t.commitDoneAt.After(e.now) {
				e.finishCommitLocked(t)
				fired = true
			}
		}
	}
	for _, o := range append([]*optimizer(nil), e.optimizers...) {
		if exp := e.expiresAtLocked(o); !exp.IsZero() && !exp.After(e.now) {
			e.unregisterLocked(o)
			fired = true
		}
	}
	return fired
}

// unregisterLocked expires an optimizer the way OptimizerKeeper does
// (amoro.md §2.4): the instance goes, and every task whose token is no longer
// registered and that has not succeeded goes back to PLANNED.
func (e *Emulator) unregisterLocked(o *optimizer) {
	delete(e.byToken, o.token)
	for i, x := range e.optimizers {
		if x == o {
			e.optimizers = append(e.optimizers[:i], e.optimizers[i+1:]...)
			break
		}
	}
	for _, p := range append([]*process(nil), o.group.active...) {
		for _, tk := range p.tasks {
			if tk.token == "" || tk.status == TaskSuccess {
				continue
			}
			if _, live := e.byToken[tk.token]; live {
				continue
			}
			if tk.status == TaskScheduled || tk.status == TaskAcked {
				e.resetLocked(tk)
			}
		}
	}
}

func (e *Emulator) moveLocked(tk *task, to TaskStatus) bool {
	if !canMove(tk.status, to) {
		e.invariant = append(e.invariant, fmt.Sprintf("task %d/%d: %s -> %s is not a TaskRuntime transition", tk.process.id, tk.taskID, tk.status, to))
		return false
	}
	tk.status = to
	return true
}

// resetLocked is TaskRuntime.reset(): back to PLANNED, token and thread
// cleared (amoro.md §2.3).
func (e *Emulator) resetLocked(tk *task) {
	if e.moveLocked(tk, TaskPlanned) {
		tk.token = ""
		tk.threadID = -1
		tk.finishAt = time.Time{}
	}
}

// --- work ---

// Submit adds work to a table of a group: one task per duration, planned
// the next time an optimizer polls. group "" means the first group; the table
// may be "name", "db.name" or "catalog.db.name".
func (e *Emulator) Submit(groupName, tableName string, durations ...time.Duration) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.syncLocked()
	if err := e.submitLocked(groupName, tableName, durations); err != nil {
		return err
	}
	e.dispatchLocked()
	return nil
}

func (e *Emulator) resolveGroupLocked(name string) (*group, error) {
	if name == "" {
		return e.groupOrder[0], nil
	}
	g, ok := e.groups[name]
	if !ok {
		return nil, fmt.Errorf("ams emulator: unknown optimizer group %q", name)
	}
	return g, nil
}

func (e *Emulator) splitTableName(name string) (catalog, db, tbl string, err error) {
	parts := strings.Split(name, ".")
	for _, p := range parts {
		if p == "" {
			return "", "", "", fmt.Errorf("ams emulator: invalid table name %q", name)
		}
	}
	switch len(parts) {
	case 1:
		return e.opts.Catalog, e.opts.Database, parts[0], nil
	case 2:
		return e.opts.Catalog, parts[0], parts[1], nil
	case 3:
		return parts[0], parts[1], parts[2], nil
	}
	return "", "", "", fmt.Errorf("ams emulator: invalid table name %q: want table, db.table or catalog.db.table", name)
}

func (e *Emulator) submitLocked(groupName, tableName string, durations []time.Duration) error {
	g, err := e.resolveGroupLocked(groupName)
	if err != nil {
		return err
	}
	c, d, n, err := e.splitTableName(tableName)
	if err != nil {
		return err
	}
	for _, du := range durations {
		if du < 0 {
			return fmt.Errorf("ams emulator: task duration %s is negative", du)
		}
	}
	full := c + "." + d + "." + n
	t, ok := e.tables[full]
	if !ok {
		t = &table{id: e.nextTableID, group: g, catalog: c, database: d, name: n, status: TableIdle, statusSince: e.now, quota: DefaultTableQuota}
		e.nextTableID++
		e.tables[full] = t
		g.tables = append(g.tables, t)
	} else if t.group != g {
		return fmt.Errorf("ams emulator: table %s belongs to group %q, not %q", full, t.group.name, g.name)
	}
	if len(durations) == 0 {
		return nil
	}
	t.queued = append(t.queued, durations...)
	for range durations {
		t.queuedAt = append(t.queuedAt, e.now)
	}
	// Only an idle table turns pending; a table in a process keeps its
	// new work until the process commits.
	if t.status == TableIdle {
		e.setTableStatusLocked(t, TablePending)
	}
	return nil
}

func (e *Emulator) setTableStatusLocked(t *table, s TableStatus) {
	t.status = s
	t.statusSince = e.now
}

// schedulePlanningLocked is scheduleTableIfNecessary (amoro.md §2.2): called
// from a poll, it starts planning at most max-planning-parallelism tables.
// Pending tables are taken oldest first.
func (e *Emulator) schedulePlanningLocked(g *group) {
	planning := 0
	var pending []*table
	for _, t := range g.tables {
		switch t.status {
		case TablePlanning:
			planning++
		case TablePending:
			pending = append(pending, t)
		}
	}
	sort.SliceStable(pending, func(i, j int) bool { return pending[i].statusSince.Before(pending[j].statusSince) })
	for _, t := range pending {
		if planning >= e.opts.MaxPlanningParallelism {
			return
		}
		planning++
		e.setTableStatusLocked(t, TablePlanning)
		t.planDoneAt = e.now.Add(e.opts.PlanningDuration)
		if e.opts.PlanningDuration == 0 {
			e.finishPlanningLocked(t)
		}
	}
}

func (e *Emulator) finishPlanningLocked(t *table) {
	if len(t.queued) == 0 {
		e.setTableStatusLocked(t, TableIdle)
		return
	}
	p := &process{id: e.nextProcessID, table: t, status: ProcessRunning, startTime: e.now}
	e.nextProcessID++
	for i, d := range t.queued {
		p.tasks = append(p.tasks, &task{process: p, taskID: int32(i + 1), duration: d, status: TaskPlanned, threadID: -1, submittedAt: t.queuedAt[i]})
	}
	t.queued, t.queuedAt = nil, nil
	t.current = p
	t.processes = append(t.processes, p)
	t.group.active = append(t.group.active, p)
	e.setTableStatusLocked(t, TableMinor)
}

func (e *Emulator) finishCommitLocked(t *table) {
	if p := t.current; p != nil {
		p.status = ProcessSuccess
		p.endTime = e.now
	}
	t.current = nil
	if len(t.queued) > 0 {
		e.setTableStatusLocked(t, TablePending)
	} else {
		e.setTableStatusLocked(t, TableIdle)
	}
}

func (g *group) removeActive(p *process) {
	for i, x := range g.active {
		if x == p {
			g.active = append(g.active[:i], g.active[i+1:]...)
			return
		}
	}
}

// completeLocked is completeTask on an ACKED task: SUCCESS, or FAILED when
// there is an error message (amoro.md §2.2), FAILED going back to PLANNED
// for a retry.
func (e *Emulator) completeLocked(tk *task, errMsg string) {
	tk.endTime = e.now
	tk.costTime = e.now.Sub(tk.startTime)
	tk.finishAt = time.Time{}
	p := tk.process
	if errMsg != "" {
		if !e.moveLocked(tk, TaskFailed) {
			return
		}
		tk.failReason = errMsg
		tk.retryNum++
		if tk.retryNum > e.opts.MaxTaskRetries {
			e.failProcessLocked(p, fmt.Sprintf("task %d failed %d times: %s", tk.taskID, tk.retryNum, errMsg))
			return
		}
		e.resetLocked(tk)
		return
	}
	// The token stays on the finished task: task_runtime persists it
	// (amoro.md §2.3), which is how REST clients learn who ran what.
	if !e.moveLocked(tk, TaskSuccess) {
		return
	}
	if e.opts.OnTaskDone != nil {
		e.opts.OnTaskDone(TaskDone{Table: p.table.fullName(), Submitted: tk.submittedAt, Started: tk.startTime, Finished: e.now})
	}
	for _, x := range p.tasks {
		if x.status != TaskSuccess {
			return
		}
	}
	p.table.group.removeActive(p)
	e.setTableStatusLocked(p.table, TableCommitting)
	p.table.commitDoneAt = e.now.Add(e.opts.CommitDuration)
	if e.opts.CommitDuration == 0 {
		e.finishCommitLocked(p.table)
	}
}

func (e *Emulator) failProcessLocked(p *process, reason string) {
	for _, x := range p.tasks {
		switch x.status {
		case TaskPlanned, TaskScheduled, TaskAcked:
			if o := e.byToken[x.token]; o != nil {
				e.releaseSlotLocked(o, x)
			}
			e.moveLocked(x, TaskCanceled)
			x.finishAt = time.Time{}
		}
	}
	p.status = ProcessFailed
	p.failure = reason
	p.endTime = e.now
	p.table.group.removeActive(p)
	t := p.table
	t.current = nil
	if len(t.queued) > 0 {
		e.setTableStatusLocked(t, TablePending)
	} else {
		e.setTableStatusLocked(t, TableIdle)
	}
}

// pollLocked is pollTask for one optimizer thread (amoro.md §2.2): reset what
// this thread still held, take the first PLANNED task in planning order, and
// when there is none trigger planning, which only a poll can do.
func (e *Emulator) pollLocked(o *optimizer, threadID int32) *task {
	g := o.group
	for _, p := range g.active {
		for _, tk := range p.tasks {
			if tk.token == o.token && tk.threadID == threadID && (tk.status == TaskScheduled || tk.status == TaskAcked) {
				e.resetLocked(tk)
			}
		}
	}
	tk := e.firstPlanned(g)
	if tk == nil {
		e.schedulePlanningLocked(g)
		tk = e.firstPlanned(g)
	}
	if tk == nil || !e.moveLocked(tk, TaskScheduled) {
		return nil
	}
	tk.token = o.token
	tk.threadID = threadID
	tk.startTime = e.now
	tk.endTime = time.Time{}
	return tk
}

func (e *Emulator) firstPlanned(g *group) *task {
	threads := 0
	if e.opts.QuotaLimit {
		for _, o := range e.optimizers {
			if o.group == g {
				threads += int(o.threads)
			}
		}
	}
	for _, p := range g.active {
		if e.opts.QuotaLimit && occupied(p) >= quotaThreads(p.table.quota, threads) {
			continue
		}
		for _, tk := range p.tasks {
			if tk.status == TaskPlanned {
				return tk
			}
		}
	}
	return nil
}

// quotaThreads is a table's quota in threads as OptimizingUtil computes it
// (amoro.md §0): (int)q when q > 1, else ceil(q × group threads).
func quotaThreads(q float64, groupThreads int) int {
	if q > 1 {
		return int(q)
	}
	return int(math.Ceil(q * float64(max(groupThreads, 1))))
}

// occupied counts a process's tasks holding a thread (SCHEDULED or ACKED).
func occupied(p *process) int {
	n := 0
	for _, tk := range p.tasks {
		if tk.status == TaskScheduled || tk.status == TaskAcked {
			n++
		}
	}
	return n
}

// --- in-process optimizers ---

// StartOptimizer registers an optimizer simulated inside the emulator, as if
// a process started with `-g group -p threads -id unitID` had authenticated
// (amoro.md §3.1, §2.2). Its threads poll whenever they are free, ack at once
// and complete each task after its duration; it heartbeats every
// DefaultHeartbeatInterval until drained or killed. It returns the token.
func (e *Emulator) StartOptimizer(groupName, unitID string, threads int) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.syncLocked()
	g, err := e.resolveGroupLocked(groupName)
	if err != nil {
		return "", err
	}
	if threads < 1 {
		return "", fmt.Errorf("ams emulator: optimizer %q needs at least one thread, got %d", unitID, threads)
	}
	o := e.registerLocked(g, unitID, int32(threads), 0, e.now, DefaultHeartbeatInterval, nil)
	o.virt = &virtualOptimizer{slots: make([]*task, threads)}
	e.dispatchLocked()
	return o.token, nil
}

// DrainOptimizer sends an in-process optimizer what SIGTERM sends a real one
// (amoro.md §3.3, #4197): it stops polling, finishes the tasks it holds while
// still heartbeating, then exits. AMS keeps it registered until its
// heartbeat times out.
func (e *Emulator) DrainOptimizer(unitID string) error {
	return e.eachVirtual(unitID, func(o *optimizer) { o.virt.draining = true })
}

// KillOptimizer stops an in-process optimizer dead: no more heartbeats, its
// tasks stay held until it expires and they go back to PLANNED.
func (e *Emulator) KillOptimizer(unitID string) error {
	return e.eachVirtual(unitID, func(o *optimizer) {
		if !o.virt.stoppedAt.IsZero() {
			return
		}
		o.virt.stoppedAt = e.now
		for i, tk := range o.virt.slots {
			if tk != nil {
				tk.finishAt = time.Time{}
				o.virt.slots[i] = nil
			}
		}
	})
}

func (e *Emulator) eachVirtual(unitID string, f func(*optimizer)) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.syncLocked()
	found := false
	for _, o := range e.optimizers {
		if o.virt != nil && o.resourceID == unitID {
			f(o)
			found = true
		}
	}
	if !found {
		return fmt.Errorf("ams emulator: no in-process optimizer with unit id %q", unitID)
	}
	e.dispatchLocked()
	return nil
}

func (e *Emulator) newToken() string {
	// UUID-shaped like AMS's tokens (amoro.md §1.1), from the seeded source
	// so runs repeat.
	a, b := e.rng.Uint64(), e.rng.Uint64()
	return fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", a>>32, (a>>16)&0xffff, a&0xffff, b>>48, b&0xffffffffffff)
}

func (e *Emulator) registerLocked(g *group, resourceID string, threads, memoryMB int32, start time.Time, hb time.Duration, props map[string]string) *optimizer {
	o := &optimizer{
		token: e.newToken(), group: g, resourceID: resourceID, threads: threads, memoryMB: memoryMB,
		startTime: start, registeredAt: e.now, touchTime: e.now, hbInterval: hb, properties: props,
	}
	e.optimizers = append(e.optimizers, o)
	e.byToken[o.token] = o
	return o
}

func (e *Emulator) releaseSlotLocked(o *optimizer, tk *task) {
	if o == nil || o.virt == nil {
		return
	}
	for i, x := range o.virt.slots {
		if x == tk {
			o.virt.slots[i] = nil
		}
	}
}

// dispatchLocked lets in-process optimizers poll. Free threads poll in turn,
// one per optimizer per round, so work spreads over optimizers the way
// concurrent long-polls would; a drained optimizer with nothing left exits.
func (e *Emulator) dispatchLocked() {
	for {
		assigned := false
		for _, o := range append([]*optimizer(nil), e.optimizers...) {
			v := o.virt
			if v == nil || !v.stoppedAt.IsZero() {
				continue
			}
			if v.draining {
				if v.idle() {
					v.stoppedAt = e.now
				}
				continue
			}
			for i, tk := range v.slots {
				if tk != nil {
					continue
				}
				got := e.pollLocked(o, int32(i))
				if got == nil {
					break
				}
				// The in-process optimizer acks at once (amoro.md §2.2 ackTask).
				if e.moveLocked(got, TaskAcked) {
					got.finishAt = e.now.Add(got.duration)
					v.slots[i] = got
					assigned = true
				}
				break
			}
		}
		if !assigned {
			return
		}
	}
}

func (v *virtualOptimizer) idle() bool {
	for _, tk := range v.slots {
		if tk != nil {
			return false
		}
	}
	return true
}
