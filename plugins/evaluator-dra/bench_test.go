package dra

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/ebbscale/ebb/sdk"
)

// BenchmarkEvaluate measures one evaluation of a large optimizer group
// (units idle and busy, a backlog), state included: the work the runner asks
// of the evaluator on every tick of every chain.
func BenchmarkEvaluate(b *testing.B) {
	for _, units := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("units=%d", units), func(b *testing.B) {
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			req := sdk.EvaluateRequest{
				Target: sdk.Target{Chain: "c", Name: "g"},
				Policy: json.RawMessage(`{"min-parallelism":4,"executor-parallelism":4,"auto-restart":{"enabled":true}}`),
				Now:    now,
				Snapshot: sdk.Snapshot{ObservedAt: now, Complete: true,
					Demand: sdk.Demand{PlannedTasks: int64(units), RunningTasks: int64(units)}},
			}
			for i := range units {
				id := fmt.Sprintf("g-%d", i)
				req.Inventory = append(req.Inventory, sdk.Unit{ID: id, Size: 4, Phase: sdk.PhaseRunning, CreatedAt: now.Add(-time.Hour)})
				req.Snapshot.Workers = append(req.Snapshot.Workers, sdk.Worker{ID: "w" + id, UnitID: id, Threads: 4,
					BusyThreads: int64(i % 5), BusyKnown: true, State: sdk.WorkerRegistered, LastBusyAt: now.Add(-time.Duration(i) * time.Second)})
			}
			first, err := Evaluate(Config{}, req)
			if err != nil {
				b.Fatal(err)
			}
			req.State = first.State
			req.Now = now.Add(time.Second)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := Evaluate(Config{}, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
