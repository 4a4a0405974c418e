package state

import (
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// BenchmarkRound is the store's part of one tick of every chain: each chain
// commits its state and decision, then finishes the round, concurrently as
// the runner's workers do. One op is one round of all chains.
//
//   - baseline: the way before group commits, three transactions per chain
//     and round (Commit, SaveRound, Update), one transaction per write;
//   - ungrouped: Commit and Finish, one transaction per write;
//   - grouped: Commit and Finish with group commits.
//
// tx/round counts bbolt write transactions; each ends in two fdatasyncs
// (the pages, then the meta page: bbolt's tx.Commit), reported as
// fsync/round. The file is on the machine's disk (TMPDIR), as in production.
//
//	go test ./core/state -run XXX -bench BenchmarkRound -benchtime 200x
func BenchmarkRound(b *testing.B) {
	for _, chains := range []int{1, 100} {
		for _, mode := range []string{"baseline", "ungrouped", "grouped"} {
			b.Run(fmt.Sprintf("chains=%d/%s", chains, mode), func(b *testing.B) {
				benchRound(b, chains, mode)
			})
		}
	}
}

func benchRound(b *testing.B, chains int, mode string) {
	s, err := Open(filepath.Join(b.TempDir(), "ebb.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if mode != "grouped" {
		s.w.stop()
		s.w = startWriter(s, 1)
	}
	names := make([]string, chains)
	for c := range names {
		names[c] = fmt.Sprintf("chain-%04d", c)
	}
	// A realistic record and state: a scale-up with its decision and
	// two evaluators' steps, a few hundred bytes of evaluator state.
	decision := []byte(`{"desired_capacity":24,"add":[{"unit_id":"u-17","size":4}],"reason":"backlog of 40 tasks for 1m0s beyond 20 threads"}`)
	st := ChainState{"dra": make([]byte, 600), "guard": []byte(`{"vetoes":0}`)}
	oneRound := func(chain string, at time.Time) error {
		r := &Record{At: at, Target: "group-a", Direction: "up", Summary: "+1 unit (u-17)", Status: "realized",
			Reason: "backlog of 40 tasks for 1m0s beyond 20 threads", DemandTasks: 60, CurrentCapacity: 20, DesiredCapacity: 24,
			Decision: decision, Steps: []Step{{Evaluator: "dra", Summary: "+1 unit"}, {Evaluator: "guard", Summary: "+1 unit"}}}
		pending := func(uint64) ChainState {
			return ChainState{"dra": []byte(`{"request_id":"x","realizer_error":"pending"}`)}
		}
		if err := s.Commit(chain, st, r, pending); err != nil {
			return err
		}
		r.RequestID = fmt.Sprintf("%s-%d", chain, r.Seq)
		done := ChainState{"dra": []byte(`{"request_id":"x"}`)}
		if mode == "baseline" {
			if err := s.SaveRound(chain, nil, done); err != nil {
				return err
			}
			return s.Update(chain, *r)
		}
		return s.Finish(chain, done, *r)
	}
	start := s.w.txs.Load()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		at := t0.Add(time.Duration(i) * time.Second)
		var wg sync.WaitGroup
		errs := make(chan error, chains)
		for _, chain := range names {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := oneRound(chain, at); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		select {
		case err := <-errs:
			b.Fatal(err)
		default:
		}
	}
	b.StopTimer()
	tx := float64(s.w.txs.Load()-start) / float64(b.N)
	b.ReportMetric(tx, "tx/round")
	b.ReportMetric(2*tx, "fsync/round")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(chains), "ns/chain-round")
}
