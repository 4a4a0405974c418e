package runner

import (
	"runtime"
	"sync"
)

// workerCount sizes the pool that runs evaluations. A worker spends nearly
// all of an evaluation waiting: on a plugin process over gRPC, on the
// platform behind it, on the store's fsync. Sized to the cores alone, a few
// chains whose source answers only at its timeout would hold every worker;
// 16 per core keeps the cores busy through such waits, and the bound keeps
// a big machine from fanning out more calls than its plugin processes can
// take.
func workerCount() int {
	return min(max(16*runtime.GOMAXPROCS(0), 16), 256)
}

// pool runs tasks on a fixed set of goroutines. Tasks that continue a
// started evaluation go before tasks that start one: a runner that falls
// behind finishes what it began (and releases its memory) before it takes
// on more. The queues are bounded by the chains: each chain has at most one
// evaluation queued or in flight, and that at most one task per plugin
// block it calls.
type pool struct {
	mu     sync.Mutex
	cond   *sync.Cond
	next   []func() // continuations of started evaluations
	fresh  []func() // starts of new ones
	closed bool
	wg     sync.WaitGroup
}

func newPool(workers int) *pool {
	p := &pool{}
	p.cond = sync.NewCond(&p.mu)
	p.wg.Add(workers)
	for range workers {
		go p.work()
	}
	return p
}

// submit queues f; continuation says it carries on a started evaluation.
func (p *pool) submit(f func(), continuation bool) {
	p.mu.Lock()
	if continuation {
		p.next = append(p.next, f)
	} else {
		p.fresh = append(p.fresh, f)
	}
	p.mu.Unlock()
	p.cond.Signal()
}

// close runs what is queued, then stops the workers and waits for them.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.cond.Broadcast()
	p.wg.Wait()
}

func (p *pool) work() {
	defer p.wg.Done()
	for {
		p.mu.Lock()
		for len(p.next) == 0 && len(p.fresh) == 0 && !p.closed {
			p.cond.Wait()
		}
		var f func()
		switch {
		case len(p.next) > 0:
			f = pop(&p.next)
		case len(p.fresh) > 0:
			f = pop(&p.fresh)
		default: // closed and drained
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		f()
	}
}

func pop(q *[]func()) func() {
	f := (*q)[0]
	(*q)[0] = nil
	*q = (*q)[1:]
	if len(*q) == 0 {
		*q = nil // let the drained array go
	}
	return f
}
