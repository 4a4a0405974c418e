package runner

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ebbscale/ebb/core/metrics"
)

// fakeTime is a clock that moves only when the test sets it; an alarm
// fires when the clock reaches it.
type fakeTime struct {
	mu    sync.Mutex
	now   time.Time
	waits []fakeWait
	// asked, when set, receives every wait the scheduler asks for.
	asked chan time.Duration
}

type fakeWait struct {
	at time.Time
	c  chan time.Time
}

func (f *fakeTime) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeTime) After(d time.Duration) <-chan time.Time {
	f.mu.Lock()
	c := make(chan time.Time, 1)
	if d <= 0 {
		c <- f.now
	} else {
		f.waits = append(f.waits, fakeWait{f.now.Add(d), c})
	}
	asked := f.asked
	f.mu.Unlock()
	if asked != nil {
		asked <- d
	}
	return c
}

func (f *fakeTime) set(t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = t
	kept := f.waits[:0]
	for _, w := range f.waits {
		if w.at.After(t) {
			kept = append(kept, w)
			continue
		}
		w.c <- t
	}
	f.waits = kept
}

var t0 = time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)

func newTestEntry(name string, interval time.Duration) *entry {
	return &entry{name: name, interval: interval, phase: phaseOf(name, interval, 0), index: -1}
}

// Ticks come at first + k·interval even when every evaluation takes 90% of
// an interval: the schedule is a grid, not a sleep after each tick.
func TestScheduleKeepsRateWhileEvaluationsTakeMostOfAnInterval(t *testing.T) {
	ft := &fakeTime{now: t0.Add(123 * time.Millisecond)}
	missed := 0
	s := newScheduler(ft, nil, func(_ *entry, n int) { missed += n })
	const interval = time.Second
	e := newTestEntry("a", interval)
	s.add(e)
	first := e.due
	if first.Before(ft.Now()) || !first.Before(ft.Now().Add(interval)) {
		t.Fatalf("first tick %s is not within an interval of the start %s", first, ft.Now())
	}
	for k := range 20 {
		want := first.Add(time.Duration(k) * interval)
		ft.set(want.Add(-time.Nanosecond))
		if slot, _ := s.due(); len(slot) != 0 {
			t.Fatalf("tick %d came before %s", k, want)
		}
		ft.set(want)
		slot, wait := s.due()
		if len(slot) != 1 || !slot[0].due.Equal(want) || wait != interval {
			t.Fatalf("tick %d: slot %v, next in %s; want one tick due %s, next in %s", k, slot, wait, want, interval)
		}
		if late := s.begin(slot[0], ft.Now()); late != 0 {
			t.Fatalf("tick %d: late %s", k, late)
		}
		ft.set(want.Add(9 * interval / 10)) // the evaluation takes 90% of the interval
		if slot, wait := s.due(); len(slot) != 0 || wait != interval/10 {
			t.Fatalf("tick %d: after the evaluation, slot %v, next in %s; want none, next in %s", k, slot, wait, interval/10)
		}
		s.finished(e)
	}
	if missed != 0 {
		t.Fatalf("%d ticks missed", missed)
	}
}

// A tick that comes due while the chain's last one is still in flight is
// counted missed (overall and as the chain's skipped evaluation), not
// queued; the chain resumes on its grid once the evaluation ends.
func TestScheduleMissesTicksWhileInFlight(t *testing.T) {
	m := metrics.New()
	r := New(nil, Options{Metrics: m})
	ft := &fakeTime{now: t0}
	s := newScheduler(ft, nil, r.missed)
	const interval = 10 * time.Second
	e := newTestEntry("a", interval)
	s.add(e)
	first := e.due
	ft.set(first)
	if slot, _ := s.due(); len(slot) != 1 {
		t.Fatalf("first tick: %v", slot)
	}
	for k := 1; k <= 3; k++ {
		ft.set(first.Add(time.Duration(k) * interval))
		if slot, _ := s.due(); len(slot) != 0 {
			t.Fatalf("tick %d ran while the first was in flight", k)
		}
	}
	if got := testutil.ToFloat64(m.ScheduleMissed); got != 3 {
		t.Fatalf("ebb_schedule_missed_total = %v, want 3", got)
	}
	if got := testutil.ToFloat64(m.Evaluations.WithLabelValues("a", "skipped")); got != 3 {
		t.Fatalf("skipped evaluations of a = %v, want 3", got)
	}
	s.finished(e)
	want := first.Add(4 * interval)
	ft.set(want)
	if slot, _ := s.due(); len(slot) != 1 || !slot[0].due.Equal(want) {
		t.Fatalf("after the evaluation ended: %v, want a tick due %s", slot, want)
	}
}

// A runner behind by more than an interval misses the ticks that come due
// while a late one waits, and still runs the late one (a chain whose ticks
// all start late is not starved); a scheduler woken late runs the latest
// tick that came and counts those before it.
func TestScheduleBehindByMoreThanAnInterval(t *testing.T) {
	ft := &fakeTime{now: t0}
	missed := 0
	s := newScheduler(ft, nil, func(_ *entry, n int) { missed += n })
	const interval = time.Second
	e := newTestEntry("a", interval)
	s.add(e)
	first := e.due
	ft.set(first)
	slot, _ := s.due()
	// The pool picks the tick up 1.5 intervals late: the next tick came
	// meanwhile and is missed; the late one runs.
	ft.set(first.Add(interval))
	if more, _ := s.due(); len(more) != 0 || missed != 1 {
		t.Fatalf("a tick due while the last one waited: %v, %d missed", more, missed)
	}
	if late := s.begin(slot[0], first.Add(3*interval/2)); late != 3*interval/2 {
		t.Fatalf("late %s", late)
	}
	s.finished(e)
	// The process stalls for 2.5 intervals more.
	ft.set(first.Add(4*interval + interval/2))
	slot, _ = s.due()
	if len(slot) != 1 || !slot[0].due.Equal(first.Add(4*interval)) || missed != 3 {
		t.Fatalf("woken late: %v, %d missed; want the tick due %s and 3 missed", slot, missed, first.Add(4*interval))
	}
}

// Chains of one interval fall on at most 100 phases, so chains due in the
// same slot share it; each runs once per interval.
func TestScheduleSpreadsChainsOverSharedSlots(t *testing.T) {
	ft := &fakeTime{now: t0}
	s := newScheduler(ft, nil, func(*entry, int) { t.Fatal("missed") })
	const interval = time.Second
	const n = 1000
	for i := range n {
		s.add(newTestEntry(string(rune('a'+i%26))+time.Duration(i).String(), interval))
	}
	ran := map[string]int{}
	slots := 0
	for now := t0; now.Before(t0.Add(interval)); {
		ft.set(now)
		slot, wait := s.due()
		if len(slot) > 0 {
			slots++
		}
		for _, tk := range slot {
			ran[tk.e.name]++
			if !tk.due.Equal(now) {
				t.Fatalf("%s ran at %s, due %s", tk.e.name, now, tk.due)
			}
			s.finished(tk.e)
		}
		now = now.Add(wait)
	}
	if len(ran) != n {
		t.Fatalf("%d of %d chains ran in their first interval", len(ran), n)
	}
	for name, k := range ran {
		if k != 1 {
			t.Fatalf("%s ran %d times in one interval", name, k)
		}
	}
	if slots > 100 || slots < 50 {
		t.Fatalf("%d chains fell on %d slots; want them spread over at most 100 shared ones", n, slots)
	}
}

func TestPhase(t *testing.T) {
	for _, c := range []struct {
		interval, jitter, within, step time.Duration
	}{
		{time.Second, 0, time.Second, 10 * time.Millisecond},
		{30 * time.Second, 3 * time.Second, 3 * time.Second, 300 * time.Millisecond},
		{30 * time.Millisecond, 0, 30 * time.Millisecond, time.Millisecond},
		{time.Second, 10 * time.Millisecond, time.Nanosecond, 1}, // one step: every chain in lockstep
	} {
		for _, name := range []string{"a", "b", "optimizers", "c-17"} {
			p := phaseOf(name, c.interval, c.jitter)
			if p < 0 || p >= c.within || p%c.step != 0 || p != phaseOf(name, c.interval, c.jitter) {
				t.Errorf("phase of %s (interval %s, jitter %s) = %s: not a fixed step of %s within %s", name, c.interval, c.jitter, p, c.step, c.within)
			}
		}
	}
	due := firstDue(t0.Add(1500*time.Millisecond), time.Second, 250*time.Millisecond)
	if !due.Equal(t0.Add(2250 * time.Millisecond)) {
		t.Errorf("first due %s", due)
	}
}

// The scheduler's goroutine asks for one alarm at the next due time and
// dispatches the slot when it rings.
func TestScheduleRunWakesAtTheNextTick(t *testing.T) {
	ft := &fakeTime{now: t0, asked: make(chan time.Duration, 16)}
	slots := make(chan []tick, 16)
	s := newScheduler(ft, func(sl []tick) { slots <- sl }, func(*entry, int) {})
	const interval = time.Second
	e := newTestEntry("a", interval)
	s.add(e)
	first := e.due
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	if d := <-ft.asked; d != first.Sub(t0) {
		t.Fatalf("alarm in %s, want %s", d, first.Sub(t0))
	}
	ft.set(first)
	if sl := <-slots; len(sl) != 1 || !sl[0].due.Equal(first) {
		t.Fatalf("slot %v", sl)
	}
	// The kick of add may have made it ask for the first alarm once more
	// before the clock moved; after the slot, it asks for the next tick.
	for d := range ft.asked {
		if d == interval {
			break
		}
		if d != first.Sub(t0) {
			t.Fatalf("next alarm in %s, want %s", d, interval)
		}
	}
}
