package runner

import (
	"context"

	"github.com/ebbscale/ebb/core/host"
	"github.com/ebbscale/ebb/sdk"
)

// The runner's only calls of a plugin's Collect, Inventory and Evaluate: one
// batched call per plugin block and round (core/host falls back to single
// calls for plugins of protocol 1). The results have the length and order of
// the input; a result's Err is that target's failure; the returned error
// means the whole call failed.

type (
	collectResult   = sdk.CollectResult
	inventoryResult = sdk.InventoryResult
	evaluateResult  = sdk.EvaluateResult
)

func collectBatch(ctx context.Context, inst *host.Instance, targets []sdk.Target) ([]collectResult, error) {
	return inst.CollectBatch(ctx, targets)
}

func inventoryBatch(ctx context.Context, inst *host.Instance, targets []sdk.Target) ([]inventoryResult, error) {
	return inst.InventoryBatch(ctx, targets)
}

func evaluateBatch(ctx context.Context, inst *host.Instance, reqs []sdk.EvaluateRequest) ([]evaluateResult, error) {
	return inst.EvaluateBatch(ctx, reqs)
}
