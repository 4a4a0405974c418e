package state

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestStateAndDecisionsSurviveReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ebb.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SaveState("a", ChainState{"dra": []byte(`{"ramp":4}`)}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		r := &Record{At: time.Unix(int64(i), 0), Summary: "step", Status: "planned"}
		if err := s.Append("a", r); err != nil {
			t.Fatal(err)
		}
		if r.Seq != uint64(i+1) {
			t.Fatalf("seq %d, want %d", r.Seq, i+1)
		}
		r.Status = "realized"
		if err := s.Update("a", *r); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, err := s.LoadState("a")
	if err != nil || string(st["dra"]) != `{"ramp":4}` {
		t.Fatalf("state after reopen: %q, %v", st["dra"], err)
	}
	recs, err := s.Decisions("a", 10)
	if err != nil || len(recs) != 3 {
		t.Fatalf("decisions after reopen: %d, %v", len(recs), err)
	}
	if recs[0].Seq != 3 || recs[0].Status != "realized" {
		t.Fatalf("newest first with its outcome: got %+v", recs[0])
	}
	if empty, _ := s.LoadState("other"); len(empty) != 0 {
		t.Fatalf("unknown chain has state %v", empty)
	}
}

func TestDecisionLogIsBounded(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "ebb.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.SetRetention(Retention{Keep: 5})
	for i := 0; i < 12; i++ {
		if err := s.Append("a", &Record{Summary: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	recs, _ := s.Decisions("a", 100)
	if len(recs) != 5 || recs[0].Seq != 12 || recs[4].Seq != 8 {
		t.Fatalf("kept %d records, newest %d oldest %d; want 5, 12, 8", len(recs), recs[0].Seq, recs[len(recs)-1].Seq)
	}
}

func TestSecondOpenFailsClearly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ebb.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := Open(path); err == nil || !strings.Contains(err.Error(), "another ebb process holds it") {
		t.Fatalf("second open: %v", err)
	}
}

func TestUpdateOfUnknownRecordFails(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "ebb.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Update("a", Record{Seq: 7}); err == nil {
		t.Fatal("updating a record that was never appended succeeded")
	}
}

// Outcomes are kept beside the states: a round saves both at once, the
// realizer's answer later replaces the outcomes alone, and both survive a
// reopen.
func TestOutcomesSavedWithState(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ebb.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SaveRound("a", ChainState{"dra": []byte(`{"ramp":2}`)}, ChainState{"dra": []byte(`{"RealizerError":"pending"}`)}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveRound("a", nil, ChainState{"dra": []byte(`{"RequestID":"a-1"}`)}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err = Open(path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, err := s.LoadState("a")
	if err != nil || string(st["dra"]) != `{"ramp":2}` {
		t.Fatalf("state %s %v", st["dra"], err)
	}
	o, err := s.LoadOutcomes("a")
	if err != nil || string(o["dra"]) != `{"RequestID":"a-1"}` {
		t.Fatalf("outcomes %s %v", o["dra"], err)
	}
	if o, err := s.LoadOutcomes("b"); err != nil || len(o) != 0 {
		t.Fatalf("outcomes of a chain never run: %v %v", o, err)
	}
}
