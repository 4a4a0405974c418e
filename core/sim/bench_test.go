package sim_test

import (
	"context"
	"testing"
	"time"

	"github.com/ebbscale/ebb/core/sim"
	"github.com/ebbscale/ebb/sdk"
)

// BenchmarkWeek replays a week of diurnal load with evaluator-dra in process
// at a 10 s interval (60,480 rounds).
func BenchmarkWeek(b *testing.B) {
	rows, err := sim.Generate("diurnal", 1, 7*24*time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	w := sim.World{Rows: rows, Target: sdk.Target{Chain: "c", Name: "g"}, BootDelay: time.Minute, DrainTimeout: 15 * time.Minute}
	for b.Loop() {
		pol := draChain(b)
		pol.Interval = 10 * time.Second
		if _, err := sim.Run(context.Background(), w, pol, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(rows)), "tasks")
}
