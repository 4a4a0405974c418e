package sdktest

import (
	"context"
	"reflect"
	"testing"

	"github.com/ebbscale/ebb/sdk"
)

// CheckBatch checks a configured plugin process's batch RPCs (protocol
// version 2) against its single calls: an evaluator's batch of the case's
// requests must answer exactly what one Evaluate per request does (each is
// a pure function of its request); a collector or realizer must answer a
// batch of the case's target, twice, for both. A plugin gets the batch RPCs
// from the SDK for free; this matters most for one that implements
// sdk.BatchCollector, sdk.BatchInventory or sdk.BatchEvaluator itself.
func CheckBatch(t *testing.T, p *sdk.Process, c Case) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	defer cancel()
	info, err := p.Plugin.Info(ctx)
	if err != nil {
		t.Fatalf("Info: %v", err)
	}
	_, c = withDefaults(t, info, c)
	two := []sdk.Target{c.Target, c.Target}
	switch pl := p.Plugin.(type) {
	case sdk.Evaluator:
		rs, err := p.EvaluateBatch(ctx, c.Requests)
		if err != nil {
			t.Fatalf("EvaluateBatch: %v", err)
		}
		for i, req := range c.Requests {
			want, err := pl.Evaluate(ctx, req)
			if got := rs[i]; (got.Err == nil) != (err == nil) || !reflect.DeepEqual(got.Response, want) {
				t.Errorf("request %d: EvaluateBatch answered\n%+v (error %v)\nEvaluate\n%+v (error %v)", i, got.Response, got.Err, want, err)
			}
		}
	case sdk.Collector:
		rs, err := p.CollectBatch(ctx, two)
		if err != nil {
			t.Fatalf("CollectBatch: %v", err)
		}
		for i, r := range rs {
			if r.Err != nil {
				t.Errorf("CollectBatch, target %d: %v", i, r.Err)
			}
		}
	case sdk.Realizer:
		rs, err := p.InventoryBatch(ctx, two)
		if err != nil {
			t.Fatalf("InventoryBatch: %v", err)
		}
		for i, r := range rs {
			if r.Err != nil {
				t.Errorf("InventoryBatch, target %d: %v", i, r.Err)
			}
			checkUnits(t, r.Units)
		}
	}
}
