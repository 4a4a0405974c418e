package runner

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkEvaluation measures one evaluation of a chain through three real
// plugin processes over gRPC with mutual TLS (collect, inventory, evaluate,
// no realize): the runner's own overhead per tick.
func BenchmarkEvaluation(b *testing.B) {
	e := newEnv(b)
	e.setDemand(`{"tasks": 3}`)
	cfg := e.load(e.chainHCL("a", "t1", "1s", ""))
	r := New(cfg, Options{Host: e.host, Metrics: e.metrics})
	ctx := context.Background()
	if _, err := r.Plan(ctx, "a"); err != nil { // starts the processes
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := r.Plan(ctx, "a"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSchedule10kChains measures the scheduler's own cost per tick
// with 10,000 chains on one heap: pop the due ones, move each to its next
// grid point, finish it (no evaluation). One op is one tick.
func BenchmarkSchedule10kChains(b *testing.B) {
	ft := &fakeTime{now: t0}
	s := newScheduler(ft, nil, func(*entry, int) {})
	for i := range 10000 {
		s.add(newTestEntry(fmt.Sprintf("chain-%d", i), 10*time.Second))
	}
	b.ReportAllocs()
	b.ResetTimer()
	now := t0
	for done := 0; done < b.N; {
		ft.set(now)
		slot, wait := s.due()
		for _, tk := range slot {
			s.finished(tk.e)
		}
		done += len(slot)
		now = now.Add(wait)
	}
}

// BenchmarkRound100Chains evaluates 100 chains that share their plugin
// blocks in one batched round (ebb plan's path: collect, inventory, two
// evaluators, no realize). One op is the 100 evaluations; compare it with
// 100 × BenchmarkEvaluation for what batching saves.
func BenchmarkRound100Chains(b *testing.B) {
	e := newEnv(b)
	cfg := e.sharedChains(100, func(i int) string { return fmt.Sprintf("t%d", i) })
	r := New(cfg, Options{Host: e.host, Metrics: e.metrics})
	ctx := context.Background()
	if _, err := r.Plan(ctx, ""); err != nil { // starts the processes
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := r.Plan(ctx, ""); err != nil {
			b.Fatal(err)
		}
	}
}
