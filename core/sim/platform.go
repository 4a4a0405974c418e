package sim

import (
	"math/rand/v2"
	"sort"
	"time"

	"github.com/ebbscale/ebb/emulator/ams"
	"github.com/ebbscale/ebb/sdk"
)

// platform is the emulated place units run: a unit boots for BootDelay, then
// its optimizer registers with the emulated AMS; a draining unit takes no new
// task and goes once its optimizer has exited or at the drain timeout. It acts
// on decisions the way realizer-process does.
type platform struct {
	em           *ams.Emulator
	group        string
	bootDelay    time.Duration
	drainTimeout time.Duration
	bootFailure  float64
	rng          *rand.Rand
	units        map[string]*unit
	actions      int
}

type unit struct {
	id         string
	size       int64
	phase      sdk.Phase
	created    time.Time
	readyAt    time.Time
	drainStart time.Time
	// failed: this boot never registers (an image that does not pull, a
	// crash loop); the unit stays booting until an evaluator acts.
	failed     bool
	registered bool
}

func (p *platform) provisioned() int64 {
	var n int64
	for _, u := range p.units {
		n += u.size
	}
	return n
}

// nextEvent is the platform's next own event after now: a boot completing or
// a drain timing out.
func (p *platform) nextEvent() (time.Time, bool) {
	var at time.Time
	ok := false
	take := func(t time.Time) {
		if !ok || t.Before(at) {
			at, ok = t, true
		}
	}
	for _, u := range p.units {
		switch {
		case u.phase == sdk.PhaseBooting && !u.failed:
			take(u.readyAt)
		case u.phase == sdk.PhaseDraining:
			take(u.drainStart.Add(p.drainTimeout))
		}
	}
	return at, ok
}

// settle applies everything due at now. view is the AMS view before it; the
// caller refreshes it afterwards.
func (p *platform) settle(now time.Time, view ams.GroupView) error {
	stopped := map[string]bool{}
	live := map[string]bool{}
	for _, o := range view.Optimizers {
		if o.Stopped {
			stopped[o.UnitID] = true
		} else {
			live[o.UnitID] = true
		}
	}
	for _, id := range p.sortedIDs() {
		u := p.units[id]
		switch {
		case u.phase == sdk.PhaseBooting && !u.failed && !u.readyAt.After(now):
			if _, err := p.em.StartOptimizer(p.group, u.id, int(u.size)); err != nil {
				return err
			}
			u.phase, u.registered = sdk.PhaseRunning, true
		case u.phase == sdk.PhaseDraining && stopped[u.id] && !live[u.id]:
			// The optimizer finished its tasks and exited: the process is gone.
			delete(p.units, id)
		case u.phase == sdk.PhaseDraining && !u.drainStart.Add(p.drainTimeout).After(now):
			if err := p.kill(u); err != nil {
				return err
			}
			delete(p.units, id)
		}
	}
	return nil
}

func (p *platform) kill(u *unit) error {
	if !u.registered {
		return nil
	}
	u.registered = false
	return p.em.KillOptimizer(u.id)
}

func (p *platform) boot(u *unit, now time.Time) {
	u.phase = sdk.PhaseBooting
	u.created = now
	u.readyAt = now.Add(p.bootDelay)
	u.failed = p.bootFailure > 0 && p.rng.Float64() < p.bootFailure
}

// realize carries out a decision at now.
func (p *platform) realize(d sdk.Decision, now time.Time) error {
	if d.Vetoed {
		return nil
	}
	for _, a := range d.Add {
		if _, ok := p.units[a.UnitID]; ok || a.Size < 1 {
			continue
		}
		u := &unit{id: a.UnitID, size: a.Size}
		p.boot(u, now)
		p.units[u.id] = u
		p.actions++
	}
	for _, id := range d.Drain {
		u, ok := p.units[id]
		if !ok || u.phase == sdk.PhaseDraining {
			continue
		}
		p.actions++
		if !u.registered {
			delete(p.units, id)
			continue
		}
		if err := p.em.DrainOptimizer(id); err != nil {
			return err
		}
		u.phase, u.drainStart = sdk.PhaseDraining, now
	}
	for _, r := range d.Remove {
		u, ok := p.units[r.UnitID]
		if !ok {
			continue
		}
		if err := p.kill(u); err != nil {
			return err
		}
		delete(p.units, r.UnitID)
		p.actions++
	}
	for _, id := range d.Restart {
		u, ok := p.units[id]
		if !ok {
			continue
		}
		if err := p.kill(u); err != nil {
			return err
		}
		p.boot(u, now)
		p.actions++
	}
	return nil
}

func (p *platform) sortedIDs() []string {
	ids := make([]string, 0, len(p.units))
	for id := range p.units {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// inventory is what a realizer's Inventory returns.
func (p *platform) inventory() []sdk.Unit {
	out := make([]sdk.Unit, 0, len(p.units))
	for _, id := range p.sortedIDs() {
		u := p.units[id]
		out = append(out, sdk.Unit{ID: u.id, Size: u.size, Phase: u.phase, CreatedAt: u.created, DrainStartedAt: u.drainStart})
	}
	return out
}

// snapshot is what collector-ams reports for the group: the queue counts and
// every optimizer still heartbeating.
func snapshot(v ams.GroupView, now time.Time) sdk.Snapshot {
	s := sdk.Snapshot{ObservedAt: now, Complete: true, Demand: sdk.Demand{
		PlannedTasks: int64(v.Planned), ScheduledTasks: int64(v.Scheduled), RunningTasks: int64(v.Acked),
		PendingTables: int64(v.PendingTables), PlanningTables: int64(v.PlanningTables),
		ServiceablePlannedTasks: int64(v.ServiceablePlanned), ServiceableKnown: true,
	}}
	for _, o := range v.Optimizers {
		if o.Stopped {
			continue
		}
		w := sdk.Worker{ID: o.Token, UnitID: o.UnitID, Threads: int64(o.Threads), BusyThreads: int64(o.Busy),
			BusyKnown: true, RegisteredAt: o.RegisteredAt, State: sdk.WorkerRegistered}
		if o.Busy > 0 {
			w.LastBusyAt = now
		}
		s.Workers = append(s.Workers, w)
	}
	return s
}
