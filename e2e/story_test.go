package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ebbscale/ebb/core/state"
	"github.com/ebbscale/ebb/sdk"
)

// story is what the decision log of the scaling scenario must show: idle at
// the floor, a burst met by an exponential ramp up to the ceiling, then only
// scale-down until the floor is left.
type story struct {
	floor, ceiling, unitThreads int64
	// clean: no faults were injected, so every decision was realized at
	// the first attempt, the ramp is exactly the policy's (1, 2, 4... units
	// until the ceiling), and nothing was restarted, released or forced.
	clean bool
}

// check returns every way the log (oldest first) departs from the story;
// final are the units left at the end.
func (s story) check(log []decoded, final []string) []string {
	var problems []string
	bad := func(r decoded, format string, args ...any) {
		problems = append(problems, fmt.Sprintf("#%d (%s, %q): %s", r.Seq, r.Summary, r.Reason, fmt.Sprintf(format, args...)))
	}
	const (
		atStart = iota
		atFloor
		inBurst
		scalingDown
	)
	phase := atStart
	added := map[string]bool{}
	var order []string
	var ramp []int64
	cappedAt := -1 // the ramp step the evaluator cut short (ceiling or backlog)
	backlogCapped := false
	addedThreads := int64(0)
	left := map[string]int{} // drains and removals, by unit
	for _, r := range log {
		if !r.D.HasActions() {
			continue
		}
		if s.clean {
			if r.Status != "realized" {
				bad(r, "status %s, want realized (error %q)", r.Status, r.Error)
			}
			if r.Degraded {
				bad(r, "degraded snapshot in a run without faults")
			}
			if len(r.D.Restart) > 0 {
				bad(r, "restart of %v in a run without faults", r.D.Restart)
			}
		}
		var fresh []sdk.UnitAdd
		for _, a := range r.D.Add {
			if !added[a.UnitID] {
				added[a.UnitID] = true
				order = append(order, a.UnitID)
				fresh = append(fresh, a)
			}
		}
		if len(r.D.Add) > len(fresh) && s.clean {
			bad(r, "units requested again in a run without faults")
		}
		down := len(r.D.Drain)+len(r.D.Remove) > 0
		if len(fresh) > 0 && down {
			bad(r, "adds new units and scales down in one decision")
		}
		for _, id := range r.D.Drain {
			left[id]++
		}
		for _, rm := range r.D.Remove {
			if rm.Force && s.clean {
				bad(r, "forced removal of %s in a run without faults", rm.UnitID)
			}
			// A Remove after a Drain finishes the same departure.
			if !slices.Contains(r.D.Drain, rm.UnitID) && left[rm.UnitID] == 0 {
				if s.clean {
					bad(r, "%s removed without a drain", rm.UnitID)
				}
				left[rm.UnitID]++
			}
		}
		switch {
		case phase == atStart:
			threads := sumThreads(fresh)
			if len(fresh) == 0 || down || threads != s.floor || !strings.Contains(r.Reason, "below the floor") {
				bad(r, "the first decision must add the floor (%d threads), got %d new threads", s.floor, threads)
			}
			phase = atFloor
		case len(fresh) > 0:
			if phase == scalingDown {
				bad(r, "scale-up after scale-down began")
			}
			if !strings.Contains(r.Reason, "backlog") {
				bad(r, "a scale-up that is not for the backlog")
			}
			phase = inBurst
			if cappedAt < 0 && strings.Contains(r.Reason, "capped by") {
				cappedAt = len(ramp)
				backlogCapped = strings.Contains(r.Reason, "capped by the backlog")
			}
			ramp = append(ramp, int64(len(fresh)))
			addedThreads += sumThreads(fresh)
		case down:
			if phase != inBurst && phase != scalingDown {
				bad(r, "scale-down before the burst: the floor must hold")
			}
			phase = scalingDown
			for _, id := range r.D.Drain {
				if left[id] > 1 {
					bad(r, "%s drained twice", id)
				}
			}
		}
	}
	if phase != scalingDown {
		problems = append(problems, fmt.Sprintf("the log never reached scale-down (ramp %v)", ramp))
	}
	// Only a run with faults may be slow enough for the tasks to run out
	// before the ramp reaches the ceiling.
	if peak := s.floor + addedThreads; peak > s.ceiling || (peak < s.ceiling && (s.clean || !backlogCapped)) {
		problems = append(problems, fmt.Sprintf("capacity peaked at %d threads (floor %d + ramp %v), want max-parallelism %d", s.floor+addedThreads, s.floor, ramp, s.ceiling))
	}
	if want := s.expectedRamp(); s.clean && !slices.Equal(ramp, want) {
		problems = append(problems, fmt.Sprintf("ramp %v units per round, want %v", ramp, want))
	}
	// The ramp never shrinks until a step is cut short; the last step may
	// be cut by the ceiling without saying so (it fits exactly).
	last := len(ramp) - 1
	if cappedAt >= 0 {
		last = cappedAt
	}
	for i := 1; i < last; i++ {
		if ramp[i] < ramp[i-1] {
			problems = append(problems, fmt.Sprintf("ramp %v decreases before it is capped", ramp))
			break
		}
	}
	for _, id := range order {
		switch {
		case slices.Contains(final, id) && left[id] > 0:
			problems = append(problems, fmt.Sprintf("%s was scaled down but is still there", id))
		case !slices.Contains(final, id) && left[id] == 0:
			problems = append(problems, fmt.Sprintf("%s is gone without a drain or removal in the log", id))
		}
	}
	if got, want := int64(len(final)), s.floor/s.unitThreads; got != want {
		problems = append(problems, fmt.Sprintf("%d units left (%v), want the floor's %d", got, final, want))
	}
	return problems
}

// expectedRamp is the evaluator's ramp from the floor to the ceiling with
// an unbounded backlog: 1, 2, 4... units per round, the last one cut to fit.
func (s story) expectedRamp() []int64 {
	var out []int64
	room := (s.ceiling - s.floor) / s.unitThreads
	for n := int64(1); room > 0; n *= 2 {
		step := min(n, room)
		out = append(out, step)
		room -= step
	}
	return out
}

func sumThreads(adds []sdk.UnitAdd) int64 {
	var n int64
	for _, a := range adds {
		n += a.Size
	}
	return n
}

// TestStoryCheck shows that the scenario assertions catch what they claim
// to: each bad log is refused for the right reason.
func TestStoryCheck(t *testing.T) {
	s := story{floor: 2, ceiling: 16, unitThreads: 2, clean: true}
	add := func(ids ...string) sdk.Decision {
		var d sdk.Decision
		for _, id := range ids {
			d.Add = append(d.Add, sdk.UnitAdd{UnitID: id, Size: 2})
		}
		return d
	}
	drain := func(id string) sdk.Decision { return sdk.Decision{Drain: []string{id}} }
	remove := func(id string, force bool) sdk.Decision {
		return sdk.Decision{Remove: []sdk.UnitRemove{{UnitID: id, Force: force}}}
	}
	type step struct {
		d      sdk.Decision
		reason string
		status string
	}
	floor := step{add("u1"), "below the floor: 0 threads < min-parallelism 2", ""}
	up := func(ids ...string) step { return step{add(ids...), "backlog 190 tasks for 2s", ""} }
	down := func(d sdk.Decision) step { return step{d, "idle 5s >= 4s with no demand", ""} }
	steady := step{sdk.Decision{}, "steady", "skipped"}
	good := []step{floor, steady, up("u2"), up("u3", "u4"), up("u5", "u6", "u7", "u8"), steady,
		down(drain("u2")), down(remove("u2", false)), down(drain("u3")), down(drain("u4")), down(drain("u5")),
		down(drain("u6")), down(drain("u7")), down(drain("u8"))}
	survivors := []string{"u1"}

	tests := []struct {
		name  string
		steps []step
		final []string
		story story
		want  string // a substring of the problems; "" means none
	}{
		{"the story", good, survivors, s, ""},
		{"faults tolerated when not clean", append(slices.Clone(good[:4]),
			step{add("u3", "u4"), "backlog 180 tasks; requested again", "failed"}, good[4], good[5],
			down(drain("u2")), down(remove("u3", true)), down(drain("u4")), down(drain("u5")), down(drain("u6")),
			down(drain("u7")), down(drain("u8"))), survivors, story{floor: 2, ceiling: 16, unitThreads: 2}, ""},
		{"no floor first", good[2:], survivors, s, "must add the floor"},
		{"floor drained before the burst", append([]step{floor, down(drain("u1"))}, good[2:]...), survivors, s, "scale-down before the burst"},
		{"scale-up after scale-down", append(slices.Clone(good), up("u9")), survivors, s, "scale-up after scale-down"},
		{"ramp short of the ceiling", append([]step{floor, up("u2"), up("u3", "u4")}, down(drain("u2")), down(drain("u3")), down(drain("u4"))), survivors, s, "capacity peaked at 8 threads"},
		{"ramp not doubling", []step{floor, up("u2"), up("u3"), up("u4", "u5"), up("u6", "u7", "u8"),
			down(drain("u2")), down(drain("u3")), down(drain("u4")), down(drain("u5")), down(drain("u6")), down(drain("u7")), down(drain("u8"))},
			survivors, s, "ramp [1 1 2 3] units per round, want [1 2 4]"},
		{"ramp decreasing", []step{floor, up("u2", "u3"), up("u4"), up("u5", "u6", "u7", "u8"),
			down(drain("u2")), down(drain("u3")), down(drain("u4")), down(drain("u5")), down(drain("u6")), down(drain("u7")), down(drain("u8"))},
			survivors, story{floor: 2, ceiling: 16, unitThreads: 2}, "decreases before it is capped"},
		{"backlog ran out before the ceiling, with faults", []step{floor, up("u2"), up("u3", "u4"),
			step{add("u5"), "backlog 2 tasks for 9s: +1 unit of 2 threads (ramp 4, capped by the backlog)", ""},
			down(drain("u2")), down(drain("u3")), down(drain("u4")), down(drain("u5"))},
			survivors, story{floor: 2, ceiling: 16, unitThreads: 2}, ""},
		{"backlog ran out before the ceiling, clean", []step{floor, up("u2"), up("u3", "u4"),
			step{add("u5"), "backlog 2 tasks for 9s: +1 unit of 2 threads (ramp 4, capped by the backlog)", ""},
			down(drain("u2")), down(drain("u3")), down(drain("u4")), down(drain("u5"))},
			survivors, s, "capacity peaked at 10 threads"},
		{"a failed decision in a clean run", append(slices.Clone(good), step{drain("u1"), "idle", "failed"}), nil, s, "status failed"},
		{"drained twice", append(slices.Clone(good), down(drain("u8"))), survivors, s, "u8 drained twice"},
		{"forced removal in a clean run", append(slices.Clone(good[:len(good)-1]), down(remove("u8", true))), survivors, s, "forced removal of u8"},
		{"more than the floor left", good[:len(good)-1], []string{"u1", "u8"}, s, "2 units left"},
		{"a unit vanished without a decision", good[:len(good)-1], survivors, s, "u8 is gone without a drain"},
		{"a drained unit still there", good, []string{"u1", "u2"}, s, "u2 was scaled down but is still there"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log []decoded
			at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			for i, st := range tt.steps {
				d := st.d
				d.Reason = st.reason
				status := st.status
				if status == "" {
					status = "realized"
				}
				log = append(log, decoded{Record: state.Record{Seq: uint64(i + 1), At: at.Add(time.Duration(i) * time.Second),
					Status: status, Direction: d.Direction().String(), Summary: d.Summary(), Reason: st.reason}, D: d})
			}
			problems := tt.story.check(log, tt.final)
			if tt.want == "" {
				if len(problems) > 0 {
					t.Fatalf("unexpected problems:\n%s", strings.Join(problems, "\n"))
				}
				return
			}
			if !strings.Contains(strings.Join(problems, "\n"), tt.want) {
				t.Fatalf("want a problem containing %q, got:\n%s", tt.want, strings.Join(problems, "\n"))
			}
		})
	}
}
