package ams

import (
	"testing"
	"time"
)

// With QuotaLimit a table of quota 2 threads holds at most 2 of a 4-thread
// optimizer's threads; its other planned tasks are not serviceable
// (min(planned, (int)quota - occupied) = 0), and the task-done hook reports
// each finished task's submission, start and end.
func TestViewAndQuotaLimit(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clk := NewVirtualClock(t0)
	var done []TaskDone
	e, err := New(Options{Clock: clk, QuotaLimit: true, OnTaskDone: func(d TaskDone) { done = append(done, d) }})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.SetTableQuota("", "a", 2); err != nil {
		t.Fatal(err)
	}
	if err := e.Submit("", "a", time.Minute, time.Minute, time.Minute, time.Minute, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := e.StartOptimizer("", "u1", 4); err != nil {
		t.Fatal(err)
	}
	v, err := e.View("")
	if err != nil {
		t.Fatal(err)
	}
	if v.Acked != 2 || v.Planned != 3 || v.ServiceablePlanned != 0 || len(v.Optimizers) != 1 || v.Optimizers[0].Busy != 2 {
		t.Fatalf("view %+v: want 2 acked, 3 planned, 0 serviceable, one optimizer with 2 busy", v)
	}
	if err := e.Advance(time.Minute); err != nil {
		t.Fatal(err)
	}
	if len(done) != 2 || !done[0].Submitted.Equal(t0) || !done[0].Started.Equal(t0) || !done[0].Finished.Equal(t0.Add(time.Minute)) {
		t.Fatalf("done %+v: want two tasks submitted and started at t0, finished a minute later", done)
	}
	if v, _ = e.View(""); v.Acked != 2 || v.Planned != 1 {
		t.Fatalf("after a minute: %+v, want the next two running and one planned", v)
	}
}
