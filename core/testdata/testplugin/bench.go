package main

// The cycle benchmark's payloads (target "bench": a snapshot of three
// planned tasks and two workers, an inventory of two units), and the same
// three calls served by a plain grpc-go server with no go-plugin and no TLS,
// the baseline the benchmark compares ebb's plugin path with.

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"sort"
	"time"

	"google.golang.org/grpc"

	"github.com/ebbscale/ebb/sdk"
	pb "github.com/ebbscale/ebb/sdk/proto"
)

const benchTarget = "bench"

var benchStart = time.Unix(1_700_000_000, 0).UTC()

func benchSnapshot() sdk.Snapshot {
	s := sdk.Snapshot{ObservedAt: time.Now(), Complete: true, Demand: sdk.Demand{PlannedTasks: 3, RunningTasks: 2}}
	for _, id := range []string{"u-1", "u-2"} {
		s.Workers = append(s.Workers, sdk.Worker{ID: "w-" + id, UnitID: id, Threads: 1, BusyThreads: 1, BusyKnown: true,
			LastBusyAt: s.ObservedAt, State: sdk.WorkerRegistered, RegisteredAt: benchStart})
	}
	return s
}

func benchUnits() []sdk.Unit {
	var out []sdk.Unit
	for _, id := range []string{"u-1", "u-2"} {
		out = append(out, sdk.Unit{ID: id, Size: 1, Phase: sdk.PhaseRunning, CreatedAt: benchStart, Labels: map[string]string{"ebb/unit": id}})
	}
	return out
}

// serveBaseline serves the collector, realizer and evaluator services on a
// Unix socket with plain grpc-go, answering what the SDK plugins answer for
// the bench target, and prints "ready" once it listens.
func serveBaseline(socket string) {
	l, err := net.Listen("unix", socket)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	s := grpc.NewServer()
	pb.RegisterCollectorServer(s, baseCollector{})
	pb.RegisterRealizerServer(s, baseRealizer{})
	pb.RegisterEvaluatorServer(s, baseEvaluator{})
	fmt.Println("ready")
	if err := s.Serve(l); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func ts(t time.Time) *pb.Timestamp { return &pb.Timestamp{UnixNano: t.UnixNano()} }

type baseCollector struct {
	pb.UnimplementedCollectorServer
}

func (baseCollector) Collect(context.Context, *pb.CollectRequest) (*pb.CollectResponse, error) {
	now := time.Now()
	s := &pb.Snapshot{ObservedAt: ts(now), Complete: true, Demand: &pb.Demand{PlannedTasks: 3, RunningTasks: 2}}
	for _, id := range []string{"u-1", "u-2"} {
		s.Workers = append(s.Workers, &pb.Worker{Id: "w-" + id, UnitId: id, Threads: 1, BusyThreads: 1, BusyKnown: true,
			LastBusyAt: ts(now), State: pb.WorkerState_WORKER_STATE_REGISTERED, RegisteredAt: ts(benchStart)})
	}
	return &pb.CollectResponse{Snapshot: s}, nil
}

type baseRealizer struct{ pb.UnimplementedRealizerServer }

func (baseRealizer) Inventory(context.Context, *pb.InventoryRequest) (*pb.InventoryResponse, error) {
	var out []*pb.Unit
	for _, id := range []string{"u-1", "u-2"} {
		out = append(out, &pb.Unit{Id: id, Size: 1, Phase: pb.Phase_PHASE_RUNNING, CreatedAt: ts(benchStart), Labels: map[string]string{"ebb/unit": id}})
	}
	return &pb.InventoryResponse{Units: out}, nil
}

// baseEvaluator does test-evaluator's work on the protocol's messages.
type baseEvaluator struct {
	pb.UnimplementedEvaluatorServer
}

func (baseEvaluator) Evaluate(_ context.Context, r *pb.EvaluateRequest) (*pb.EvaluateResponse, error) {
	p := evalPolicy{PerUnit: 1}
	if err := json.Unmarshal(r.PolicyJson, &p); err != nil {
		return nil, err
	}
	var st evalState
	if len(r.State) > 0 {
		if err := json.Unmarshal(r.State, &st); err != nil {
			return nil, err
		}
	}
	st.Evaluations++
	d := r.GetSnapshot().GetDemand()
	tasks := d.GetPlannedTasks() + d.GetScheduledTasks() + d.GetRunningTasks()
	want := (tasks + p.PerUnit - 1) / p.PerUnit
	var active []*pb.Unit
	for _, u := range r.Inventory {
		if u.Phase != pb.Phase_PHASE_DRAINING {
			active = append(active, u)
		}
	}
	sort.Slice(active, func(i, j int) bool { return active[i].Id < active[j].Id })
	out := &pb.Decision{DesiredCapacity: want * p.PerUnit}
	for range max(want-int64(len(active)), 0) {
		st.Next++
		out.Add = append(out.Add, &pb.UnitAdd{UnitId: fmt.Sprintf("u-%d", st.Next), Size: p.PerUnit})
	}
	out.Reason = fmt.Sprintf("evaluation %d: %d tasks want %d units, have %d", st.Evaluations, tasks, want, len(active))
	b, _ := json.Marshal(st)
	return &pb.EvaluateResponse{Decision: out, State: b}, nil
}
