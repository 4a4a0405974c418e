package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ebbscale/ebb/core/config"
	"github.com/ebbscale/ebb/core/state"
)

// editedChain loads a chain of test-evaluator then test-guard (no scale-down
// 9-17 UTC) over the file realizer, failing every failEvery-th call.
func (e *env) editedChain(failEvery int) *config.Config {
	e.t.Helper()
	src := fmt.Sprintf(`
plugin_dir = %q
collector "snap" {
  plugin = "test-collector"
  config {
    file = %q
  }
}
evaluator "count" {
  plugin = "test-evaluator"
}
evaluator "guard" {
  plugin = "test-guard"
}
realizer "files" {
  plugin = "test-realizer"
  config {
    dir        = %q
    fail-every = %d
  }
}
chain "a" {
  collectors = [collector.snap]
  evaluators = [evaluator.count, evaluator.guard]
  realizer   = realizer.files
  target     = "t1"
  interval   = "1m"
  timeout    = "5s"
  max_snapshot_age = "1000h"
}
`, e.pluginDir, e.snap, e.units, failEvery)
	return e.loadHCL(src)
}

// stepper runs one tick at a time on a virtual clock, as a running chain
// would, without the scheduler's timing.
type stepper struct {
	r   *Runner
	l   *chainLoop
	now time.Time
	// last is the last evaluation that reached a decision, in full (the
	// chain itself keeps only what the API shows).
	last *Evaluation
}

func (e *env) stepper(cfg *config.Config, store *state.Store, start time.Time) *stepper {
	s := &stepper{now: start}
	s.r = New(cfg, Options{Host: e.host, Store: store, Metrics: e.metrics, Clock: func() time.Time { return s.now },
		OnEvaluation: func(ev *Evaluation, _ error) {
			if ev != nil && ev.Record.Status != "" {
				s.last = ev
			}
		}})
	ch := cfg.Chain("a")
	s.r.mu.Lock()
	s.l = &chainLoop{cfg: ch, plugins: s.r.pluginsLocked(cfg, ch)}
	s.r.chains["a"] = s.l
	s.r.mu.Unlock()
	return s
}

func (s *stepper) tick(t *testing.T, d time.Duration) *Evaluation {
	t.Helper()
	s.now = s.now.Add(d)
	s.r.tick(context.Background(), s.l)
	return s.last
}

func countState(t *testing.T, store *state.Store) evalStateView {
	t.Helper()
	st, err := store.LoadState("a")
	if err != nil {
		t.Fatal(err)
	}
	var v evalStateView
	if err := json.Unmarshal(st["count"], &v); err != nil {
		t.Fatalf("state of count: %v (%s)", err, st["count"])
	}
	return v
}

// evalStateView is the part of test-evaluator's state a test reads.
type evalStateView struct {
	Evaluations int      `json:"evaluations"`
	Outcome     []string `json:"outcome"`
}

// A later evaluator's veto reaches the earlier one through the runner on its
// next round, the decision log and the API show who changed what, and the
// metrics count the veto.
func TestVetoIsToldToTheEarlierEvaluator(t *testing.T) {
	e := newEnv(t)
	store := openStore(t, filepath.Join(e.dir, "ebb.db"))
	defer store.Close()
	s := e.stepper(e.editedChain(0), store, time.Date(2026, 3, 2, 7, 0, 0, 0, time.UTC))

	e.setDemand(`{"tasks": 2}`)
	if ev := s.tick(t, time.Minute); ev.Record.Status != "realized" || len(e.unitIDs()) != 2 {
		t.Fatalf("scale-up: %+v units %v", ev.Record, e.unitIDs())
	}
	e.setDemand(`{"tasks": 0}`)
	s.now = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC) // business hours
	ev := s.tick(t, 0)
	if !ev.Decision.Vetoed || len(ev.Record.Steps) != 2 || ev.Record.Steps[0].Summary != "drain u-1,u-2" ||
		ev.Record.Steps[1].Changes != "vetoed" || !ev.Record.Steps[1].Vetoed {
		t.Fatalf("vetoed round: decision %q steps %+v", ev.Decision.Summary(), ev.Record.Steps)
	}
	if o := ev.Outcomes["count"]; len(o.Actions) != 2 || o.Actions[0].String() != "drain u-1: dropped by guard (vetoed: no scale-down in business hours (09-17 UTC): drain u-1,u-2)" {
		t.Fatalf("outcome of count: %+v", o)
	}
	s.tick(t, time.Minute)
	if got := countState(t, store).Outcome; len(got) != 2 || !strings.Contains(got[1], "drain u-2: dropped by guard") {
		t.Fatalf("count was told %q of its vetoed drain", got)
	}
	if got := testutil.ToFloat64(e.metrics.Vetoes.WithLabelValues("a", "count", "guard")); got != 2 {
		t.Errorf("vetoes of count by guard = %v, want 2", got)
	}

	srv := httptest.NewServer(s.r.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/v1/chains/a?n=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`"evaluator": "count"`, `"evaluator": "guard"`, `"changes": "vetoed"`, `"outcomes"`, `"result": "dropped"`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/v1/chains/a lacks %s:\n%s", want, body)
		}
	}

	// After business hours the drain goes through and is reported done.
	s.now = time.Date(2026, 3, 2, 18, 0, 0, 0, time.UTC)
	if ev := s.tick(t, 0); ev.Decision.Vetoed || ev.Record.Status != "realized" {
		t.Fatalf("after hours: %q %s", ev.Decision.Summary(), ev.Record.Status)
	}
	s.tick(t, time.Minute)
	if got := countState(t, store).Outcome; len(got) != 2 || got[0] != "drain u-1: done" {
		t.Fatalf("count was told %q of its realized drain", got)
	}
}

// A failed realize is reported failed, with the realizer's error, and the
// staleness rule's cut as suppressed.
func TestFailureAndSuppressionAreTold(t *testing.T) {
	e := newEnv(t)
	store := openStore(t, filepath.Join(e.dir, "ebb.db"))
	defer store.Close()
	s := e.stepper(e.editedChain(1), store, time.Date(2026, 3, 2, 20, 0, 0, 0, time.UTC))
	e.setDemand(`{"tasks": 1}`)
	if ev := s.tick(t, time.Minute); ev.Record.Status != "failed" {
		t.Fatalf("realize that fails: %+v", ev.Record)
	}
	s.tick(t, time.Minute)
	if got := countState(t, store).Outcome; len(got) != 1 || !strings.HasPrefix(got[0], "add u-1: failed by realizer (") || !strings.Contains(got[0], "call 1 fails") {
		t.Fatalf("count was told %q of its failed add", got)
	}
}
