package canned

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/ebbscale/ebb/sdk"
	"github.com/ebbscale/ebb/sdk/sdktest"
)

const pkg = "github.com/ebbscale/ebb/bench/canned/cmd/"

func TestCollectorConformance(t *testing.T) {
	bin := sdktest.Build(t, pkg+CollectorName)
	sdktest.Run(t, NewCollector(), bin, sdktest.Case{Config: json.RawMessage(`{"units": 3}`), Target: sdk.Target{Chain: "c", Name: "t-00001"}})
}

func TestRealizerConformance(t *testing.T) {
	bin := sdktest.Build(t, pkg+RealizerName)
	sdktest.Run(t, NewRealizer(), bin, sdktest.Case{
		Config: json.RawMessage(`{}`),
		Target: sdk.Target{Chain: "c", Name: "t-00002"},
		Decision: &sdk.Decision{
			DesiredCapacity: 8, Add: []sdk.UnitAdd{{UnitID: "t-00002-1", Size: 4}}, Drain: []string{"t-00002-base-0"},
			Reason: "sdktest",
		},
	})
}

// Targets differ, and a target's demand comes and goes, so the chains of the
// benchmark decide differently from each other and over time.
func TestDemandVariesByTargetAndTime(t *testing.T) {
	c := NewCollector()
	ctx := context.Background()
	sizes, up := map[int]bool{}, map[bool]bool{}
	start := time.Now()
	for i := range 50 {
		name := "t-" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		s, err := c.Collect(ctx, sdk.Target{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		sizes[len(s.Workers)] = true
		g := groupOf(name, c.cfg)
		for k := range 240 { // the wave over two of the longest periods
			up[g.busy(start.Add(time.Duration(k)*time.Second), c.cfg)] = true
		}
	}
	if len(sizes) < 3 {
		t.Errorf("50 targets have only %d group sizes: %v", len(sizes), sizes)
	}
	if !up[true] || !up[false] {
		t.Errorf("demand never changes: %v", up)
	}
}

// The realizer's memory is what decisions made of the group: an added unit
// boots, a drained one drains, a removed one is gone.
func TestRealizerKeepsWhatDecisionsDid(t *testing.T) {
	r := NewRealizer()
	ctx := context.Background()
	tg := sdk.Target{Name: "t-1"}
	base := sdktest.Inventory(ctx, t, r, tg)
	sdktest.Realize(ctx, t, r, tg, "r1", sdk.Decision{Add: []sdk.UnitAdd{{UnitID: "n-1", Size: 4}}, Drain: []string{"t-1-base-0"}, Reason: "x"})
	inv := sdktest.Inventory(ctx, t, r, tg)
	if len(inv) != len(base)+1 || inv["n-1"].Phase != sdk.PhaseBooting || inv["t-1-base-0"].Phase != sdk.PhaseDraining {
		t.Fatalf("after add and drain: %v", inv)
	}
	sdktest.Realize(ctx, t, r, tg, "r2", sdk.Decision{Remove: []sdk.UnitRemove{{UnitID: "t-1-base-0"}}, Reason: "x"})
	if inv := sdktest.Inventory(ctx, t, r, tg); len(inv) != len(base) {
		t.Fatalf("after remove: %v", inv)
	}
	if err := r.Configure(ctx, json.RawMessage(`{"units": 0, "period": "2m"}`)); err == nil {
		t.Error("units 0 accepted")
	}
}
