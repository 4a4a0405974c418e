package dra

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"time"
)

// The binary state (version 2). JSON cost ~6 µs per unit to decode and
// encode again on every round, 60-70% of an evaluation (issue 18); this
// form is a few hundred nanoseconds per unit. Layout, integers as
// encoding/binary varints (signed) or uvarints (counts, flags, lengths):
//
//	magic "\xebdra", uvarint version
//	varint next-seq, varint ramp
//	uvarint flags (which of the state's times follow), the times
//	uvarint unit count, then per unit in id order:
//	  string id, uvarint flags (booleans, which times follow),
//	  varint size, varint restarts, the times,
//	  uvarint worker count, the worker ids
//
// A string is a uvarint length and its bytes; a time is a varint of Unix
// seconds and a uvarint of nanoseconds, read back in UTC. A zero time is
// not written: its flag says so. Unknown flags, a count larger than the
// bytes left could hold, a duplicate unit and trailing bytes are errors,
// so every accepted input is one that Encode could have written.
var stateMagic = [4]byte{0xeb, 'd', 'r', 'a'}

// State flags: which times follow.
const (
	sBacklogSince = 1 << iota
	sNextAddAt
	sLastScaleUp
	sLastScaleDown
	sAll = 1<<iota - 1
)

// Unit flags: booleans, then which times follow.
const (
	uAsked = 1 << iota
	uRegistered
	uReleased
	uGone
	uRequestedAt
	uSeenAt
	uLastBusy
	uOrphanSince
	uLastRestart
	uDrainSince
	uAll = 1<<iota - 1
)

// minUnitBytes is the least a unit record takes (empty id, flags, size,
// restarts, worker count): it bounds the count a header may claim.
const minUnitBytes = 5

func (s *State) appendBinary(b []byte) ([]byte, error) {
	ids := make([]string, 0, len(s.Units))
	size := 32
	for id, u := range s.Units {
		ids = append(ids, id)
		size += len(id) + 64
		for _, w := range u.Workers {
			size += len(w) + 2
		}
	}
	slices.Sort(ids)
	if b == nil {
		b = make([]byte, 0, size)
	}
	b = append(b, stateMagic[:]...)
	b = binary.AppendUvarint(b, StateVersion)
	b = binary.AppendVarint(b, s.NextSeq)
	b = binary.AppendVarint(b, s.Ramp)
	times := [...]time.Time{s.BacklogSince, s.NextAddAt, s.LastScaleUp, s.LastScaleDown}
	b = binary.AppendUvarint(b, timeFlags(times[:], 0))
	b, err := appendTimes(b, times[:])
	if err != nil {
		return nil, err
	}
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		u := s.Units[id]
		b = appendString(b, id)
		var flags uint64
		for i, set := range [...]bool{u.Asked, u.Registered, u.Released, u.Gone} {
			if set {
				flags |= 1 << i
			}
		}
		times := [...]time.Time{u.RequestedAt, u.SeenAt, u.LastBusy, u.OrphanSince, u.LastRestart, u.DrainSince}
		b = binary.AppendUvarint(b, flags|timeFlags(times[:], unitTimeShift))
		b = binary.AppendVarint(b, u.Size)
		b = binary.AppendVarint(b, u.Restarts)
		if b, err = appendTimes(b, times[:]); err != nil {
			return nil, fmt.Errorf("unit %q: %w", id, err)
		}
		b = binary.AppendUvarint(b, uint64(len(u.Workers)))
		for _, w := range u.Workers {
			b = appendString(b, w)
		}
	}
	return b, nil
}

// unitTimeShift is where a unit's time flags start, after its booleans.
const unitTimeShift = 4

// timeFlags has bit shift+i set when times[i] is set.
func timeFlags(times []time.Time, shift int) uint64 {
	var flags uint64
	for i, t := range times {
		if !t.IsZero() {
			flags |= 1 << (shift + i)
		}
	}
	return flags
}

// appendTimes writes the times that are set. One outside the years 1-9999
// is an error, as it was for JSON: a state written must read back.
func appendTimes(b []byte, times []time.Time) ([]byte, error) {
	for _, t := range times {
		if t.IsZero() {
			continue
		}
		sec := t.Unix()
		if sec < minUnix || sec > maxUnix {
			return nil, fmt.Errorf("time %s is outside the years 1-9999", t)
		}
		b = binary.AppendVarint(b, sec)
		b = binary.AppendUvarint(b, uint64(t.Nanosecond()))
	}
	return b, nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// reader walks the bytes; the first error sticks and later reads return
// zero values, so decodeBinary checks once per record.
type reader struct {
	b   []byte
	str string // b as one string: ids are slices of it, one allocation in all
	off int
	err error
}

var (
	errShort    = errors.New("truncated")
	errOverflow = errors.New("integer overflows 64 bits")
	errLong     = errors.New("integer in more bytes than it needs")
)

// varintError says why a varint of n bytes was refused: encoding/binary
// read none (n <= 0), or it was longer than needed, which Encode never
// writes (a state has one encoding).
func varintError(n int) error {
	switch {
	case n < 0:
		return errOverflow
	case n == 0:
		return errShort
	}
	return errLong
}

// uvarintLen is the length of v's shortest encoding (zig-zag first for a
// signed varint, as encoding/binary does).
func uvarintLen(v uint64) int { return max(1, (bits.Len64(v)+6)/7) }

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = fmt.Errorf("at byte %d: %w", r.off, err)
	}
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 || n != uvarintLen(v) {
		r.fail(varintError(n))
		return 0
	}
	r.off += n
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b[r.off:])
	if n <= 0 || n != uvarintLen(uint64(v)<<1^uint64(v>>63)) {
		r.fail(varintError(n))
		return 0
	}
	r.off += n
	return v
}

// count reads a count of records each at least min bytes long, refusing
// one the rest of the input cannot hold: no allocation larger than the
// input itself.
func (r *reader) count(what string, min int) int {
	n := r.uvarint()
	if r.err == nil && n > uint64((len(r.b)-r.off)/min) {
		r.fail(fmt.Errorf("%d %s claimed, %d bytes left", n, what, len(r.b)-r.off))
		return 0
	}
	return int(n)
}

func (r *reader) string() string {
	n := r.count("string bytes", 1)
	if r.err != nil {
		return ""
	}
	s := r.str[r.off : r.off+n]
	r.off += n
	return s
}

func (r *reader) time() time.Time {
	sec := r.varint()
	nsec := r.uvarint()
	if r.err == nil && nsec >= 1e9 {
		r.fail(fmt.Errorf("time with %d nanoseconds", nsec))
	}
	if r.err == nil && (sec < minUnix || sec > maxUnix) {
		r.fail(fmt.Errorf("time %d s from 1970 is out of range", sec))
	}
	if r.err != nil {
		return time.Time{}
	}
	return time.Unix(sec, int64(nsec)).UTC()
}

// The years 1 and 9999, outside of which no time is meant; the bound keeps
// time arithmetic on decoded values from overflowing.
const (
	minUnix = -62135596800
	maxUnix = 253402300799
)

func (r *reader) times(flags uint64, shift int, dst ...*time.Time) {
	for i, t := range dst {
		if flags&(1<<(shift+i)) != 0 {
			*t = r.time()
			if r.err == nil && t.IsZero() {
				r.fail(errors.New("a zero time marked as set"))
			}
		}
	}
}

func decodeBinary(b []byte) (*State, error) {
	r := &reader{b: b, str: string(b), off: len(stateMagic)}
	if v := r.uvarint(); r.err == nil && v != StateVersion {
		return nil, fmt.Errorf("binary dra state has version %d, this evaluator reads version %d", v, StateVersion)
	}
	s := &State{}
	s.NextSeq = r.varint()
	s.Ramp = r.varint()
	if r.err == nil && (s.NextSeq < 1 || s.Ramp < 1) {
		r.fail(fmt.Errorf("next unit number %d and ramp %d, both must be at least 1", s.NextSeq, s.Ramp))
	}
	flags := r.uvarint()
	if r.err == nil && flags&^uint64(sAll) != 0 {
		r.fail(fmt.Errorf("unknown state flags %#x", flags))
	}
	r.times(flags, 0, &s.BacklogSince, &s.NextAddAt, &s.LastScaleUp, &s.LastScaleDown)
	n := r.count("units", minUnitBytes)
	if r.err != nil {
		return nil, r.err
	}
	s.Units = make(map[string]*UnitState, n)
	records := make([]UnitState, n)
	var prev string
	var ids []string // backing array of the units' worker ids
	for i := range n {
		id := r.string()
		u := &records[i]
		flags := r.uvarint()
		if r.err == nil && flags&^uint64(uAll) != 0 {
			r.fail(fmt.Errorf("unit %q: unknown flags %#x", id, flags))
		}
		u.Asked, u.Registered = flags&uAsked != 0, flags&uRegistered != 0
		u.Released, u.Gone = flags&uReleased != 0, flags&uGone != 0
		u.Size = r.varint()
		u.Restarts = r.varint()
		r.times(flags, unitTimeShift, &u.RequestedAt, &u.SeenAt, &u.LastBusy, &u.OrphanSince, &u.LastRestart, &u.DrainSince)
		if w := r.count("worker ids", 1); w > 0 {
			// Units share one backing array of worker ids (most have
			// one): an allocation per unit was most of the decoder's.
			if cap(ids)-len(ids) < w {
				ids = make([]string, 0, max(w, n-i))
			}
			start := len(ids)
			for range w {
				ids = append(ids, r.string())
			}
			u.Workers = ids[start:len(ids):len(ids)]
		}
		if r.err != nil {
			return nil, fmt.Errorf("unit %d: %w", i, r.err)
		}
		// Encode writes units in id order: anything else, a duplicate
		// included, was not written by it.
		if i > 0 && id <= prev {
			if id == prev {
				return nil, fmt.Errorf("unit %q is recorded twice", id)
			}
			return nil, fmt.Errorf("unit %q is recorded after %q, out of order", id, prev)
		}
		prev = id
		s.Units[id] = u
	}
	if r.off != len(b) {
		return nil, fmt.Errorf("%d bytes after the last unit", len(b)-r.off)
	}
	return s, nil
}
