package flink

// align picks the parallelism to run instead of target so that tasks spread
// evenly: over TaskManager slots (a multiple of slotsPerTM fills every
// TaskManager alike, which is what task-balanced scheduling can then keep
// even) and over key groups (a divisor of maxParallelism gives every subtask
// the same number). It follows the Flink autoscaler's key-group alignment
// (JobVertexScaler.scale, EVENLY_SPREAD, release-1.15.0): search upward from
// the target, for a scale-down no further than the current parallelism; if
// nothing fits, take the smallest parallelism that still gives each subtask
// no more key groups than the target does; and never turn a scale-up into a
// scale-down or the reverse (then the current parallelism stays).
//
// Preference in the upward search: both a slot multiple and a key-group
// divisor; then a slot multiple alone (the max parallelism does not allow
// both); then a key-group divisor alone. slotsPerTM <= 1 or maxParallelism
// <= 0 switch that part off.
func align(current, target, maxParallelism, slotsPerTM int) int {
	if maxParallelism > 0 {
		target = min(target, maxParallelism)
	}
	target = max(target, 1)
	if target == current || maxParallelism <= 0 && slotsPerTM <= 1 {
		return target
	}
	up := target > current
	bound := maxParallelism
	if bound <= 0 {
		bound = target * max(slotsPerTM, 1)
	}
	if !up {
		bound = min(current, bound)
	}
	divides := func(p int) bool { return maxParallelism > 0 && maxParallelism%p == 0 }
	fills := func(p int) bool { return slotsPerTM > 1 && p%slotsPerTM == 0 }
	for _, ok := range []func(int) bool{
		func(p int) bool { return (maxParallelism <= 0 || divides(p)) && (slotsPerTM <= 1 || fills(p)) },
		fills,
		divides,
	} {
		for p := target; p <= bound; p++ {
			if ok(p) {
				return guard(current, p, up)
			}
		}
	}
	if maxParallelism <= 0 {
		return target
	}
	// Downward: the smallest p whose subtasks hold no more key groups each
	// than the target's would.
	p := target
	for ; p > 0; p-- {
		if maxParallelism/p > maxParallelism/target {
			if maxParallelism%p != 0 {
				p++
			}
			break
		}
	}
	return guard(current, max(p, 1), up)
}

// guard keeps the direction of a rescale: an aligned value that would scale
// the other way (or not at all) keeps the current parallelism.
func guard(current, p int, up bool) int {
	if (up && p <= current) || (!up && p >= current) {
		return current
	}
	return p
}
