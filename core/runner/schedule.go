package runner

import (
	"container/heap"
	"context"
	"hash/fnv"
	"sync"
	"time"
)

// The scheduler keeps every chain on a fixed-rate grid: a chain ticks at
// phase + k·interval (absolute time, Unix epoch), whatever its evaluations
// took. One goroutine and one timer serve all chains (a min-heap by due
// time), so ten thousand chains are ten thousand heap entries, not ten
// thousand sleeping goroutines. A tick that comes due while the chain's
// previous one is still queued or running is missed, not queued: at most
// one evaluation per chain is ever waiting or in flight.

// timeSource is the scheduler's clock and alarm; tests inject a fake one.
type timeSource interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realTime struct{}

func (realTime) Now() time.Time                         { return time.Now() }
func (realTime) After(d time.Duration) <-chan time.Time { return time.After(d) }

// entry is one chain in the schedule.
type entry struct {
	name     string
	interval time.Duration
	phase    time.Duration
	due      time.Time // the next tick
	index    int       // in the heap; -1 once removed
	// busy is set from dispatch until finished: a tick of this chain is
	// queued or running. running counts the same, for a remover to wait.
	busy    bool
	running sync.WaitGroup
	loop    *chainLoop
}

// tick is one due tick handed to the runner.
type tick struct {
	e   *entry
	due time.Time
}

type scheduler struct {
	clock timeSource
	// dispatch receives the ticks that came due together (one slot), in
	// the scheduler's goroutine: it must not block.
	dispatch func([]tick)
	// missed is told of ticks that came due and were not run.
	missed func(e *entry, n int)

	mu   sync.Mutex
	heap entryHeap
	kick chan struct{}
}

func newScheduler(clock timeSource, dispatch func([]tick), missed func(*entry, int)) *scheduler {
	return &scheduler{clock: clock, dispatch: dispatch, missed: missed, kick: make(chan struct{}, 1)}
}

// phaseOf is a chain's fixed offset within its interval: a hash of its name
// spread over the jitter, so that chains started together do not hit their
// sources at once and a chain keeps its phase across restarts, reloads and
// replicas. Without a jitter the spread is the whole interval, as
// Prometheus spreads its scrape targets: the load is even over the
// interval, and the first evaluation comes within one interval of start.
// Phases fall on steps of interval/100 (at least 1 ms) so that chains of
// one interval share slots, and so batches.
func phaseOf(name string, interval, jitter time.Duration) time.Duration {
	spread := jitter
	if spread <= 0 || spread > interval {
		spread = interval
	}
	h := fnv.New64a()
	h.Write([]byte(name))
	sum := h.Sum64()
	step := (interval / 100).Truncate(time.Millisecond)
	if step < time.Millisecond {
		step = time.Millisecond
	}
	if spread < step {
		return time.Duration(sum % uint64(spread))
	}
	return time.Duration(sum%uint64(spread/step)) * step
}

// firstDue is the first grid point phase + k·interval at or after now.
func firstDue(now time.Time, interval, phase time.Duration) time.Time {
	off := (now.UnixNano() - int64(phase)) % int64(interval)
	if off < 0 {
		off += int64(interval)
	}
	if off == 0 {
		return now
	}
	return now.Add(interval - time.Duration(off))
}

// add schedules a chain from now on.
func (s *scheduler) add(e *entry) {
	s.mu.Lock()
	e.due = firstDue(s.clock.Now(), e.interval, e.phase)
	heap.Push(&s.heap, e)
	s.mu.Unlock()
	s.wake()
}

// remove takes a chain out of the schedule and waits until its tick in
// flight, if any, has finished. No tick of it is dispatched after.
func (s *scheduler) remove(e *entry) {
	s.mu.Lock()
	if e.index >= 0 {
		heap.Remove(&s.heap, e.index)
	}
	s.mu.Unlock()
	e.running.Wait()
}

// finished marks a dispatched tick done: the chain may run again.
func (s *scheduler) finished(e *entry) {
	if e == nil {
		return
	}
	s.mu.Lock()
	e.busy = false
	s.mu.Unlock()
	e.running.Done()
}

// begin is called when a worker is about to start a dispatched tick, at
// now: how late it starts. A late tick still runs: while it waited, the
// ticks of its chain that came due were missed (it was busy), so a runner
// behind by more than an interval skips ticks instead of queueing them, and
// a chain whose ticks all start late still evaluates once per tick it gets.
func (s *scheduler) begin(t tick, now time.Time) time.Duration {
	return now.Sub(t.due)
}

func (s *scheduler) wake() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// run dispatches due ticks until ctx is done.
func (s *scheduler) run(ctx context.Context) {
	for {
		slot, wait := s.due()
		if len(slot) > 0 {
			s.dispatch(slot)
		}
		var alarm <-chan time.Time
		if wait >= 0 {
			alarm = s.clock.After(wait)
		}
		select {
		case <-ctx.Done():
			return
		case <-s.kick:
		case <-alarm:
		}
	}
}

// due pops every chain whose tick has come, moves each to its next grid
// point, and returns the ticks to run and how long until the next one (-1:
// none scheduled).
func (s *scheduler) due() ([]tick, time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	var slot []tick
	for len(s.heap) > 0 && !s.heap[0].due.After(now) {
		e := s.heap[0]
		// Woken late by more than an interval (a stalled process): run the
		// latest tick that came, count the ones before it as missed.
		due := e.due
		if behind := int(now.Sub(due) / e.interval); behind > 0 {
			s.missed(e, behind)
			due = due.Add(time.Duration(behind) * e.interval)
		}
		e.due = due.Add(e.interval)
		heap.Fix(&s.heap, 0)
		if e.busy {
			s.missed(e, 1)
			continue
		}
		e.busy = true
		e.running.Add(1)
		slot = append(slot, tick{e: e, due: due})
	}
	if len(s.heap) == 0 {
		return slot, -1
	}
	return slot, s.heap[0].due.Sub(now)
}

// entryHeap orders entries by due time (container/heap).
type entryHeap []*entry

func (h entryHeap) Len() int           { return len(h) }
func (h entryHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h entryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *entryHeap) Push(x any) {
	e := x.(*entry)
	e.index = len(*h)
	*h = append(*h, e)
}
func (h *entryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	e.index = -1
	*h = old[:len(old)-1]
	return e
}
