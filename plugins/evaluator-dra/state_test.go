package dra

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ebbscale/ebb/sdk"
)

// encodeJSON is the state encoding of evaluator-dra 0.1.0 (version 1), kept
// here to write legacy states and as the benchmarks' baseline. The upgrade
// test checks that it gives back, byte for byte, what 0.1.0 wrote.
func encodeJSON(s *State) ([]byte, error) {
	v := *s
	v.Version = legacyJSONVersion
	return json.Marshal(&v)
}

// upgradeRound is one round recorded from evaluator-dra 0.1.0 (commit
// fe9acfb): the request it was given and what it answered, its state in
// JSON. testdata/upgrade-v1.json was written by that commit's evaluator in
// a simulated run (4 units of 4 threads, one of them dead and restarted,
// a backlog of 33 tasks for 8 rounds, then none: units are requested,
// boot, register, idle, drain and go), 20 s per round.
type upgradeRound struct {
	Request  sdk.EvaluateRequest
	Response sdk.EvaluateResponse
}

func loadUpgradeRounds(t testing.TB) []upgradeRound {
	t.Helper()
	b, err := os.ReadFile("testdata/upgrade-v1.json")
	if err != nil {
		t.Fatal(err)
	}
	var rounds []upgradeRound
	if err := json.Unmarshal(b, &rounds); err != nil {
		t.Fatal(err)
	}
	return rounds
}

// A state saved by the previous version (JSON) carries over: from any round
// of a recorded run, this version goes on deciding exactly as the old one
// did, remembers the same things, and writes them in the binary form.
func TestUpgradeFromJSONState(t *testing.T) {
	rounds := loadUpgradeRounds(t)
	if len(rounds) < 10 {
		t.Fatalf("fixture has %d rounds", len(rounds))
	}
	for k := range len(rounds) - 1 {
		saved := rounds[k].Response.State
		if !bytes.HasPrefix(saved, []byte(`{"version":1,`)) {
			t.Fatalf("round %d: fixture state is not version 1 JSON: %.40s", k, saved)
		}
		st, err := DecodeState(saved)
		if err != nil {
			t.Fatalf("round %d: the saved JSON state does not decode: %v", k, err)
		}
		if again, _ := encodeJSON(st); !bytes.Equal(again, saved) {
			t.Fatalf("round %d: encodeJSON is not the old encoding:\n%s\n%s", k, saved, again)
		}
		state := saved
		for i := k + 1; i < len(rounds); i++ {
			req := rounds[i].Request
			req.State = state
			resp, err := Evaluate(Config{}, req)
			if err != nil {
				t.Fatalf("from round %d, round %d: %v", k, i, err)
			}
			got, _ := json.Marshal(resp.Decision)
			want, _ := json.Marshal(rounds[i].Response.Decision)
			if !bytes.Equal(got, want) {
				t.Fatalf("from round %d, round %d: decision differs from 0.1.0's\n got %s\nwant %s", k, i, got, want)
			}
			if !bytes.HasPrefix(resp.State, stateMagic[:]) {
				t.Fatalf("round %d: new state is not binary", i)
			}
			now, err := DecodeState(resp.State)
			if err != nil {
				t.Fatal(err)
			}
			old, err := DecodeState(rounds[i].Response.State)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(now, old) {
				t.Fatalf("from round %d, round %d: state differs from 0.1.0's:\n got %+v\nwant %+v", k, i, now, old)
			}
			state = resp.State
		}
	}
}

func TestStateDecodeErrors(t *testing.T) {
	st := newState()
	st.NextSeq = 7
	st.BacklogSince = t0
	st.Units["u-1"] = &UnitState{Size: 4, SeenAt: t0, Registered: true, Workers: []string{"w1", "w2"}}
	st.Units["u-2"] = &UnitState{Size: 4, RequestedAt: t0.Add(time.Second), Asked: true}
	good, err := st.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := DecodeState(good)
	if err != nil || !reflect.DeepEqual(back, st) {
		t.Fatalf("round trip: %v\n%+v\n%+v", err, back, st)
	}
	dup := bytes.Replace(good, []byte("u-2"), []byte("u-1"), 1)
	version := bytes.Clone(good)
	version[len(stateMagic)] = 9
	for _, c := range []struct {
		name string
		b    []byte
		want string
	}{
		{"truncated", good[:len(good)-3], "truncated"},
		{"trailing bytes", append(bytes.Clone(good), 0), "1 bytes after the last unit"},
		{"duplicate unit", dup, `unit "u-1" is recorded twice`},
		{"future version", version, "version 9"},
		{"magic only", stateMagic[:], "truncated"},
		{"huge unit count", append(append(stateMagic[:], StateVersion, 2, 2, 0), 0xff, 0xff, 0xff, 0xff, 0x0f), "units claimed"},
		{"neither binary nor JSON", []byte("garbage"), "neither a binary state"},
		{"year 10000", func() []byte {
			b := append(stateMagic[:], StateVersion, 2, 2, sBacklogSince)
			b = binary.AppendVarint(b, maxUnix+1)
			return append(b, 0, 0)
		}(), "out of range"},
		{"nanoseconds", append(append(stateMagic[:], StateVersion, 2, 2, sBacklogSince, 2), binary.AppendUvarint(nil, 1e9)...), "nanoseconds"},
		{"unknown flags", append(stateMagic[:], StateVersion, 2, 2, 0x10, 0), "unknown state flags"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := DecodeState(c.b)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %v, want %q", err, c.want)
			}
		})
	}
	late := &State{Units: map[string]*UnitState{"a": {SeenAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}}}
	if _, err := late.Encode(); err == nil || !strings.Contains(err.Error(), "years 1-9999") {
		t.Errorf("a time past 9999 encodes (%v): the state could not be read back", err)
	}
}

// FuzzDecodeState: any bytes decode to a state or give an error, never a
// panic; a state that decodes encodes to bytes that decode to the same
// state, and from a binary input to the same bytes.
func FuzzDecodeState(f *testing.F) {
	for _, r := range loadUpgradeRounds(f) {
		f.Add(r.Response.State)
		if st, err := DecodeState(r.Response.State); err == nil {
			b, _ := st.Encode()
			f.Add(b)
		}
	}
	f.Add([]byte(nil))
	f.Add([]byte(`{"version":1,"units":{"a":null}}`))
	f.Add(append(stateMagic[:], StateVersion))
	f.Fuzz(func(t *testing.T, b []byte) {
		st, err := DecodeState(b)
		if err != nil {
			if st != nil {
				t.Fatal("a state with an error")
			}
			return
		}
		enc, err := st.Encode()
		if err != nil {
			// Only JSON can hold what binary cannot (a time past 9999).
			if bytes.HasPrefix(b, stateMagic[:]) {
				t.Fatalf("a decoded binary state does not encode: %v", err)
			}
			return
		}
		back, err := DecodeState(enc)
		if err != nil {
			t.Fatalf("re-encoded state does not decode: %v", err)
		}
		if !reflect.DeepEqual(back, st) {
			t.Fatalf("round trip changed the state:\n%+v\n%+v", st, back)
		}
		if bytes.HasPrefix(b, stateMagic[:]) && !bytes.Equal(enc, b) {
			t.Fatalf("binary input is not canonical: %x re-encodes as %x", b, enc)
		}
	})
}
