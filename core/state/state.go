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
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/ebbscale/ebb/internal/jsontext"
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

// Store is a bbolt file. It is safe for concurrent use.
type Store struct {
	db       *bolt.DB
	file     *os.File
	path     string
	readOnly bool
	// broken is set once bbolt panicked: see boltFile.
	mu     sync.Mutex
	broken error
	// cleanup removes a snapshot copy when the store is closed.
	cleanup func()
	// keep bounds each chain's decision log.
	keep int
}

var (
	bucketState     = []byte("state")
	bucketDecisions = []byte("decisions")
	// bucketOutcomes holds, by chain, each evaluator's Outcome (as JSON) of
	// its last decision, handed to it on its next round.
	bucketOutcomes = []byte("outcomes")
)

// DefaultKeep is how many decisions per chain the log keeps.
const DefaultKeep = 1000

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
	s := &Store{db: b.db, file: b.file, path: path, keep: DefaultKeep}
	err = s.update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketState, bucketDecisions, bucketOutcomes} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("initializing state %s: %w", path, err)
	}
	return s, nil
}

// view and update are bbolt's View and Update behind guard. Once bbolt has
// panicked the store is not touched again: every call returns that damage.
func (s *Store) view(f func(*bolt.Tx) error) error {
	return s.guarded(func() error { return s.db.View(f) })
}

func (s *Store) update(f func(*bolt.Tx) error) error {
	if s.readOnly {
		return fmt.Errorf("state %s is open read-only", s.path)
	}
	return s.guarded(func() error { return s.db.Update(f) })
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

// Close closes the file.
func (s *Store) Close() error {
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

func (s *Store) load(bucket []byte, what, chain string) (ChainState, error) {
	out := ChainState{}
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucket).Get([]byte(chain))
		if v == nil {
			return nil
		}
		return json.Unmarshal(v, &out)
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
	var err error
	if st != nil {
		if b, err = json.Marshal(st); err != nil {
			return fmt.Errorf("encoding state of chain %q: %w", chain, err)
		}
	}
	if outcomes != nil {
		if o, err = json.Marshal(outcomes); err != nil {
			return fmt.Errorf("encoding outcomes of chain %q: %w", chain, err)
		}
	}
	err = s.update(func(tx *bolt.Tx) error {
		if b != nil {
			if err := tx.Bucket(bucketState).Put([]byte(chain), b); err != nil {
				return err
			}
		}
		if o != nil {
			return tx.Bucket(bucketOutcomes).Put([]byte(chain), o)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("saving state of chain %q: %w", chain, err)
	}
	return nil
}

// LoadOutcomes returns the outcomes saved by SaveRound, by evaluator block
// name; empty if none.
func (s *Store) LoadOutcomes(chain string) (ChainState, error) {
	return s.load(bucketOutcomes, "outcomes", chain)
}

// Append adds a record to a chain's decision log, assigns its sequence
// number and drops the oldest records beyond the bound.
func (s *Store) Append(chain string, r *Record) error {
	if err := s.update(func(tx *bolt.Tx) error { return s.appendRecord(tx, chain, r) }); err != nil {
		return fmt.Errorf("appending to the decision log of chain %q: %w", chain, err)
	}
	return nil
}

// Commit saves a chain's new evaluator states and appends the decision they
// came with in one transaction: both or neither. Saved state without its
// decision (a full disk between the two) would tell the evaluators that a
// scale-up was made that was never logged nor carried out. When outcomes is
// not nil, what it returns for the record's sequence number is saved as the
// evaluators' outcomes in the same transaction, so that a state is never
// seen with the outcome of an older round.
func (s *Store) Commit(chain string, st ChainState, r *Record, outcomes func(seq uint64) ChainState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encoding state of chain %q: %w", chain, err)
	}
	seq := r.Seq
	err = s.update(func(tx *bolt.Tx) error {
		if err := putState(tx, chain, b); err != nil {
			return err
		}
		if err := s.appendRecord(tx, chain, r); err != nil || outcomes == nil {
			return err
		}
		o, err := json.Marshal(outcomes(r.Seq))
		if err != nil {
			return fmt.Errorf("encoding outcomes: %w", err)
		}
		return tx.Bucket(bucketOutcomes).Put([]byte(chain), o)
	})
	if err != nil {
		r.Seq = seq
		return fmt.Errorf("committing state and decision of chain %q: %w", chain, err)
	}
	return nil
}

func putState(tx *bolt.Tx, chain string, b []byte) error {
	return tx.Bucket(bucketState).Put([]byte(chain), b)
}

func (s *Store) appendRecord(tx *bolt.Tx, chain string, r *Record) error {
	b, err := tx.Bucket(bucketDecisions).CreateBucketIfNotExists([]byte(chain))
	if err != nil {
		return err
	}
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	r.Seq = seq
	v, err := jsontext.Marshal(r)
	if err != nil {
		return err
	}
	if err := b.Put(seqKey(seq), v); err != nil {
		return err
	}
	if seq > uint64(s.keep) {
		c := b.Cursor()
		for k, _ := c.First(); k != nil && binary.BigEndian.Uint64(k) <= seq-uint64(s.keep); k, _ = c.Next() {
			if err := c.Delete(); err != nil {
				return err
			}
		}
	}
	return nil
}

// Update rewrites a record already in the log (to set its outcome).
func (s *Store) Update(chain string, r Record) error {
	v, err := jsontext.Marshal(r)
	if err != nil {
		return err
	}
	err = s.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketDecisions).Bucket([]byte(chain))
		if b == nil || b.Get(seqKey(r.Seq)) == nil {
			return fmt.Errorf("no record %d", r.Seq)
		}
		return b.Put(seqKey(r.Seq), v)
	})
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
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
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
