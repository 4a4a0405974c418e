package flink

import (
	"encoding/json"
	"testing"

	emu "github.com/ebbscale/ebb/emulator/flink"
	"github.com/ebbscale/ebb/sdk"
	"github.com/ebbscale/ebb/sdk/sdktest"
)

// TestConformance runs sdktest's realizer contract over real gRPC, in
// process and as the standalone binary, in job mode and with session units.
func TestConformance(t *testing.T) {
	bin := sdktest.Build(t, "github.com/ebbscale/ebb/plugins/realizer-flink/cmd/realizer-flink")
	t.Run("job", func(t *testing.T) {
		f := startFlink(t, emu.Options{Jobs: []emu.JobSpec{demo("adaptive")}})
		raw, _ := json.Marshal(map[string]any{"mode": "job", "rest-url": f.url})
		sdktest.Run(t, New(), bin, sdktest.Case{Config: raw, Target: sdk.Target{Chain: "c", Name: "ebb-demo"},
			Decision: &sdk.Decision{DesiredCapacity: 4, Reason: "conformance"}})
		if p := parallelism(t, f, keyed); p != 4 {
			t.Fatalf("parallelism %d, want 4", p)
		}
	})
	t.Run("session-units", func(t *testing.T) {
		f, _, cfg := sessionSetup(t, "1.20.1")
		raw, _ := json.Marshal(cfg)
		sdktest.Run(t, New(), bin, sdktest.Case{Config: raw, Target: sdk.Target{Chain: "lake", Name: "group-a"},
			Decision: &sdk.Decision{Add: []sdk.UnitAdd{{UnitID: "u1", Size: 2}, {UnitID: "u2", Size: 1}}, Reason: "conformance"}})
		if n := len(f.emu.Jobs()); n != 2 {
			t.Fatalf("%d jobs, want 2 (each run twice, in process and as a subprocess)", n)
		}
	})
}
