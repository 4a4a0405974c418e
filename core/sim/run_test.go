package sim_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ebbscale/ebb/core/sim"
	"github.com/ebbscale/ebb/core/sim/baseline"
)

func trace(t *testing.T, csv string) []sim.Row {
	t.Helper()
	rows, err := sim.ParseTrace("t.csv", strings.NewReader(csv))
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func static(t *testing.T, units, k int64) sim.Policy {
	t.Helper()
	p, err := baseline.ParseParams([]byte(`{"executor-parallelism":` + itoa(k) + `}`))
	if err != nil {
		t.Fatal(err)
	}
	return sim.Policy{Name: "static", Interval: 10 * time.Second,
		Stages: []sim.Stage{{Name: "static", Eval: baseline.Static("s", p, units)}}}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// Two tasks at t=0 (100 s on table a, 50 s on table b); one unit of two
// threads requested at t=0 boots in 10 s. By hand: both start at 10 s
// (waits 10, 10), finish at 110 and 60; the unit is provisioned from 0 to
// the last finish: 2 × 110 = 220 thread-seconds, of which 150 used.
func TestAccountingByHand(t *testing.T) {
	w := sim.World{Rows: trace(t, "submit,duration,table\n0,100,a\n0,50,b\n"), BootDelay: 10 * time.Second, DrainTimeout: time.Minute}
	r, err := sim.Run(context.Background(), w, static(t, 1, 2), nil)
	if err != nil {
		t.Fatal(err)
	}
	check := func(name string, got, want float64) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	check("provisioned", r.ProvisionedThreadSec, 220)
	check("used", r.UsedThreadSec, 150)
	check("p50 wait", r.Wait.P50, 10)
	check("max wait", r.Wait.Max, 10)
	check("makespan", r.MakespanSec, 110)
	check("actions", float64(r.ScaleActions), 1)
	check("unfinished", float64(r.Unfinished), 0)

	// One thread instead: b waits for a (planning order: a first), so
	// b starts at 110 and ends at 160.
	r, err = sim.Run(context.Background(), w, static(t, 1, 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	check("1 thread: provisioned", r.ProvisionedThreadSec, 160)
	check("1 thread: used", r.UsedThreadSec, 150)
	check("1 thread: max wait", r.Wait.Max, 110)
	check("1 thread: makespan", r.MakespanSec, 160)
}

// A table's quota above 1 caps the threads its tasks hold: three 60 s tasks
// of one table with quota 2 threads run two, then one, even on 4 threads.
func TestQuotaCapsATable(t *testing.T) {
	w := sim.World{Rows: trace(t, "submit,duration,table,quota\n0,60,a,2\n0,60,a,\n0,60,a,\n"), DrainTimeout: time.Minute}
	r, err := sim.Run(context.Background(), w, static(t, 1, 4), nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.MakespanSec != 120 || r.Wait.Max != 60 {
		t.Errorf("makespan %v, max wait %v; want 120 and 60 (two threads at a time)", r.MakespanSec, r.Wait.Max)
	}
}

// The oracle runs exactly the busy threads: provisioned equals used, and no
// policy provisions less.
func TestOracleIsTheLowerBound(t *testing.T) {
	w := sim.World{Rows: trace(t, "submit,duration,table\n0,100,a\n0,50,b\n30,20,c\n200,10,d\n"), BootDelay: 10 * time.Second, DrainTimeout: time.Minute}
	o, err := sim.Run(context.Background(), w, sim.Policy{Name: "oracle", Oracle: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if o.ProvisionedThreadSec != 180 || o.UsedThreadSec != 180 || o.Wait.Max != 0 {
		t.Fatalf("oracle: provisioned %v used %v max wait %v; want 180, 180, 0", o.ProvisionedThreadSec, o.UsedThreadSec, o.Wait.Max)
	}
	for _, units := range []int64{1, 2, 4} {
		r, err := sim.Run(context.Background(), w, static(t, units, 1), nil)
		if err != nil {
			t.Fatal(err)
		}
		if r.ProvisionedThreadSec < o.ProvisionedThreadSec {
			t.Errorf("%d units provisioned %v, below the oracle's %v", units, r.ProvisionedThreadSec, o.ProvisionedThreadSec)
		}
	}
}
