package ams

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// The optimizer-facing operations of Thrift OptimizingService
// (amoro-common/src/main/thrift/amoro_optimizing_service.thrift, amoro.md
// §2.2). Field names are the Thrift field names, so the JSON carried over the
// emulator-only HTTP API reads like the Thrift structs.

// RegisterInfo is Thrift OptimizerRegisterInfo.
type RegisterInfo struct {
	ResourceID  string `json:"resourceId,omitempty"`
	ThreadCount int32  `json:"threadCount"`
	MemoryMB    int32  `json:"memoryMb"`
	// StartTime is epoch milliseconds, as the optimizer JVM reports it.
	StartTime  int64             `json:"startTime"`
	GroupName  string            `json:"groupName"`
	Properties map[string]string `json:"properties,omitempty"`
}

// TaskID is Thrift OptimizingTaskId.
type TaskID struct {
	ProcessID int64 `json:"processId"`
	TaskID    int32 `json:"taskId"`
}

func (t TaskID) String() string { return fmt.Sprintf("%d/%d", t.ProcessID, t.TaskID) }

// OptimizingTask is Thrift OptimizingTask. The emulator puts the task's
// duration in Properties[DurationProperty] instead of a taskInput.
type OptimizingTask struct {
	TaskID     TaskID            `json:"taskId"`
	Properties map[string]string `json:"properties,omitempty"`
}

// Duration reads the emulated run time from the task's properties.
func (t OptimizingTask) Duration() (time.Duration, error) {
	v, ok := t.Properties[DurationProperty]
	if !ok {
		return 0, fmt.Errorf("task %s has no %s property", t.TaskID, DurationProperty)
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil || ms < 0 {
		return 0, fmt.Errorf("task %s: invalid %s %q", t.TaskID, DurationProperty, v)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// TaskResult is Thrift OptimizingTaskResult.
type TaskResult struct {
	TaskID       TaskID            `json:"taskId"`
	ThreadID     int32             `json:"threadId"`
	ErrorMessage string            `json:"errorMessage,omitempty"`
	Summary      map[string]string `json:"summary,omitempty"`
}

// ServiceError is an AmoroException as the optimizer sees it: Exception is
// the Java exception's simple name, which decides what the optimizer does
// (PluginRetryAuthException makes OptimizerToucher register again,
// ForbiddenException makes the optimizer exit; amoro.md §2.2).
type ServiceError struct {
	Exception string `json:"exception"`
	Message   string `json:"message"`
}

func (e *ServiceError) Error() string { return e.Exception + ": " + e.Message }

const (
	ExcForbidden        = "ForbiddenException"
	ExcRetryAuth        = "PluginRetryAuthException"
	ExcObjectNotExists  = "ObjectNotExistsException"
	ExcIllegalTaskState = "IllegalTaskStateException"
	ExcIllegalArgument  = "IllegalArgumentException"
)

// IsRetryAuth tells whether AMS no longer knows the optimizer's token, so the
// optimizer must authenticate again.
func IsRetryAuth(err error) bool {
	var se *ServiceError
	return errors.As(err, &se) && se.Exception == ExcRetryAuth
}

// HeartbeatIntervalProperty is the register property holding the optimizer's
// heartbeat interval in milliseconds (amoro.md §1.3 `optimizer.properties`).
const HeartbeatIntervalProperty = "heart-beat-interval"

// Authenticate registers an optimizer and returns its token (amoro.md §2.2):
// an interval not below the heartbeat timeout is refused with
// ForbiddenException.
func (e *Emulator) Authenticate(info RegisterInfo) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.syncLocked()
	g, ok := e.groups[info.GroupName]
	if !ok {
		return "", &ServiceError{ExcObjectNotExists, fmt.Sprintf("optimizer group %q does not exist", info.GroupName)}
	}
	if info.ThreadCount < 1 {
		return "", &ServiceError{ExcIllegalArgument, fmt.Sprintf("threadCount must be at least 1, got %d", info.ThreadCount)}
	}
	hb := DefaultHeartbeatInterval
	if v, ok := info.Properties[HeartbeatIntervalProperty]; ok {
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil || ms <= 0 {
			return "", &ServiceError{ExcIllegalArgument, fmt.Sprintf("invalid %s %q", HeartbeatIntervalProperty, v)}
		}
		hb = time.Duration(ms) * time.Millisecond
	}
	if hb >= e.opts.HeartbeatTimeout {
		return "", &ServiceError{ExcForbidden, fmt.Sprintf("heart beat interval %s must be less than optimizer.heart-beat-timeout %s", hb, e.opts.HeartbeatTimeout)}
	}
	props := map[string]string{}
	for k, v := range info.Properties {
		props[k] = v
	}
	o := e.registerLocked(g, info.ResourceID, info.ThreadCount, info.MemoryMB, time.UnixMilli(info.StartTime), hb, props)
	return o.token, nil
}

func (e *Emulator) authLocked(token string) (*optimizer, error) {
	o, ok := e.byToken[token]
	if !ok {
		return nil, &ServiceError{ExcRetryAuth, "unknown optimizer token, authenticate again"}
	}
	return o, nil
}

// Touch is the heartbeat.
func (e *Emulator) Touch(token string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.syncLocked()
	o, err := e.authLocked(token)
	if err != nil {
		return err
	}
	if o.virt == nil {
		o.touchTime = e.now
	}
	return nil
}

// PollTask hands a thread its next task, or nil. Unlike AMS it does not hold
// the call for optimizer.polling-timeout when there is nothing: the optimizer
// loop waits between polls instead, which keeps the emulator free of
// goroutines racing a virtual clock.
func (e *Emulator) PollTask(token string, threadID int32) (*OptimizingTask, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.syncLocked()
	o, err := e.authLocked(token)
	if err != nil {
		return nil, err
	}
	if threadID < 0 || threadID >= o.threads {
		return nil, &ServiceError{ExcIllegalArgument, fmt.Sprintf("thread %d out of range for an optimizer with %d threads", threadID, o.threads)}
	}
	tk := e.pollLocked(o, threadID)
	if tk == nil {
		return nil, nil
	}
	return &OptimizingTask{
		TaskID:     TaskID{ProcessID: tk.process.id, TaskID: tk.taskID},
		Properties: map[string]string{DurationProperty: strconv.FormatInt(tk.duration.Milliseconds(), 10)},
	}, nil
}

func (e *Emulator) findTaskLocked(g *group, id TaskID) *task {
	for _, p := range g.active {
		if p.id != id.ProcessID {
			continue
		}
		for _, tk := range p.tasks {
			if tk.taskID == id.TaskID {
				return tk
			}
		}
	}
	return nil
}

// AckTask moves a SCHEDULED task of this thread to ACKED; a task that was
// reset or given to someone else is refused and the optimizer skips it.
func (e *Emulator) AckTask(token string, threadID int32, id TaskID) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.syncLocked()
	o, err := e.authLocked(token)
	if err != nil {
		return err
	}
	tk := e.findTaskLocked(o.group, id)
	if tk == nil || tk.status != TaskScheduled || tk.token != token || tk.threadID != threadID {
		return &ServiceError{ExcIllegalTaskState, fmt.Sprintf("task %s is not scheduled to this thread", id)}
	}
	e.moveLocked(tk, TaskAcked)
	return nil
}

// CompleteTask finishes an ACKED task. A stale completion (wrong owner, or
// the task is no longer ACKED) is ignored, as AMS does since #4261
// (amoro.md §2.2).
func (e *Emulator) CompleteTask(token string, res TaskResult) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.syncLocked()
	o, err := e.authLocked(token)
	if err != nil {
		return err
	}
	tk := e.findTaskLocked(o.group, res.TaskID)
	if tk == nil || tk.status != TaskAcked || tk.token != token || tk.threadID != res.ThreadID {
		return nil
	}
	e.completeLocked(tk, res.ErrorMessage)
	e.dispatchLocked()
	return nil
}
