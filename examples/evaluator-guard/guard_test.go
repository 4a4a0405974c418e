package guard_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ebbscale/ebb/sdk"
	"github.com/ebbscale/ebb/sdk/sdktest"

	guard "example.com/evaluator-guard"
)

var (
	policy    = json.RawMessage(`{"no-scale-down-from": "08:00", "no-scale-down-until": "18:00"}`)
	inventory = []sdk.Unit{{ID: "u-1", Size: 4, Phase: sdk.PhaseRunning}, {ID: "u-2", Size: 4, Phase: sdk.PhaseRunning}}
	drainU2   = &sdk.Decision{DesiredCapacity: 4, Drain: []string{"u-2"}, Reason: "u-2 idle"}
	noon      = time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	night     = time.Date(2026, 3, 2, 22, 0, 0, 0, time.UTC)
)

// The conformance harness runs the guard in process and as the binary the
// runner starts, over real gRPC, with the schema's defaults filled in.
func TestConformance(t *testing.T) {
	bin := sdktest.Build(t, "example.com/evaluator-guard/cmd/evaluator-guard")
	sdktest.Run(t, guard.New(), bin, sdktest.Case{
		Config: json.RawMessage(`{"time-zone": "Europe/Berlin"}`),
		Policy: policy,
		Target: sdk.Target{Chain: "c", Name: "g"},
		Requests: []sdk.EvaluateRequest{
			{Now: noon, Inventory: inventory, Previous: drainU2, Snapshot: sdk.Snapshot{Complete: true}},
			{Now: night, Inventory: inventory, Previous: drainU2, Snapshot: sdk.Snapshot{Complete: true}},
			{Now: noon, Inventory: inventory, Snapshot: sdk.Snapshot{Complete: true}},
		},
	})
}

func evaluate(t *testing.T, g *guard.Guard, now time.Time, prev *sdk.Decision) sdk.Decision {
	t.Helper()
	resp, err := g.Evaluate(context.Background(), sdk.EvaluateRequest{Policy: policy, Now: now, Inventory: inventory, Previous: prev})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Decision
}

func TestScaleDownOnlyOutsideTheWindow(t *testing.T) {
	g := guard.New()
	d := evaluate(t, g, noon, drainU2)
	if len(d.Drain) != 0 || d.DesiredCapacity != 8 || !strings.Contains(d.Reason, "no scale-down from 08:00 until 18:00 (UTC), kept u-2") {
		t.Errorf("at noon: %+v", d)
	}
	if d := evaluate(t, g, night, drainU2); len(d.Drain) != 1 || d.DesiredCapacity != 4 {
		t.Errorf("at night the drain goes through: %+v", d)
	}
	up := &sdk.Decision{DesiredCapacity: 12, Add: []sdk.UnitAdd{{UnitID: "u-3", Size: 4}}, Reason: "backlog"}
	if d := evaluate(t, g, noon, up); len(d.Add) != 1 || d.Reason != "backlog" {
		t.Errorf("a scale-up passes unchanged: %+v", d)
	}
	// In Berlin 12:00 UTC is 13:00, 07:30 UTC is 08:30: inside the window.
	if err := g.Configure(context.Background(), json.RawMessage(`{"time-zone": "Europe/Berlin"}`)); err != nil {
		t.Fatal(err)
	}
	if d := evaluate(t, g, time.Date(2026, 3, 2, 7, 30, 0, 0, time.UTC), drainU2); len(d.Drain) != 0 {
		t.Errorf("08:30 in Berlin: %+v", d)
	}
}

func TestBadInputIsRefused(t *testing.T) {
	g := guard.New()
	if err := g.Configure(context.Background(), json.RawMessage(`{"time-zone": "Mars/Olympus"}`)); err == nil {
		t.Error("an unknown time zone was accepted")
	}
	problems, err := g.ValidatePolicy(context.Background(), json.RawMessage(`{"no-scale-down-from": "25:00", "no-scale-down-until": "18:00"}`))
	if err != nil || len(problems) != 1 || problems[0].Attribute != "no-scale-down-from" {
		t.Errorf("problems %v, err %v", problems, err)
	}
	problems, _ = g.ValidatePolicy(context.Background(), json.RawMessage(`{"no-scale-down-from": "08:00", "no-scale-down-until": "08:00"}`))
	if len(problems) != 1 || !strings.Contains(problems[0].Message, "empty") {
		t.Errorf("empty window: %v", problems)
	}
}
