package state

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// writeOldFormat writes a store as ebb wrote it before group commits: a
// ChainState as a JSON object (blobs base64 inside it) and each record as
// JSON, with no decision counts.
func writeOldFormat(t testing.TB, path string, chains, records int) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		st, _ := tx.CreateBucketIfNotExists(bucketState)
		out, _ := tx.CreateBucketIfNotExists(bucketOutcomes)
		logs, err := tx.CreateBucketIfNotExists(bucketDecisions)
		if err != nil {
			return err
		}
		for c := range chains {
			chain := fmt.Sprintf("chain-%d", c)
			v, _ := json.Marshal(ChainState{"dra": []byte(`{"ramp":4}`), "guard": []byte{0, 1, 2}})
			if err := st.Put([]byte(chain), v); err != nil {
				return err
			}
			o, _ := json.Marshal(ChainState{"dra": []byte(`{"RequestID":"x"}`)})
			if err := out.Put([]byte(chain), o); err != nil {
				return err
			}
			b, err := logs.CreateBucketIfNotExists([]byte(chain))
			if err != nil {
				return err
			}
			for i := range records {
				seq, _ := b.NextSequence()
				r := Record{Seq: seq, At: time.Date(2026, 1, 1, 0, i, 0, 0, time.UTC), Summary: "+1 unit", Direction: "up", Status: "realized"}
				v, _ := json.Marshal(r)
				if err := b.Put(seqKey(seq), v); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A file written by the previous release opens and reads as it was; new
// writes go on from it in the new format, and retention counts the old
// records too.
func TestOldFormatFileIsReadAndContinued(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ebb.db")
	writeOldFormat(t, path, 2, 30)
	if rep, err := Inspect(path); err != nil || rep.Damage != "" || len(rep.Chains) != 2 ||
		rep.Chains[0].Decisions != 30 || len(rep.Chains[0].Evaluators) != 2 {
		t.Fatalf("inspect of an old file: %+v %v", rep, err)
	}
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, err := s.LoadState("chain-0")
	if err != nil || string(st["dra"]) != `{"ramp":4}` || string(st["guard"]) != "\x00\x01\x02" {
		t.Fatalf("old state: %q %v", st, err)
	}
	if o, err := s.LoadOutcomes("chain-1"); err != nil || string(o["dra"]) != `{"RequestID":"x"}` {
		t.Fatalf("old outcomes: %q %v", o, err)
	}
	d, err := s.Decisions("chain-0", 100)
	if err != nil || len(d) != 30 || d[0].Seq != 30 || d[0].Summary != "+1 unit" || d[29].At.Minute() != 0 {
		t.Fatalf("old decisions: %d %v", len(d), err)
	}
	// Finish of an old record (a round begun before an upgrade) works.
	old := d[0]
	old.Status, old.Error = "failed", "realizer gone"
	if err := s.Finish("chain-0", nil, old); err != nil {
		t.Fatal(err)
	}
	s.SetRetention(Retention{Keep: 25, MaxAge: time.Hour})
	r := &Record{At: time.Date(2026, 1, 1, 0, 40, 0, 0, time.UTC), Summary: "+2 units", Direction: "up", Status: "realized"}
	if err := s.Commit("chain-0", ChainState{"dra": []byte("raw\xffbytes")}, r, nil); err != nil {
		t.Fatal(err)
	}
	if r.Seq != 31 {
		t.Fatalf("the new record continues the old sequence: #%d", r.Seq)
	}
	d, _ = s.Decisions("chain-0", 100)
	if len(d) != 25 || d[0].Seq != 31 || d[1].Status != "failed" || d[1].Error != "realizer gone" || d[1].Summary != "+1 unit" {
		t.Fatalf("after the upgrade: %d records, newest %+v then %+v", len(d), d[0], d[1])
	}
	if st, _ := s.LoadState("chain-0"); string(st["dra"]) != "raw\xffbytes" {
		t.Fatalf("new state %q", st["dra"])
	}
}

// The new format stores evaluator state as it is: a 1 KB blob costs about
// 1 KB, not the 4/3 of base64 plus JSON.
func TestStateIsStoredRaw(t *testing.T) {
	blob := make([]byte, 1024)
	for i := range blob {
		blob[i] = byte(i)
	}
	st := ChainState{"dra": blob, "guard": nil}
	v := encodeChainState(st)
	if len(v) > len(blob)+16 {
		t.Fatalf("a 1024-byte state takes %d bytes", len(v))
	}
	back, err := decodeChainState(v)
	if err != nil || string(back["dra"]) != string(blob) || len(back) != 2 {
		t.Fatalf("round trip: %v %d entries", err, len(back))
	}
	for _, bad := range [][]byte{{stateV1, 5}, {stateV1, 1, 'a', 9}, {'{'}, {0x7f}} {
		if _, err := decodeChainState(bad); err == nil {
			t.Errorf("%q decoded", bad)
		}
	}
}

// What the runner and the CLI use of a store, as another backend must offer
// it (the Kubernetes one): a compile-time check that the methods keep their
// names and signatures.
var _ interface {
	LoadState(chain string) (ChainState, error)
	LoadOutcomes(chain string) (ChainState, error)
	Commit(chain string, st ChainState, r *Record, outcomes func(seq uint64) ChainState) error
	Finish(chain string, outcomes ChainState, r Record) error
	Decisions(chain string, n int) ([]Record, error)
	Close() error
	Path() string
	Inspect() (*Report, error)
} = (*Store)(nil)
