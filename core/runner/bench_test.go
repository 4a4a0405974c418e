package runner

import (
	"context"
	"testing"
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
