package sdk

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	pb "github.com/ebbscale/ebb/sdk/proto"
)

// This file serves and calls the batch RPCs of protocol version 2.

// ---- server side ----

// serveBatch answers a batch: through the plugin's own batch method when it
// has one (batch non-nil), else one single call per request on a bounded
// pool of workers.
func serveBatch[Q, R any](ctx context.Context, reqs []Q, batch func([]Q) []R, workers int, one func(context.Context, Q) R, fail func(error) R) ([]R, error) {
	if err := checkBatch(len(reqs)); err != nil {
		return nil, err
	}
	if batch != nil {
		return callBatch(len(reqs), func() []R { return batch(reqs) })
	}
	return forEach(ctx, len(reqs), workers, func(ctx context.Context, i int) R { return one(ctx, reqs[i]) }, fail), nil
}

func targetsOf[Q interface{ GetTarget() *pb.Target }](qs []Q) []Target {
	out := make([]Target, len(qs))
	for i, q := range qs {
		out[i] = targetFromPB(q.GetTarget())
	}
	return out
}

func (s *collectorServer) CollectBatch(ctx context.Context, r *pb.CollectBatchRequest) (*pb.CollectBatchResponse, error) {
	targets := targetsOf(r.GetRequests())
	var batch func([]Target) []CollectResult
	if b, ok := s.impl.(BatchCollector); ok {
		batch = func(ts []Target) []CollectResult { return b.CollectBatch(ctx, ts) }
	}
	results, err := serveBatch(ctx, targets, batch, ioWorkers(), func(ctx context.Context, t Target) CollectResult {
		snap, err := s.impl.Collect(ctx, t)
		return CollectResult{Snapshot: snap, Err: err}
	}, func(err error) CollectResult { return CollectResult{Err: err} })
	if err != nil {
		return nil, err
	}
	out := &pb.CollectBatchResponse{Results: make([]*pb.CollectResult, len(results))}
	for i, res := range results {
		out.Results[i] = &pb.CollectResult{Error: errText(res.Err)}
		if res.Err == nil {
			out.Results[i].Response = &pb.CollectResponse{Snapshot: snapshotToPB(res.Snapshot)}
		}
	}
	return out, nil
}

func (s *realizerServer) InventoryBatch(ctx context.Context, r *pb.InventoryBatchRequest) (*pb.InventoryBatchResponse, error) {
	targets := targetsOf(r.GetRequests())
	var batch func([]Target) []InventoryResult
	if b, ok := s.impl.(BatchInventory); ok {
		batch = func(ts []Target) []InventoryResult { return b.InventoryBatch(ctx, ts) }
	}
	results, err := serveBatch(ctx, targets, batch, ioWorkers(), func(ctx context.Context, t Target) InventoryResult {
		units, err := s.impl.Inventory(ctx, t)
		return InventoryResult{Units: units, Err: err}
	}, func(err error) InventoryResult { return InventoryResult{Err: err} })
	if err != nil {
		return nil, err
	}
	out := &pb.InventoryBatchResponse{Results: make([]*pb.InventoryResult, len(results))}
	for i, res := range results {
		out.Results[i] = &pb.InventoryResult{Error: errText(res.Err)}
		if res.Err == nil {
			out.Results[i].Response = &pb.InventoryResponse{Units: unitsToPB(res.Units)}
		}
	}
	return out, nil
}

func (s *evaluatorServer) EvaluateBatch(ctx context.Context, r *pb.EvaluateBatchRequest) (*pb.EvaluateBatchResponse, error) {
	reqs := make([]EvaluateRequest, len(r.GetRequests()))
	for i, q := range r.GetRequests() {
		reqs[i] = evaluateRequestFromPB(q)
	}
	var batch func([]EvaluateRequest) []EvaluateResult
	if b, ok := s.impl.(BatchEvaluator); ok {
		batch = func(rs []EvaluateRequest) []EvaluateResult { return b.EvaluateBatch(ctx, rs) }
	}
	results, err := serveBatch(ctx, reqs, batch, cpuWorkers(), func(ctx context.Context, req EvaluateRequest) EvaluateResult {
		resp, err := s.impl.Evaluate(ctx, req)
		return EvaluateResult{Response: resp, Err: err}
	}, func(err error) EvaluateResult { return EvaluateResult{Err: err} })
	if err != nil {
		return nil, err
	}
	out := &pb.EvaluateBatchResponse{Results: make([]*pb.EvaluateResult, len(results))}
	for i, res := range results {
		out.Results[i] = &pb.EvaluateResult{Error: errText(res.Err)}
		if res.Err == nil {
			out.Results[i].Response = evaluateResponseToPB(res.Response)
		}
	}
	return out, nil
}

// ---- client side ----

// batching is whether a client may use the batch RPCs: not with a plugin
// that negotiated version 1, nor once the plugin answered UNIMPLEMENTED (a
// plugin in another language that claims version 2 without them).
type batching struct{ off atomic.Bool }

// How many batch RPCs, or single calls in the fallback, one batch keeps in
// flight at once.
const (
	batchesInFlight = 4
	singlesInFlight = 8
)

// callBatches sends n requests as few batch RPCs as the limits allow, or as
// n single calls when the plugin does not batch. The error fails the whole
// call: the process is gone, the context is done, or the plugin answered
// nonsense. Per-request failures are in the results, through fail.
func callBatches[Q proto.Message, R any](ctx context.Context, b *batching, n int,
	build func(i int) Q,
	send func(ctx context.Context, qs []Q) ([]R, error),
	single func(ctx context.Context, i int) (R, error),
	fail func(error) R,
) ([]R, error) {
	if n == 0 {
		return []R{}, nil
	}
	if !b.off.Load() {
		out, err := sendChunks(ctx, n, build, send)
		if status.Code(err) != codes.Unimplemented {
			return out, err
		}
		b.off.Store(true)
	}
	return callSingles(ctx, n, single, fail)
}

// sendChunks builds every request and sends them in chunks of at most
// MaxBatch requests and maxBatchBytes, a few chunks at a time.
func sendChunks[Q proto.Message, R any](ctx context.Context, n int, build func(i int) Q, send func(context.Context, []Q) ([]R, error)) ([]R, error) {
	qs := make([]Q, n)
	if n == 1 { // nothing to split
		qs[0] = build(0)
		return send(ctx, qs)
	}
	var chunks [][2]int // [from, to)
	from, size := 0, 0
	for i := range qs {
		qs[i] = build(i)
		s := proto.Size(qs[i])
		if i > from && (i-from == MaxBatch || size+s > maxBatchBytes) {
			chunks = append(chunks, [2]int{from, i})
			from, size = i, 0
		}
		size += s
	}
	chunks = append(chunks, [2]int{from, n})
	if len(chunks) == 1 {
		return send(ctx, qs)
	}
	out := make([]R, n)
	errs := make([]error, len(chunks))
	sem := make(chan struct{}, batchesInFlight)
	var wg sync.WaitGroup
	for c, ch := range chunks {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			rs, err := send(ctx, qs[ch[0]:ch[1]])
			if err != nil {
				errs[c] = err
				return
			}
			copy(out[ch[0]:], rs)
		})
	}
	wg.Wait()
	// UNIMPLEMENTED first, so the caller falls back whatever else failed.
	for _, err := range errs {
		if status.Code(err) == codes.Unimplemented {
			return nil, err
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// callSingles is the version 1 fallback: one call per request, a few at a
// time. A request's own error goes in its result; a dead process or a done
// context fails the whole call, as it would in one batch RPC.
func callSingles[R any](ctx context.Context, n int, single func(context.Context, int) (R, error), fail func(error) R) ([]R, error) {
	out := make([]R, n)
	errs := make([]error, n)
	sem := make(chan struct{}, singlesInFlight)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			r, err := single(ctx, i)
			if err != nil {
				r = fail(err)
			}
			out[i], errs[i] = r, err
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, err := range errs {
		if status.Code(err) == codes.Unavailable {
			return nil, err
		}
	}
	return out, nil
}

// fromResults turns a batch response's results into the SDK's, checking
// that there is one per request.
func fromResults[P interface{ GetError() string }, R any](ps []P, n int, ok func(P) R, fail func(error) R) ([]R, error) {
	if len(ps) != n {
		return nil, fmt.Errorf("the plugin answered %d results to a batch of %d", len(ps), n)
	}
	out := make([]R, n)
	for i, p := range ps {
		if e := p.GetError(); e != "" {
			out[i] = fail(errors.New(e))
		} else {
			out[i] = ok(p)
		}
	}
	return out, nil
}

func (c *collectorClient) collectBatch(ctx context.Context, targets []Target) ([]CollectResult, error) {
	fail := func(err error) CollectResult { return CollectResult{Err: err} }
	return callBatches(ctx, &c.batch, len(targets),
		func(i int) *pb.CollectRequest { return &pb.CollectRequest{Target: targetToPB(targets[i])} },
		func(ctx context.Context, qs []*pb.CollectRequest) ([]CollectResult, error) {
			r, err := c.c.CollectBatch(ctx, &pb.CollectBatchRequest{Requests: qs})
			if err != nil {
				return nil, err
			}
			return fromResults(r.GetResults(), len(qs), func(p *pb.CollectResult) CollectResult {
				return CollectResult{Snapshot: snapshotFromPB(p.GetResponse().GetSnapshot())}
			}, fail)
		},
		func(ctx context.Context, i int) (CollectResult, error) {
			s, err := c.Collect(ctx, targets[i])
			return CollectResult{Snapshot: s}, err
		}, fail)
}

func (c *realizerClient) inventoryBatch(ctx context.Context, targets []Target) ([]InventoryResult, error) {
	fail := func(err error) InventoryResult { return InventoryResult{Err: err} }
	return callBatches(ctx, &c.batch, len(targets),
		func(i int) *pb.InventoryRequest { return &pb.InventoryRequest{Target: targetToPB(targets[i])} },
		func(ctx context.Context, qs []*pb.InventoryRequest) ([]InventoryResult, error) {
			r, err := c.c.InventoryBatch(ctx, &pb.InventoryBatchRequest{Requests: qs})
			if err != nil {
				return nil, err
			}
			return fromResults(r.GetResults(), len(qs), func(p *pb.InventoryResult) InventoryResult {
				return InventoryResult{Units: unitsFromPB(p.GetResponse().GetUnits())}
			}, fail)
		},
		func(ctx context.Context, i int) (InventoryResult, error) {
			us, err := c.Inventory(ctx, targets[i])
			return InventoryResult{Units: us}, err
		}, fail)
}

func (c *evaluatorClient) evaluateBatch(ctx context.Context, reqs []EvaluateRequest) ([]EvaluateResult, error) {
	fail := func(err error) EvaluateResult { return EvaluateResult{Err: err} }
	return callBatches(ctx, &c.batch, len(reqs),
		func(i int) *pb.EvaluateRequest { return evaluateRequestToPB(reqs[i]) },
		func(ctx context.Context, qs []*pb.EvaluateRequest) ([]EvaluateResult, error) {
			r, err := c.c.EvaluateBatch(ctx, &pb.EvaluateBatchRequest{Requests: qs})
			if err != nil {
				return nil, err
			}
			return fromResults(r.GetResults(), len(qs), func(p *pb.EvaluateResult) EvaluateResult {
				return EvaluateResult{Response: evaluateResponseFromPB(p.GetResponse())}
			}, fail)
		},
		func(ctx context.Context, i int) (EvaluateResult, error) {
			resp, err := c.Evaluate(ctx, reqs[i])
			return EvaluateResult{Response: resp}, err
		}, fail)
}

// CollectBatch collects many targets from a collector process, through the
// batch RPC when the plugin speaks protocol version 2, else one call per
// target; larger batches than MaxBatch are split. The results have the
// targets' order; the error means the whole call failed.
func (p *Process) CollectBatch(ctx context.Context, targets []Target) ([]CollectResult, error) {
	c, ok := p.Plugin.(*collectorClient)
	if !ok {
		return nil, fmt.Errorf("CollectBatch on a %v plugin", KindOf(p.Plugin))
	}
	return c.collectBatch(ctx, targets)
}

// InventoryBatch lists the units of many targets of a realizer process, as
// CollectBatch does.
func (p *Process) InventoryBatch(ctx context.Context, targets []Target) ([]InventoryResult, error) {
	c, ok := p.Plugin.(*realizerClient)
	if !ok {
		return nil, fmt.Errorf("InventoryBatch on a %v plugin", KindOf(p.Plugin))
	}
	return c.inventoryBatch(ctx, targets)
}

// EvaluateBatch evaluates many requests in an evaluator process, as
// CollectBatch does.
func (p *Process) EvaluateBatch(ctx context.Context, reqs []EvaluateRequest) ([]EvaluateResult, error) {
	c, ok := p.Plugin.(*evaluatorClient)
	if !ok {
		return nil, fmt.Errorf("EvaluateBatch on a %v plugin", KindOf(p.Plugin))
	}
	return c.evaluateBatch(ctx, reqs)
}

// Version is the protocol version the process negotiated: 1 for a plugin
// built before batches, else ProtocolVersion.
func (p *Process) Version() int { return p.client.NegotiatedVersion() }
