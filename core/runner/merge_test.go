package runner

import (
	"testing"

	"github.com/ebbscale/ebb/sdk"
)

// Merged snapshots: a part that knows its serviceable count adds it, a part
// that does not adds all its planned tasks; every part's conflict is kept.
func TestMergeServiceableAndConflict(t *testing.T) {
	into := sdk.Snapshot{Complete: true, Metrics: map[string]float64{}}
	mergeSnapshot(&into, "ams", sdk.Snapshot{Complete: true, Demand: sdk.Demand{PlannedTasks: 5, ServiceablePlannedTasks: 3, ServiceableKnown: true}, Conflict: "group g: dynamic-allocation.enabled=true"}, true)
	mergeSnapshot(&into, "other", sdk.Snapshot{Complete: true, Demand: sdk.Demand{PlannedTasks: 4}}, false)
	d := into.Demand
	if d.PlannedTasks != 9 || !d.ServiceableKnown || d.ServiceablePlannedTasks != 7 {
		t.Fatalf("demand %+v", d)
	}
	if into.Conflict != `collector "ams": group g: dynamic-allocation.enabled=true` {
		t.Fatalf("conflict %q", into.Conflict)
	}
	mergeSnapshot(&into, "third", sdk.Snapshot{Complete: true, Conflict: "hpa"}, false)
	if into.Conflict != `collector "ams": group g: dynamic-allocation.enabled=true; collector "third": hpa` {
		t.Fatalf("conflict %q", into.Conflict)
	}
	// Nobody knows: not known.
	none := sdk.Snapshot{Complete: true, Metrics: map[string]float64{}}
	mergeSnapshot(&none, "a", sdk.Snapshot{Complete: true, Demand: sdk.Demand{PlannedTasks: 2}}, true)
	if none.Demand.ServiceableKnown || none.Demand.ServiceablePlanned() != 2 {
		t.Fatalf("unknown: %+v", none.Demand)
	}
}
