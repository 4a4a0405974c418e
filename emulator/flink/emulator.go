// Package flink emulates an Apache Flink JobManager's REST API closely enough
// for ebb's Flink realizer, its tests and `ebb emulate flink`: cluster and job
// overviews, job details with vertices and subtasks, the adaptive scheduler's
// resource requirements (FLIP-291, Flink 1.18+), jar upload and run, cancel and
// stop. Paths are served with and without the /v1 prefix, as Flink does.
//
// Shapes follow Flink's own REST contract: the OpenAPI spec
// docs/static/generated/rest_v1_dispatcher.yml of apache/flink and, where the
// running system differs from the spec, the Java handlers under
// flink-runtime/src/main/java/org/apache/flink/runtime/rest/handler/ (each
// handler below names the one it follows). Rules come from
// shared/reference/flink.md §2.
//
// Jobs come from Options.Jobs (already running when the emulator starts) or
// from jar runs. A jar run's entry class picks a Program: its topology and,
// optionally, code that runs while the job runs (the Amoro optimizer program
// in optimizer.go registers an emulated optimizer with an AMS emulator). A
// cancelled job stays CANCELLING until that code returns, as Flink waits for
// its tasks to close, so an optimizer drains its in-flight tasks.
package flink

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Job states, from org.apache.flink.api.common.JobStatus.
const (
	StateCreated    = "CREATED"
	StateRunning    = "RUNNING"
	StateCancelling = "CANCELLING"
	StateCanceled   = "CANCELED"
	StateFinished   = "FINISHED"
	StateFailed     = "FAILED"
)

// Ship strategies as the JSON plan writes them (inputs[].ship_strategy).
const (
	ShipForward   = "FORWARD"
	ShipHash      = "HASH"
	ShipBroadcast = "BROADCAST"
	ShipRebalance = "REBALANCE"
)

// DefaultVersion is the Flink version the emulator reports by default.
const DefaultVersion = "1.20.1"

// DefaultMaxParallelism is what Flink derives for a vertex of small
// parallelism when none is set (KeyGroupRangeAssignment's lower bound, 128).
const DefaultMaxParallelism = 128

// VertexSpec is one job vertex of a job's topology.
type VertexSpec struct {
	// ID is the vertex id, 32 hex characters; empty: derived from the job
	// id and the vertex name, so a resubmitted job keeps its vertex ids.
	ID             string
	Name           string
	Parallelism    int
	MaxParallelism int
	// Input names the upstream vertex by name; empty for a source.
	Input string
	// Ship is the input's ship strategy (ShipHash after a keyBy).
	Ship string
}

// JobSpec is a job that runs from the start.
type JobSpec struct {
	ID   string
	Name string
	// Config is the job's configuration (e.g. jobmanager.scheduler), over
	// the cluster's.
	Config   map[string]string
	Vertices []VertexSpec
}

// Program is what a jar's entry class does when a job is submitted from it.
type Program struct {
	// JobName is the name the program gives its job (env.execute(name)).
	JobName string
	// Topology builds the vertices from the program arguments and the
	// submission's parallelism.
	Topology func(args []string, parallelism int) ([]VertexSpec, error)
	// Run, if set, runs while the job runs and returns when ctx ends (the
	// job is cancelled). parallelism reports the widest vertex's current
	// parallelism, which an in-place rescale changes.
	Run func(ctx context.Context, args []string, parallelism func() int) error
}

// Options configures an Emulator.
type Options struct {
	// Version is reported as flink-version; default DefaultVersion.
	Version string
	// TaskManagers and SlotsPerTaskManager size the cluster (default 2 x 4).
	TaskManagers        int
	SlotsPerTaskManager int
	// Config is the cluster configuration (GET /jobmanager/config).
	Config map[string]string
	// Jobs run from the start.
	Jobs []JobSpec
	// Programs by entry class, for jar runs.
	Programs map[string]Program
	// Clock, if set, replaces time.Now.
	Clock func() time.Time
}

// Emulator is an emulated JobManager. It is safe for concurrent use.
type Emulator struct {
	mu       sync.Mutex
	opts     Options
	jobs     map[string]*job
	order    []string
	jars     map[string]*jar
	jarOrder []string
	triggers map[string]*trigger
	// updating counts the next PUTs per job that find an update in
	// progress (Dispatcher.pendingJobResourceRequirementsUpdates).
	updating map[string]int
	// Requests counts requests by "METHOD path-pattern", for tests that
	// check what a client did (e.g. no PUT when nothing changed).
	requests map[string]int
	wg       sync.WaitGroup
}

type job struct {
	id, name   string
	state      string
	start, end time.Time
	timestamps map[string]int64
	config     map[string]string
	userConfig map[string]string
	vertices   []*vertex
	// requirements are the adaptive scheduler's declared bounds per vertex.
	requirements map[string]bounds
	rescales     int
	cancel       context.CancelFunc
	done         chan struct{}
}

type vertex struct {
	id, name       string
	parallelism    int
	maxParallelism int
	input          string // upstream vertex id
	ship           string
}

type bounds struct{ lower, upper int }

type jar struct {
	id, name string
	uploaded time.Time
	entry    string
}

type trigger struct {
	jobID    string
	location string
	failure  string
}

// New returns an emulator with Options.Jobs running.
func New(opts Options) (*Emulator, error) {
	if opts.Version == "" {
		opts.Version = DefaultVersion
	}
	if _, _, err := parseVersion(opts.Version); err != nil {
		return nil, err
	}
	if opts.TaskManagers <= 0 {
		opts.TaskManagers = 2
	}
	if opts.SlotsPerTaskManager <= 0 {
		opts.SlotsPerTaskManager = 4
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	cfg := map[string]string{"taskmanager.numberOfTaskSlots": strconv.Itoa(opts.SlotsPerTaskManager)}
	for k, v := range opts.Config {
		cfg[k] = v
	}
	opts.Config = cfg
	e := &Emulator{opts: opts, jobs: map[string]*job{}, jars: map[string]*jar{},
		triggers: map[string]*trigger{}, updating: map[string]int{}, requests: map[string]int{}}
	for _, js := range opts.Jobs {
		if _, err := e.startJob(js, nil, nil); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// Close cancels every running job and waits for their programs to return.
func (e *Emulator) Close() {
	e.mu.Lock()
	for _, j := range e.jobs {
		if j.cancel != nil {
			j.cancel()
		}
	}
	e.mu.Unlock()
	e.wg.Wait()
}

// parseVersion reads "major.minor[.patch][-suffix]".
func parseVersion(v string) (major, minor int, err error) {
	parts := strings.SplitN(strings.SplitN(v, "-", 2)[0], ".", 3)
	if len(parts) < 2 {
		return 0, 0, fmt.Errorf("flink version %q: want major.minor[.patch]", v)
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("flink version %q: want major.minor[.patch]", v)
	}
	return major, minor, nil
}

// atLeast reports whether the emulated version is major.minor or newer.
func (e *Emulator) atLeast(major, minor int) bool {
	ma, mi, _ := parseVersion(e.opts.Version)
	return ma > major || (ma == major && mi >= minor)
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// vertexID derives a stable vertex id, as Flink hashes a StreamNode's
// position in the graph: the same program gives the same ids.
func vertexID(jobName, vertexName string, index int) string {
	h := fnv128(jobName + "\x00" + vertexName + "\x00" + strconv.Itoa(index))
	return hex.EncodeToString(h[:])
}

func fnv128(s string) [16]byte {
	// Two 64-bit FNV-1a passes with different offsets; ids only need to be
	// stable and distinct, not secure.
	var out [16]byte
	for half, basis := range []uint64{14695981039346656037, 1099511628211 * 31} {
		h := basis
		for i := 0; i < len(s); i++ {
			h ^= uint64(s[i])
			h *= 1099511628211
		}
		for i := 0; i < 8; i++ {
			out[half*8+i] = byte(h >> (8 * i))
		}
	}
	return out
}

func isJobID(s string) bool {
	if len(s) != 32 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// startJob creates a running job. prog, when set, runs in its own goroutine.
func (e *Emulator) startJob(js JobSpec, prog *Program, args []string) (*job, error) {
	now := e.opts.Clock()
	if js.ID == "" {
		js.ID = newID()
	}
	js.ID = strings.ToLower(js.ID)
	if !isJobID(js.ID) {
		return nil, fmt.Errorf("job id %q: want 32 hex characters", js.ID)
	}
	if old, ok := e.jobs[js.ID]; ok {
		return old, errDuplicate
	}
	if len(js.Vertices) == 0 {
		return nil, fmt.Errorf("job %q has no vertices", js.Name)
	}
	j := &job{id: js.ID, name: js.Name, state: StateRunning, start: now,
		timestamps: map[string]int64{StateCreated: now.UnixMilli(), "INITIALIZING": now.UnixMilli(), StateRunning: now.UnixMilli()},
		config:     map[string]string{}, userConfig: map[string]string{}, done: make(chan struct{})}
	for k, v := range e.opts.Config {
		j.config[k] = v
	}
	for k, v := range js.Config {
		j.config[k] = v
	}
	byName := map[string]string{}
	for i, vs := range js.Vertices {
		if vs.Parallelism <= 0 {
			return nil, fmt.Errorf("job %q vertex %q: parallelism must be positive", js.Name, vs.Name)
		}
		id := strings.ToLower(vs.ID)
		if id == "" {
			id = vertexID(js.Name, vs.Name, i)
		}
		maxP := vs.MaxParallelism
		if maxP <= 0 {
			maxP = DefaultMaxParallelism
		}
		v := &vertex{id: id, name: vs.Name, parallelism: min(vs.Parallelism, maxP), maxParallelism: maxP, ship: vs.Ship}
		if vs.Input != "" {
			up, ok := byName[vs.Input]
			if !ok {
				return nil, fmt.Errorf("job %q vertex %q: input %q is not an earlier vertex", js.Name, vs.Name, vs.Input)
			}
			v.input = up
			if v.ship == "" {
				v.ship = ShipForward
			}
		}
		byName[vs.Name] = id
		j.vertices = append(j.vertices, v)
	}
	if j.adaptive() {
		j.requirements = map[string]bounds{}
		for _, v := range j.vertices {
			j.requirements[v.id] = bounds{lower: 1, upper: v.parallelism}
		}
	}
	if need := j.slots(); need > e.freeSlots() {
		return nil, fmt.Errorf("job %q needs %d slots, %d are free", js.Name, need, e.freeSlots())
	}
	e.jobs[j.id] = j
	e.order = append(e.order, j.id)
	if prog != nil && prog.Run != nil {
		ctx, cancel := context.WithCancel(context.Background())
		j.cancel = cancel
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			_ = prog.Run(ctx, args, func() int {
				e.mu.Lock()
				defer e.mu.Unlock()
				return j.widest()
			})
			e.mu.Lock()
			e.finishLocked(j)
			e.mu.Unlock()
		}()
	}
	return j, nil
}

var errDuplicate = errors.New("duplicate job id")

func (j *job) adaptive() bool { return strings.EqualFold(j.config["jobmanager.scheduler"], "adaptive") }

func (j *job) terminal() bool {
	switch j.state {
	case StateCanceled, StateFinished, StateFailed:
		return true
	}
	return false
}

// widest is the job's largest vertex parallelism: with one slot sharing
// group, the number of slots the job holds.
func (j *job) widest() int {
	w := 0
	for _, v := range j.vertices {
		w = max(w, v.parallelism)
	}
	return w
}

func (j *job) slots() int {
	if j.terminal() {
		return 0
	}
	return j.widest()
}

func (e *Emulator) totalSlots() int { return e.opts.TaskManagers * e.opts.SlotsPerTaskManager }

func (e *Emulator) freeSlots() int {
	used := 0
	for _, j := range e.jobs {
		used += j.slots()
	}
	return e.totalSlots() - used
}

// cancelLocked starts cancelling a job: with a running program the job stays
// CANCELLING until the program returns, otherwise it is CANCELED at once.
func (e *Emulator) cancelLocked(j *job) {
	if j.terminal() || j.state == StateCancelling {
		return
	}
	j.state = StateCancelling
	j.timestamps[StateCancelling] = e.opts.Clock().UnixMilli()
	if j.cancel != nil {
		j.cancel()
		return
	}
	e.finishLocked(j)
}

// finishLocked ends a job: CANCELED after a cancel, FINISHED when its program
// returned on its own.
func (e *Emulator) finishLocked(j *job) {
	if j.terminal() {
		return
	}
	if j.state == StateCancelling {
		j.state = StateCanceled
	} else {
		j.state = StateFinished
	}
	j.end = e.opts.Clock()
	j.timestamps[j.state] = j.end.UnixMilli()
	close(j.done)
}

// applyRequirements is the adaptive scheduler taking new bounds: each vertex
// runs at its upper bound if the slots allow, else at what fits, never below
// its lower bound (then the job keeps its old parallelism and waits).
func (e *Emulator) applyRequirementsLocked(j *job, req map[string]bounds) {
	j.requirements = req
	free := e.freeSlots() + j.slots()
	changed := false
	for _, v := range j.vertices {
		b, ok := req[v.id]
		if !ok {
			continue
		}
		p := min(b.upper, v.maxParallelism, free)
		if p < b.lower {
			continue
		}
		if p != v.parallelism {
			v.parallelism = p
			changed = true
		}
	}
	if changed {
		// A rescale restarts the job's tasks from the last checkpoint: the
		// job passes through RESTARTING and enters RUNNING again.
		j.rescales++
		now := e.opts.Clock().UnixMilli()
		j.timestamps["RESTARTING"] = now
		j.timestamps[StateRunning] = now
	}
}

// JobInfo is what tests read of a job.
type JobInfo struct {
	ID, Name, State string
	Parallelism     map[string]int // by vertex name
	Rescales        int
	Config          map[string]string
	UserConfig      map[string]string
}

// Jobs lists every job, oldest first.
func (e *Emulator) Jobs() []JobInfo {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]JobInfo, 0, len(e.order))
	for _, id := range e.order {
		j := e.jobs[id]
		info := JobInfo{ID: j.id, Name: j.name, State: j.state, Parallelism: map[string]int{}, Rescales: j.rescales,
			Config: copyMap(j.config), UserConfig: copyMap(j.userConfig)}
		for _, v := range j.vertices {
			info.Parallelism[v.name] = v.parallelism
		}
		out = append(out, info)
	}
	return out
}

// Requests returns how often each "METHOD pattern" was requested.
func (e *Emulator) Requests() map[string]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return copyMap(e.requests)
}

// VertexIDs maps a job's vertex names to ids.
func (e *Emulator) VertexIDs(jobID string) map[string]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string]string{}
	if j := e.jobs[jobID]; j != nil {
		for _, v := range j.vertices {
			out[v.name] = v.id
		}
	}
	return out
}

// SetTaskManagers changes the cluster's size, as a resource manager would.
func (e *Emulator) SetTaskManagers(n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.opts.TaskManagers = max(n, 0)
}

func copyMap[V any](m map[string]V) map[string]V {
	out := make(map[string]V, len(m))
	maps.Copy(out, m)
	return out
}

// sortedKeys lists a map's keys in order, for output that does not change
// from one call to the next.
func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }
