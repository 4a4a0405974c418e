package flink

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	emu "github.com/ebbscale/ebb/emulator/flink"
	"github.com/ebbscale/ebb/sdk"
)

// drainingOptimizer is the Amoro optimizer program whose drain the test
// controls: after a cancel it holds on until release is closed.
type drainingOptimizer struct {
	mu      sync.Mutex
	started []emu.OptimizerArgs
	release chan struct{}
}

func (d *drainingOptimizer) program() emu.Program {
	return emu.AmoroOptimizer(func(ctx context.Context, o emu.OptimizerArgs, _ func() int) error {
		d.mu.Lock()
		d.started = append(d.started, o)
		d.mu.Unlock()
		<-ctx.Done()
		<-d.release
		return nil
	})
}

// waitStarted waits until n optimizer programs have started (the emulator
// runs each job's program on a goroutine of its own) and returns them.
func (d *drainingOptimizer) waitStarted(t *testing.T, n int) []emu.OptimizerArgs {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		d.mu.Lock()
		got := append([]emu.OptimizerArgs(nil), d.started...)
		d.mu.Unlock()
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func sessionSetup(t *testing.T, version string) (*flinkServer, *drainingOptimizer, map[string]any) {
	t.Helper()
	d := &drainingOptimizer{release: make(chan struct{})}
	f := startFlink(t, emu.Options{Version: version, TaskManagers: 4, Programs: map[string]emu.Program{emu.AmoroOptimizerClass: d.program()}})
	// Registered after startFlink, so it runs first: the emulator's Close
	// waits for the programs, which wait for this.
	t.Cleanup(func() {
		select {
		case <-d.release:
		default:
			close(d.release)
		}
	})
	jar := filepath.Join(t.TempDir(), "optimizer-job.jar")
	if err := os.WriteFile(jar, []byte("PK\x03\x04 not really a jar"), 0o644); err != nil {
		t.Fatal(err)
	}
	return f, d, map[string]any{"mode": "unit", "unit-backend": "session", "rest-url": f.url, "jar-path": jar, "ams-thrift-uri": "thrift://ams:1261"}
}

func TestSessionUnits(t *testing.T) {
	f, opt, cfg := sessionSetup(t, "1.20.1")
	r := configure(t, New(), cfg)
	target := sdk.Target{Chain: "lake", Name: "group-a"}
	s := realize(t, r, target, "req-1", sdk.Decision{Add: []sdk.UnitAdd{{UnitID: "u1", Size: 2}, {UnitID: "u2", Size: 3}}})
	mustContain(t, s, "submitted u1; submitted u2")
	// A retry creates nothing; the jar was uploaded once.
	s = realize(t, r, target, "req-1", sdk.Decision{Add: []sdk.UnitAdd{{UnitID: "u1", Size: 2}, {UnitID: "u2", Size: 3}}})
	mustContain(t, s, "exists u1; exists u2")
	if n := f.emu.Requests()["POST /jars/upload"]; n != 1 {
		t.Fatalf("%d uploads, want 1", n)
	}
	if started := opt.waitStarted(t, 2); len(f.emu.Jobs()) != 2 || len(started) != 2 {
		t.Fatalf("jobs %+v, optimizers %+v", f.emu.Jobs(), started)
	}
	for _, j := range f.emu.Jobs() {
		if j.Parallelism["org.apache.amoro.optimizer.flink.FlinkExecutor"] == 0 || j.Parallelism["Source: Custom Source"] != 1 {
			t.Fatalf("job %+v does not run Amoro's topology", j)
		}
	}
	got := map[string]emu.OptimizerArgs{}
	for _, o := range opt.waitStarted(t, 2) {
		got[o.UnitID] = o
	}
	if got["u2"] != (emu.OptimizerArgs{AMS: "thrift://ams:1261", Threads: 3, Group: "group-a", UnitID: "u2"}) {
		t.Fatalf("optimizer arguments %+v", got)
	}

	// The runner restarts between creating the units and seeing them: a new
	// realizer process finds them on the cluster.
	fresh := configure(t, New(), cfg)
	inv := inventory(t, fresh, target)
	if len(inv) != 2 || inv["u1"].Phase != sdk.PhaseRunning || inv["u2"].Size != 3 {
		t.Fatalf("inventory after restart %+v", inv)
	}
	if other := inventory(t, fresh, sdk.Target{Chain: "lake", Name: "group-b"}); len(other) != 0 {
		t.Fatalf("another group sees %v", other)
	}

	// Drain: the job is cancelled without a savepoint and stays CANCELLING
	// while the optimizer finishes; the unit shows as draining.
	realize(t, fresh, target, "req-2", sdk.Decision{Drain: []string{"u1"}})
	inv = inventory(t, fresh, target)
	if inv["u1"].Phase != sdk.PhaseDraining || inv["u1"].DrainStartedAt.IsZero() {
		t.Fatalf("u1 after drain: %+v", inv["u1"])
	}
	if n := f.emu.Requests()["POST /jobs/:jobid/stop"]; n != 0 {
		t.Fatalf("a release used stop-with-savepoint")
	}
	_, err := fresh.Realize(testCtx(t), sdk.RealizeRequest{Target: target, RequestID: "req-3", Decision: sdk.Decision{Add: []sdk.UnitAdd{{UnitID: "u1", Size: 2}}}})
	wantErr(t, err, "still draining")

	// Restart keeps the unit id; its retry does nothing more.
	realize(t, fresh, target, "req-4", sdk.Decision{Restart: []string{"u2"}})
	s = realize(t, fresh, target, "req-4", sdk.Decision{Restart: []string{"u2"}})
	mustContain(t, s, "already restarted u2")
	inv = inventory(t, fresh, target)
	if started := opt.waitStarted(t, 3); inv["u2"].Phase != sdk.PhaseRunning || len(started) != 3 || started[2].UnitID != "u2" {
		t.Fatalf("after restart: %+v, optimizers %+v", inv, started)
	}

	close(opt.release)
	f.emu.Close()
	inv = inventory(t, fresh, target)
	if len(inv) != 0 {
		t.Fatalf("units after every job ended: %+v", inv)
	}
	_, err = fresh.Realize(testCtx(t), sdk.RealizeRequest{Target: target, RequestID: "req-5", Decision: sdk.Decision{Add: []sdk.UnitAdd{{UnitID: "u1", Size: 2}}}})
	wantErr(t, err, "was released")
}

func TestSessionUnitRefusals(t *testing.T) {
	_, _, cfg := sessionSetup(t, "2.1.0")
	cfg["balanced-tasks"] = true
	r := configure(t, New(), cfg)
	_, err := r.Realize(testCtx(t), sdk.RealizeRequest{Target: sdk.Target{Chain: "lake", Name: "group-a"}, RequestID: "r",
		Decision: sdk.Decision{Add: []sdk.UnitAdd{{UnitID: "u1", Size: 1}}}})
	wantErr(t, err, "balanced-tasks needs Flink 2.2 or newer")
	_, err = r.Realize(testCtx(t), sdk.RealizeRequest{Target: sdk.Target{Chain: "lake", Name: "group a"}, RequestID: "r",
		Decision: sdk.Decision{Add: []sdk.UnitAdd{{UnitID: "u1", Size: 1}}}})
	wantErr(t, err, "cannot be a label value")
}

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		cfg  string
		want string
	}{
		{`{"mode":"job"}`, "rest-url is required in job mode"},
		{`{"mode":"jobs"}`, `mode "jobs"`},
		{`{"mode":"job","rest-url":"ftp://x"}`, "want http(s)://host:port"},
		{`{"mode":"unit","unit-backend":"session","rest-url":"http://x:8081"}`, "ams-thrift-uri is required"},
		{`{"mode":"unit","unit-backend":"session","rest-url":"http://x:8081","ams-thrift-uri":"thrift://a:1","jar-path":"/nope.jar"}`, "not a readable file"},
		{`{"mode":"unit","ams-thrift-uri":"thrift://a:1","image":"i","flink-version":"1.20"}`, "want the operator's FlinkVersion"},
		{`{"mode":"unit","ams-thrift-uri":"thrift://a:1","image":"i","flink-configuration":{"taskmanager.numberOfTaskSlots":"3"}}`, "is set by ebb"},
		{`{"mode":"job","rest-url":"http://x:8081","typo":1}`, `unknown field "typo"`},
	}
	for _, c := range cases {
		err := New().Configure(context.Background(), []byte(c.cfg))
		wantErr(t, err, c.want)
	}
}
