// Package guard is an example third-party ebb evaluator: chained after
// another evaluator, it refuses scale-down during configured hours (a
// business day, a batch window) and lets everything else through.
//
// It shows the whole contract in one file: Info with typed schemas and
// defaults, Configure that rejects a bad config, ValidatePolicy for what a
// schema cannot express, and a pure Evaluate that adjusts Previous.
package guard

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ebbscale/ebb/sdk"
)

// Name is the plugin's name: the binary must be called this in plugin_dir.
const Name = "evaluator-guard"

// Config is the plugin block's config { }.
type Config struct {
	TimeZone string `json:"time-zone"`
}

// Policy is this evaluator's keys of a chain's policy { }.
type Policy struct {
	From string `json:"no-scale-down-from"`
	To   string `json:"no-scale-down-until"`
}

// Guard implements sdk.Evaluator.
type Guard struct {
	mu  sync.RWMutex
	loc *time.Location
}

// New returns an unconfigured guard.
func New() *Guard { return &Guard{loc: time.UTC} }

func (g *Guard) Info(context.Context) (sdk.Info, error) {
	return sdk.Info{
		Name:    Name,
		Kind:    sdk.KindEvaluator,
		Version: "0.1.0",
		ConfigSchema: sdk.Schema{Attributes: []sdk.Attribute{
			{Name: "time-zone", Type: sdk.TypeString, Default: "UTC", Description: "IANA time zone of the hours, e.g. Europe/Berlin."},
		}},
		PolicySchema: sdk.Schema{Attributes: []sdk.Attribute{
			{Name: "no-scale-down-from", Type: sdk.TypeString, Required: true, Description: "Start of the daily window without scale-down, HH:MM."},
			{Name: "no-scale-down-until", Type: sdk.TypeString, Required: true, Description: "End of the window, HH:MM; before the start means the window spans midnight."},
		}},
	}, nil
}

func (g *Guard) Configure(_ context.Context, raw json.RawMessage) error {
	var c Config
	if err := sdk.DecodeConfig(raw, &c); err != nil {
		return err
	}
	loc, err := time.LoadLocation(c.TimeZone)
	if err != nil {
		return fmt.Errorf("time-zone %q: %w", c.TimeZone, err)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.loc = loc
	return nil
}

func (g *Guard) ValidatePolicy(_ context.Context, raw json.RawMessage) ([]sdk.PolicyProblem, error) {
	var p Policy
	if err := sdk.DecodeConfig(raw, &p); err != nil {
		return nil, err
	}
	var problems []sdk.PolicyProblem
	for _, f := range []struct{ key, v string }{{"no-scale-down-from", p.From}, {"no-scale-down-until", p.To}} {
		if _, err := minuteOfDay(f.v); err != nil {
			problems = append(problems, sdk.PolicyProblem{Attribute: f.key, Message: err.Error()})
		}
	}
	if len(problems) == 0 && p.From == p.To {
		problems = append(problems, sdk.PolicyProblem{Attribute: "no-scale-down-until", Message: "the window is empty: it ends where it starts"})
	}
	return problems, nil
}

// Evaluate passes the previous evaluator's decision through, without its
// drains and removals while the window is open. It keeps no state.
func (g *Guard) Evaluate(_ context.Context, req sdk.EvaluateRequest) (sdk.EvaluateResponse, error) {
	var p Policy
	if err := sdk.DecodeConfig(req.Policy, &p); err != nil {
		return sdk.EvaluateResponse{}, err
	}
	if req.Previous == nil {
		return sdk.EvaluateResponse{Decision: sdk.Decision{Reason: "evaluator-guard: nothing to guard (it belongs after another evaluator)"}}, nil
	}
	d := *req.Previous
	g.mu.RLock()
	loc := g.loc
	g.mu.RUnlock()
	open, err := inWindow(req.Now.In(loc), p)
	if err != nil {
		return sdk.EvaluateResponse{}, err
	}
	if !open || (len(d.Drain) == 0 && len(d.Remove) == 0) {
		return sdk.EvaluateResponse{Decision: d}, nil
	}
	kept := slices.Clone(d.Drain)
	for _, r := range d.Remove {
		kept = append(kept, r.UnitID)
	}
	// The capacity the previous evaluator gave up stays.
	for _, u := range req.Inventory {
		if slices.Contains(kept, u.ID) {
			d.DesiredCapacity += u.Size
		}
	}
	d.Drain, d.Remove = nil, nil
	d.Reason = fmt.Sprintf("evaluator-guard: no scale-down from %s until %s (%s), kept %s; before: %s",
		p.From, p.To, loc, strings.Join(kept, ","), d.Reason)
	return sdk.EvaluateResponse{Decision: d}, nil
}

func inWindow(now time.Time, p Policy) (bool, error) {
	from, err := minuteOfDay(p.From)
	if err != nil {
		return false, err
	}
	to, err := minuteOfDay(p.To)
	if err != nil {
		return false, err
	}
	m := now.Hour()*60 + now.Minute()
	if from <= to {
		return m >= from && m < to, nil
	}
	return m >= from || m < to, nil // spans midnight
}

func minuteOfDay(s string) (int, error) {
	t, err := time.Parse("15:04", s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a time of day HH:MM (24-hour)", s)
	}
	return t.Hour()*60 + t.Minute(), nil
}
