package sdk

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// Every field must survive the trip through the protocol messages; a field
// added to a Go type but forgotten in wire.go fails here.
func TestWireRoundTrip(t *testing.T) {
	at := time.Unix(1700000000, 123).UTC()
	snap := Snapshot{
		ObservedAt: at, Complete: false, IncompleteReasons: []string{"metrics down"},
		Demand: Demand{PlannedTasks: 1, ScheduledTasks: 2, RunningTasks: 3, PendingTables: 4, PlanningTables: 5,
			ServiceablePlannedTasks: 6, ServiceableKnown: true},
		Workers: []Worker{{ID: "w", UnitID: "u", Threads: 4, BusyThreads: 2, BusyKnown: true, LastBusyAt: at, RegisteredAt: at, State: WorkerStale}},
		Metrics: map[string]float64{"x": 1.5}, Conflict: "group g: dynamic-allocation.enabled=true",
	}
	if got := snapshotFromPB(snapshotToPB(snap)); !reflect.DeepEqual(got, snap) {
		t.Errorf("snapshot:\n got %+v\nwant %+v", got, snap)
	}
	units := []Unit{{ID: "u", Size: 3, Phase: PhaseDraining, CreatedAt: at, DrainStartedAt: at, Labels: map[string]string{"a": "b"}}}
	if got := unitsFromPB(unitsToPB(units)); !reflect.DeepEqual(got, units) {
		t.Errorf("units:\n got %+v\nwant %+v", got, units)
	}
	d := &Decision{DesiredCapacity: 8, Add: []UnitAdd{{UnitID: "u-2", Size: 2}}, Drain: []string{"u-1"},
		Remove: []UnitRemove{{UnitID: "u-0", Force: true}}, Restart: []string{"u-3"},
		ParallelismOverrides: map[string]int64{"v1": 4}, ConfigOverrides: map[string]string{"k": "v"}, Reason: "why", Vetoed: true,
		Metrics: map[string]float64{"backlog_seconds": 90, "ramp_step": 4}}
	if got := decisionFromPB(decisionToPB(d)); !reflect.DeepEqual(got, d) {
		t.Errorf("decision:\n got %+v\nwant %+v", got, d)
	}
	o := &Outcome{RequestID: "c-7", DecidedAt: at, Final: *d, RealizerError: "boom",
		Actions: []ActionOutcome{{Kind: ActionRemove, UnitID: "u-0", Result: ResultSuppressed, By: "staleness", Why: "snapshot stale"}}}
	if got := outcomeFromPB(outcomeToPB(o)); !reflect.DeepEqual(got, o) {
		t.Errorf("outcome:\n got %+v\nwant %+v", got, o)
	}
	if outcomeFromPB(outcomeToPB(nil)) != nil {
		t.Errorf("a nil outcome (first round) came back set")
	}
	info := Info{Name: "n", Kind: KindEvaluator, Version: "1", ProtocolVersion: 1,
		ConfigSchema: Schema{Attributes: []Attribute{{Name: "a", Type: TypeDuration, Default: "5m", Description: "d", Sensitive: true}}},
		PolicySchema: Schema{Blocks: []Block{{Name: "b", Description: "blk", Schema: Schema{Attributes: []Attribute{{Name: "c", Type: TypeBool, Required: true}}}}}}}
	pbInfo, err := infoToPB(info)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := infoFromPB(pbInfo); err != nil || !reflect.DeepEqual(got, info) {
		t.Errorf("info:\n got %+v\nwant %+v (%v)", got, info, err)
	}
}

func TestDecisionSummaryAndDirection(t *testing.T) {
	for _, tc := range []struct {
		d    Decision
		dir  Direction
		text string
	}{
		{Decision{}, DirectionNone, "no action"},
		{Decision{Add: []UnitAdd{{UnitID: "a", Size: 1}}}, DirectionUp, "+1 unit (a)"},
		{Decision{Drain: []string{"a"}, Remove: []UnitRemove{{UnitID: "b", Force: true}}}, DirectionDown, "drain a; force-remove b"},
		{Decision{Add: []UnitAdd{{UnitID: "a"}}, Drain: []string{"b"}}, DirectionMixed, "+1 unit (a); drain b"},
		{Decision{Restart: []string{"a"}}, DirectionNone, "restart a"},
		{Decision{Add: []UnitAdd{{UnitID: "a"}}, Vetoed: true}, DirectionNone, "vetoed"},
	} {
		if tc.d.Direction() != tc.dir || tc.d.Summary() != tc.text {
			t.Errorf("%+v: %v %q, want %v %q", tc.d, tc.d.Direction(), tc.d.Summary(), tc.dir, tc.text)
		}
	}
}

func TestParseDurationRejectsBadInput(t *testing.T) {
	for _, s := range []string{"", "5", "30", "-1s", "-1min", "1 fortnight", "5m30", "min", "99999999999999999999s", "9223372036854775807 days"} {
		if _, err := ParseDuration(s); err == nil {
			t.Errorf("ParseDuration(%q) accepted", s)
		}
	}
	var cfg struct {
		D Duration `json:"d"`
	}
	if err := DecodeConfig([]byte(`{"d":"90s"}`), &cfg); err != nil || cfg.D.D() != 90*time.Second {
		t.Fatalf("decode: %v %v", cfg.D, err)
	}
	if err := DecodeConfig([]byte(`{"d":"90s","extra":1}`), &cfg); err == nil {
		t.Fatal("unknown key accepted")
	}
}

// Amoro's duration syntax (ConfigHelpers.TimeUtils.parseDuration) is read
// beside Go's, so a group's dynamic-allocation properties paste unchanged.
func TestParseDurationAmoroSyntax(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"1min": time.Minute, "15 min": 15 * time.Minute, "30s": 30 * time.Second, "1 minute": time.Minute,
		"5MIN": 5 * time.Minute, " 2 hours ": 2 * time.Hour, "1d": 24 * time.Hour, "500 millis": 500 * time.Millisecond,
		"10 secs": 10 * time.Second, "3µs": 3 * time.Microsecond, "0": 0,
		// Go's own syntax keeps its meaning: "5m" is five minutes (Amoro rejects it).
		"5m": 5 * time.Minute, "1h30m": 90 * time.Minute,
	} {
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseDuration("30"); err == nil || !strings.Contains(err.Error(), "milliseconds") {
		t.Errorf("a bare number: %v, want an error that says Amoro reads it as milliseconds", err)
	}
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"30s", "1min", "15 min", "1 minute", "5m", "", "30", "-1min", "9223372036854775807ns", "1.5h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err == nil && d < 0 {
			t.Fatalf("ParseDuration(%q) = %v: negative", s, d)
		}
	})
}
