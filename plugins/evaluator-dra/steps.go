package dra

import (
	"encoding/json"
	"slices"
	"strings"
)

// Step sizes: how much one scale-up or scale-down round may do. The
// defaults are Amoro's (and Spark's): a ramp of 1, 2, 4... units per
// backlog round, one idle unit per scale-down round. The others are ebb's
// deliberate departures (README: "Step sizes"), measured by `go run ./bench`:
// with a chain interval of tens of seconds a ramp takes minutes to reach a
// burst that Spark's one-second loop reaches in seconds, and one unit per
// cooldown keeps a whole burst's units long after it ended.
const (
	// BacklogStepRamp adds 1, 2, 4... units per round while the backlog lasts.
	BacklogStepRamp = "ramp"
	// BacklogStepShortfall adds, in one round, the units the backlog needs
	// (ceiling permitting): the backlog is the demand, already measured.
	BacklogStepShortfall = "shortfall"
	// ScaleDownStepOne drains the longest-idle unit, one per round.
	ScaleDownStepOne = "one"
	// ScaleDownStepIdle drains, in one round, every unit idle past
	// executor-idle-timeout that the floor and the remaining tasks do not
	// need.
	ScaleDownStepIdle = "idle"
	// UnitSizeWhole gives every unit executor-parallelism threads.
	UnitSizeWhole = "whole"
	// UnitSizeFit gives a step's last unit only the threads still short
	// (at least one), so a lone task does not pay for a whole unit's boot
	// and idle time, and the threads below the ceiling that make less
	// than a unit can still be used.
	UnitSizeFit = "fit"
)

var (
	backlogSteps   = []string{BacklogStepRamp, BacklogStepShortfall}
	scaleDownSteps = []string{ScaleDownStepOne, ScaleDownStepIdle}
	unitSizes      = []string{UnitSizeWhole, UnitSizeFit}
)

// decodeChoice accepts one of a fixed set of strings.
func decodeChoice(v json.RawMessage, dst *string, choices []string, attr string, add addProblem) {
	var s string
	if err := json.Unmarshal(v, &s); err != nil || !slices.Contains(choices, s) {
		add(attr, "must be one of \"%s\", got %s", strings.Join(choices, `", "`), strings.TrimSpace(string(v)))
		return
	}
	*dst = s
}
