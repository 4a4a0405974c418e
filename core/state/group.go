package state

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"

	"github.com/ebbscale/ebb/internal/jsontext"
)

// Group commits. Each bbolt write transaction ends in two fdatasyncs (the
// pages, then the meta page); with many chains due at once, one transaction
// per write made the disk the bottleneck of a tick. So every write is handed
// to one writer goroutine, which commits everything that is waiting in one
// transaction: while one commit syncs, the next batch gathers, and nobody
// waits for a timer. Each caller returns once the transaction holding its
// own write is durable, or with that transaction's error.
//
// bbolt's own db.Batch does the same but runs the batch on a timer
// goroutine, where a panic inside bbolt on a damaged page could not be
// turned into a DamagedError (see guard); and it gives a failing function a
// transaction of its own only after the timer, like this writer does below.

const (
	// maxBatch bounds the writes in one transaction (its memory and how
	// long one commit holds the writer).
	maxBatch = 256
	// queueLen bounds the writes waiting for the writer; beyond it callers
	// wait to hand theirs over.
	queueLen = 1024
)

var errClosed = errors.New("the state store is closed")

// errOwn marks the failure of one write of a batch (as opposed to the
// commit's): the batch is committed again without it.
var errOwn = errors.New("write failed")

// write is one caller's part of a batch. apply may run more than once, in a
// transaction that is then rolled back, so it keeps its results in the
// caller's variables and done makes them visible only after the commit.
type write struct {
	apply func(*bolt.Tx) error
	done  func()
	err   chan error // buffered: the writer never waits for the caller
}

type writer struct {
	s     *Store
	queue chan *write
	max   int
	quit  chan struct{}
	exit  chan struct{}
	once  sync.Once
	// txs counts committed write transactions (for the benchmarks).
	txs atomic.Uint64
	// swept is the chain whose log the last sweep pruned; the writer's own.
	swept []byte
}

func startWriter(s *Store, max int) *writer {
	w := &writer{s: s, queue: make(chan *write, queueLen), max: max, quit: make(chan struct{}), exit: make(chan struct{})}
	go w.loop()
	return w
}

// stop lets the batch in progress finish, fails what is still queued, and
// waits for the writer to end.
func (w *writer) stop() {
	w.once.Do(func() { close(w.quit) })
	<-w.exit
}

func (w *writer) loop() {
	defer close(w.exit)
	batch := make([]*write, 0, w.max)
	for {
		select {
		case <-w.quit:
			for {
				select {
				case o := <-w.queue:
					o.err <- errClosed
				default:
					return
				}
			}
		case o := <-w.queue:
			batch = append(batch[:0], o)
		gather:
			for len(batch) < w.max {
				select {
				case o := <-w.queue:
					batch = append(batch, o)
				default:
					break gather
				}
			}
			w.commit(batch)
			clear(batch) // let the callers' closures go
		}
	}
}

// commit runs a batch in one transaction. A write that fails on its own (a
// record that is not there) fails alone: the transaction is rolled back and
// the rest committed again without it. A failed commit (a full disk, a
// damaged page) fails every write of the batch with its error; bbolt wrote
// nothing of it that a reader would see.
func (w *writer) commit(batch []*write) {
	for len(batch) > 0 {
		failed := -1
		var own error
		err := w.s.guarded(func() error {
			return w.s.db.Update(func(tx *bolt.Tx) error {
				for i, o := range batch {
					if err := o.apply(tx); err != nil {
						failed, own = i, err
						return errOwn
					}
				}
				w.s.sweep(tx)
				return nil
			})
		})
		if failed >= 0 && errors.Is(err, errOwn) {
			batch[failed].err <- own
			batch = append(batch[:failed:failed], batch[failed+1:]...)
			continue
		}
		if err == nil {
			w.txs.Add(1)
		}
		for _, o := range batch {
			if err == nil && o.done != nil {
				o.done()
			}
			o.err <- err
		}
		return
	}
}

// write hands apply to the writer and waits until it is committed. done
// runs once the commit is durable, before write returns.
func (s *Store) write(apply func(*bolt.Tx) error, done func()) error {
	if s.readOnly || s.w == nil {
		return fmt.Errorf("state %s is open read-only", s.path)
	}
	s.mu.Lock()
	broken := s.broken
	s.mu.Unlock()
	if broken != nil {
		return broken
	}
	o := &write{apply: apply, done: done, err: make(chan error, 1)}
	select {
	case s.w.queue <- o:
	case <-s.w.exit:
		return errClosed
	}
	select {
	case err := <-o.err:
		return err
	case <-s.w.exit:
		// The writer may have answered just before it ended.
		select {
		case err := <-o.err:
			return err
		default:
			return errClosed
		}
	}
}

// Commit saves a chain's new evaluator states and appends the decision they
// came with in one transaction: both or neither. Saved state without its
// decision (a full disk between the two) would tell the evaluators that a
// scale-up was made that was never logged nor carried out. When outcomes is
// not nil, what it returns for the record's sequence number is saved as the
// evaluators' outcomes in the same transaction, so that a state is never
// seen with the outcome of an older round. Concurrent calls share one
// transaction and one fsync; Commit returns once its own write is durable,
// with r.Seq set.
func (s *Store) Commit(chain string, st ChainState, r *Record, outcomes func(seq uint64) ChainState) error {
	state := encodeChainState(st)
	body, err := marshalBody(r)
	if err != nil {
		return fmt.Errorf("encoding the decision of chain %q: %w", chain, err)
	}
	var seq uint64
	err = s.write(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketState).Put([]byte(chain), state); err != nil {
			return err
		}
		var err error
		if seq, err = s.appendRecord(tx, chain, r, body); err != nil || outcomes == nil {
			return err
		}
		o, err := callOutcomes(outcomes, seq)
		if err != nil {
			return err
		}
		return tx.Bucket(bucketOutcomes).Put([]byte(chain), encodeChainState(o))
	}, func() { r.Seq = seq })
	if err != nil {
		return fmt.Errorf("committing state and decision of chain %q: %w", chain, err)
	}
	return nil
}

// callOutcomes runs the caller's function inside the writer: a panic in it
// is the caller's bug, not damage to the file, and fails its write alone.
func callOutcomes(f func(uint64) ChainState, seq uint64) (o ChainState, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("computing the outcomes of record %d: %v", seq, p)
		}
	}()
	return f(seq), nil
}

// Finish ends a round that Commit began: it saves the evaluators' outcomes
// and records what became of the decision (its Status, Error and
// RequestID: the rest of r is as Commit stored it) in one transaction,
// shared with concurrent writers like Commit's.
func (s *Store) Finish(chain string, outcomes ChainState, r Record) error {
	o := encodeChainState(outcomes)
	tail, err := jsontext.Marshal(recordOutcome{Status: r.Status, Error: r.Error, RequestID: r.RequestID})
	if err != nil {
		return fmt.Errorf("encoding the outcome of chain %q: %w", chain, err)
	}
	err = s.write(func(tx *bolt.Tx) error {
		if outcomes != nil {
			if err := tx.Bucket(bucketOutcomes).Put([]byte(chain), o); err != nil {
				return err
			}
		}
		return finishRecord(tx, chain, r, tail)
	}, nil)
	if err != nil {
		return fmt.Errorf("finishing the round of chain %q: %w", chain, err)
	}
	return nil
}

// finishRecord replaces the outcome of a stored record, keeping its body.
func finishRecord(tx *bolt.Tx, chain string, r Record, tail []byte) error {
	b, v, err := storedRecord(tx, chain, r.Seq)
	if err != nil {
		return err
	}
	h, body, _, current, err := splitRecord(v)
	if err != nil {
		return fmt.Errorf("record %d: %w", r.Seq, err)
	}
	if !current {
		// Written before group commits: store it anew, whole.
		if body, err = marshalBody(&r); err != nil {
			return err
		}
		h = recordHead{at: nanos(r.At)}
	}
	return b.Put(seqKey(r.Seq), encodeRecord(h, body, tail))
}

// storedRecord is the chain's log and the value of its record seq.
func storedRecord(tx *bolt.Tx, chain string, seq uint64) (*bolt.Bucket, []byte, error) {
	b := tx.Bucket(bucketDecisions).Bucket([]byte(chain))
	var v []byte
	if b != nil {
		v = b.Get(seqKey(seq))
	}
	if v == nil {
		return nil, nil, fmt.Errorf("no record %d", seq)
	}
	return b, v, nil
}
