package flink

import (
	"context"
	"errors"
	"fmt"
	"strconv"
)

// AmoroOptimizerClass is the entry class of Amoro's Flink optimizer
// (FlinkOptimizerContainer's FLINK_JOB_MAIN_CLASS, amoro.md §3.4).
const AmoroOptimizerClass = "org.apache.amoro.optimizer.flink.FlinkOptimizer"

// OptimizerArgs are the optimizer arguments Amoro's containers pass
// (AbstractOptimizerContainer.buildOptimizerStartupArgsString, amoro.md §3.1).
type OptimizerArgs struct {
	AMS     string // -a
	Threads int    // -p
	Group   string // -g
	UnitID  string // -id
}

// ParseOptimizerArgs reads -a, -p, -g and -id; other flags are skipped with
// their value.
func ParseOptimizerArgs(args []string) (OptimizerArgs, error) {
	var o OptimizerArgs
	for i := 0; i+1 < len(args); i += 2 {
		v := args[i+1]
		switch args[i] {
		case "-a":
			o.AMS = v
		case "-p":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				return o, fmt.Errorf("-p %q: want a positive thread count", v)
			}
			o.Threads = n
		case "-g":
			o.Group = v
		case "-id":
			o.UnitID = v
		}
	}
	if o.AMS == "" || o.Group == "" || o.Threads == 0 {
		return o, errors.New("optimizer arguments need -a <ams uri>, -p <threads> and -g <group>")
	}
	return o, nil
}

// AmoroOptimizer is the program of Amoro's Flink optimizer job. Its topology
// is FlinkOptimizer.main's: the toucher source at parallelism 1, broadcast to
// the executor operator at the optimizer's thread count (-p, which is also
// the job's parallelism), then a sink at parallelism 1. run, if set, is the
// optimizer itself; it gets the arguments and the executor's current
// parallelism, and must return (after draining) when ctx ends.
func AmoroOptimizer(run func(ctx context.Context, o OptimizerArgs, parallelism func() int) error) Program {
	p := Program{
		// Amoro's ancestor (Arctic) names the job "arctic-flink-optimizer";
		// the Apache name follows it.
		JobName: "amoro-flink-optimizer",
		Topology: func(args []string, parallelism int) ([]VertexSpec, error) {
			o, err := ParseOptimizerArgs(args)
			if err != nil {
				return nil, err
			}
			return []VertexSpec{
				{Name: "Source: Custom Source", Parallelism: 1},
				{Name: "org.apache.amoro.optimizer.flink.FlinkExecutor", Parallelism: o.Threads, Input: "Source: Custom Source", Ship: ShipBroadcast},
				{Name: "Sink: Optimizer empty sink", Parallelism: 1, Input: "org.apache.amoro.optimizer.flink.FlinkExecutor", Ship: ShipRebalance},
			}, nil
		},
	}
	if run != nil {
		p.Run = func(ctx context.Context, args []string, parallelism func() int) error {
			o, err := ParseOptimizerArgs(args)
			if err != nil {
				return err
			}
			return run(ctx, o, parallelism)
		}
	}
	return p
}

// DemoJob is the job `ebb emulate flink` runs by default: a keyed pipeline
// on the adaptive scheduler, so it can be rescaled in place.
func DemoJob() JobSpec {
	return JobSpec{
		ID:     "3b2e0f6d1c2a4e5f8a9b0c1d2e3f4a5b",
		Name:   "ebb-demo",
		Config: map[string]string{"jobmanager.scheduler": "adaptive"},
		Vertices: []VertexSpec{
			{Name: "Source: events", Parallelism: 2},
			{Name: "KeyedProcess -> Sink: totals", Parallelism: 2, MaxParallelism: 120, Input: "Source: events", Ship: ShipHash},
		},
	}
}
