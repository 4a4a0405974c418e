package dra

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ebbscale/ebb/sdk"
)

// reconcile brings the state in line with what became of the previous
// decision (EvaluateRequest.Outcome), before anything is counted. The state
// was written as if the decision were carried out; a later evaluator, the
// runner's rules or the realizer may have had it otherwise (issue 13):
//
//   - an add not realized is no capacity in flight: unless a realizer
//     accepted it once before (Asked) or the inventory lists it, the unit is
//     forgotten, and its id is handed out again rather than burned;
//   - a drain not realized is no drain, unless the inventory shows the unit
//     draining: otherwise the drain timer would later force-remove a unit
//     that was never drained, busy or not;
//   - a release (remove) not realized leaves the unit to be judged again;
//   - a restart not realized does not use up one of auto-restart's retries;
//   - a scale-up none of whose new units was made, or a scale-down none of
//     whose drains happened, did not happen: its cooldown does not hold back
//     the next step, and a ramp it doubled goes back.
//
// A failed action may or may not have happened; the inventory decides. With
// no outcome (the first round, a runner that keeps none) the state stands.
func (r *round) reconcile() {
	o := r.req.Outcome
	if o == nil {
		return
	}
	var undone []string
	var freed []string
	// The step's own actions: new units requested that round, and drains.
	var ups, upsDone, downs, downsDone int
	for _, a := range o.Actions {
		us := r.st.Units[a.UnitID]
		if us == nil {
			continue
		}
		at, inInventory := r.listed[a.UnitID]
		var iu sdk.Unit
		if inInventory {
			iu = r.req.Inventory[at]
		}
		switch {
		case a.Kind == sdk.ActionAdd && us.RequestedAt.Equal(o.DecidedAt):
			ups++
			upsDone += b2i(a.Result.Realized() || inInventory)
		case a.Kind == sdk.ActionDrain:
			downs++
			downsDone += b2i(a.Result.Realized() || (inInventory && iu.Phase == sdk.PhaseDraining))
		}
		if a.Result.Realized() {
			if a.Kind == sdk.ActionAdd && !us.Asked {
				// The first add a realizer accepts makes the unit, in the
				// size a later evaluator may have changed it to; a repeat
				// of the same id changes nothing.
				us.Asked = true
				if size := addedSize(o.Final, a.UnitID); size > 0 && !inInventory {
					us.Size = size
				}
			}
			continue
		}
		// Without Why: that quotes reasons that quote this note.
		undone = append(undone, fmt.Sprintf("%s %s %s by %s", a.Kind, a.UnitID, a.Result, a.By))
		switch a.Kind {
		case sdk.ActionAdd:
			if !inInventory && !us.Asked && us.SeenAt.IsZero() {
				delete(r.st.Units, a.UnitID)
				freed = append(freed, a.UnitID)
			}
		case sdk.ActionDrain:
			if !inInventory || iu.Phase != sdk.PhaseDraining {
				us.DrainSince = time.Time{}
			}
		case sdk.ActionRemove:
			us.Released = false
		case sdk.ActionRestart:
			if us.Restarts > 0 {
				us.Restarts--
			}
			if us.Restarts == 0 {
				us.LastRestart = time.Time{}
			}
		}
	}
	r.rewindIDs(freed)
	if !o.DecidedAt.IsZero() && r.st.LastScaleUp.Equal(o.DecidedAt) && ups > 0 && upsDone == 0 {
		// The earlier scale-up it replaced is not kept; forgetting it only
		// lets the next step come as soon as the backlog's timers allow.
		r.st.LastScaleUp = time.Time{}
		r.st.NextAddAt = o.DecidedAt
		if r.st.Ramp > 1 {
			r.st.Ramp /= 2
		}
	}
	if !o.DecidedAt.IsZero() && r.st.LastScaleDown.Equal(o.DecidedAt) && downs > 0 && downsDone == 0 {
		r.st.LastScaleDown = time.Time{}
	}
	if len(undone) > 0 {
		r.note("not done last round: %s", strings.Join(undone, "; "))
	}
}

// rewindIDs hands the ids of adds that never happened out again: the id
// counter goes back over every trailing id that was freed.
func (r *round) rewindIDs(freed []string) {
	isFreed := map[int64]bool{}
	for _, id := range freed {
		if seq, ok := r.seqOf(id); ok {
			isFreed[seq] = true
		}
	}
	for r.st.NextSeq > 1 && isFreed[r.st.NextSeq-1] {
		r.st.NextSeq--
	}
}

// seqOf is the counter value an id of this evaluator was made from.
func (r *round) seqOf(id string) (int64, bool) {
	rest, ok := strings.CutPrefix(id, r.prefix+"-")
	if !ok {
		return 0, false
	}
	seq, err := strconv.ParseInt(rest, 10, 64)
	return seq, err == nil && seq > 0 && fmt.Sprintf("%s-%d", r.prefix, seq) == id
}

func addedSize(d sdk.Decision, id string) int64 {
	for _, a := range d.Add {
		if a.UnitID == id {
			return a.Size
		}
	}
	return 0
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
