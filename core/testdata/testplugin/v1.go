package main

// A plugin of protocol version 1, as one built before the batch RPCs
// existed (or written in another language against the old ebb.proto): it
// presents version 1 in go-plugin's handshake and in its Info, and answers
// only the single-target RPCs; the batch ones are UNIMPLEMENTED, as in a
// binary whose gRPC server has never heard of them. It is written against
// the generated protocol alone, not the SDK's interfaces, since the SDK
// would serve version 2.

import (
	"context"
	"fmt"
	"time"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	"github.com/ebbscale/ebb/sdk"
	pb "github.com/ebbscale/ebb/sdk/proto"
)

func serveV1(kind sdk.Kind) {
	goplugin.Serve(&goplugin.ServeConfig{
		HandshakeConfig: goplugin.HandshakeConfig{
			ProtocolVersion:  1,
			MagicCookieKey:   sdk.Handshake.MagicCookieKey,
			MagicCookieValue: sdk.Handshake.MagicCookieValue,
		},
		Plugins:    goplugin.PluginSet{kind.String(): &v1Plugin{kind: kind}},
		GRPCServer: goplugin.DefaultGRPCServer,
	})
}

type v1Plugin struct {
	goplugin.NetRPCUnsupportedPlugin
	kind sdk.Kind
}

func (p *v1Plugin) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterPluginServer(s, &v1Info{kind: p.kind})
	switch p.kind {
	case sdk.KindCollector:
		pb.RegisterCollectorServer(s, &v1Collector{})
	case sdk.KindEvaluator:
		pb.RegisterEvaluatorServer(s, &v1Evaluator{})
	case sdk.KindRealizer:
		pb.RegisterRealizerServer(s, &v1Realizer{})
	}
	return nil
}

func (p *v1Plugin) GRPCClient(context.Context, *goplugin.GRPCBroker, *grpc.ClientConn) (any, error) {
	return nil, fmt.Errorf("a plugin process has no client")
}

type v1Info struct {
	pb.UnimplementedPluginServer
	kind sdk.Kind
}

func (s *v1Info) Info(context.Context, *pb.InfoRequest) (*pb.PluginInfo, error) {
	return &pb.PluginInfo{Name: "test-v1-" + s.kind.String(), Kind: pb.Kind(s.kind), Version: "0.0.1", ProtocolVersion: 1,
		ConfigSchema: &pb.Schema{}, PolicySchema: &pb.Schema{}}, nil
}

func (s *v1Info) Configure(context.Context, *pb.ConfigureRequest) (*pb.ConfigureResponse, error) {
	return &pb.ConfigureResponse{}, nil
}

// v1Collector reports the planned tasks a target's name asks for
// (targetHooks), so a test can tell the targets' answers apart.
type v1Collector struct {
	pb.UnimplementedCollectorServer
}

func (v1Collector) Collect(ctx context.Context, r *pb.CollectRequest) (*pb.CollectResponse, error) {
	tasks, _, err := targetHooks(ctx, r.GetTarget().GetName())
	if err != nil {
		return nil, err
	}
	return &pb.CollectResponse{Snapshot: &pb.Snapshot{
		ObservedAt: &pb.Timestamp{UnixNano: time.Now().UnixNano()}, Complete: true,
		Demand: &pb.Demand{PlannedTasks: tasks},
	}}, nil
}

// v1Realizer has one unit per target, named after it.
type v1Realizer struct{ pb.UnimplementedRealizerServer }

func (v1Realizer) Inventory(ctx context.Context, r *pb.InventoryRequest) (*pb.InventoryResponse, error) {
	name := r.GetTarget().GetName()
	if _, _, err := targetHooks(ctx, name); err != nil {
		return nil, err
	}
	return &pb.InventoryResponse{Units: []*pb.Unit{{Id: name, Size: 1, Phase: pb.Phase_PHASE_RUNNING}}}, nil
}

// v1Evaluator wants as many threads as the snapshot's planned tasks.
type v1Evaluator struct {
	pb.UnimplementedEvaluatorServer
}

func (v1Evaluator) Evaluate(ctx context.Context, r *pb.EvaluateRequest) (*pb.EvaluateResponse, error) {
	name := r.GetTarget().GetName()
	if _, _, err := targetHooks(ctx, name); err != nil {
		return nil, err
	}
	tasks := r.GetSnapshot().GetDemand().GetPlannedTasks()
	return &pb.EvaluateResponse{Decision: &pb.Decision{DesiredCapacity: tasks, Reason: "v1 " + name}}, nil
}

func (v1Evaluator) ValidatePolicy(context.Context, *pb.ValidatePolicyRequest) (*pb.ValidatePolicyResponse, error) {
	return &pb.ValidatePolicyResponse{}, nil
}
