package runner

import (
	"context"

	"github.com/ebbscale/ebb/core/host"
	"github.com/ebbscale/ebb/sdk"
)

// This file stands in for the batched calls that core/host gains on branch
// s-batch (Instance.CollectBatch, InventoryBatch, EvaluateBatch and the sdk
// result types): same shapes, looping over the single calls. At the merge it
// is replaced by thin calls to the real methods; nothing else in the runner
// calls a plugin's Collect, Inventory or Evaluate.
//
// Contract of all three: the results have the length and order of the
// input; a result's Err is that target's failure; the returned error means
// the whole call failed.

type collectResult struct {
	Snapshot sdk.Snapshot
	Err      error
}

type inventoryResult struct {
	Units []sdk.Unit
	Err   error
}

type evaluateResult struct {
	Response sdk.EvaluateResponse
	Err      error
}

func collectBatch(ctx context.Context, inst *host.Instance, targets []sdk.Target) ([]collectResult, error) {
	out := make([]collectResult, len(targets))
	for i, t := range targets {
		out[i].Snapshot, out[i].Err = inst.Collect(ctx, t)
	}
	return out, nil
}

func inventoryBatch(ctx context.Context, inst *host.Instance, targets []sdk.Target) ([]inventoryResult, error) {
	out := make([]inventoryResult, len(targets))
	for i, t := range targets {
		out[i].Units, out[i].Err = inst.Inventory(ctx, t)
	}
	return out, nil
}

func evaluateBatch(ctx context.Context, inst *host.Instance, reqs []sdk.EvaluateRequest) ([]evaluateResult, error) {
	out := make([]evaluateResult, len(reqs))
	for i, req := range reqs {
		out[i].Response, out[i].Err = inst.Evaluate(ctx, req)
	}
	return out, nil
}
