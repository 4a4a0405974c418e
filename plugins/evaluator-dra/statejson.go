package dra

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// legacyJSONVersion is the version of the JSON state that evaluator-dra
// 0.1.0 wrote. It is read, never written: the next Encode turns it into
// the binary form.
const legacyJSONVersion = 1

// decodeJSON reads a version 1 state as that version wrote it (keys in a
// fixed order, times in RFC 3339, UTC), with the checks it made.
func decodeJSON(b []byte) (*State, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var s State
	if err := dec.Decode(&s); err != nil {
		return nil, err
	}
	if s.Version != legacyJSONVersion {
		return nil, fmt.Errorf("JSON dra state has version %d, this evaluator reads JSON version %d and binary version %d", s.Version, legacyJSONVersion, StateVersion)
	}
	for id, u := range s.Units {
		if u == nil {
			return nil, fmt.Errorf("unit %q has no record", id)
		}
	}
	return &s, nil
}
