package state

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/ebbscale/ebb/internal/jsontext"
)

// The file's values come in two formats. Files written before group commits
// hold JSON: a ChainState as a JSON object (its blobs base64 inside it) and a
// Record as a JSON object. Values written now start with a format byte that
// JSON never starts with, so both are read and a file is converted one value
// at a time, as it is written again.
const (
	stateV1  = 0x01
	recordV1 = 0x02
)

var errMalformed = errors.New("malformed value")

// encodeChainState is the format byte, then each evaluator's name and blob,
// in name order, each behind its length: the blobs are stored as they are,
// not base64 inside JSON.
func encodeChainState(st ChainState) []byte {
	names := make([]string, 0, len(st))
	size := 1
	for name, v := range st {
		names = append(names, name)
		size += 2*binary.MaxVarintLen32 + len(name) + len(v)
	}
	slices.Sort(names)
	b := make([]byte, 1, size)
	b[0] = stateV1
	for _, name := range names {
		b = binary.AppendUvarint(b, uint64(len(name)))
		b = append(b, name...)
		b = binary.AppendUvarint(b, uint64(len(st[name])))
		b = append(b, st[name]...)
	}
	return b
}

// decodeChainState reads either format. The blobs are copied: v belongs to
// a bbolt transaction.
func decodeChainState(v []byte) (ChainState, error) {
	out := ChainState{}
	if len(v) == 0 {
		return out, nil
	}
	if v[0] != stateV1 {
		// The format before group commits: JSON.
		if err := json.Unmarshal(v, &out); err != nil {
			return nil, err
		}
		if out == nil { // "null"
			out = ChainState{}
		}
		return out, nil
	}
	v = v[1:]
	for len(v) > 0 {
		name, rest, ok := lengthPrefixed(v)
		if !ok {
			return nil, fmt.Errorf("evaluator name: %w", errMalformed)
		}
		blob, rest, ok := lengthPrefixed(rest)
		if !ok {
			return nil, fmt.Errorf("state of evaluator %q: %w", name, errMalformed)
		}
		out[string(name)] = append([]byte{}, blob...)
		v = rest
	}
	return out, nil
}

// lengthPrefixed splits a uvarint length and that many bytes off b.
func lengthPrefixed(b []byte) (field, rest []byte, ok bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil, nil, false
	}
	return b[k : k+int(n)], b[k+int(n):], true
}

// recordHead is what the store itself reads of a record, kept outside its
// JSON so that retention, compaction and Finish never decode the record:
// when it was made (for keep_for), the group of no-action rounds it may be
// compacted with, and the span of rounds a compacted record stands for.
type recordHead struct {
	at       int64 // unix nanoseconds; 0 when the record has no time
	firstAt  int64
	firstSeq uint64
	repeats  uint64
	group    string
}

// A record's value is the format byte, its head, its JSON as Commit wrote
// it (body) and, once Finish ran, the JSON of its outcome (tail), which
// overrides the body's status, error and request id. Finish so rewrites
// only the tail and the body is marshalled once.
//
//	0x02 | varint at | varint firstAt | uvarint firstSeq | uvarint repeats |
//	uvarint len group | group | uvarint len body | body | tail
func encodeRecord(h recordHead, body, tail []byte) []byte {
	b := make([]byte, 1, 1+5*binary.MaxVarintLen64+len(h.group)+len(body)+len(tail))
	b[0] = recordV1
	b = binary.AppendVarint(b, h.at)
	b = binary.AppendVarint(b, h.firstAt)
	b = binary.AppendUvarint(b, h.firstSeq)
	b = binary.AppendUvarint(b, h.repeats)
	b = binary.AppendUvarint(b, uint64(len(h.group)))
	b = append(b, h.group...)
	b = binary.AppendUvarint(b, uint64(len(body)))
	b = append(b, body...)
	return append(b, tail...)
}

// splitRecord parses a value of the current format; ok is false for a value
// of the old format (plain JSON).
func splitRecord(v []byte) (h recordHead, body, tail []byte, ok bool, err error) {
	if len(v) == 0 || v[0] != recordV1 {
		return h, v, nil, false, nil
	}
	b, bad := v[1:], false
	uvarint := func() uint64 {
		n, k := binary.Uvarint(b)
		if k <= 0 {
			bad = true
			return 0
		}
		b = b[k:]
		return n
	}
	// at and firstAt are zigzag varints (binary.AppendVarint).
	unzig := func(u uint64) int64 { return int64(u>>1) ^ -int64(u&1) }
	h.at, h.firstAt = unzig(uvarint()), unzig(uvarint())
	h.firstSeq, h.repeats = uvarint(), uvarint()
	if bad {
		return h, nil, nil, true, errMalformed
	}
	group, b, okg := lengthPrefixed(b)
	body, tail, okb := lengthPrefixed(b)
	if !okg || !okb {
		return h, nil, nil, true, errMalformed
	}
	h.group = string(group)
	return h, body, tail, true, nil
}

// recordOutcome is the part of a record that Finish sets.
type recordOutcome struct {
	Status    string `json:"status"`
	Error     string `json:"error"`
	RequestID string `json:"request_id"`
}

// decodeRecord reads a record of either format stored under seq.
func decodeRecord(seq uint64, v []byte) (Record, error) {
	var r Record
	h, body, tail, current, err := splitRecord(v)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return r, err
	}
	if len(tail) > 0 {
		if err := json.Unmarshal(tail, &r); err != nil {
			return r, fmt.Errorf("outcome: %w", err)
		}
	}
	r.Seq = seq
	if current && h.repeats > 1 {
		r.Repeats = int(min(h.repeats, 1<<31))
		r.FirstSeq = h.firstSeq
		r.FirstAt = fromNanos(h.firstAt)
	}
	return r, nil
}

// headOf is the head of a stored record; an old-format one is decoded for
// its time (it has no group: it is never compacted).
func headOf(seq uint64, v []byte) (recordHead, error) {
	h, _, _, current, err := splitRecord(v)
	if err != nil || current {
		return h, err
	}
	r, err := decodeRecord(seq, v)
	if err != nil {
		return h, err
	}
	return recordHead{at: nanos(r.At)}, nil
}

// marshalBody is a record's JSON as Commit stores it.
func marshalBody(r *Record) ([]byte, error) {
	return jsontext.Marshal(r)
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
