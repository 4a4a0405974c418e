package sim_test

import (
	"context"
	"testing"
	"time"

	"github.com/ebbscale/ebb/core/sim"
	"github.com/ebbscale/ebb/core/sim/baseline"
	"github.com/ebbscale/ebb/sdk"
)

// drainAt20 adds one-thread unit a at 0 s; at 20 s drains it and adds b.
func drainAt20() sim.Policy {
	f := baseline.Func(func(req sdk.EvaluateRequest) sdk.Decision {
		switch req.Now.Sub(sim.Start) {
		case 0:
			return sdk.Decision{Add: []sdk.UnitAdd{{UnitID: "a", Size: 1}}}
		case 20 * time.Second:
			return sdk.Decision{Drain: []string{"a"}, Add: []sdk.UnitAdd{{UnitID: "b", Size: 1}}}
		}
		return sdk.Decision{}
	})
	return sim.Policy{Name: "drain", Interval: 10 * time.Second, Stages: []sim.Stage{{Name: "drain", Eval: f}}}
}

// Task 1 (100 s, table x) and task 2 (300 s, table y) at 0 s; boots take
// 10 s. a runs task 1 from 10 s; b is ready at 30 s and runs task 2 until
// 330 s. By hand:
//   - drain timeout 15 min: a finishes task 1 at 110 s and exits; provisioned
//     a 0-110 + b 20-330 = 420, used 400, waits 10 and 30, makespan 330.
//   - drain timeout 50 s: a is killed at 70 s with task 1 in hand; AMS
//     expires it a heartbeat timeout (60 s) after its last beat at 70 s and
//     puts task 1 back at 130 s; b takes it at 330 s. Provisioned a 0-70 +
//     b 20-430 = 480, used 60 + 300 + 100 = 460, task 1 waited 330 s.
func TestDrainAndDrainTimeoutByHand(t *testing.T) {
	rows := trace(t, "submit,duration,table\n0,100,x\n0,300,y\n")
	for _, tc := range []struct {
		timeout                       time.Duration
		prov, used, maxWait, makespan float64
	}{
		{15 * time.Minute, 420, 400, 30, 330},
		{50 * time.Second, 480, 460, 330, 430},
	} {
		w := sim.World{Rows: rows, BootDelay: 10 * time.Second, DrainTimeout: tc.timeout}
		r, err := sim.Run(context.Background(), w, drainAt20(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if r.ProvisionedThreadSec != tc.prov || r.UsedThreadSec != tc.used || r.Wait.Max != tc.maxWait || r.MakespanSec != tc.makespan {
			t.Errorf("drain timeout %s: provisioned %v used %v max wait %v makespan %v; want %v %v %v %v", tc.timeout,
				r.ProvisionedThreadSec, r.UsedThreadSec, r.Wait.Max, r.MakespanSec, tc.prov, tc.used, tc.maxWait, tc.makespan)
		}
	}
}

// With half the boots failing, evaluator-dra's auto-restart still gets every
// task done, and the failures cost restarts.
func TestBootFailuresAreSurvivedByAutoRestart(t *testing.T) {
	rows, err := sim.Generate("nightly", 4, 3*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	w := sim.World{Rows: rows, Target: sdk.Target{Chain: "c", Name: "g"}, BootDelay: time.Minute, DrainTimeout: 15 * time.Minute, Seed: 3}
	ok, err := sim.Run(context.Background(), w, draChain(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	w.BootFailure = 0.5
	bad, err := sim.Run(context.Background(), w, draChain(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if bad.Unfinished != 0 {
		t.Fatalf("%d tasks unfinished with boot failures", bad.Unfinished)
	}
	if bad.ScaleActions <= ok.ScaleActions || bad.Wait.P99 < ok.Wait.P99 {
		t.Errorf("boot failures: %d actions, p99 %v; without: %d actions, p99 %v; want more actions and no better p99",
			bad.ScaleActions, bad.Wait.P99, ok.ScaleActions, ok.Wait.P99)
	}
}
