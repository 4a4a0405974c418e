package sim_test

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ebbscale/ebb/core/sim"
	dra "github.com/ebbscale/ebb/plugins/evaluator-dra"
	"github.com/ebbscale/ebb/sdk"
)

// amoroPolicy is an Amoro-default policy with a floor (config.hcl's chain
// before issue 15), as the config loader hands it to evaluator-dra.
const amoroPolicy = `{"min-parallelism":4,"max-parallelism":32,"executor-parallelism":4,
"executor-idle-timeout":"5m","scheduler-backlog-timeout":"1m","sustained-backlog-timeout":"30s",
"scale-up-cooldown":"30s","scale-down-cooldown":"1m","drain-timeout":"15m","boot-timeout":"3m",
"auto-restart":{"enabled":true,"max-retries":5,"grace-period":"5m"}}`

func draChain(t testing.TB) sim.Policy {
	t.Helper()
	ev := dra.New()
	if err := ev.Configure(context.Background(), json.RawMessage(`{}`)); err != nil {
		t.Fatal(err)
	}
	return sim.Policy{Name: "dra", Interval: 30 * time.Second, Stages: []sim.Stage{{Name: "dra", Eval: ev, Policy: json.RawMessage(amoroPolicy)}}}
}

func compare(t testing.TB, rows []sim.Row) []*sim.Result {
	t.Helper()
	w := sim.World{Rows: rows, Target: sdk.Target{Chain: "c", Name: "g"}, BootDelay: time.Minute, DrainTimeout: 15 * time.Minute, Seed: 7}
	res, err := sim.Compare(context.Background(), w, draChain(t), json.RawMessage(amoroPolicy), sim.PolicyNames, nil)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestCompareOracleLowerBoundAndDeterminism(t *testing.T) {
	rows, err := sim.Generate("nightly", 3, 6*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	a := compare(t, rows)
	if len(a) != len(sim.PolicyNames) {
		t.Fatalf("%d results, want %d", len(a), len(sim.PolicyNames))
	}
	var oracle *sim.Result
	for _, r := range a {
		if r.Policy == "oracle" {
			oracle = r
		}
	}
	if oracle.CappedWait == nil || oracle.CappedWait.P99 < oracle.Wait.P99 {
		t.Errorf("peak %d threads above max-parallelism 32: want the capped oracle's waits at or above the oracle's %v, got %+v", oracle.PeakThreads, oracle.Wait, oracle.CappedWait)
	} else {
		t.Logf("oracle under max-parallelism: %+v", *oracle.CappedWait)
	}
	for _, r := range a {
		if oracle.CappedWait != nil && r.Policy != "oracle" && r.Wait.P99 < oracle.CappedWait.P99 {
			t.Errorf("%s's p99 %v below the least any policy under the ceiling can give, %v", r.Policy, r.Wait.P99, oracle.CappedWait.P99)
		}
		t.Logf("%-12s prov %9.0f used %9.0f x%.2f p99 %6.0fs actions %d unfinished %d", r.Policy, r.ProvisionedThreadSec, r.UsedThreadSec, r.CostVsOracle, r.Wait.P99, r.ScaleActions, r.Unfinished)
		if r.ProvisionedThreadSec < oracle.ProvisionedThreadSec-1e-6 {
			t.Errorf("%s provisioned %v below the oracle's %v", r.Policy, r.ProvisionedThreadSec, oracle.ProvisionedThreadSec)
		}
		if r.Unfinished != 0 {
			t.Errorf("%s left %d tasks unfinished", r.Policy, r.Unfinished)
		}
	}
	var table strings.Builder
	sim.WriteTable(&table, a)
	for _, want := range []string{"least any policy of booting units", "the oracle held to max-parallelism waits"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("the table does not say %q:\n%s", want, table.String())
		}
	}
	b := compare(t, rows)
	for i := range a {
		if !reflect.DeepEqual(a[i], b[i]) {
			t.Errorf("%s differs between two runs of the same seed", a[i].Policy)
		}
	}
}
