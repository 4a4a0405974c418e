package state

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

// round commits and finishes one round of a chain as the runner does.
func round(t testing.TB, s *Store, chain string, at time.Time, act bool, reason string) Record {
	t.Helper()
	r := &Record{At: at, Target: "g", Direction: "none", Summary: "no change", Status: "skipped", Reason: reason, Shape: reason}
	if act {
		r.Direction, r.Summary, r.Status = "up", "+1 unit", "realized"
	}
	if err := s.Commit(chain, ChainState{"dra": []byte(reason)}, r, func(uint64) ChainState { return ChainState{"dra": []byte("pending")} }); err != nil {
		t.Fatal(err)
	}
	r.RequestID = fmt.Sprintf("%s-%d", chain, r.Seq)
	if err := s.Finish(chain, ChainState{"dra": []byte("done")}, *r); err != nil {
		t.Fatal(err)
	}
	return *r
}

// A chain that idles holds one record per kind of wait, with how many
// rounds it stands for, instead of one per round; rounds with actions are
// each kept.
func TestNoActionRoundsAreCompacted(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "ebb.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	at := t0
	tick := func() time.Time { at = at.Add(10 * time.Second); return at }
	round(t, s, "a", tick(), true, "backlog")
	first := tick()
	for range 500 {
		round(t, s, "a", tick(), false, "steady")
	}
	last := round(t, s, "a", tick(), false, "steady")
	round(t, s, "a", tick(), false, "waiting for cooldown")
	round(t, s, "a", tick(), true, "backlog")
	round(t, s, "a", tick(), true, "backlog")
	d, err := s.Decisions("a", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(d) != 5 {
		t.Fatalf("%d records, want 5: %+v", len(d), d)
	}
	idle := d[3]
	if idle.Repeats != 501 || idle.FirstSeq != 2 || idle.Seq != last.Seq || idle.Seq != 502 ||
		!idle.FirstAt.Equal(first.Add(10*time.Second)) || !idle.At.Equal(last.At) || idle.RequestID != last.RequestID {
		t.Fatalf("compacted record: %+v", idle)
	}
	if d[2].Repeats != 0 || d[2].Reason != "waiting for cooldown" || d[1].Status != "realized" || d[4].Status != "realized" {
		t.Fatalf("records around it: %+v", d)
	}
	// The count of records left is what retention counts: lowering the
	// bound to 3 keeps the three newest.
	s.SetRetention(Retention{Keep: 3})
	round(t, s, "a", tick(), true, "backlog")
	if d, _ := s.Decisions("a", 100); len(d) != 3 {
		t.Fatalf("keep 3: %d records", len(d))
	}
}

// Records older than keep_for go, a bounded number per write; the log of a
// chain that stopped running is swept too.
func TestOldRecordsExpire(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "ebb.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.SetRetention(Retention{Keep: 1000, MaxAge: time.Hour})
	for i := range 100 {
		at := t0.Add(time.Duration(i) * time.Minute)
		round(t, s, "gone", at, true, "x")
		round(t, s, "live", at, true, "x")
	}
	if d, _ := s.Decisions("live", 1000); len(d) != 61 {
		t.Fatalf("an hour of minutely records holds %d, want 61", len(d))
	}
	// "gone" stops; "live" goes on two hours later. One write deletes at
	// most pruneStep records of its own chain.
	late := t0.Add(4 * time.Hour)
	round(t, s, "live", late, true, "x")
	// The write prunes its own chain, and the sweep of that transaction
	// may have picked the same one.
	if d, _ := s.Decisions("live", 1000); 62-len(d) < pruneStep || 62-len(d) > 2*pruneStep {
		t.Fatalf("one write pruned %d records, want %d to %d", 62-len(d), pruneStep, 2*pruneStep)
	}
	for i := range 20 {
		round(t, s, "live", late.Add(time.Duration(i)*time.Second), true, "x")
	}
	if d, _ := s.Decisions("live", 1000); len(d) != 21 {
		t.Fatalf("live holds %d records after it caught up, want the 21 of the last hour", len(d))
	}
	if d, _ := s.Decisions("gone", 1000); len(d) != 0 {
		t.Fatalf("a chain that stopped 4 hours ago keeps %d records", len(d))
	}
}

// The file stops growing: once the logs are at their bound, bbolt reuses
// the pages of deleted records, so 20,000 rounds of many chains take no
// more room than 2,000.
func TestStoreFileStopsGrowing(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 20,000 rounds of 10 chains")
	}
	path := filepath.Join(t.TempDir(), "ebb.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// Durability is not what this test is about; the file's layout is the
	// same without fsync.
	s.db.NoSync = true
	s.SetRetention(Retention{Keep: 100, MaxAge: 24 * time.Hour})
	const chains = 10
	size := func() int64 {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	// Each chain runs its rounds on its own, as the runner's workers do, so
	// that the rounds of different chains share transactions.
	rounds := func(from, to int) {
		var wg sync.WaitGroup
		for c := range chains {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for n := from; n < to; n++ {
					at := t0.Add(time.Duration(n) * 30 * time.Second)
					// Mostly rounds with actions, the worst case for the
					// log: little compaction, only the bounds.
					round(t, s, fmt.Sprintf("chain-%02d", c), at, (n+c)%4 != 0, fmt.Sprintf("reason %d", n%3))
				}
			}()
		}
		wg.Wait()
	}
	rounds(0, 2000)
	sizes := []int64{size()}
	rounds(2000, 20000)
	sizes = append(sizes, size())
	t.Logf("file size after 2,000 rounds %d bytes, after 20,000 %d", sizes[0], sizes[1])
	// bbolt grows the file in steps (doubling up to 1 GB); one step of
	// slack is allowed, unbounded growth would be ten times the size.
	if sizes[1] > 2*sizes[0] {
		t.Fatalf("the file grew from %d to %d bytes between 2,000 and 20,000 rounds", sizes[0], sizes[1])
	}
	for c := range chains {
		if d, _ := s.Decisions(fmt.Sprintf("chain-%02d", c), 1000); len(d) > 100 {
			t.Fatalf("chain %d holds %d records", c, len(d))
		}
	}
}
