package ams

import "time"

// TaskStatus is a task's state, as in Amoro's TaskRuntime.Status
// (amoro.md §2.3, amoro-ams/.../optimizing/TaskRuntime.java).
type TaskStatus string

const (
	TaskPlanned   TaskStatus = "PLANNED"
	TaskScheduled TaskStatus = "SCHEDULED"
	TaskAcked     TaskStatus = "ACKED"
	TaskFailed    TaskStatus = "FAILED"
	TaskSuccess   TaskStatus = "SUCCESS"
	TaskCanceled  TaskStatus = "CANCELED"
)

// nextStatus mirrors TaskRuntime.nextStatusMap (amoro.md §2.3); every
// transition the emulator makes is checked against it, so a bug in the queue
// model shows up as an error instead of an impossible state.
var nextStatus = map[TaskStatus][]TaskStatus{
	TaskPlanned:   {TaskScheduled, TaskCanceled},
	TaskScheduled: {TaskPlanned, TaskAcked, TaskCanceled},
	TaskAcked:     {TaskPlanned, TaskSuccess, TaskFailed, TaskCanceled},
	TaskFailed:    {TaskPlanned},
}

func canMove(from, to TaskStatus) bool {
	for _, s := range nextStatus[from] {
		if s == to {
			return true
		}
	}
	return false
}

// TableStatus is a table's optimizing status. The string is Amoro's display
// value, which is what the REST API returns in `optimizeStatus` and accepts in
// `actions[]` (amoro.md §4.2, OptimizingStatus.java; codes per §1.3).
type TableStatus string

const (
	TableFull       TableStatus = "full"
	TableMajor      TableStatus = "major"
	TableMinor      TableStatus = "minor"
	TableCommitting TableStatus = "committing"
	TablePlanning   TableStatus = "planning"
	TablePending    TableStatus = "pending"
	TableIdle       TableStatus = "idle"
)

// tableStatusOrder is the list GET /optimize/actions returns.
var tableStatusOrder = []TableStatus{TableFull, TableMajor, TableMinor, TableCommitting, TablePlanning, TablePending, TableIdle}

// isProcessing follows OptimizingStatus.isProcessing: FULL/MAJOR/MINOR and
// COMMITTING (amoro.md §2.3, §5.1 executing_tables).
func (s TableStatus) isProcessing() bool {
	return s == TableFull || s == TableMajor || s == TableMinor || s == TableCommitting
}

// ProcessStatus is an optimizing process's state (the `status` filter of
// GET …/optimizing-processes, amoro.md §4.2).
type ProcessStatus string

const (
	ProcessUnknown   ProcessStatus = "UNKNOWN"
	ProcessPending   ProcessStatus = "PENDING"
	ProcessSubmitted ProcessStatus = "SUBMITTED"
	ProcessRunning   ProcessStatus = "RUNNING"
	ProcessCanceling ProcessStatus = "CANCELING"
	ProcessSuccess   ProcessStatus = "SUCCESS"
	ProcessCanceled  ProcessStatus = "CANCELED"
	ProcessClosed    ProcessStatus = "CLOSED"
	ProcessKilled    ProcessStatus = "KILLED"
	ProcessFailed    ProcessStatus = "FAILED"
)

// processStatuses are the 10 names of amoro-common/.../process/ProcessStatus.java
// (master and 0.9.x; 0.8.x has 7): the `status` filter is ProcessStatus.valueOf.
var processStatuses = []ProcessStatus{ProcessUnknown, ProcessPending, ProcessSubmitted, ProcessRunning,
	ProcessCanceling, ProcessSuccess, ProcessCanceled, ProcessClosed, ProcessKilled, ProcessFailed}

// DurationProperty is the task property that carries how long the emulated
// task runs. Real Amoro tasks carry their input in `taskInput`; the emulator
// has no files to rewrite, so the work is described by its duration only.
const DurationProperty = "emulator.duration-ms"

type task struct {
	process    *process
	taskID     int32
	duration   time.Duration
	status     TaskStatus
	token      string // optimizer token while SCHEDULED/ACKED; kept after completion like task_runtime
	threadID   int32
	startTime  time.Time
	endTime    time.Time
	costTime   time.Duration
	retryNum   int
	failReason string
	// finishAt is when an in-process (virtual) optimizer completes it.
	finishAt time.Time
	// submittedAt is when the work was submitted (Submit or a trace row).
	submittedAt time.Time
}

type process struct {
	id        int64
	table     *table
	tasks     []*task
	status    ProcessStatus
	startTime time.Time
	endTime   time.Time
	failure   string
}

type table struct {
	id          int64
	group       *group
	catalog     string
	database    string
	name        string
	status      TableStatus
	statusSince time.Time
	// queued is work submitted and not yet planned into a process.
	queued []time.Duration
	// queuedAt is when each queued piece of work was submitted, so a
	// simulator can measure how long a task waited.
	queuedAt     []time.Time
	planDoneAt   time.Time
	commitDoneAt time.Time
	current      *process
	processes    []*process
	// quota is self-optimizing.quota: at most 1 a share of the group's
	// threads, above 1 a number of threads.
	quota float64
}

func (t *table) fullName() string { return t.catalog + "." + t.database + "." + t.name }

type group struct {
	name       string
	container  string
	properties map[string]string
	tables     []*table
	// active holds processes with tasks in the queue, in planning order: the
	// order in which polls are served.
	active []*process
}

type optimizer struct {
	token        string
	group        *group
	resourceID   string
	threads      int32
	memoryMB     int32
	startTime    time.Time // what the optimizer reported
	registeredAt time.Time
	touchTime    time.Time
	hbInterval   time.Duration
	properties   map[string]string
	// virt is set for optimizers simulated inside the emulator.
	virt *virtualOptimizer
	// released: DELETE /optimize/optimizers removed its DB row; AMS's
	// memory keeps it until its heartbeat stops.
	released bool
}

type virtualOptimizer struct {
	slots    []*task // one per thread; nil when the thread is free
	draining bool
	// stoppedAt is when the optimizer stopped heartbeating (killed or
	// exited after a drain); zero while alive.
	stoppedAt time.Time
}
