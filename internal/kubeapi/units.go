package kubeapi

import (
	"errors"
	"fmt"
	"strings"

	"github.com/ebbscale/ebb/sdk"
)

// UnitOps are what a unit-mode realizer does to one unit; each returns a
// short summary ("created u-1") or an error.
type UnitOps struct {
	Add   func(sdk.UnitAdd) (string, error)
	Drain func(unitID string) (string, error)
	// Remove releases a drained unit; optional: a realizer whose drain is
	// already the release (a graceful delete) leaves it nil and Drain runs.
	Remove      func(unitID string) (string, error)
	ForceRemove func(unitID string) (string, error)
	Restart     func(unitID string) (string, error)
	// Finally runs after the decision's actions (force removal of overdue
	// drains); optional.
	Finally func() (string, error)
}

// Realize carries out a decision's unit actions in order (adds, drains,
// removals, restarts), going on past a failed one so that one bad unit
// does not hold up the rest. A removal without Force is Remove, or Drain. The error
// leads with who (if not empty: a caller may add its own prefix) and names
// what was done anyway; a retry of the same
// decision is idempotent, so nothing is lost.
func (o UnitOps) Realize(who string, d sdk.Decision) (string, error) {
	var done []string
	var errs []error
	note := func(s string, err error) {
		if err != nil {
			errs = append(errs, err)
		} else if s != "" {
			done = append(done, s)
		}
	}
	for _, a := range d.Add {
		note(o.Add(a))
	}
	for _, id := range d.Drain {
		note(o.Drain(id))
	}
	for _, rm := range d.Remove {
		switch {
		case rm.Force:
			note(o.ForceRemove(rm.UnitID))
		case o.Remove != nil:
			note(o.Remove(rm.UnitID))
		default:
			note(o.Drain(rm.UnitID))
		}
	}
	for _, id := range d.Restart {
		note(o.Restart(id))
	}
	if o.Finally != nil {
		note(o.Finally())
	}
	summary := strings.Join(done, "; ")
	if summary == "" {
		summary = "no action"
	}
	if len(errs) > 0 {
		if who == "" {
			return summary, fmt.Errorf("(done: %s): %w", summary, errors.Join(errs...))
		}
		return summary, fmt.Errorf("%s (done: %s): %w", who, summary, errors.Join(errs...))
	}
	return summary, nil
}
