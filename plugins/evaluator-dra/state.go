package dra

import (
	"bytes"
	"fmt"
	"time"
)

// StateVersion is the version of the State encoding this package writes:
// the binary form of statebin.go. Version 1 was JSON (statejson.go); it is
// still read, so a state saved before the upgrade carries over.
const StateVersion = 2

// State is everything the evaluator remembers between rounds. The runner
// stores it as opaque bytes (units in id order, times in UTC), so a plugin
// crash or a runner restart loses nothing, and the same bytes always decode
// to the same value and encode back to the same bytes. The JSON tags are
// those of version 1, which DecodeState still reads.
type State struct {
	Version int `json:"version"`
	// NextSeq numbers new units; ids are "<prefix>-<seq>".
	NextSeq int64 `json:"next-seq"`
	// BacklogSince is when the current backlog was first seen; zero when
	// there is none.
	BacklogSince time.Time `json:"backlog-since,omitzero"`
	// NextAddAt is when the next demand-driven scale-up may fire (Spark's
	// addTime): BacklogSince + scheduler-backlog-timeout, then the last add
	// + sustained-backlog-timeout.
	NextAddAt time.Time `json:"next-add-at,omitzero"`
	// Ramp is the number of units the next backlog round may add (1, 2, 4...).
	Ramp          int64     `json:"ramp"`
	LastScaleUp   time.Time `json:"last-scale-up,omitzero"`
	LastScaleDown time.Time `json:"last-scale-down,omitzero"`
	// Units is keyed by unit id; encoding/json writes map keys sorted.
	Units map[string]*UnitState `json:"units,omitempty"`
}

// UnitState is what the evaluator remembers about one unit.
type UnitState struct {
	// Size is the threads the unit was requested with.
	Size int64 `json:"size,omitempty"`
	// RequestedAt is set for units this evaluator asked for; until the unit
	// shows up in the inventory the Add is repeated (same id, so the realizer
	// makes it once) and its threads count as in-flight capacity.
	RequestedAt time.Time `json:"requested-at,omitzero"`
	// Asked is set once a realizer accepted the unit's add (the runner's
	// Outcome says so): from then on it is in flight until the inventory
	// lists it, even if a later re-request is dropped.
	Asked bool `json:"asked,omitempty"`
	// SeenAt is when the unit first appeared in the inventory.
	SeenAt time.Time `json:"seen-at,omitzero"`
	// Registered is true once a worker has registered for the unit, so a
	// worker that later vanishes makes it an orphan at once.
	Registered bool `json:"registered,omitempty"`
	// LastBusy is when the unit was last seen busy (or first registered):
	// the start of its idle time.
	LastBusy time.Time `json:"last-busy,omitzero"`
	// Workers are the ids (Amoro's tokens) of the registered workers the
	// idle clock belongs to, sorted; a new one restarts the clock.
	Workers []string `json:"workers,omitempty"`
	// OrphanSince is when the unit was found without a live worker.
	OrphanSince time.Time `json:"orphan-since,omitzero"`
	Restarts    int64     `json:"restarts,omitempty"`
	LastRestart time.Time `json:"last-restart,omitzero"`
	// DrainSince is when the unit started draining.
	DrainSince time.Time `json:"drain-since,omitzero"`
	// Released is set once a Remove was issued for an orphan or a booting
	// unit: it no longer counts as capacity.
	Released bool `json:"released,omitempty"`
	// Gone marks a unit the platform no longer has while the engine still
	// lists its worker (AMS keeps an optimizer until its heartbeat expires):
	// that worker is no capacity, and not an optimizer started by hand.
	Gone bool `json:"gone,omitempty"`
}

func newState() *State {
	return &State{Version: StateVersion, NextSeq: 1, Ramp: 1, Units: map[string]*UnitState{}}
}

// DecodeState reads state bytes of either version; nil or empty means a
// fresh state. Bytes that are neither are an error, never a panic: the
// caller reports it and keeps the stored bytes as they are.
func DecodeState(b []byte) (*State, error) {
	var (
		s   *State
		err error
	)
	switch t := bytes.TrimSpace(b); {
	case len(t) == 0:
		return newState(), nil
	case bytes.HasPrefix(b, stateMagic[:]):
		s, err = decodeBinary(b)
	case t[0] == '{':
		s, err = decodeJSON(t)
	default:
		return nil, fmt.Errorf("decoding dra state: %d bytes that are neither a binary state (version %d) nor a JSON one (version 1)", len(b), StateVersion)
	}
	if err != nil {
		return nil, fmt.Errorf("decoding dra state: %w", err)
	}
	s.Version = StateVersion
	if s.Units == nil {
		s.Units = map[string]*UnitState{}
	}
	if s.Ramp < 1 {
		s.Ramp = 1
	}
	if s.NextSeq < 1 {
		s.NextSeq = 1
	}
	return s, nil
}

// Encode writes the state in its canonical (binary) form.
func (s *State) Encode() ([]byte, error) {
	b, err := s.appendBinary(nil)
	if err != nil {
		return nil, fmt.Errorf("encoding dra state: %w", err)
	}
	return b, nil
}
