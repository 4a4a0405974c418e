package collectorams

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ebbscale/ebb/emulator/ams"
	"github.com/ebbscale/ebb/sdk"
)

var t0 = time.Date(2026, 9, 1, 12, 0, 0, 0, time.UTC)

type rig struct {
	e       *ams.Emulator
	clk     *ams.VirtualClock
	rest    *httptest.Server
	metrics *httptest.Server
	c       *Collector
}

func newRig(t *testing.T, opts ams.Options) *rig {
	t.Helper()
	clk := ams.NewVirtualClock(t0)
	opts.Clock = clk
	e, err := ams.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{e: e, clk: clk, rest: httptest.NewServer(e.Handler()), metrics: httptest.NewServer(e.MetricsHandler())}
	t.Cleanup(r.rest.Close)
	t.Cleanup(r.metrics.Close)
	r.c = NewWithClock(clk.Now)
	return r
}

func (r *rig) configure(t *testing.T, extra map[string]any) {
	t.Helper()
	configure(t, r.c, map[string]any{"url": r.rest.URL, "metrics-url": r.metrics.URL + "/metrics", "timeout": "2s"}, extra)
}

// configure applies cfg with extra's keys set over it (nil deletes one).
func configure(t *testing.T, c *Collector, cfg, extra map[string]any) {
	t.Helper()
	for k, v := range extra {
		if v == nil {
			delete(cfg, k)
			continue
		}
		cfg[k] = v
	}
	raw, _ := json.Marshal(cfg)
	if err := c.Configure(context.Background(), raw); err != nil {
		t.Fatal(err)
	}
}

func (r *rig) collect(t *testing.T, group string) sdk.Snapshot {
	t.Helper()
	s, err := r.c.Collect(context.Background(), sdk.Target{Chain: "c", Name: group})
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

// busyScene: two in-process optimizers busy on three tables, one remote
// optimizer holding a SCHEDULED task, work still planned, a pending table.
func busyScene(t *testing.T, r *rig) (remoteToken string) {
	t.Helper()
	must(t, r.e.Submit("default", "a", time.Minute, time.Minute, time.Minute, time.Minute, time.Minute, time.Minute))
	must(t, r.e.Submit("default", "b", 2*time.Minute, 2*time.Minute))
	_, err := r.e.StartOptimizer("default", "unit-1", 2)
	must(t, err)
	_, err = r.e.StartOptimizer("default", "unit-2", 1)
	must(t, err)
	tok, err := r.e.Authenticate(ams.RegisterInfo{ResourceID: "unit-3", ThreadCount: 4, GroupName: "default", StartTime: t0.UnixMilli()})
	must(t, err)
	task, err := r.e.PollTask(tok, 0)
	must(t, err)
	if task == nil {
		t.Fatal("remote optimizer got no task")
	}
	// Tables b and c stay pending: a poll plans only when no task is
	// PLANNED, and table a still has some.
	must(t, r.e.Submit("default", "c", time.Minute))
	return tok
}

func workerByUnit(s sdk.Snapshot, unit string) (sdk.Worker, bool) {
	for _, w := range s.Workers {
		if w.UnitID == unit {
			return w, true
		}
	}
	return sdk.Worker{}, false
}

func TestNormalSnapshot(t *testing.T) {
	r := newRig(t, ams.Options{})
	r.configure(t, nil)
	tok := busyScene(t, r)
	st, err := r.e.Stats("default")
	must(t, err)
	s := r.collect(t, "default")
	if !s.Complete {
		t.Fatalf("incomplete: %v", s.IncompleteReasons)
	}
	want := sdk.Demand{PlannedTasks: int64(st.Planned), ScheduledTasks: int64(st.Scheduled), RunningTasks: int64(st.Acked), PendingTables: int64(st.PendingTables),
		ServiceablePlannedTasks: int64(st.Planned), ServiceableKnown: true}
	if s.Demand != want {
		t.Fatalf("demand %+v, emulator says %+v", s.Demand, want)
	}
	if want.ScheduledTasks != 1 || want.RunningTasks != 3 || want.PlannedTasks != 2 || want.PendingTables != 2 {
		t.Fatalf("scene not as designed: %+v", want)
	}
	if len(s.Workers) != 3 {
		t.Fatalf("workers: %+v", s.Workers)
	}
	for _, c := range []struct {
		unit          string
		threads, busy int64
	}{{"unit-1", 2, 2}, {"unit-2", 1, 1}, {"unit-3", 4, 1}} {
		w, ok := workerByUnit(s, c.unit)
		if !ok {
			t.Fatalf("no worker for %s", c.unit)
		}
		if w.Threads != c.threads || w.BusyThreads != c.busy || !w.BusyKnown || w.State != sdk.WorkerRegistered {
			t.Errorf("%s: %+v", c.unit, w)
		}
		if !w.LastBusyAt.Equal(t0) {
			t.Errorf("%s: last busy %s, want %s", c.unit, w.LastBusyAt, t0)
		}
	}
	if w, _ := workerByUnit(s, "unit-3"); w.ID != WorkerID(tok) || strings.Contains(fmt.Sprint(s), tok) {
		t.Fatal("the optimizer token leaked into the snapshot")
	}
	if s.Metrics["amoro_optimizer_group_threads"] != 7 || s.Metrics["amoro_optimizer_group_pending_tasks"] != 3 || s.Metrics["amoro_optimizer_group_pending_tables"] != 2 {
		t.Fatalf("gauges: %v", s.Metrics)
	}

	// Later: unit-2's task finished at 1m; it stays idle (nothing is left
	// for it once unit-1 took the rest), and remembers when it was busy.
	must(t, r.e.Advance(90*time.Second))
	s = r.collect(t, "default")
	w, _ := workerByUnit(s, "unit-2")
	if !s.Complete || !w.BusyKnown {
		t.Fatalf("later snapshot: %v %+v", s.IncompleteReasons, w)
	}
	if w.BusyThreads == 0 && w.LastBusyAt.IsZero() {
		t.Fatalf("idle worker lost its last-busy time: %+v", w)
	}
}

// The group override wins over the target name; an unknown group is
// incomplete, not an empty group.
func TestGroupSelection(t *testing.T) {
	r := newRig(t, ams.Options{Groups: []ams.GroupConfig{{Name: "g1"}, {Name: "g2"}}})
	must(t, r.e.Submit("g2", "t", time.Minute))
	r.configure(t, map[string]any{"group": "g2"})
	if s := r.collect(t, "g1"); !s.Complete || s.Demand.PendingTables != 1 {
		t.Fatalf("override: %+v", s)
	}
	r.configure(t, nil)
	s := r.collect(t, "nope")
	if s.Complete || !hasReason(s, `optimizer group "nope" not found`) {
		t.Fatalf("unknown group: %+v", s)
	}
}

func hasReason(s sdk.Snapshot, sub string) bool {
	for _, r := range s.IncompleteReasons {
		if strings.Contains(r, sub) {
			return true
		}
	}
	return false
}

func TestAuth(t *testing.T) {
	cases := []struct {
		name   string
		server ams.Auth
		config map[string]any
		ok     bool
	}{
		{"signature accepted", ams.Auth{Type: ams.AuthToken, APIKey: "k1", Secret: "s3cr3t-value"},
			map[string]any{"auth-type": "token", "api-key": "k1", "secret": "s3cr3t-value"}, true},
		{"signature rejected", ams.Auth{Type: ams.AuthToken, APIKey: "k1", Secret: "s3cr3t-value"},
			map[string]any{"auth-type": "token", "api-key": "k1", "secret": "wrong-secret"}, false},
		{"signature missing", ams.Auth{Type: ams.AuthToken, APIKey: "k1", Secret: "s3cr3t-value"}, nil, false},
		{"basic accepted", ams.Auth{Type: ams.AuthBasic, Username: "admin", Password: "pa55word"},
			map[string]any{"auth-type": "basic", "username": "admin", "password": "pa55word"}, true},
		{"basic rejected", ams.Auth{Type: ams.AuthBasic, Username: "admin", Password: "pa55word"},
			map[string]any{"auth-type": "basic", "username": "admin", "password": "not-it"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t, ams.Options{Auth: c.server})
			must(t, r.e.Submit("default", "t", time.Minute))
			r.configure(t, c.config)
			s := r.collect(t, "default")
			if s.Complete != c.ok {
				t.Fatalf("complete=%v, reasons %v", s.Complete, s.IncompleteReasons)
			}
			if !c.ok {
				if !hasReason(s, "code 403") {
					t.Fatalf("want a 403 reason: %v", s.IncompleteReasons)
				}
				if len(s.Workers) != 0 {
					t.Fatalf("refused collection reported workers: %+v", s.Workers)
				}
			}
			out, _ := json.Marshal(s)
			for _, secret := range []string{"s3cr3t-value", "wrong-secret", "pa55word", "not-it", "signature="} {
				if strings.Contains(string(out), secret) {
					t.Fatalf("snapshot contains %q: %s", secret, out)
				}
			}
		})
	}
}

// Failures of the REST API or the exporter: incomplete with a reason naming
// the endpoint, never zeros dressed as data.
func TestFailures(t *testing.T) {
	optimizers := ams.APIPrefix + "/optimize/optimizerGroups/default/optimizers"
	cases := []struct {
		name   string
		fault  ams.Fault
		config map[string]any
		reason string
	}{
		{"code 403 in HTTP 200", ams.Fault{Path: optimizers, Kind: ams.FaultErrorCode, Code: 403, Message: "forbidden"}, nil, "optimizers: AMS error code 403: forbidden"},
		{"code 500 in HTTP 200", ams.Fault{Path: optimizers, Kind: ams.FaultErrorCode, Code: 500, Message: "NPE"}, nil, "optimizers: AMS error code 500: NPE"},
		{"HTTP 503", ams.Fault{Path: optimizers, Kind: ams.FaultHTTPStatus, Code: 503}, nil, "optimizers: HTTP 503"},
		{"malformed JSON", ams.Fault{Path: optimizers, Kind: ams.FaultMalformedJSON}, nil, "optimizers: malformed JSON"},
		{"timeout", ams.Fault{Path: optimizers, Kind: ams.FaultHang}, map[string]any{"timeout": "200ms"}, "optimizers: timed out"},
		{"missing page", ams.Fault{Path: optimizers, Kind: ams.FaultEmptyPages}, map[string]any{"page-size": 1}, "optimizers: missing page 2"},
		{"task list 500", ams.Fault{Path: ams.APIPrefix + "/tables/", Kind: ams.FaultErrorCode, Code: 500, Message: "boom"}, nil, "task lists: GET /tables/catalogs/"},
		{"metrics HTTP 500", ams.Fault{Path: "/metrics", Kind: ams.FaultHTTPStatus, Code: 500}, nil, "/metrics: HTTP 500"},
		{"metrics garbage", ams.Fault{Path: "/metrics", Kind: ams.FaultMalformedJSON}, nil, "no amoro_optimizer_group_* series"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t, ams.Options{})
			busyScene(t, r)
			r.configure(t, c.config)
			r.e.InjectFault(c.fault)
			s := r.collect(t, "default")
			if s.Complete || !hasReason(s, c.reason) {
				t.Fatalf("want incomplete with %q, got complete=%v %v", c.reason, s.Complete, s.IncompleteReasons)
			}
		})
	}
}

func TestMetricsDown(t *testing.T) {
	r := newRig(t, ams.Options{})
	busyScene(t, r)
	r.metrics.Close()
	r.configure(t, nil)
	s := r.collect(t, "default")
	if s.Complete || !hasReason(s, r.metrics.URL+"/metrics") {
		t.Fatalf("metrics down: complete=%v %v", s.Complete, s.IncompleteReasons)
	}
	// What REST could tell is still reported.
	if s.Demand.RunningTasks != 3 || s.Demand.PlannedTasks != 2 || s.Demand.PendingTables != 2 || len(s.Workers) != 3 {
		t.Fatalf("REST part lost: %+v", s)
	}
}

// An optimizer AMS has not expired yet but whose heartbeat is older than the
// configured timeout is stale.
func TestStaleHeartbeat(t *testing.T) {
	r := newRig(t, ams.Options{HeartbeatTimeout: 5 * time.Minute})
	r.configure(t, map[string]any{"heartbeat-timeout": "1m"})
	tok, err := r.e.Authenticate(ams.RegisterInfo{ResourceID: "quiet", ThreadCount: 1, GroupName: "default"})
	must(t, err)
	_, err = r.e.StartOptimizer("default", "chatty", 1)
	must(t, err)
	must(t, r.e.Advance(50*time.Second))
	must(t, r.e.Touch(tok))
	must(t, r.e.Advance(50*time.Second))
	s := r.collect(t, "default")
	if w, _ := workerByUnit(s, "quiet"); w.State != sdk.WorkerRegistered {
		t.Fatalf("touched 50s ago: %+v", w)
	}
	must(t, r.e.Advance(30*time.Second))
	s = r.collect(t, "default")
	if w, _ := workerByUnit(s, "quiet"); w.State != sdk.WorkerStale {
		t.Fatalf("touched 80s ago: %+v", w)
	}
	if w, _ := workerByUnit(s, "chatty"); w.State != sdk.WorkerRegistered {
		t.Fatalf("heartbeating optimizer: %+v", w)
	}
	if s.Metrics["ams_stale_optimizers"] != 1 {
		t.Fatalf("metrics: %v", s.Metrics)
	}
}

// When the task lists cannot all be read within max-task-calls, busy threads
// are unknown, not zero, and demand comes from the gauges.
func TestTaskCallBudget(t *testing.T) {
	r := newRig(t, ams.Options{})
	busyScene(t, r)
	r.configure(t, map[string]any{"max-task-calls": 2})
	s := r.collect(t, "default")
	if !s.Complete {
		t.Fatalf("a spent budget is not a failure: %v", s.IncompleteReasons)
	}
	for _, w := range s.Workers {
		if w.BusyKnown {
			t.Fatalf("busy known without reading every task list: %+v", w)
		}
	}
	if s.Demand.PlannedTasks != 3 || s.Demand.ScheduledTasks != 0 || s.Demand.RunningTasks != 3 {
		t.Fatalf("gauge demand: %+v", s.Demand)
	}
	if s.Metrics["ams_task_list_calls"] != 2 {
		t.Fatalf("calls: %v", s.Metrics["ams_task_list_calls"])
	}
	// Without gauges either, task demand is unknown.
	r.configure(t, map[string]any{"max-task-calls": 0, "metrics-url": nil})
	s = r.collect(t, "default")
	if s.Complete || !hasReason(s, "task demand unknown") || s.Demand.PendingTables != 2 {
		t.Fatalf("no gauges, no lists: %+v", s)
	}
}

func TestConfigure(t *testing.T) {
	cases := []struct {
		name string
		cfg  string
		err  string
	}{
		{"minimal", `{"url":"http://ams:19090"}`, ""},
		{"no url", `{}`, "url is required"},
		{"bad url", `{"url":"ams:19090"}`, "want an http or https URL"},
		{"credentials in url", `{"url":"http://u:p@ams"}`, "credentials in the URL"},
		{"unknown key", `{"url":"http://ams","pasword":"x"}`, "unknown field"},
		{"token without secret", `{"url":"http://ams","auth-type":"token","api-key":"k"}`, "needs api-key and secret"},
		{"basic without password", `{"url":"http://ams","auth-type":"basic","username":"u"}`, "needs username and password"},
		{"bad auth type", `{"url":"http://ams","auth-type":"jwt"}`, "want none, token or basic"},
		{"bad duration", `{"url":"http://ams","timeout":"soon"}`, "invalid duration"},
		{"negative calls", `{"url":"http://ams","max-task-calls":-1}`, "must not be negative"},
		{"bad timezone", `{"url":"http://ams","signature-timezone":"Mars/Base"}`, "signature-timezone"},
		{"missing ca", `{"url":"https://ams","ca-file":"/nonexistent/ca.pem"}`, "ca-file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := New().Configure(context.Background(), json.RawMessage(c.cfg))
			if c.err == "" {
				must(t, err)
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Fatalf("got %v, want %q", err, c.err)
			}
		})
	}
	if _, err := New().Collect(context.Background(), sdk.Target{Name: "g"}); err == nil {
		t.Fatal("collect before configure succeeded")
	}
}

func TestInfoMarksSecretsSensitive(t *testing.T) {
	info, err := New().Info(context.Background())
	must(t, err)
	if info.Kind != sdk.KindCollector || info.Name != Name {
		t.Fatalf("%+v", info)
	}
	for _, name := range []string{"secret", "password"} {
		a, ok := info.ConfigSchema.Attr(name)
		if !ok || !a.Sensitive {
			t.Errorf("%s must be a sensitive attribute", name)
		}
	}
	// Every schema attribute decodes into Config, and nothing else does.
	obj := map[string]any{}
	for _, a := range info.ConfigSchema.Attributes {
		switch a.Type {
		case sdk.TypeString:
			obj[a.Name] = "x"
		case sdk.TypeDuration:
			obj[a.Name] = "1s"
		case sdk.TypeBool:
			obj[a.Name] = true
		case sdk.TypeNumber:
			obj[a.Name] = 1
		}
	}
	raw, _ := json.Marshal(obj)
	var cfg Config
	must(t, sdk.DecodeConfig(raw, &cfg))
}
