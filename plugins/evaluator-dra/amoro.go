package dra

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ebbscale/ebb/sdk"
)

// amoroPrefix starts the group properties of Amoro's merged dynamic
// allocation (OptimizerProperties.DYNAMIC_ALLOCATION_*, Amoro 0.9).
const amoroPrefix = "dynamic-allocation."

// amoroBootWindow is OptimizerScaleKeeper.BOOT_TIMEOUT_MS: fixed in Amoro.
const amoroBootWindow = 3 * time.Minute

// Imported is a policy translated from an Amoro group's properties.
type Imported struct {
	// Lines are `key = value` lines of the policy block, in schema order.
	Lines []string
	// Notes say, per Amoro key without a counterpart (and per ebb key
	// without an Amoro one), what happens to it.
	Notes []string
}

// FromAmoro translates an Amoro resource group's dynamic-allocation.*
// properties into this evaluator's policy: the same keys and values, so a
// group moved from AMS's allocation to ebb behaves the same. Values keep
// Amoro's syntax (ParseDuration reads it); an Amoro bare number of
// milliseconds is written with its unit. A malformed value is an error
// naming the property, as AMS's DynamicAllocationConfig.parse would raise.
func FromAmoro(props map[string]string) (Imported, error) {
	var im Imported
	get := func(key string) (string, bool) {
		v, ok := props[amoroPrefix+key]
		return strings.TrimSpace(v), ok
	}
	if v, ok := get("enabled"); !ok || !strings.EqualFold(v, "true") {
		im.Notes = append(im.Notes, "dynamic-allocation.enabled is not true: AMS does not scale this group by dynamic allocation, so the values below are its settings or Amoro's defaults, never used by AMS")
	} else {
		im.Notes = append(im.Notes, "dynamic-allocation.enabled = true: no counterpart; a chain is ebb's switch. Set it to false on the group before running ebb: ebb refuses a group AMS scales itself")
	}
	ints := map[string]int64{}
	for _, key := range []string{"min-parallelism", "max-parallelism", "executor-parallelism"} {
		v, ok := get(key)
		prop := amoroPrefix + key
		if !ok && key == "min-parallelism" {
			// DynamicAllocationConfig.resolveMinParallelism's fallback.
			if legacy, found := props["min-parallelism"]; found {
				v, ok, prop = strings.TrimSpace(legacy), true, "min-parallelism"
				im.Notes = append(im.Notes, "min-parallelism: taken from the deprecated flat min-parallelism, as AMS does; remove that key from the group too, or AMS's floor keeper keeps adding optimizers")
			}
		}
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil {
			return im, fmt.Errorf("property %s = %q is not a whole number", prop, v)
		}
		ints[key] = n
	}
	if _, ok := ints["max-parallelism"]; !ok {
		return im, fmt.Errorf("property %smax-parallelism is not set: AMS requires it when dynamic allocation is on, and ebb requires a ceiling", amoroPrefix)
	}
	durs := map[string]string{}
	for _, key := range []string{"executor-idle-timeout", "scheduler-backlog-timeout", "sustained-backlog-timeout", "scale-down-cooldown", "drain-timeout"} {
		v, ok := get(key)
		if !ok {
			continue
		}
		if isDigits(v) {
			// TimeUtils.parseDuration reads a bare number as milliseconds.
			v += "ms"
		}
		if _, err := sdk.ParseDuration(v); err != nil {
			return im, fmt.Errorf("property %s%s: %w", amoroPrefix, key, err)
		}
		durs[key] = v
	}
	// ebb's keys without an Amoro counterpart, set to behave as AMS does.
	sustained := durs["sustained-backlog-timeout"]
	if sustained == "" {
		sustained = fmtDur(DefaultPolicy().SustainedBacklogTimeout.D())
	}
	durs["scale-up-cooldown"] = sustained
	im.Notes = append(im.Notes, "scale-up-cooldown: no Amoro counterpart (AMS spaces scale-ups by sustained-backlog-timeout alone); set to the same value so it never binds later")
	durs["boot-timeout"] = fmtDur(amoroBootWindow)
	im.Notes = append(im.Notes, "boot-timeout: Amoro's boot window is fixed at 3 min; a unit still unregistered after it becomes an auto-restart candidate in ebb instead of being requested again")
	im.Notes = append(im.Notes, "auto-restart: no counterpart in AMS (PR #4180 was not merged); left disabled, as in AMS")

	for _, a := range PolicySchema().Attributes {
		if n, ok := ints[a.Name]; ok {
			im.Lines = append(im.Lines, fmt.Sprintf("%s = %d", a.Name, n))
		}
		if v, ok := durs[a.Name]; ok {
			im.Lines = append(im.Lines, fmt.Sprintf("%s = %q", a.Name, v))
		}
	}
	known := map[string]bool{"enabled": true}
	for k := range ints {
		known[k] = true
	}
	for _, k := range []string{"min-parallelism", "max-parallelism", "executor-parallelism", "executor-idle-timeout",
		"scheduler-backlog-timeout", "sustained-backlog-timeout", "scale-down-cooldown", "drain-timeout"} {
		known[k] = true
	}
	var unknown []string
	for k := range props {
		if rest, ok := strings.CutPrefix(k, amoroPrefix); ok && !known[rest] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		im.Notes = append(im.Notes, k+": not a key of Amoro 0.9's dynamic allocation: AMS ignores it, and so does this import")
	}
	return im, nil
}

// Block prints the policy block, notes as comments above it, indented by
// indent (the block sits inside a chain).
func (im Imported) Block(indent string) string {
	var b strings.Builder
	for _, n := range im.Notes {
		fmt.Fprintf(&b, "%s# %s\n", indent, n)
	}
	width := 0
	for _, l := range im.Lines {
		width = max(width, strings.Index(l, " = "))
	}
	fmt.Fprintf(&b, "%spolicy {\n", indent)
	for _, l := range im.Lines {
		k, v, _ := strings.Cut(l, " = ")
		fmt.Fprintf(&b, "%s  %-*s = %s\n", indent, width, k, v)
	}
	fmt.Fprintf(&b, "%s}\n", indent)
	return b.String()
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
