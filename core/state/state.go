// Package state persists what the runner must not forget across restarts:
// each chain's evaluator state and its decision log, in one bbolt file.
package state

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Record is one entry of a chain's decision log.
type Record struct {
	Seq       uint64    `json:"seq"`
	At        time.Time `json:"at"`
	RequestID string    `json:"request_id"`
	Target    string    `json:"target"`
	// Direction is up, down, mixed or none.
	Direction string `json:"direction"`
	Summary   string `json:"summary"`
	Reason    string `json:"reason"`
	// Demand and capacity as seen when deciding, for charts and audits.
	DemandTasks     int64 `json:"demand_tasks"`
	PendingTables   int64 `json:"pending_tables"`
	CurrentCapacity int64 `json:"current_capacity"`
	DesiredCapacity int64 `json:"desired_capacity"`
	Degraded        bool  `json:"degraded,omitempty"`
	// Status is "planned", "realized", "failed" or "skipped".
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
	// Decision is the full decision as JSON.
	Decision json.RawMessage `json:"decision,omitempty"`
	// Steps is each evaluator's decision in chain order and what it changed
	// of the one before it.
	Steps []Step `json:"steps,omitempty"`
	// Repeats, when more than one, is how many consecutive rounds this
	// record stands for: rounds without actions whose reasons differ only
	// in their figures are kept as one record, the latest, with the first
	// round's sequence number and time.
	Repeats  int       `json:"repeats,omitempty"`
	FirstSeq uint64    `json:"first_seq,omitempty"`
	FirstAt  time.Time `json:"first_at,omitzero"`
	// Shape, set by the runner, is the reason without its figures. Two
	// consecutive skipped rounds with the same shape, direction, summary,
	// target and degradation are compacted; without a shape their reasons
	// must be equal. It is not stored.
	Shape string `json:"-"`
}

// Step is one evaluator's part of a decision.
type Step struct {
	Evaluator string `json:"evaluator"`
	Summary   string `json:"summary"`
	Reason    string `json:"reason,omitempty"`
	Vetoed    bool   `json:"vetoed,omitempty"`
	// Changes is what this evaluator changed of the previous evaluator's
	// decision ("dropped add u-3; ..."); empty when it passed it on as is.
	Changes string `json:"changes,omitempty"`
}

// Store is a bbolt file. It is safe for concurrent use. Every write goes
// through one writer goroutine that commits whatever writes are waiting in
// one transaction (see group.go).
type Store struct {
	db       *bolt.DB
	file     *os.File
	path     string
	readOnly bool
	// broken is set once bbolt panicked: see boltFile.
	mu     sync.Mutex
	broken error
	// retention bounds each chain's decision log; under mu.
	retention Retention
	// cleanup removes a snapshot copy when the store is closed.
	cleanup func()

	w *writer
	// latest is the time (unix ns) of the newest record written, the clock
	// keep_for is measured against.
	latest atomic.Int64
}

var (
	bucketState     = []byte("state")
	bucketDecisions = []byte("decisions")
	// bucketOutcomes holds, by chain, each evaluator's Outcome (as JSON) of
	// its last decision, handed to it on its next round.
	bucketOutcomes = []byte("outcomes")
	// bucketLogSize holds, by chain, how many records its decision log
	// holds, so that keep_decisions is kept without counting the log.
	bucketLogSize = []byte("decision-counts")

	buckets = [][]byte{bucketState, bucketDecisions, bucketOutcomes, bucketLogSize}
)

// Open opens or creates the store at path. It fails fast (after a second)
// when another runner holds the file, instead of waiting forever, and with a
// DamagedError when the file cannot be trusted: every page is read once here,
// so damage is found now rather than in the middle of a tick.
func Open(path string) (*Store, error) {
	b, err := openBolt(path, bolt.Options{Timeout: time.Second}, true)
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("opening state %s: another ebb process holds it", path)
		}
		if IsDamaged(err) {
			return nil, err
		}
		return nil, fmt.Errorf("opening state %s: %w", path, err)
	}
	s := &Store{db: b.db, file: b.file, path: path, retention: DefaultRetention()}
	err = s.guarded(func() error {
		// Only a file that lacks a bucket is written to (and synced) here.
		missing := false
		if err := s.db.View(func(tx *bolt.Tx) error {
			for _, b := range buckets {
				missing = missing || tx.Bucket(b) == nil
			}
			return nil
		}); err != nil || !missing {
			return err
		}
		return s.db.Update(func(tx *bolt.Tx) error {
			for _, b := range buckets {
				if _, err := tx.CreateBucketIfNotExists(b); err != nil {
					return err
				}
			}
			return nil
		})
	})
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("initializing state %s: %w", path, err)
	}
	s.w = startWriter(s, maxBatch)
	return s, nil
}

// view is bbolt's View behind guard. Once bbolt has panicked the store is
// not touched again: every call returns that damage.
func (s *Store) view(f func(*bolt.Tx) error) error {
	return s.guarded(func() error { return s.db.View(f) })
}

func (s *Store) guarded(f func() error) error {
	s.mu.Lock()
	broken := s.broken
	s.mu.Unlock()
	if broken != nil {
		return broken
	}
	err := guard(s.path, f)
	var dmg *DamagedError
	if errors.As(err, &dmg) {
		s.mu.Lock()
		s.broken = dmg
		s.mu.Unlock()
	}
	return err
}

// Path is the file the store reads.
func (s *Store) Path() string { return s.path }

// Close stops the writer (writes still waiting fail) and closes the file.
func (s *Store) Close() error {
	if s.w != nil {
		s.w.stop()
	}
	s.mu.Lock()
	broken := s.broken
	s.mu.Unlock()
	var err error
	if broken != nil {
		boltFile{file: s.file}.abandon()
	} else {
		err = s.db.Close()
	}
	if s.cleanup != nil {
		s.cleanup()
	}
	return err
}

// ChainState is the state blob of each evaluator of a chain, by evaluator
// block name.
type ChainState map[string][]byte

// LoadState returns a chain's saved evaluator states, empty if none.
func (s *Store) LoadState(chain string) (ChainState, error) {
	return s.load(bucketState, "state", chain)
}

// LoadOutcomes returns the outcomes saved by Commit and Finish, by
// evaluator block name; empty if none.
func (s *Store) LoadOutcomes(chain string) (ChainState, error) {
	return s.load(bucketOutcomes, "outcomes", chain)
}

func (s *Store) load(bucket []byte, what, chain string) (ChainState, error) {
	var out ChainState
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		out, err = decodeChainState(tx.Bucket(bucket).Get([]byte(chain)))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("loading %s of chain %q: %w", what, chain, err)
	}
	return out, nil
}

// SaveState replaces a chain's evaluator states.
func (s *Store) SaveState(chain string, st ChainState) error {
	return s.SaveRound(chain, st, nil)
}

// SaveRound replaces a chain's evaluator states and, when outcomes is not
// nil, their outcomes, in one transaction: an evaluator never sees a new
// state with the outcome of an older round.
func (s *Store) SaveRound(chain string, st ChainState, outcomes ChainState) error {
	var b, o []byte
	if st != nil {
		b = encodeChainState(st)
	}
	if outcomes != nil {
		o = encodeChainState(outcomes)
	}
	err := s.write(func(tx *bolt.Tx) error {
		if b != nil {
			if err := tx.Bucket(bucketState).Put([]byte(chain), b); err != nil {
				return err
			}
		}
		if o != nil {
			return tx.Bucket(bucketOutcomes).Put([]byte(chain), o)
		}
		return nil
	}, nil)
	if err != nil {
		return fmt.Errorf("saving state of chain %q: %w", chain, err)
	}
	return nil
}

// Append adds a record to a chain's decision log, assigns its sequence
// number and drops the oldest records beyond the retention.
func (s *Store) Append(chain string, r *Record) error {
	body, err := marshalBody(r)
	if err != nil {
		return fmt.Errorf("encoding a record of chain %q: %w", chain, err)
	}
	var seq uint64
	err = s.write(func(tx *bolt.Tx) (err error) {
		seq, err = s.appendRecord(tx, chain, r, body)
		return err
	}, func() { r.Seq = seq })
	if err != nil {
		return fmt.Errorf("appending to the decision log of chain %q: %w", chain, err)
	}
	return nil
}

// Update rewrites a record already in the log, all of it. Finish, which
// sets only the outcome, is what a round uses.
func (s *Store) Update(chain string, r Record) error {
	body, err := marshalBody(&r)
	if err != nil {
		return err
	}
	err = s.write(func(tx *bolt.Tx) error {
		b, v, err := storedRecord(tx, chain, r.Seq)
		if err != nil {
			return err
		}
		h, err := headOf(r.Seq, v)
		if err != nil {
			return fmt.Errorf("record %d: %w", r.Seq, err)
		}
		h.at = nanos(r.At)
		return b.Put(seqKey(r.Seq), encodeRecord(h, body, nil))
	}, nil)
	if err != nil {
		return fmt.Errorf("updating the decision log of chain %q: %w", chain, err)
	}
	return nil
}

// Decisions returns up to n of a chain's most recent records, newest first.
func (s *Store) Decisions(chain string, n int) ([]Record, error) {
	var out []Record
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDecisions).Bucket([]byte(chain))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, v := c.Last(); k != nil && len(out) < n; k, v = c.Prev() {
			if len(k) != 8 {
				return fmt.Errorf("key %x is not a sequence number", k)
			}
			r, err := decodeRecord(binary.BigEndian.Uint64(k), v)
			if err != nil {
				return fmt.Errorf("record %d: %w", binary.BigEndian.Uint64(k), err)
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading the decision log of chain %q: %w", chain, err)
	}
	return out, nil
}

func seqKey(seq uint64) []byte {
	k := make([]byte, 8)
	binary.BigEndian.PutUint64(k, seq)
	return k
}
