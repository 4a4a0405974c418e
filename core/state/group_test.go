package state

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// holdWriter blocks the store's writer inside a transaction until the
// returned release is called, so that a test can queue writes behind it and
// see them committed together.
func holdWriter(t *testing.T, s *Store) (release func()) {
	t.Helper()
	entered, hold := make(chan struct{}), make(chan struct{})
	go s.write(func(*bolt.Tx) error {
		close(entered)
		<-hold
		return nil
	}, nil)
	<-entered
	var once sync.Once
	release = func() { once.Do(func() { close(hold) }) }
	t.Cleanup(release)
	return release
}

// waitQueued waits until n writes wait for the writer.
func waitQueued(t *testing.T, s *Store, n int) {
	t.Helper()
	for i := 0; len(s.w.queue) < n; i++ {
		if i > 10000 {
			t.Fatalf("%d writes queued, want %d", len(s.w.queue), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// Many chains due at once: their commits share one transaction, and each
// caller returns with its own sequence number once it is durable.
func TestConcurrentCommitsShareOneTransaction(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ebb.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	release := holdWriter(t, s)
	const chains = 50
	before := s.w.txs.Load()
	var wg sync.WaitGroup
	errs := make([]error, chains)
	recs := make([]*Record, chains)
	for i := range chains {
		recs[i] = &Record{Summary: "+1 unit", Direction: "up", Status: "realized"}
		wg.Add(1)
		go func() {
			defer wg.Done()
			chain := fmt.Sprintf("c%d", i)
			errs[i] = s.Commit(chain, ChainState{"dra": []byte(chain)}, recs[i], func(seq uint64) ChainState {
				return ChainState{"dra": []byte(fmt.Sprintf("pending %d", seq))}
			})
		}()
	}
	waitQueued(t, s, chains)
	release()
	wg.Wait()
	// One transaction for the write that held the writer, one for the
	// fifty commits queued behind it.
	if got := s.w.txs.Load() - before; got != 2 {
		t.Fatalf("%d commits took %d transactions, want 2", chains, got)
	}
	for i, err := range errs {
		if err != nil || recs[i].Seq != 1 {
			t.Fatalf("commit %d: %v, seq %d", i, err, recs[i].Seq)
		}
	}
	// Finish, also grouped.
	release = holdWriter(t, s)
	for i := range chains {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := *recs[i]
			r.Status, r.RequestID = "failed", fmt.Sprintf("c%d-1", i)
			errs[i] = s.Finish(fmt.Sprintf("c%d", i), ChainState{"dra": []byte("done")}, r)
		}()
	}
	waitQueued(t, s, chains)
	release()
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := range chains {
		chain := fmt.Sprintf("c%d", i)
		st, _ := s.LoadState(chain)
		o, _ := s.LoadOutcomes(chain)
		d, err := s.Decisions(chain, 10)
		if err != nil || string(st["dra"]) != chain || string(o["dra"]) != "done" || len(d) != 1 ||
			d[0].Status != "failed" || d[0].RequestID != chain+"-1" || d[0].Summary != "+1 unit" || d[0].Seq != 1 {
			t.Fatalf("chain %s after reopen: state %q outcomes %q decisions %+v %v", chain, st["dra"], o["dra"], d, err)
		}
	}
}

// A write that fails on its own (Finish of a record that is not there, an
// outcomes function that panics) fails alone; the others of its batch are
// committed.
func TestOneFailingWriteDoesNotFailItsBatch(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "ebb.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	release := holdWriter(t, s)
	var wg sync.WaitGroup
	var okErr, missingErr, panicErr error
	wg.Add(3)
	go func() {
		defer wg.Done()
		okErr = s.Commit("ok", ChainState{"dra": []byte("1")}, &Record{Summary: "x"}, nil)
	}()
	go func() {
		defer wg.Done()
		missingErr = s.Finish("ok", nil, Record{Seq: 99, Status: "realized"})
	}()
	go func() {
		defer wg.Done()
		panicErr = s.Commit("bad", ChainState{"dra": []byte("1")}, &Record{Summary: "x"}, func(uint64) ChainState { panic("bug") })
	}()
	waitQueued(t, s, 3)
	release()
	wg.Wait()
	if okErr != nil || missingErr == nil || panicErr == nil || IsDamaged(panicErr) {
		t.Fatalf("ok %v; missing record %v; panicking outcomes %v", okErr, missingErr, panicErr)
	}
	if d, _ := s.Decisions("ok", 5); len(d) != 1 {
		t.Fatalf("the good commit left %d records", len(d))
	}
	if st, _ := s.LoadState("bad"); len(st) != 0 {
		t.Fatalf("the failed commit saved state %q", st)
	}
	// The store works on.
	if err := s.Commit("bad", ChainState{"dra": []byte("2")}, &Record{Summary: "x"}, nil); err != nil {
		t.Fatal(err)
	}
}

// Writes after Close fail; Close does not wait for callers.
func TestWriteAfterCloseFails(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "ebb.db"))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := s.Commit("a", ChainState{}, &Record{}, nil); !errors.Is(err, errClosed) {
		t.Fatalf("commit after close: %v", err)
	}
}
