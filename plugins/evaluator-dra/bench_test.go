package dra

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/ebbscale/ebb/sdk"
)

// benchRequest is one round of a large optimizer group (units idle and
// busy, a backlog) with the state of the round before, in the codec's form.
func benchRequest(b *testing.B, units int, encode func(*State) ([]byte, error)) sdk.EvaluateRequest {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	req := sdk.EvaluateRequest{
		Target: sdk.Target{Chain: "c", Name: "g"},
		Policy: json.RawMessage(`{"min-parallelism":4,"max-parallelism":100000,"executor-parallelism":4,"auto-restart":{"enabled":true}}`),
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
	first, err := evaluate(Config{}, req, encode)
	if err != nil {
		b.Fatal(err)
	}
	req.State = first.State
	req.Now = now.Add(time.Second)
	return req
}

var codecs = []struct {
	name   string
	encode func(*State) ([]byte, error)
}{
	{"json", encodeJSON}, // version 1, evaluator-dra 0.1.0's: the baseline
	{"binary", (*State).Encode},
}

// BenchmarkEvaluate measures one evaluation, state decoding and encoding
// included: the work the runner asks of the evaluator on every tick of every
// chain. state=json is the version 1 encoding in the same run.
func BenchmarkEvaluate(b *testing.B) {
	for _, units := range []int{10, 100, 1000} {
		for _, c := range codecs {
			b.Run(fmt.Sprintf("units=%d/state=%s", units, c.name), func(b *testing.B) {
				req := benchRequest(b, units, c.encode)
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					if _, err := evaluate(Config{}, req, c.encode); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkStateCodec is decoding and encoding alone, the part issue 18
// measured at 64-71% of an evaluation with JSON.
func BenchmarkStateCodec(b *testing.B) {
	for _, units := range []int{10, 100, 1000} {
		for _, c := range codecs {
			b.Run(fmt.Sprintf("units=%d/state=%s", units, c.name), func(b *testing.B) {
				state := benchRequest(b, units, c.encode).State
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					st, err := DecodeState(state)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := c.encode(st); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(len(state)), "state-bytes")
			})
		}
	}
}
