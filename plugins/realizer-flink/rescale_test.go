package flink

import (
	"testing"

	emu "github.com/ebbscale/ebb/emulator/flink"
	"github.com/ebbscale/ebb/sdk"
)

const demoID = "3b2e0f6d1c2a4e5f8a9b0c1d2e3f4a5b"

func demo(scheduler string) emu.JobSpec {
	j := emu.DemoJob()
	j.Config = map[string]string{"jobmanager.scheduler": scheduler}
	return j
}

func jobRealizer(t *testing.T, f *flinkServer, extra map[string]any) *Realizer {
	cfg := map[string]any{"mode": "job", "rest-url": f.url}
	for k, v := range extra {
		cfg[k] = v
	}
	return configure(t, New(), cfg)
}

func parallelism(t *testing.T, f *flinkServer, vertex string) int {
	t.Helper()
	for _, j := range f.emu.Jobs() {
		if j.ID == demoID {
			return j.Parallelism[vertex]
		}
	}
	t.Fatalf("job %s gone", demoID)
	return 0
}

const keyed = "KeyedProcess -> Sink: totals"

func TestDesiredCapacityRescalesInPlace(t *testing.T) {
	f := startFlink(t, emu.Options{Jobs: []emu.JobSpec{demo("adaptive")}})
	r := jobRealizer(t, f, nil)
	byName := sdk.Target{Chain: "c", Name: "ebb-demo"}
	s := realize(t, r, byName, "r1", sdk.Decision{DesiredCapacity: 6, Add: []sdk.UnitAdd{{UnitID: "x", Size: 4}}})
	mustContain(t, s, "rescaled in place")
	if p := parallelism(t, f, keyed); p != 6 {
		t.Fatalf("parallelism %d, want 6", p)
	}
	if p := parallelism(t, f, "Source: events"); p != 6 {
		t.Fatalf("source parallelism %d, want 6 (both vertices ran at the widest parallelism)", p)
	}
	puts := f.emu.Requests()["PUT /jobs/:jobid/resource-requirements"]
	// A retry of the same decision, and the job named by id: nothing to send.
	s = realize(t, r, sdk.Target{Chain: "c", Name: demoID}, "r1", sdk.Decision{DesiredCapacity: 6, Add: []sdk.UnitAdd{{UnitID: "x", Size: 4}}})
	mustContain(t, s, "parallelism unchanged")
	if got := f.emu.Requests()["PUT /jobs/:jobid/resource-requirements"]; got != puts {
		t.Fatalf("%d PUTs after an unchanged retry, want %d", got, puts)
	}
	// The added unit holds the four new subtasks under its own id.
	inv := inventory(t, r, byName)
	if len(inv) != 3 || inv["subtask-0"].Phase != sdk.PhaseRunning || inv["subtask-1"].Size != 1 ||
		inv["x"].Size != 4 || inv["x"].Phase != sdk.PhaseRunning {
		t.Fatalf("inventory %v", inv)
	}
	// Another realizer process (a plugin restart) reports every subtask.
	if inv := inventory(t, jobRealizer(t, f, nil), byName); len(inv) != 6 || inv["subtask-5"].Size != 1 {
		t.Fatalf("inventory of a fresh process %v", inv)
	}
	// Scale-in: drains name subtasks, the capacity decides.
	realize(t, r, byName, "r2", sdk.Decision{DesiredCapacity: 3, Drain: []string{"subtask-5", "subtask-4", "subtask-3"}})
	if p := parallelism(t, f, keyed); p != 3 {
		t.Fatalf("parallelism %d after scale-in, want 3", p)
	}
	// Capacity beyond the free slots: the upper bound is declared, the job
	// runs what fits, and the rest shows as requested units.
	realize(t, r, byName, "r3", sdk.Decision{DesiredCapacity: 12, Add: []sdk.UnitAdd{{UnitID: "y", Size: 9}}})
	inv = inventory(t, r, byName)
	if p := parallelism(t, f, keyed); p != 8 || len(inv) != 4 || inv["y"].Phase != sdk.PhaseRequested || inv["y"].Size != 9 {
		t.Fatalf("parallelism %d, inventory %v: want 8 running, y holding 5 of them and the 4 requested", p, inv)
	}
	if inv := inventory(t, jobRealizer(t, f, nil), byName); len(inv) != 12 || inv["requested-4"].Phase != sdk.PhaseRequested {
		t.Fatalf("inventory of a fresh process %v", inv)
	}
}

func TestParallelismOverridesPerVertex(t *testing.T) {
	f := startFlink(t, emu.Options{Jobs: []emu.JobSpec{demo("adaptive")}})
	r := jobRealizer(t, f, nil)
	target := sdk.Target{Chain: "c", Name: "ebb-demo"}
	src := f.emu.VertexIDs(demoID)["Source: events"]
	s, err := r.RealizeParallelismOverrides(testCtx(t), sdk.OverridesRequest[int64]{Target: target, Overrides: map[string]int64{src: 3, keyed: 5}})
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, s, "rescaled in place")
	if parallelism(t, f, "Source: events") != 3 || parallelism(t, f, keyed) != 5 {
		t.Fatalf("jobs %+v", f.emu.Jobs())
	}
	_, err = r.RealizeParallelismOverrides(testCtx(t), sdk.OverridesRequest[int64]{Target: target, Overrides: map[string]int64{"Map: nope": 2}})
	wantErr(t, err, `has no vertex "Map: nope"`)
	_, err = r.RealizeParallelismOverrides(testCtx(t), sdk.OverridesRequest[int64]{Target: target, Overrides: map[string]int64{keyed: 121}})
	wantErr(t, err, "want 1..120")
	_, err = r.RealizeConfigOverrides(testCtx(t), sdk.OverridesRequest[string]{Target: target, Overrides: map[string]string{"a": "b"}})
	wantErr(t, err, `use mode "deployment"`)
}

func TestConflictIsRetried(t *testing.T) {
	f := startFlink(t, emu.Options{Jobs: []emu.JobSpec{demo("adaptive")}})
	r := jobRealizer(t, f, nil)
	f.emu.ConflictNextUpdates(demoID, 2)
	realize(t, r, sdk.Target{Chain: "c", Name: "ebb-demo"}, "r1", sdk.Decision{DesiredCapacity: 4, Add: []sdk.UnitAdd{{UnitID: "a", Size: 2}}})
	if p := parallelism(t, f, keyed); p != 4 {
		t.Fatalf("parallelism %d, want 4 after two conflicts", p)
	}
	if n := f.emu.Requests()["PUT /jobs/:jobid/resource-requirements"]; n != 3 {
		t.Fatalf("%d PUTs, want 3 (two refused with 409)", n)
	}
	f.emu.ConflictNextUpdates(demoID, 10)
	_, err := r.Realize(testCtx(t), sdk.RealizeRequest{Target: sdk.Target{Chain: "c", Name: "ebb-demo"}, RequestID: "r2", Decision: sdk.Decision{DesiredCapacity: 5, Add: []sdk.UnitAdd{{UnitID: "b", Size: 1}}}})
	wantErr(t, err, "HTTP 409")
}

func TestRefusals(t *testing.T) {
	cases := []struct {
		name string
		opts emu.Options
		cfg  map[string]any
		job  string
		want string
	}{
		{"default scheduler", emu.Options{Jobs: []emu.JobSpec{demo("default")}}, nil, "ebb-demo", "needs the adaptive scheduler"},
		{"flink 1.17", emu.Options{Version: "1.17.2", Jobs: []emu.JobSpec{demo("adaptive")}}, nil, "ebb-demo", "needs Flink 1.18 or newer"},
		{"balanced on 1.20", emu.Options{Jobs: []emu.JobSpec{demo("adaptive")}}, map[string]any{"balanced-tasks": true}, "ebb-demo", "balanced-tasks needs Flink 2.2 or newer"},
		{"balanced without TASKS", emu.Options{Version: "2.2.0", Jobs: []emu.JobSpec{demo("adaptive")}}, map[string]any{"balanced-tasks": true}, "ebb-demo", "set it to TASKS"},
		{"unknown job", emu.Options{Jobs: []emu.JobSpec{demo("adaptive")}}, nil, "nightly", `no running Flink job named "nightly"`},
		{"unknown job id", emu.Options{Jobs: []emu.JobSpec{demo("adaptive")}}, nil, "00000000000000000000000000000000", "HTTP 404"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := startFlink(t, c.opts)
			r := jobRealizer(t, f, c.cfg)
			_, err := r.Realize(testCtx(t), sdk.RealizeRequest{Target: sdk.Target{Chain: "c", Name: c.job}, RequestID: "r1",
				Decision: sdk.Decision{DesiredCapacity: 4, Add: []sdk.UnitAdd{{UnitID: "a", Size: 2}}}})
			wantErr(t, err, c.want)
			if p := parallelism(t, f, keyed); p != 2 {
				t.Fatalf("parallelism changed to %d", p)
			}
		})
	}
}

func TestTwoJobsOfOneNameAreAmbiguous(t *testing.T) {
	second := demo("adaptive")
	second.ID = "0123456789abcdef0123456789abcdef"
	f := startFlink(t, emu.Options{TaskManagers: 4, Jobs: []emu.JobSpec{demo("adaptive"), second}})
	r := jobRealizer(t, f, nil)
	_, err := r.Inventory(testCtx(t), sdk.Target{Chain: "c", Name: "ebb-demo"})
	wantErr(t, err, "2 running Flink jobs are named")
}

func TestBalancedAlignsToSlotsAndKeyGroups(t *testing.T) {
	f := startFlink(t, emu.Options{Version: "2.2.0", TaskManagers: 8, SlotsPerTaskManager: 4,
		Config: map[string]string{"taskmanager.load-balance.mode": "TASKS"}, Jobs: []emu.JobSpec{demo("adaptive")}})
	r := jobRealizer(t, f, map[string]any{"balanced-tasks": true, "vertices": []string{keyed}})
	// 5 -> 8: a multiple of 4 slots that divides 120 key groups.
	realize(t, r, sdk.Target{Chain: "c", Name: "ebb-demo"}, "r1", sdk.Decision{DesiredCapacity: 5, Add: []sdk.UnitAdd{{UnitID: "a", Size: 3}}})
	if p := parallelism(t, f, keyed); p != 8 {
		t.Fatalf("parallelism %d, want 8", p)
	}
	if p := parallelism(t, f, "Source: events"); p != 2 {
		t.Fatalf("source %d: only the configured vertex scales", p)
	}
}
