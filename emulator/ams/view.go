package ams

import (
	"fmt"
	"time"
)

// GroupView is a group's queue and optimizers at one instant, as
// OptimizingQueue.collectDynamicAllocationLoad sees them (amoro.md §6.3). It
// walks only active processes, so a simulator can take one per event however
// long the run.
type GroupView struct {
	Planned, Scheduled, Acked int
	// ServiceablePlanned is the quota-aware planned count
	// (DynamicAllocationState.serviceablePlannedCount): every planned task
	// of a table whose quota is <= 1, else min(planned, (int)quota - occupied).
	ServiceablePlanned            int
	PendingTables, PlanningTables int
	// Queued is work submitted to tables and not yet planned into tasks.
	Queued     int
	Optimizers []OptimizerView
}

// OptimizerView is one registered optimizer of a group.
type OptimizerView struct {
	Token        string
	UnitID       string
	Threads      int
	Busy         int // SCHEDULED + ACKED tasks it holds
	RegisteredAt time.Time
	// Stopped is set for an in-process optimizer that exited (drained or
	// killed) and is still registered until its heartbeat expires.
	Stopped bool
}

// View reports one group ("" = the first).
func (e *Emulator) View(groupName string) (GroupView, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.syncLocked()
	g, err := e.resolveGroupLocked(groupName)
	if err != nil {
		return GroupView{}, fmt.Errorf("ams emulator: %w", err)
	}
	var v GroupView
	busy := map[string]int{}
	for _, t := range g.tables {
		v.Queued += len(t.queued)
		switch t.status {
		case TablePending:
			v.PendingTables++
		case TablePlanning:
			v.PlanningTables++
		}
	}
	for _, p := range g.active {
		planned := 0
		for _, tk := range p.tasks {
			switch tk.status {
			case TaskPlanned:
				planned++
			case TaskScheduled:
				v.Scheduled++
				busy[tk.token]++
			case TaskAcked:
				v.Acked++
				busy[tk.token]++
			}
		}
		v.Planned += planned
		if q := p.table.quota; q > 1 {
			planned = max(0, min(planned, int(q)-occupied(p)))
		}
		v.ServiceablePlanned += planned
	}
	for _, o := range e.optimizers {
		if o.group != g {
			continue
		}
		ov := OptimizerView{Token: o.token, UnitID: o.resourceID, Threads: int(o.threads), Busy: busy[o.token], RegisteredAt: o.registeredAt}
		ov.Stopped = o.virt != nil && !o.virt.stoppedAt.IsZero()
		v.Optimizers = append(v.Optimizers, ov)
	}
	return v, nil
}
