package sdk

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

func dec(reason string, adds []UnitAdd, drains []string, removes []UnitRemove) Decision {
	return Decision{Add: adds, Drain: drains, Remove: removes, Reason: reason}
}

// Each action of an evaluator's decision gets the outcome of the first party
// that touched it: a later evaluator, the runner's rule or the realizer.
func TestRoundOutcome(t *testing.T) {
	dra := dec("dra", []UnitAdd{{"u-1", 4}, {"u-2", 4}, {"u-3", 4}}, []string{"u-0"}, []UnitRemove{{"u-9", false}})
	capped := dra.Copy()
	capped.Add = capped.Add[:2]
	capped.Add[1].Size = 2
	capped.Reason = "cap 2 adds per hour"
	r := Round{RequestID: "c-1", Steps: []Step{{"dra", dra}, {"cap", capped}}, Called: true}
	r.Final = capped.Copy()
	r.Final.Drain, r.Final.Remove = nil, nil
	r.Rule, r.RuleWhy = "staleness", "snapshot stale"

	got := r.Outcome(0)
	want := []ActionOutcome{
		{ActionAdd, "u-1", ResultDone, "", ""},
		{ActionAdd, "u-2", ResultChanged, "cap", "size 4 -> size 2: cap 2 adds per hour"},
		{ActionAdd, "u-3", ResultDropped, "cap", "cap 2 adds per hour"},
		{ActionDrain, "u-0", ResultSuppressed, "staleness", "snapshot stale"},
		{ActionRemove, "u-9", ResultSuppressed, "staleness", "snapshot stale"},
	}
	if !reflect.DeepEqual(got.Actions, want) {
		t.Errorf("outcome of dra:\n got %v\nwant %v", got.Actions, want)
	}
	if a, ok := got.Result(ActionAdd, "u-3"); !ok || a.Result.Realized() {
		t.Errorf("Result(add u-3) = %v %v", a, ok)
	}
	if got.RequestID != "c-1" || !reflect.DeepEqual(got.Final, r.Final) {
		t.Errorf("outcome header: %+v", got)
	}
	// The last evaluator's own u-2 was realized as it asked.
	last := r.Outcome(1)
	if a, _ := last.Result(ActionAdd, "u-2"); a.Result != ResultDone {
		t.Errorf("cap's add u-2: %v", a)
	}

	r.RealizerError = "quota exceeded"
	failed := r.Outcome(0)
	if a, _ := failed.Result(ActionAdd, "u-1"); a.Result != ResultFailed || a.By != "realizer" || a.Why != "quota exceeded" {
		t.Errorf("add u-1 after a failed realize: %v", a)
	}

	veto := Decision{Vetoed: true, Reason: "business hours"}
	v := Round{Steps: []Step{{"dra", dra}, {"guard", veto}}, Final: veto, Called: false}
	for _, a := range v.Outcome(0).Actions {
		if a.Result != ResultDropped || a.By != "guard" || a.Why != "vetoed: business hours" {
			t.Errorf("vetoed: %v", a)
		}
	}
	long := Round{Steps: []Step{{"dra", dra}, {"guard", Decision{Vetoed: true, Reason: strings.Repeat("é", 1000)}}}, Final: Decision{Vetoed: true}}
	if why := long.Outcome(0).Actions[0].Why; len(why) > MaxWhy+3 || !utf8.ValidString(why) {
		t.Errorf("a long reason is not clipped: %d bytes", len(why))
	}
	var none *Outcome
	if _, ok := none.Result(ActionAdd, "u-1"); ok {
		t.Error("a nil outcome has results")
	}
}

func TestOutcomeJSONReadsAsWords(t *testing.T) {
	o := Outcome{Actions: []ActionOutcome{{Kind: ActionDrain, UnitID: "u", Result: ResultSuppressed, By: "staleness"}}}
	b, err := json.Marshal(o)
	if err != nil || !strings.Contains(string(b), `"kind":"drain"`) || !strings.Contains(string(b), `"result":"suppressed"`) {
		t.Fatalf("%s %v", b, err)
	}
	var back Outcome
	if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, o) {
		t.Fatalf("round trip: %+v %v", back, err)
	}
	if err := json.Unmarshal([]byte(`{"actions":[{"result":"great"}]}`), &back); err == nil {
		t.Fatal("an unknown result decoded")
	}
}

func TestChanges(t *testing.T) {
	before := dec("", []UnitAdd{{"a", 1}, {"b", 1}}, nil, []UnitRemove{{"r", false}})
	after := dec("", []UnitAdd{{"a", 1}, {"c", 1}}, nil, []UnitRemove{{"r", true}})
	got := Changes(before, after)
	for _, part := range []string{"dropped add b", "changed remove r (force false -> force true)", "added add c"} {
		if !strings.Contains(got, part) {
			t.Errorf("Changes = %q, missing %q", got, part)
		}
	}
	if strings.Contains(got, "add a") {
		t.Errorf("Changes = %q reports an unchanged action", got)
	}
	if got := Changes(before, before.Copy()); got != "" {
		t.Errorf("no change reported as %q", got)
	}
	if got := Changes(before, Decision{Vetoed: true}); got != "vetoed" {
		t.Errorf("veto reported as %q", got)
	}
}

func TestCopyIsDeep(t *testing.T) {
	d := Decision{Add: []UnitAdd{{"a", 1}}, Drain: []string{"d"}, Remove: []UnitRemove{{"r", false}}, Restart: []string{"x"},
		ParallelismOverrides: map[string]int64{"v": 1}, ConfigOverrides: map[string]string{"k": "v"}, Metrics: map[string]float64{"m": 1}}
	keep := d.Copy()
	c := d.Copy()
	c.Add[0].Size, c.Drain[0], c.Remove[0].Force, c.Restart[0] = 9, "z", true, "z"
	c.ParallelismOverrides["v"], c.ConfigOverrides["k"], c.Metrics["m"] = 9, "z", 9
	if !reflect.DeepEqual(d, keep) {
		t.Errorf("editing a copy changed the original: %+v", d)
	}
}

func TestCapacityAndRecompute(t *testing.T) {
	inv := []Unit{{ID: "a", Size: 4, Phase: PhaseRunning}, {ID: "b", Size: 4, Phase: PhaseBooting}, {ID: "c", Size: 4, Phase: PhaseDraining}}
	d := Decision{DesiredCapacity: 99, Add: []UnitAdd{{"n", 2}, {"b", 4}}, Drain: []string{"a"}}
	d.Recompute(inv)
	// b stays (and is not counted twice), a leaves, c is draining, n comes.
	if d.DesiredCapacity != 6 {
		t.Errorf("Recompute: %d, want 6", d.DesiredCapacity)
	}
	d.Vetoed = true
	if got := Capacity(inv, d); got != 8 {
		t.Errorf("vetoed: %d, want the inventory's 8", got)
	}
}
