package sim

import (
	"slices"
	"time"
)

// span is when one task held a thread.
type span struct{ start, end time.Time }

// BootBound is the least provisioned thread-seconds with which any policy
// can start every task when the given run started it (the oracle's run:
// at the earliest the queue model allows) if capacity comes in units of
// size threads that each boot for boot before they take work. The oracle
// itself pays neither boot nor whole units, so this is how far from it the
// goal can be met at all by an autoscaler of real units.
//
// Level by level: with B(t) the busy threads, ceil(B(t)/size) units must be
// ready at t. The k-th level is the time at least k units are needed; the
// levels nest, so one unit per level is a cheapest cover (an exchange
// argument), and the unit of level k costs the level's time on, a boot
// before its first period, and between two periods the gap or a new boot,
// whichever is shorter.
func BootBound(spans []span, size int64, boot time.Duration) float64 {
	if size < 1 || len(spans) == 0 {
		return 0
	}
	type event struct {
		at    time.Time
		delta int64
	}
	events := make([]event, 0, 2*len(spans))
	for _, s := range spans {
		if s.end.After(s.start) {
			events = append(events, event{s.start, 1}, event{s.end, -1})
		}
	}
	// At the same instant ends come first: a thread freed is a thread
	// reused, never a level that drops and rises again.
	slices.SortFunc(events, func(a, b event) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return int(a.delta - b.delta)
	})
	var (
		busy, units int64
		on          []time.Time // when level k+1 last came on
		off         []time.Time // when it last went off (zero: never on)
		total       time.Duration
	)
	for _, e := range events {
		busy += e.delta
		need := (busy + size - 1) / size
		for ; units < need; units++ { // levels units+1 .. need come on
			if int(units) == len(on) {
				on, off = append(on, time.Time{}), append(off, time.Time{})
			}
			if off[units].IsZero() {
				total += boot
			} else {
				total += min(e.at.Sub(off[units]), boot)
			}
			on[units] = e.at
		}
		for ; units > need; units-- { // levels need+1 .. units go off
			total += e.at.Sub(on[units-1])
			off[units-1] = e.at
		}
	}
	return total.Seconds() * float64(size)
}
