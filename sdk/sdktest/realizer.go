package sdktest

import (
	"context"
	"testing"

	"github.com/ebbscale/ebb/sdk"
)

// Realize carries out d on target with request id reqID and returns the
// realizer's summary; an error fails the test.
func Realize(ctx context.Context, t testing.TB, r sdk.Realizer, target sdk.Target, reqID string, d sdk.Decision) string {
	t.Helper()
	s, err := r.Realize(ctx, sdk.RealizeRequest{Target: target, Decision: d, RequestID: reqID})
	if err != nil {
		t.Fatalf("Realize(%s, %s): %v", reqID, d.Summary(), err)
	}
	return s
}

// Inventory lists target's units by id; an error, or a unit listed twice,
// fails the test.
func Inventory(ctx context.Context, t testing.TB, r sdk.Realizer, target sdk.Target) map[string]sdk.Unit {
	t.Helper()
	units, err := r.Inventory(ctx, target)
	if err != nil {
		t.Fatalf("Inventory: %v", err)
	}
	out := map[string]sdk.Unit{}
	for _, u := range units {
		if _, dup := out[u.ID]; dup {
			t.Fatalf("unit %q listed twice: %+v", u.ID, units)
		}
		out[u.ID] = u
	}
	return out
}
