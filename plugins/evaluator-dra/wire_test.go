package dra

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/ebbscale/ebb/sdk"
	"github.com/ebbscale/ebb/sdk/sdktest"
)

const binPkg = "github.com/ebbscale/ebb/plugins/evaluator-dra/cmd/evaluator-dra"

func TestConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the plugin binary")
	}
	s := newSim(t, `{"min-parallelism":2,"executor-parallelism":2,"max-parallelism":8}`)
	ids := s.running(3, 2)
	s.units[ids[2]].unit.Phase = sdk.PhaseDraining
	s.demand = sdk.Demand{PlannedTasks: 12}
	first := s.request()
	s.incomplete = true
	degraded := s.request()
	bin := sdktest.Build(t, binPkg)
	sdktest.Run(t, New(), bin, sdktest.Case{
		Config:   json.RawMessage(`{"unit-prefix":"opt"}`),
		Target:   s.target,
		Policy:   json.RawMessage(s.policy),
		Requests: []sdk.EvaluateRequest{first, degraded},
	})
}

// The plugin keeps no memory: a run of rounds against a real plugin process
// that is killed and started again half-way gives, byte for byte, the
// responses the in-process evaluator gives for the same rounds.
func TestStateSurvivesPluginRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the plugin binary")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bin := sdktest.Build(t, binPkg)
	start := func() (*sdk.Process, sdk.Evaluator) {
		p := sdktest.Start(t, bin, sdk.KindEvaluator)
		ev, ok := p.Plugin.(sdk.Evaluator)
		if !ok {
			t.Fatalf("plugin is a %T, not an evaluator", p.Plugin)
		}
		if err := ev.Configure(ctx, json.RawMessage(`{}`)); err != nil {
			t.Fatal(err)
		}
		return p, ev
	}
	proc, remote := start()

	const policy = `{"executor-parallelism":2,"scheduler-backlog-timeout":"10s","sustained-backlog-timeout":"10s","scale-up-cooldown":"1ns","executor-idle-timeout":"1m","scale-down-cooldown":"1ns"}`
	s := newSim(t, policy) // drives the environment; its own evaluation is the in-process reference
	s.bootRounds = 1
	s.autoBusy = true
	s.demand = sdk.Demand{PlannedTasks: 9, RunningTasks: 3}
	var remoteState []byte
	for i := 0; i < 16; i++ {
		if i == 8 {
			proc.Kill()
			if !proc.Exited() {
				t.Fatal("plugin still running after Kill")
			}
			proc, remote = start()
		}
		if i == 10 {
			s.demand = sdk.Demand{}
		}
		want := s.step(10 * time.Second)
		// The same round over the wire, from the state the plugin returned.
		req := s.lastReq
		req.State = remoteState
		got, err := remote.Evaluate(ctx, req)
		if err != nil {
			t.Fatalf("round %d: remote Evaluate: %v", i, err)
		}
		if !bytes.Equal(got.State, s.state) {
			t.Fatalf("round %d: remote state differs:\n%s\n%s", i, got.State, s.state)
		}
		if !reflect.DeepEqual(normalize(got.Decision), normalize(want)) {
			t.Fatalf("round %d: remote decision %+v, in-process %+v", i, got.Decision, want)
		}
		remoteState = got.State
	}
	var scaled bool
	for _, d := range s.log {
		scaled = scaled || len(d.Drain) > 0
	}
	if !scaled {
		t.Errorf("the run never scaled down, so it checked less than it should")
	}
}

// normalize makes empty and nil slices alike: protobuf does not tell them apart.
func normalize(d sdk.Decision) sdk.Decision {
	if len(d.Add) == 0 {
		d.Add = nil
	}
	if len(d.Drain) == 0 {
		d.Drain = nil
	}
	if len(d.Remove) == 0 {
		d.Remove = nil
	}
	if len(d.Restart) == 0 {
		d.Restart = nil
	}
	if len(d.ParallelismOverrides) == 0 {
		d.ParallelismOverrides = nil
	}
	if len(d.ConfigOverrides) == 0 {
		d.ConfigOverrides = nil
	}
	return d
}
