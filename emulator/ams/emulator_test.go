package ams

import (
	"context"
	"encoding/json"
	"github.com/ebbscale/ebb/internal/amoro"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)

func newVirtual(t *testing.T, opts Options) (*Emulator, *VirtualClock) {
	t.Helper()
	clk := NewVirtualClock(t0)
	opts.Clock = clk
	e, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if v := e.InvariantViolations(); len(v) > 0 {
			t.Errorf("invariant violations: %v", v)
		}
	})
	return e, clk
}

func stats(t *testing.T, e *Emulator) GroupStats {
	t.Helper()
	s, err := e.Stats("")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func advance(t *testing.T, e *Emulator, d time.Duration) {
	t.Helper()
	must(t, e.Advance(d))
}

// Planning happens only when an optimizer polls (amoro.md §2.2): with no
// optimizer, submitted work stays a pending table and no task exists.
func TestPlanningOnlyOnPoll(t *testing.T) {
	e, _ := newVirtual(t, Options{})
	must(t, e.Submit("", "orders", time.Minute, time.Minute, time.Minute))
	advance(t, e, time.Hour)
	s := stats(t, e)
	if s.PendingTables != 1 || s.Planned != 0 {
		t.Fatalf("without optimizers: pending tables %d, planned %d; want 1 and 0", s.PendingTables, s.Planned)
	}
	tok, err := e.Authenticate(RegisterInfo{ResourceID: "u1", ThreadCount: 2, GroupName: DefaultGroup})
	must(t, err)
	if s := stats(t, e); s.Planned != 0 {
		t.Fatalf("registering alone planned %d tasks", s.Planned)
	}
	task, err := e.PollTask(tok, 0)
	must(t, err)
	if task == nil {
		t.Fatal("first poll got no task")
	}
	s = stats(t, e)
	if s.Planned != 2 || s.Scheduled != 1 || s.PendingTables != 0 || s.ExecutingTables != 1 {
		t.Fatalf("after poll: %+v", s)
	}
	if d, err := task.Duration(); err != nil || d != time.Minute {
		t.Fatalf("task duration %v, %v", d, err)
	}
}

// The full remote lifecycle PLANNED -> SCHEDULED -> ACKED -> SUCCESS, then
// commit and the table back to idle.
func TestRemoteLifecycle(t *testing.T) {
	e, _ := newVirtual(t, Options{})
	must(t, e.Submit("", "t", 10*time.Second))
	tok, err := e.Authenticate(RegisterInfo{ResourceID: "u1", ThreadCount: 1, GroupName: DefaultGroup})
	must(t, err)
	task, err := e.PollTask(tok, 0)
	must(t, err)
	if err := e.AckTask(tok, 0, TaskID{ProcessID: task.TaskID.ProcessID, TaskID: 99}); err == nil {
		t.Fatal("ack of an unknown task succeeded")
	}
	must(t, e.AckTask(tok, 0, task.TaskID))
	if s := stats(t, e); s.Acked != 1 {
		t.Fatalf("after ack: %+v", s)
	}
	advance(t, e, 10*time.Second)
	must(t, e.CompleteTask(tok, TaskResult{TaskID: task.TaskID, ThreadID: 0}))
	s := stats(t, e)
	if s.Success != 1 || s.IdleTables != 1 || s.Acked != 0 {
		t.Fatalf("after complete: %+v", s)
	}
	// A repeated completion is stale and ignored (#4261).
	must(t, e.CompleteTask(tok, TaskResult{TaskID: task.TaskID, ThreadID: 0}))
}

func TestAckTimeoutResetsToPlanned(t *testing.T) {
	e, _ := newVirtual(t, Options{TaskAckTimeout: 30 * time.Second, HeartbeatTimeout: time.Hour})
	must(t, e.Submit("", "t", time.Second))
	tok, err := e.Authenticate(RegisterInfo{ThreadCount: 1, GroupName: DefaultGroup})
	must(t, err)
	task, err := e.PollTask(tok, 0)
	must(t, err)
	advance(t, e, 29*time.Second)
	if s := stats(t, e); s.Scheduled != 1 {
		t.Fatalf("before the ack timeout: %+v", s)
	}
	advance(t, e, time.Second)
	if s := stats(t, e); s.Planned != 1 || s.Scheduled != 0 {
		t.Fatalf("after the ack timeout: %+v", s)
	}
	if err := e.AckTask(tok, 0, task.TaskID); err == nil {
		t.Fatal("ack of a reset task succeeded")
	}
}

// A silent optimizer expires heartbeat-timeout after its last touch and its
// tasks go back to PLANNED (amoro.md §2.4); its token is then unknown.
func TestHeartbeatExpiry(t *testing.T) {
	e, _ := newVirtual(t, Options{HeartbeatTimeout: time.Minute})
	must(t, e.Submit("", "t", time.Hour, time.Hour))
	tok, err := e.Authenticate(RegisterInfo{ResourceID: "u1", ThreadCount: 2, GroupName: DefaultGroup})
	must(t, err)
	for th := int32(0); th < 2; th++ {
		task, err := e.PollTask(tok, th)
		must(t, err)
		must(t, e.AckTask(tok, th, task.TaskID))
	}
	advance(t, e, 40*time.Second)
	must(t, e.Touch(tok))
	advance(t, e, 59*time.Second)
	if s := stats(t, e); s.Optimizers != 1 || s.Acked != 2 {
		t.Fatalf("touched 59s ago: %+v", s)
	}
	advance(t, e, time.Second)
	s := stats(t, e)
	if s.Optimizers != 0 || s.Planned != 2 || s.Acked != 0 {
		t.Fatalf("after expiry: %+v", s)
	}
	if err := e.Touch(tok); !IsRetryAuth(err) {
		t.Fatalf("touch after expiry: %v, want PluginRetryAuthException", err)
	}
}

func TestAuthenticateRejects(t *testing.T) {
	e, _ := newVirtual(t, Options{HeartbeatTimeout: time.Minute})
	cases := []struct {
		name string
		info RegisterInfo
		exc  string
	}{
		{"heartbeat not below timeout", RegisterInfo{ThreadCount: 1, GroupName: DefaultGroup, Properties: map[string]string{HeartbeatIntervalProperty: "60000"}}, ExcForbidden},
		{"unknown group", RegisterInfo{ThreadCount: 1, GroupName: "nope"}, ExcObjectNotExists},
		{"no threads", RegisterInfo{GroupName: DefaultGroup}, ExcIllegalArgument},
		{"bad interval", RegisterInfo{ThreadCount: 1, GroupName: DefaultGroup, Properties: map[string]string{HeartbeatIntervalProperty: "soon"}}, ExcIllegalArgument},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.Authenticate(c.info)
			se, ok := err.(*ServiceError)
			if !ok || se.Exception != c.exc {
				t.Fatalf("got %v, want %s", err, c.exc)
			}
		})
	}
}

// In-process optimizers: work spreads over them, runs for its duration, and
// a killed one holds its tasks until expiry, then another picks them up.
func TestVirtualOptimizersKillAndRescue(t *testing.T) {
	e, _ := newVirtual(t, Options{HeartbeatTimeout: time.Minute, MaxPlanningParallelism: 4})
	for _, tbl := range []string{"a", "b"} {
		must(t, e.Submit("", tbl, 5*time.Minute, 5*time.Minute))
	}
	_, err := e.StartOptimizer("", "u1", 2)
	must(t, err)
	_, err = e.StartOptimizer("", "u2", 2)
	must(t, err)
	if s := stats(t, e); s.Acked != 4 || s.IdleOptimizers != 0 {
		t.Fatalf("after start: %+v", s)
	}
	advance(t, e, time.Minute)
	must(t, e.KillOptimizer("u2"))
	// u2's last heartbeat was at 1m (interval 10s), so it expires at 2m
	// and its two tasks go back to PLANNED.
	advance(t, e, 59*time.Second)
	if s := stats(t, e); s.Optimizers != 2 || s.Acked != 4 {
		t.Fatalf("before expiry: %+v", s)
	}
	advance(t, e, time.Second)
	if s := stats(t, e); s.Optimizers != 1 || s.Acked != 2 || s.Planned != 2 {
		t.Fatalf("at expiry: %+v", s)
	}
	// u1 finishes at 5m and takes the rescued tasks, done at 10m.
	advance(t, e, 3*time.Minute)
	if s := stats(t, e); s.Success != 2 || s.Acked != 2 || s.Planned != 0 {
		t.Fatalf("u1 took over: %+v", s)
	}
	advance(t, e, 5*time.Minute)
	s := stats(t, e)
	if s.Success != 4 || s.Optimizers != 1 || s.IdleTables != 2 {
		t.Fatalf("after rescue: %+v", s)
	}
}

// Drain stops polling, finishes held tasks, then the optimizer exits and
// AMS forgets it heartbeat-timeout later.
func TestVirtualDrain(t *testing.T) {
	e, _ := newVirtual(t, Options{HeartbeatTimeout: time.Minute})
	must(t, e.Submit("", "t", time.Minute, time.Minute, time.Minute))
	_, err := e.StartOptimizer("", "u1", 2)
	must(t, err)
	must(t, e.DrainOptimizer("u1"))
	advance(t, e, time.Minute)
	s := stats(t, e)
	if s.Success != 2 || s.Planned != 1 || s.Acked != 0 {
		t.Fatalf("after drain: %+v", s)
	}
	if s.Optimizers != 1 {
		t.Fatalf("a drained optimizer is forgotten only on heartbeat expiry: %+v", s)
	}
	advance(t, e, time.Minute)
	if s := stats(t, e); s.Optimizers != 0 || s.Planned != 1 {
		t.Fatalf("after expiry: %+v", s)
	}
	if err := e.DrainOptimizer("nobody"); err == nil {
		t.Fatal("draining an unknown unit succeeded")
	}
}

func TestFailedTasksRetryThenFailProcess(t *testing.T) {
	e, _ := newVirtual(t, Options{MaxTaskRetries: 1})
	must(t, e.Submit("", "t", time.Second, time.Second))
	tok, err := e.Authenticate(RegisterInfo{ThreadCount: 1, GroupName: DefaultGroup})
	must(t, err)
	run := func(msg string) {
		task, err := e.PollTask(tok, 0)
		must(t, err)
		if task == nil {
			t.Fatal("no task")
		}
		must(t, e.AckTask(tok, 0, task.TaskID))
		must(t, e.CompleteTask(tok, TaskResult{TaskID: task.TaskID, ErrorMessage: msg}))
	}
	run("boom")
	if s := stats(t, e); s.Planned != 2 || s.Failed != 0 {
		t.Fatalf("a failed task is retried: %+v", s)
	}
	run("boom again")
	s := stats(t, e)
	if s.Failed != 1 || s.Canceled != 1 || s.IdleTables != 1 {
		t.Fatalf("after retries ran out: %+v", s)
	}
}

// A trace on a virtual clock runs the same way every time.
func TestTraceDeterministic(t *testing.T) {
	csv := "submit,duration,table\n0,60,a\n0,60,a\n10,30,\n20,90,b\n"
	rows, err := LoadTrace(strings.NewReader(csv))
	must(t, err)
	run := func() (string, time.Time) {
		e, clk := newVirtual(t, Options{Seed: 7})
		must(t, e.ScheduleTrace(rows))
		_, err := e.StartOptimizer("", "u1", 2)
		must(t, err)
		var last time.Time
		for i := 0; i < 1000; i++ {
			at, ok, err := e.Step()
			must(t, err)
			if !ok {
				break
			}
			last = at
			if s := stats(t, e); s.Success == 4 {
				break
			}
		}
		h := e.Handler()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", APIPrefix+"/optimize/optimizerGroups/default/tables?pageSize=50", nil))
		_ = clk
		return rec.Body.String(), last
	}
	a, endA := run()
	b, endB := run()
	if a != b || !endA.Equal(endB) {
		t.Fatalf("two runs differ:\n%s\n%s", a, b)
	}
	// Two threads: a's two tasks run 0-60s; the row at 10s waits until 60s
	// (60-90s), b's arrives at 20s and runs 60-150s.
	if want := t0.Add(150 * time.Second); !endA.Equal(want) {
		t.Fatalf("last task finished at %s, want %s", endA, want)
	}
}

func TestLoadTrace(t *testing.T) {
	cases := []struct {
		name, in, err string
		rows          int
	}{
		{"minimal", "submit,duration\n0,1\n1.5,2\n", "", 2},
		{"all columns", "group,table,submit,duration\ndefault,a,0,1\n", "", 1},
		{"empty", "", "empty input", 0},
		{"no duration", "submit\n1\n", "missing required column \"duration\"", 0},
		{"unknown column", "submit,duration,size\n0,1,2\n", "unknown column", 0},
		{"negative", "submit,duration\n0,-1\n", "line 2: duration", 0},
		{"not a number", "submit,duration\nsoon,1\n", "line 2: submit", 0},
		{"ragged", "submit,duration\n0\n", "wrong number of fields", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rows, err := LoadTrace(strings.NewReader(c.in))
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("got %v, want error containing %q", err, c.err)
				}
				return
			}
			must(t, err)
			if len(rows) != c.rows {
				t.Fatalf("got %d rows, want %d", len(rows), c.rows)
			}
		})
	}
}

type envelopeT struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Result  json.RawMessage `json:"result"`
}

func getJSON(t *testing.T, h http.Handler, target string, mod func(*http.Request)) envelopeT {
	t.Helper()
	req := httptest.NewRequest("GET", target, nil)
	if mod != nil {
		mod(req)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("%s: HTTP %d", target, rec.Code)
	}
	var env envelopeT
	must(t, json.Unmarshal(rec.Body.Bytes(), &env))
	return env
}

// AMS refuses bad credentials with code 403 inside HTTP 200 (amoro.md §4.1).
func TestRESTAuth(t *testing.T) {
	eTok, _ := newVirtual(t, Options{Auth: Auth{Type: AuthToken, APIKey: "key", Secret: "sec"}})
	eBasic, _ := newVirtual(t, Options{Auth: Auth{Type: AuthBasic, Username: "admin", Password: "pw"}})
	path := APIPrefix + "/optimize/optimizerGroups/default/optimizers"
	dateSig, err := amoro.Signature("key", "sec", nil, t0, time.UTC)
	must(t, err)
	signed := func(secret string) string {
		q := url.Values{"page": {"1"}, "pageSize": {"5"}, "apiKey": {"key"}}
		sig, err := amoro.Signature("key", secret, q, t0, time.UTC)
		must(t, err)
		q.Set("signature", sig)
		return path + "?" + q.Encode()
	}
	cases := []struct {
		name   string
		e      *Emulator
		target string
		mod    func(*http.Request)
		code   int
	}{
		{"token ok", eTok, signed("sec"), nil, 200},
		{"token wrong secret", eTok, signed("other"), nil, 403},
		{"token missing", eTok, path, nil, 403},
		{"token date signature", eTok, path + "?apiKey=key&signature=" + dateSig, nil, 200},
		{"health whitelisted", eTok, APIPrefix + "/health/status", nil, 200},
		{"basic ok", eBasic, path, func(r *http.Request) { r.SetBasicAuth("admin", "pw") }, 200},
		{"basic wrong", eBasic, path, func(r *http.Request) { r.SetBasicAuth("admin", "x") }, 403},
		{"basic missing", eBasic, path, nil, 403},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if env := getJSON(t, c.e.Handler(), c.target, c.mod); env.Code != c.code {
				t.Fatalf("code %d (%s), want %d", env.Code, env.Message, c.code)
			}
		})
	}
}

func TestMetricsExposition(t *testing.T) {
	e, _ := newVirtual(t, Options{Groups: []GroupConfig{{Name: "g1"}, {Name: "g2"}}})
	must(t, e.Submit("g1", "t", time.Minute, time.Minute, time.Minute))
	_, err := e.StartOptimizer("g1", "u1", 2)
	must(t, err)
	rec := httptest.NewRecorder()
	e.MetricsHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`amoro_optimizer_group_pending_tasks{group="g1"} 1`,
		`amoro_optimizer_group_executing_tasks{group="g1"} 2`,
		`amoro_optimizer_group_threads{group="g1"} 2`,
		`amoro_optimizer_group_threads{group="g2"} 0`,
		`# TYPE amoro_optimizer_group_planing_tables gauge`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("exposition lacks %q:\n%s", want, body)
		}
	}
}

// RunOptimizer over real HTTP on the wall clock: two processes share the
// work, and cancelling one while it holds tasks lets it finish them.
func TestRunOptimizerRealClock(t *testing.T) {
	e, err := New(Options{})
	must(t, err)
	srv := httptest.NewServer(e.Handler())
	defer srv.Close()
	var durations []time.Duration
	for i := 0; i < 8; i++ {
		durations = append(durations, 30*time.Millisecond)
	}
	must(t, e.Submit("", "t", durations...))

	ctx1, cancel1 := context.WithCancel(context.Background())
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	done := make(chan error, 2)
	for i, ctx := range []context.Context{ctx1, ctx2} {
		go func(i int, ctx context.Context) {
			done <- RunOptimizer(ctx, OptimizerOptions{
				BaseURL: srv.URL, Group: DefaultGroup, UnitID: []string{"u1", "u2"}[i], Threads: 2,
				HeartbeatInterval: 50 * time.Millisecond, PollInterval: 5 * time.Millisecond,
			})
		}(i, ctx)
	}
	waitFor(t, "a task running on u1", func() bool { return busyUnit(e, "u1") })
	cancel1()
	must(t, <-done)
	waitFor(t, "all tasks done", func() bool { s, _ := e.Stats(""); return s.Success == 8 })
	s, _ := e.Stats("")
	if s.Failed+s.Canceled != 0 {
		t.Fatalf("%+v", s)
	}
	cancel2()
	must(t, <-done)
}

func busyUnit(e *Emulator, unit string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, o := range e.optimizers {
		if o.resourceID != unit {
			continue
		}
		for _, p := range o.group.active {
			for _, tk := range p.tasks {
				if tk.token == o.token && tk.status == TaskAcked {
					return true
				}
			}
		}
	}
	return false
}

// waitFor polls a condition on the wall clock; the deadline only bounds a
// broken test, it asserts nothing about speed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestOptimizerAPIOverHTTP(t *testing.T) {
	e, _ := newVirtual(t, Options{})
	srv := httptest.NewServer(e.Handler())
	defer srv.Close()
	c := NewOptimizerClient(srv.URL, nil)
	ctx := context.Background()
	must(t, e.Submit("", "t", time.Second))
	tok, err := c.Authenticate(ctx, RegisterInfo{ResourceID: "u9", ThreadCount: 1, GroupName: DefaultGroup})
	must(t, err)
	task, err := c.PollTask(ctx, tok, 0)
	must(t, err)
	if task == nil {
		t.Fatal("no task")
	}
	must(t, c.AckTask(ctx, tok, 0, task.TaskID))
	must(t, c.CompleteTask(ctx, tok, TaskResult{TaskID: task.TaskID}))
	if next, err := c.PollTask(ctx, tok, 0); err != nil || next != nil {
		t.Fatalf("empty queue poll: %v %v", next, err)
	}
	if err := c.Touch(ctx, "bogus"); !IsRetryAuth(err) {
		t.Fatalf("touch with a bogus token: %v", err)
	}
	resp, err := http.Post(srv.URL+OptimizerAPIPrefix+"/touch", "application/json", strings.NewReader(`{"nope":1}`))
	must(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 400 || !strings.Contains(string(b), "unknown field") {
		t.Fatalf("bad body: HTTP %d %s", resp.StatusCode, b)
	}
	if s := stats(t, e); s.Success != 1 {
		t.Fatalf("%+v", s)
	}
}
