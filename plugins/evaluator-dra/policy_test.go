package dra

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ebbscale/ebb/sdk"
)

func TestCheckPolicy(t *testing.T) {
	cases := []struct {
		name   string
		policy string
		// attrs are the attributes blamed, in order; nil means valid.
		attrs []string
		msg   string
		check func(t *testing.T, p Policy)
	}{
		{name: "only the ceiling means defaults", policy: `{"max-parallelism":8}`, check: func(t *testing.T, p Policy) {
			want := DefaultPolicy()
			want.MaxParallelism = 8
			if !reflect.DeepEqual(p, want) {
				t.Errorf("got %+v", p)
			}
		}},
		{name: "full", policy: `{"min-parallelism":4,"max-parallelism":64,"executor-parallelism":4,"executor-idle-timeout":"2m",
			"scheduler-backlog-timeout":"10s","sustained-backlog-timeout":"5s","scale-up-cooldown":"1s","scale-down-cooldown":"30s",
			"drain-timeout":"1h","boot-timeout":"90s","auto-restart":{"enabled":true,"max-retries":2,"grace-period":"1m"},
			"backlog-step":"shortfall","scale-down-step":"idle","unit-size":"fit","headroom":2}`,
			check: func(t *testing.T, p Policy) {
				want := Policy{MinParallelism: 4, MaxParallelism: 64, ExecutorParallelism: 4,
					ExecutorIdleTimeout: sdk.Duration(2 * time.Minute), SchedulerBacklogTimeout: sdk.Duration(10 * time.Second),
					SustainedBacklogTimeout: sdk.Duration(5 * time.Second), ScaleUpCooldown: sdk.Duration(time.Second), ScaleDownCooldown: sdk.Duration(30 * time.Second),
					DrainTimeout: sdk.Duration(time.Hour), BootTimeout: sdk.Duration(90 * time.Second),
					AutoRestart: AutoRestart{Enabled: true, MaxRetries: 2, GracePeriod: sdk.Duration(time.Minute)},
					BacklogStep: BacklogStepShortfall, ScaleDownStep: ScaleDownStepIdle, UnitSize: UnitSizeFit, Headroom: 2}
				if !reflect.DeepEqual(p, want) {
					t.Errorf("got %+v\nwant %+v", p, want)
				}
			}},
		{name: "auto-restart as a one-element block list", policy: `{"max-parallelism":8,"auto-restart":[{"enabled":true}]}`, check: func(t *testing.T, p Policy) {
			if !p.AutoRestart.Enabled || p.AutoRestart.MaxRetries != 5 {
				t.Errorf("got %+v", p.AutoRestart)
			}
		}},
		{name: "whole float accepted", policy: `{"executor-parallelism":4.0,"max-parallelism":8}`, check: func(t *testing.T, p Policy) {
			if p.ExecutorParallelism != 4 {
				t.Errorf("got %d", p.ExecutorParallelism)
			}
		}},
		{name: "no 1024 hard limit", policy: `{"max-parallelism":4096}`, check: func(t *testing.T, p Policy) {
			if p.MaxParallelism != 4096 {
				t.Errorf("got %d", p.MaxParallelism)
			}
		}},
		{name: "min above max", policy: `{"min-parallelism":10,"max-parallelism":8}`, attrs: []string{"min-parallelism"}, msg: "min-parallelism 10 is above max-parallelism 8"},
		{name: "zero threads per unit", policy: `{"executor-parallelism":0,"max-parallelism":8}`, attrs: []string{"executor-parallelism"}, msg: "at least 1 thread"},
		{name: "unit larger than ceiling", policy: `{"executor-parallelism":8,"max-parallelism":4}`, attrs: []string{"executor-parallelism"}, msg: "above max-parallelism 4"},
		{name: "negative duration", policy: `{"drain-timeout":"-5m"}`, attrs: []string{"drain-timeout"}, msg: "must not be negative"},
		{name: "duration without unit", policy: `{"scale-up-cooldown":"30"}`, attrs: []string{"scale-up-cooldown"}, msg: "invalid duration"},
		{name: "duration as number", policy: `{"scale-up-cooldown":30}`, attrs: []string{"scale-up-cooldown"}, msg: "string"},
		{name: "negative counts", policy: `{"min-parallelism":-1,"max-parallelism":-2}`, attrs: []string{"max-parallelism", "min-parallelism"}, msg: "negative"},
		{name: "fractional threads", policy: `{"executor-parallelism":2.5}`, attrs: []string{"executor-parallelism"}, msg: "whole number"},
		{name: "negative headroom", policy: `{"max-parallelism":8,"headroom":-1}`, attrs: []string{"headroom"}, msg: "must not be negative, got -1"},
		{name: "unknown step", policy: `{"max-parallelism":8,"backlog-step":"double"}`, attrs: []string{"backlog-step"}, msg: `must be one of "ramp", "shortfall", got "double"`},
		{name: "unknown key", policy: `{"min-parallelsim":2}`, attrs: []string{"min-parallelsim"}, msg: "unknown policy attribute"},
		{name: "unknown auto-restart key", policy: `{"auto-restart":{"retries":2}}`, attrs: []string{"auto-restart.retries"}, msg: "unknown attribute"},
		{name: "negative retries", policy: `{"max-parallelism":8,"auto-restart":{"max-retries":-1}}`, attrs: []string{"auto-restart.max-retries"}, msg: "negative"},
		{name: "zero grace", policy: `{"max-parallelism":8,"auto-restart":{"grace-period":"0s"}}`, attrs: []string{"auto-restart.grace-period"}, msg: "positive"},
		{name: "zero boot timeout", policy: `{"max-parallelism":8,"boot-timeout":"0s"}`, attrs: []string{"boot-timeout"}, msg: "positive"},
		{name: "not an object", policy: `[1,2]`, attrs: []string{""}, msg: "not a JSON object"},
		{name: "bool as string", policy: `{"auto-restart":{"enabled":"yes"}}`, attrs: []string{"auto-restart.enabled"}, msg: "true or false"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, problems := CheckPolicy(json.RawMessage(c.policy))
			var attrs []string
			for _, pr := range problems {
				attrs = append(attrs, pr.Attribute)
			}
			if !reflect.DeepEqual(attrs, c.attrs) {
				t.Fatalf("problems %+v, want attributes %q", problems, c.attrs)
			}
			err := ValidatePolicy(json.RawMessage(c.policy))
			if c.attrs == nil {
				if err != nil {
					t.Fatalf("ValidatePolicy: %v", err)
				}
				c.check(t, p)
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("ValidatePolicy error %v, want it to mention %q", err, c.msg)
			}
			// Evaluate refuses the same policy with the same explanation.
			_, err = Evaluate(Config{}, sdk.EvaluateRequest{Policy: json.RawMessage(c.policy), Now: t0, Snapshot: sdk.Snapshot{Complete: true}})
			if err == nil || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("Evaluate error %v, want it to mention %q", err, c.msg)
			}
		})
	}
}

// The published schema's defaults, decoded as the runner would send them,
// must give DefaultPolicy: the schema and the Go struct cannot drift apart.
func TestSchemaDefaultsDecodeToDefaultPolicy(t *testing.T) {
	info, err := New().Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// max-parallelism is required and has no default; the rest do.
	obj := map[string]any{"max-parallelism": 8}
	for _, a := range info.PolicySchema.Attributes {
		if a.Required {
			continue
		}
		obj[a.Name] = a.Default
	}
	for _, b := range info.PolicySchema.Blocks {
		inner := map[string]any{}
		for _, a := range b.Schema.Attributes {
			inner[a.Name] = a.Default
		}
		obj[b.Name] = inner
	}
	raw, err := json.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParsePolicy(raw)
	if err != nil {
		t.Fatalf("schema defaults %s: %v", raw, err)
	}
	want := DefaultPolicy()
	want.MaxParallelism = 8
	if !reflect.DeepEqual(p, want) {
		t.Errorf("schema defaults give %+v, want %+v", p, want)
	}
	// Every field of Policy is published.
	if got, want := len(info.PolicySchema.Attributes)+len(info.PolicySchema.Blocks), reflect.TypeOf(Policy{}).NumField(); got != want {
		t.Errorf("schema has %d entries, Policy has %d fields", got, want)
	}
}

func TestConfigure(t *testing.T) {
	cases := []struct {
		config, wantErr, wantID string
	}{
		{config: `{}`, wantID: "group-a-1"},
		{config: `{"unit-prefix":"Opt_Pool.West"}`, wantID: "opt-pool-west-1"},
		{config: `{"unit-prefix":"__"}`, wantErr: "no letters or digits"},
		{config: `{"unit-prefx":"x"}`, wantErr: "unknown field"},
	}
	for _, c := range cases {
		t.Run(c.config, func(t *testing.T) {
			e := New()
			err := e.Configure(context.Background(), json.RawMessage(c.config))
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			resp, err := e.Evaluate(context.Background(), sdk.EvaluateRequest{
				Target: sdk.Target{Chain: "c", Name: "Group_A"}, Policy: json.RawMessage(`{"min-parallelism":1,"max-parallelism":8}`),
				Now: t0, Snapshot: sdk.Snapshot{Complete: true},
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := addIDs(resp.Decision); len(got) != 1 || got[0] != c.wantID {
				t.Errorf("added %v, want [%s]", got, c.wantID)
			}
		})
	}
}

func TestFmtDur(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "0s", 65 * time.Second: "65s", time.Minute: "1m", 90 * time.Minute: "90m",
		2 * time.Hour: "2h", 1500 * time.Millisecond: "1.5s", -30 * time.Second: "-30s"} {
		if got := fmtDur(d); got != want {
			t.Errorf("fmtDur(%v) = %q, want %q", d, got, want)
		}
	}
}
