package sdk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/ebbscale/ebb/sdk/proto"
)

// Handshake is shared by the runner and every plugin: go-plugin refuses to
// start a binary that does not present this cookie, so running a plugin by
// hand prints a helpful message instead of hanging.
//
// Its ProtocolVersion is the oldest version, what a plugin built before
// version 2 presents; the runner and the SDK negotiate the newest version
// both speak through versionedPlugins (go-plugin's PLUGIN_PROTOCOL_VERSIONS).
var Handshake = goplugin.HandshakeConfig{
	ProtocolVersion:  MinProtocolVersion,
	MagicCookieKey:   "EBB_PLUGIN_MAGIC_COOKIE",
	MagicCookieValue: "ebb-autoscaler-plugin-v1",
}

// pluginSet is what a process serves (impl set: its one kind, since every
// entry registers the common Plugin service) or what the runner can dispense
// (impl nil: every kind).
func pluginSet(impl Plugin) goplugin.PluginSet { return versionSet(impl, ProtocolVersion) }

func versionSet(impl Plugin, version int) goplugin.PluginSet {
	set := goplugin.PluginSet{}
	for _, k := range []Kind{KindCollector, KindEvaluator, KindRealizer} {
		if impl == nil || KindOf(impl) == k {
			set[k.String()] = &grpcPlugin{kind: k, impl: impl, version: version}
		}
	}
	return set
}

// versionedPlugins is every protocol version this SDK speaks. A plugin
// process serves the same services under each (the batch RPCs are simply
// not called by an older runner); the runner's clients of version 1 make
// single calls only.
func versionedPlugins(impl Plugin) map[int]goplugin.PluginSet {
	out := map[int]goplugin.PluginSet{}
	for v := MinProtocolVersion; v <= ProtocolVersion; v++ {
		out[v] = versionSet(impl, v)
	}
	return out
}

// grpcPlugin adapts a Plugin to go-plugin's GRPCPlugin on both sides.
type grpcPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	kind    Kind
	impl    Plugin // nil on the client side
	version int    // the protocol version negotiated
}

func (p *grpcPlugin) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterPluginServer(s, &pluginServer{impl: p.impl, version: p.version})
	switch impl := p.impl.(type) {
	case Collector:
		pb.RegisterCollectorServer(s, &collectorServer{impl: impl})
	case Evaluator:
		pb.RegisterEvaluatorServer(s, &evaluatorServer{impl: impl})
	case Realizer:
		pb.RegisterRealizerServer(s, &realizerServer{impl: impl})
	default:
		return fmt.Errorf("plugin %T implements none of Collector, Evaluator, Realizer", p.impl)
	}
	return nil
}

func (p *grpcPlugin) GRPCClient(_ context.Context, _ *goplugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	base := pluginClient{c: pb.NewPluginClient(c)}
	switch p.kind {
	case KindCollector:
		cl := &collectorClient{pluginClient: base, c: pb.NewCollectorClient(c)}
		cl.batch.off.Store(p.version < 2)
		return cl, nil
	case KindEvaluator:
		cl := &evaluatorClient{pluginClient: base, c: pb.NewEvaluatorClient(c)}
		cl.batch.off.Store(p.version < 2)
		return cl, nil
	case KindRealizer:
		cl := &realizerClient{pluginClient: base, c: pb.NewRealizerClient(c)}
		cl.batch.off.Store(p.version < 2)
		return cl, nil
	}
	return nil, fmt.Errorf("unknown plugin kind %v", p.kind)
}

// ---- server side: a plugin process answering the runner ----

type pluginServer struct {
	pb.UnimplementedPluginServer
	impl    Plugin
	version int // negotiated with the runner
}

func (s *pluginServer) versionOr(v int) int {
	if s.version == 0 {
		return v
	}
	return s.version
}

func (s *pluginServer) Info(ctx context.Context, _ *pb.InfoRequest) (*pb.PluginInfo, error) {
	info, err := s.impl.Info(ctx)
	if err != nil {
		return nil, err
	}
	// A plugin reports the SDK's version; to a runner that negotiated an
	// older one (it checks Info against what it speaks) it reports that.
	if info.ProtocolVersion == 0 || info.ProtocolVersion == ProtocolVersion {
		info.ProtocolVersion = uint32(s.versionOr(ProtocolVersion))
	}
	if info.Kind == KindUnknown {
		info.Kind = KindOf(s.impl)
	}
	return infoToPB(info)
}

func (s *pluginServer) Configure(ctx context.Context, r *pb.ConfigureRequest) (*pb.ConfigureResponse, error) {
	return &pb.ConfigureResponse{}, s.impl.Configure(ctx, r.ConfigJson)
}

func (s *pluginServer) ValidateConfig(ctx context.Context, r *pb.ValidateConfigRequest) (*pb.ValidateConfigResponse, error) {
	out := &pb.ValidateConfigResponse{}
	v, ok := s.impl.(ConfigValidator)
	if !ok {
		return out, nil
	}
	problems, err := v.ValidateConfig(ctx, r.ConfigJson)
	if err != nil {
		return nil, err
	}
	out.Problems = problemsToPB(problems)
	return out, nil
}

type collectorServer struct {
	pb.UnimplementedCollectorServer
	impl Collector
}

func (s *collectorServer) Collect(ctx context.Context, r *pb.CollectRequest) (*pb.CollectResponse, error) {
	snap, err := s.impl.Collect(ctx, targetFromPB(r.Target))
	if err != nil {
		return nil, err
	}
	return &pb.CollectResponse{Snapshot: snapshotToPB(snap)}, nil
}

type evaluatorServer struct {
	pb.UnimplementedEvaluatorServer
	impl Evaluator
}

func (s *evaluatorServer) Evaluate(ctx context.Context, r *pb.EvaluateRequest) (*pb.EvaluateResponse, error) {
	resp, err := s.impl.Evaluate(ctx, evaluateRequestFromPB(r))
	if err != nil {
		return nil, err
	}
	return evaluateResponseToPB(resp), nil
}

func (s *evaluatorServer) ValidatePolicy(ctx context.Context, r *pb.ValidatePolicyRequest) (*pb.ValidatePolicyResponse, error) {
	problems, err := s.impl.ValidatePolicy(ctx, r.PolicyJson)
	if err != nil {
		return nil, err
	}
	return &pb.ValidatePolicyResponse{Problems: problemsToPB(problems)}, nil
}

type realizerServer struct {
	pb.UnimplementedRealizerServer
	impl Realizer
}

func (s *realizerServer) Inventory(ctx context.Context, r *pb.InventoryRequest) (*pb.InventoryResponse, error) {
	units, err := s.impl.Inventory(ctx, targetFromPB(r.Target))
	if err != nil {
		return nil, err
	}
	return &pb.InventoryResponse{Units: unitsToPB(units)}, nil
}

func (s *realizerServer) TargetIdentity(ctx context.Context, r *pb.TargetIdentityRequest) (*pb.TargetIdentityResponse, error) {
	ti, ok := s.impl.(TargetIdentifier)
	if !ok {
		return nil, status.Error(codes.Unimplemented, "this realizer does not name its targets")
	}
	id, err := ti.TargetIdentity(ctx, r.ConfigJson, r.Target)
	if err != nil {
		return nil, err
	}
	return &pb.TargetIdentityResponse{Identity: id}, nil
}

func (s *realizerServer) Realize(ctx context.Context, r *pb.RealizeRequest) (*pb.RealizeResponse, error) {
	var d Decision
	if r.Decision != nil {
		d = *decisionFromPB(r.Decision)
	}
	summary, err := s.impl.Realize(ctx, RealizeRequest{Target: targetFromPB(r.Target), Decision: d, RequestID: r.RequestId})
	if err != nil {
		return nil, err
	}
	return &pb.RealizeResponse{Summary: summary}, nil
}

func (s *realizerServer) RealizeParallelismOverrides(ctx context.Context, r *pb.ParallelismOverridesRequest) (*pb.RealizeResponse, error) {
	summary, err := s.impl.RealizeParallelismOverrides(ctx, OverridesRequest[int64]{Target: targetFromPB(r.Target), Overrides: r.Overrides, RequestID: r.RequestId})
	if err != nil {
		return nil, err
	}
	return &pb.RealizeResponse{Summary: summary}, nil
}

func (s *realizerServer) RealizeConfigOverrides(ctx context.Context, r *pb.ConfigOverridesRequest) (*pb.RealizeResponse, error) {
	summary, err := s.impl.RealizeConfigOverrides(ctx, OverridesRequest[string]{Target: targetFromPB(r.Target), Overrides: r.Overrides, RequestID: r.RequestId})
	if err != nil {
		return nil, err
	}
	return &pb.RealizeResponse{Summary: summary}, nil
}

// ---- client side: the runner calling a plugin process ----

type pluginClient struct{ c pb.PluginClient }

func (c pluginClient) Info(ctx context.Context) (Info, error) {
	r, err := c.c.Info(ctx, &pb.InfoRequest{})
	if err != nil {
		return Info{}, err
	}
	return infoFromPB(r)
}

func (c pluginClient) Configure(ctx context.Context, config json.RawMessage) error {
	_, err := c.c.Configure(ctx, &pb.ConfigureRequest{ConfigJson: config})
	return err
}

// ValidateConfig asks the plugin to check a config. A plugin that does not
// serve the method (built before it existed, or in another language without
// it) finds no problems.
func (c pluginClient) ValidateConfig(ctx context.Context, config json.RawMessage) ([]Problem, error) {
	r, err := c.c.ValidateConfig(ctx, &pb.ValidateConfigRequest{ConfigJson: config})
	if status.Code(err) == codes.Unimplemented {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return problemsFromPB(r.Problems), nil
}

func problemsToPB(problems []Problem) []*pb.PolicyProblem {
	var out []*pb.PolicyProblem
	for _, p := range problems {
		out = append(out, &pb.PolicyProblem{Attribute: p.Attribute, Message: p.Message})
	}
	return out
}

func problemsFromPB(problems []*pb.PolicyProblem) []Problem {
	var out []Problem
	for _, p := range problems {
		out = append(out, Problem{Attribute: p.Attribute, Message: p.Message})
	}
	return out
}

type collectorClient struct {
	pluginClient
	c     pb.CollectorClient
	batch batching
}

func (c *collectorClient) Collect(ctx context.Context, t Target) (Snapshot, error) {
	r, err := c.c.Collect(ctx, &pb.CollectRequest{Target: targetToPB(t)})
	if err != nil {
		return Snapshot{}, err
	}
	return snapshotFromPB(r.Snapshot), nil
}

type evaluatorClient struct {
	pluginClient
	c     pb.EvaluatorClient
	batch batching
}

func (c *evaluatorClient) Evaluate(ctx context.Context, req EvaluateRequest) (EvaluateResponse, error) {
	r, err := c.c.Evaluate(ctx, evaluateRequestToPB(req))
	if err != nil {
		return EvaluateResponse{}, err
	}
	return evaluateResponseFromPB(r), nil
}

func (c *evaluatorClient) ValidatePolicy(ctx context.Context, policy json.RawMessage) ([]PolicyProblem, error) {
	r, err := c.c.ValidatePolicy(ctx, &pb.ValidatePolicyRequest{PolicyJson: policy})
	if err != nil {
		return nil, err
	}
	return problemsFromPB(r.Problems), nil
}

type realizerClient struct {
	pluginClient
	c     pb.RealizerClient
	batch batching
}

func (c *realizerClient) Inventory(ctx context.Context, t Target) ([]Unit, error) {
	r, err := c.c.Inventory(ctx, &pb.InventoryRequest{Target: targetToPB(t)})
	if err != nil {
		return nil, err
	}
	return unitsFromPB(r.Units), nil
}

// ErrNoTargetIdentity is a realizer that does not implement TargetIdentity
// (an older plugin, or one that chose not to).
var ErrNoTargetIdentity = errors.New("the realizer does not name its targets")

// TargetIdentity asks the plugin; ErrNoTargetIdentity when it has no answer.
func (c *realizerClient) TargetIdentity(ctx context.Context, config json.RawMessage, target string) (string, error) {
	r, err := c.c.TargetIdentity(ctx, &pb.TargetIdentityRequest{ConfigJson: config, Target: target})
	if status.Code(err) == codes.Unimplemented {
		return "", ErrNoTargetIdentity
	}
	if err != nil {
		return "", err
	}
	return r.Identity, nil
}

func (c *realizerClient) Realize(ctx context.Context, req RealizeRequest) (string, error) {
	r, err := c.c.Realize(ctx, &pb.RealizeRequest{Target: targetToPB(req.Target), Decision: decisionToPB(&req.Decision), RequestId: req.RequestID})
	if err != nil {
		return "", err
	}
	return r.Summary, nil
}

func (c *realizerClient) RealizeParallelismOverrides(ctx context.Context, req OverridesRequest[int64]) (string, error) {
	r, err := c.c.RealizeParallelismOverrides(ctx, &pb.ParallelismOverridesRequest{Target: targetToPB(req.Target), Overrides: req.Overrides, RequestId: req.RequestID})
	if err != nil {
		return "", err
	}
	return r.Summary, nil
}

func (c *realizerClient) RealizeConfigOverrides(ctx context.Context, req OverridesRequest[string]) (string, error) {
	r, err := c.c.RealizeConfigOverrides(ctx, &pb.ConfigOverridesRequest{Target: targetToPB(req.Target), Overrides: req.Overrides, RequestId: req.RequestID})
	if err != nil {
		return "", err
	}
	return r.Summary, nil
}
