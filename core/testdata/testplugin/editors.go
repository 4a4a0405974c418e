package main

// Two evaluators that edit the decision of the evaluator before them, as a
// user chaining their own rules after evaluator-dra would write them with
// the SDK alone: test-capper caps the units added per hour, test-guard
// refuses scale-down during business hours.

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ebbscale/ebb/sdk"
)

// ---- capper: at most max-adds-per-hour units added in any hour ----

type capper struct{}

type capperPolicy struct {
	MaxAdds int64 `json:"max-adds-per-hour"`
}

// capperState remembers when each add it let through was really carried
// out: an add a later rule or the realizer refused does not use the cap.
type capperState struct {
	Added []time.Time `json:"added"`
}

func (c *capper) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: "test-capper", Version: "0.0.1", PolicySchema: sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "max-adds-per-hour", Type: sdk.TypeNumber, Default: 2, Description: "units added in any hour, at most"},
	}}}, nil
}

func (c *capper) Configure(context.Context, json.RawMessage) error { return nil }

func (c *capper) ValidatePolicy(_ context.Context, raw json.RawMessage) ([]sdk.PolicyProblem, error) {
	var p capperPolicy
	return nil, sdk.DecodeConfig(raw, &p)
}

func (c *capper) Evaluate(_ context.Context, req sdk.EvaluateRequest) (sdk.EvaluateResponse, error) {
	p := capperPolicy{MaxAdds: 2}
	if err := sdk.DecodeConfig(req.Policy, &p); err != nil {
		return sdk.EvaluateResponse{}, err
	}
	var st capperState
	if len(req.State) > 0 {
		if err := json.Unmarshal(req.State, &st); err != nil {
			return sdk.EvaluateResponse{}, fmt.Errorf("bad state: %w", err)
		}
	}
	if o := req.Outcome; o != nil {
		for _, a := range o.Actions {
			if a.Kind == sdk.ActionAdd && a.Result.Realized() {
				st.Added = append(st.Added, o.DecidedAt)
			}
		}
	}
	var recent []time.Time
	for _, at := range st.Added {
		if req.Now.Sub(at) < time.Hour {
			recent = append(recent, at)
		}
	}
	st.Added = recent
	var d sdk.Decision
	if req.Previous != nil {
		d = req.Previous.Copy()
	}
	if left := max(p.MaxAdds-int64(len(recent)), 0); int64(len(d.Add)) > left && !d.Vetoed {
		d.Reason = fmt.Sprintf("%s [capped: %d of %d adds, %d added in the last hour]", d.Reason, left, len(d.Add), len(recent))
		d.Add = d.Add[:left]
		d.Recompute(req.Inventory)
	}
	b, _ := json.Marshal(st)
	return sdk.EvaluateResponse{Decision: d, State: b}, nil
}

// ---- guard: no scale-down from start to end hour (UTC) ----

type guard struct{}

type guardPolicy struct {
	Start int `json:"business-start"`
	End   int `json:"business-end"`
}

func (g *guard) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{Name: "test-guard", Version: "0.0.1", PolicySchema: sdk.Schema{Attributes: []sdk.Attribute{
		{Name: "business-start", Type: sdk.TypeNumber, Default: 9, Description: "first business hour (UTC)"},
		{Name: "business-end", Type: sdk.TypeNumber, Default: 17, Description: "hour business ends (UTC)"},
	}}}, nil
}

func (g *guard) Configure(context.Context, json.RawMessage) error { return nil }

func (g *guard) ValidatePolicy(_ context.Context, raw json.RawMessage) ([]sdk.PolicyProblem, error) {
	var p guardPolicy
	return nil, sdk.DecodeConfig(raw, &p)
}

// Evaluate vetoes a decision that only scales down and takes the scale-down
// out of a mixed one, during business hours; it needs no state.
func (g *guard) Evaluate(_ context.Context, req sdk.EvaluateRequest) (sdk.EvaluateResponse, error) {
	p := guardPolicy{Start: 9, End: 17}
	if err := sdk.DecodeConfig(req.Policy, &p); err != nil {
		return sdk.EvaluateResponse{}, err
	}
	var d sdk.Decision
	if req.Previous != nil {
		d = req.Previous.Copy()
	}
	h := req.Now.UTC().Hour()
	if h < p.Start || h >= p.End || d.Vetoed {
		return sdk.EvaluateResponse{Decision: d}, nil
	}
	switch d.Direction() {
	case sdk.DirectionDown:
		d = sdk.Decision{Vetoed: true, Reason: fmt.Sprintf("no scale-down in business hours (%02d-%02d UTC): %s", p.Start, p.End, d.Summary())}
		d.Recompute(req.Inventory)
	case sdk.DirectionMixed:
		d.Reason = fmt.Sprintf("%s [no scale-down in business hours: dropped %s]", d.Reason, sdk.Decision{Drain: d.Drain, Remove: d.Remove}.Summary())
		d.Drain, d.Remove = nil, nil
		d.Recompute(req.Inventory)
	}
	return sdk.EvaluateResponse{Decision: d}, nil
}
