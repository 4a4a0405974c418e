package state

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Retention bounds each chain's decision log: at most Keep records, none
// older than MaxAge (measured by the record's time). Old records are deleted
// in the transactions that write new ones, a few at a time, so that no
// commit does unbounded work: a log longer than its bound (after Keep was
// lowered) shrinks over the following rounds.
type Retention struct {
	Keep   int
	MaxAge time.Duration
}

// DefaultKeep is how many decisions per chain the log keeps.
const DefaultKeep = 1000

// DefaultMaxAge is how long a decision is kept: a week covers a weekly
// workload cycle and a long weekend before someone asks "why did it scale
// down on Saturday?"; with no-action rounds compacted, a week of a busy
// chain is still far below DefaultKeep records at typical intervals.
const DefaultMaxAge = 7 * 24 * time.Hour

// DefaultRetention is DefaultKeep and DefaultMaxAge.
func DefaultRetention() Retention { return Retention{Keep: DefaultKeep, MaxAge: DefaultMaxAge} }

// pruneStep bounds the records one write deletes from one chain's log. It is
// above one, the most a write adds, so a log beyond its bound shrinks.
const pruneStep = 16

// SetRetention changes the bounds of the decision logs, from the next
// write on. Values below one mean the default.
func (s *Store) SetRetention(r Retention) {
	if r.Keep < 1 {
		r.Keep = DefaultKeep
	}
	if r.MaxAge <= 0 {
		r.MaxAge = DefaultMaxAge
	}
	s.mu.Lock()
	s.retention = r
	s.mu.Unlock()
}

// bounds is the retention and the time before which records are too old
// (0: none is). Age is measured against the newest record written, not the
// wall clock: records carry the runner's clock, which in a simulation or a
// test is not the machine's, and a log is never emptied by a clock jump.
func (s *Store) bounds(at int64) (keep uint64, oldest int64) {
	s.mu.Lock()
	ret := s.retention
	s.mu.Unlock()
	latest := s.latest.Load()
	for at > latest && !s.latest.CompareAndSwap(latest, at) {
		latest = s.latest.Load()
	}
	latest = max(latest, at)
	if latest != 0 {
		oldest = latest - int64(ret.MaxAge)
	}
	return uint64(ret.Keep), oldest
}

// groupOf is the key under which consecutive records are compacted; empty
// for a record that is never compacted (it had actions, or it failed).
func groupOf(r *Record) string {
	if r.Status != "skipped" || r.Direction != "none" || r.Error != "" {
		return ""
	}
	reason := r.Reason
	if r.Shape != "" {
		reason = "shape:" + r.Shape
	}
	return r.Target + "\x00" + r.Summary + "\x00" + strconv.FormatBool(r.Degraded) + "\x00" + reason
}

// appendRecord adds r (whose JSON is body) to the chain's log and returns
// its sequence number. A skipped round like the newest record replaces it,
// carrying the first round's sequence and time and the count: an idle chain
// holds one record per kind of wait, not one per round.
func (s *Store) appendRecord(tx *bolt.Tx, chain string, r *Record, body []byte) (uint64, error) {
	b, err := tx.Bucket(bucketDecisions).CreateBucketIfNotExists([]byte(chain))
	if err != nil {
		return 0, err
	}
	seq, err := b.NextSequence()
	if err != nil {
		return 0, err
	}
	h := recordHead{at: nanos(r.At), group: groupOf(r)}
	n, err := logSize(tx, chain, b)
	if err != nil {
		return 0, err
	}
	compacted := false
	if h.group != "" {
		if k, v := b.Cursor().Last(); k != nil {
			prev, _, _, current, err := splitRecord(v)
			if err == nil && current && prev.group == h.group {
				h.firstSeq, h.firstAt, h.repeats = prev.firstSeq, prev.firstAt, prev.repeats
				if h.repeats < 2 {
					h.firstSeq, h.firstAt, h.repeats = binary.BigEndian.Uint64(k), prev.at, 1
				}
				h.repeats++
				if err := b.Delete(k); err != nil {
					return 0, err
				}
				compacted = true
			}
		}
	}
	if err := b.Put(seqKey(seq), encodeRecord(h, body, nil)); err != nil {
		return 0, err
	}
	if !compacted {
		n++
	}
	keep, oldest := s.bounds(h.at)
	if n, err = prune(b, n, keep, oldest, seq); err != nil {
		return 0, err
	}
	return seq, setLogSize(tx, chain, n)
}

// prune deletes a chain's oldest records beyond the count keep or made
// before oldest, at most pruneStep of them, never the record protect (the
// one just written). It returns how many records are left.
func prune(b *bolt.Bucket, n, keep uint64, oldest int64, protect uint64) (uint64, error) {
	c := b.Cursor()
	for i := 0; i < pruneStep; i++ {
		k, v := c.First()
		if k == nil || len(k) != 8 || binary.BigEndian.Uint64(k) == protect {
			break
		}
		if n <= keep {
			h, err := headOf(binary.BigEndian.Uint64(k), v)
			// A record without a time (or unreadable) is left to the
			// count; so are the ones after it.
			if err != nil || h.at == 0 || h.at >= oldest {
				break
			}
		}
		if err := c.Delete(); err != nil {
			return n, err
		}
		n = max(n, 1) - 1
	}
	return n, nil
}

// logSize is how many records a chain's log holds: as counted when it was
// last written, or counted now for a log written before the count was kept.
func logSize(tx *bolt.Tx, chain string, b *bolt.Bucket) (uint64, error) {
	if v := tx.Bucket(bucketLogSize).Get([]byte(chain)); v != nil {
		n, k := binary.Uvarint(v)
		if k <= 0 {
			return 0, fmt.Errorf("decision count of chain %q: %w", chain, errMalformed)
		}
		return n, nil
	}
	var n uint64
	err := b.ForEach(func(_, _ []byte) error { n++; return nil })
	return n, err
}

func setLogSize(tx *bolt.Tx, chain string, n uint64) error {
	return tx.Bucket(bucketLogSize).Put([]byte(chain), binary.AppendUvarint(nil, n))
}

// sweep prunes by age the log of one chain per transaction, in turn, so
// that the logs of chains that no longer run (removed from the
// configuration, disabled) are emptied too.
func (s *Store) sweep(tx *bolt.Tx) {
	logs := tx.Bucket(bucketDecisions)
	if logs == nil || s.w == nil {
		return
	}
	c := logs.Cursor()
	k, v := c.Seek(s.w.swept)
	if k != nil && bytes.Equal(k, s.w.swept) {
		k, v = c.Next()
	}
	if k == nil {
		k, v = c.First()
	}
	if k == nil || v != nil {
		return
	}
	s.w.swept = append(s.w.swept[:0], k...)
	b := logs.Bucket(k)
	n, err := logSize(tx, string(k), b)
	if err != nil {
		return
	}
	keep, oldest := s.bounds(0)
	if oldest == 0 {
		return // no record written yet: no time to measure age against
	}
	left, err := prune(b, n, keep, oldest, 0)
	if err == nil && left != n {
		// Only a sweep that deleted something writes: an idle sweep costs
		// one cursor seek.
		_ = setLogSize(tx, string(k), left)
	}
}
