package main

import (
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func read(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// proc-stat.txt and proc-status.txt were recorded from a running `ebb run`.
func TestParseProc(t *testing.T) {
	p, err := parseStat(read(t, "proc-stat.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if p.pid != 30147 || p.ppid != 1 || p.comm != "ebb" || p.utime != 23 || p.stime != 3 || p.cutime != 23 || p.cstime != 10 || p.cpu() != 59 {
		t.Errorf("stat: %+v", p)
	}
	// A command name with spaces and parentheses does not shift the fields.
	q, err := parseStat([]byte("42 (a b) (c)) S 7 42 42 0 -1 0 0 0 0 0 5 6 -1 8 20 0 1 0 1 1 1\n"))
	if err != nil || q.comm != "a b) (c)" || q.ppid != 7 || q.utime != 5 || q.stime != 6 || q.cutime != 0 || q.cstime != 8 {
		t.Errorf("odd comm: %+v, %v", q, err)
	}
	for _, bad := range []string{"", "42 no comm", "x (y) S 1", "42 (y) S 1 2 3"} {
		if _, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q) accepted", bad)
		}
	}
	m, err := parseStatus(read(t, "proc-status.txt"))
	if err != nil || m.rss != 49704 || m.hwm != 49704 {
		t.Errorf("status: %+v, %v", m, err)
	}
	if m, err := parseStatus([]byte("Name:\tkworker\nState:\tI (idle)\n")); err != nil || m != (procMem{}) {
		t.Errorf("kernel thread: %+v, %v", m, err)
	}
	if _, err := parseStatus([]byte("VmRSS:\t12 MB\nVmHWM:\t1 kB\n")); err == nil {
		t.Error("a size in MB accepted")
	}
}

// The tree is the root and its descendants, not its siblings; CPU adds up
// over all of them.
func TestReadTree(t *testing.T) {
	dir := t.TempDir()
	write := func(pid, ppid int, comm string, utime int) {
		d := filepath.Join(dir, itoa(pid))
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		stat := itoa(pid) + " (" + comm + ") S " + itoa(ppid) + " 1 1 0 -1 0 0 0 0 0 " + itoa(utime) + " 1 0 0 20 0 1 0 1 1 1\n"
		os.WriteFile(filepath.Join(d, "stat"), []byte(stat), 0o644)
		os.WriteFile(filepath.Join(d, "status"), []byte("VmHWM:\t"+itoa(utime*2)+" kB\nVmRSS:\t"+itoa(utime)+" kB\n"), 0o644)
	}
	write(10, 1, "ebb", 100)
	write(11, 10, "canned-collecto", 20)
	write(12, 10, "ebb", 30)
	write(13, 12, "helper", 5)
	write(20, 1, "other", 1000)
	os.MkdirAll(filepath.Join(dir, "self"), 0o755)
	tr, err := readTree(dir, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.others) != 3 || tr.cpuTicks() != 101+21+31+6 || tr.othersRSS() != 55 || tr.rootMem.hwm != 200 {
		t.Errorf("tree: %d others, cpu %d, others RSS %d, root %+v", len(tr.others), tr.cpuTicks(), tr.othersRSS(), tr.rootMem)
	}
	if _, err := readTree(dir, 99); err == nil {
		t.Error("a missing root gave no error")
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// metrics-runner.txt is a recorded /metrics of a runner without the
// scheduler's series.
func TestParseMetricsRecorded(t *testing.T) {
	s, err := parseMetrics(strings.NewReader(string(read(t, "metrics-runner.txt"))))
	if err != nil {
		t.Fatal(err)
	}
	if s.achieved() != 10 || s.lateness != nil || s.hasMissed {
		t.Errorf("scrape: %+v", s)
	}
	if s.bytes != int64(len(read(t, "metrics-runner.txt"))) {
		t.Errorf("counted %d bytes", s.bytes)
	}
}

// metrics-scheduler.txt adds the histogram and the missed counter.
func TestParseMetricsHistogram(t *testing.T) {
	s, err := parseMetrics(strings.NewReader(string(read(t, "metrics-scheduler.txt"))))
	if err != nil {
		t.Fatal(err)
	}
	if !s.hasMissed || s.missed != 7 || s.lateness == nil || s.lateness.total != 100 {
		t.Fatalf("scrape: %+v", s)
	}
	// 50 of 100 at or below: inside (0.001, 0.01], 40 of its 50.
	if p50, above := s.lateness.quantile(0.5); above || math.Abs(p50-(0.001+0.009*40/50)) > 1e-9 {
		t.Errorf("p50 %v above %v", p50, above)
	}
	if p99, above := s.lateness.quantile(0.99); above || math.Abs(p99-1) > 1e-9 {
		t.Errorf("p99 %v above %v", p99, above)
	}
	if p, above := s.lateness.quantile(0.999); !above || p != 1 {
		t.Errorf("p99.9 %v above %v: want the last finite bound, marked above", p, above)
	}
}

func TestParseMetricsLabelsAndErrors(t *testing.T) {
	s, err := parseMetrics(strings.NewReader(`ebb_evaluations_total{chain="a \"q\" \\ b",result="ok"} 3 1700000000000
ebb_evaluations_total{result="degraded",chain="x"} 2
ebb_evaluations_total{chain="x",result="error"} 4
ebb_schedule_lateness_seconds_bucket{chain="x",le="0.5"} 1
ebb_schedule_lateness_seconds_bucket{chain="y",le="0.5"} 2
ebb_schedule_lateness_seconds_bucket{chain="x",le="+Inf"} 1
ebb_schedule_lateness_seconds_bucket{chain="y",le="+Inf"} 3
`))
	if err != nil {
		t.Fatal(err)
	}
	if s.achieved() != 5 || s.evaluations["error"] != 4 {
		t.Errorf("evaluations %v", s.evaluations)
	}
	if h := s.lateness; h == nil || len(h.le) != 2 || h.count[0] != 3 || h.count[1] != 4 {
		t.Errorf("histogram summed over chains: %+v", h)
	}
	for _, bad := range []string{
		"ebb_evaluations_total{chain=\"a\" 1\n",
		"ebb_evaluations_total{chain=\"a} 1\n",
		"ebb_evaluations_total x\n",
		"ebb_schedule_lateness_seconds_bucket{le=\"soon\"} 1\n",
		"ebb_evaluations_total\n",
	} {
		if _, err := parseMetrics(strings.NewReader(bad)); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("%q: %v, want an error naming line 1", bad, err)
		}
	}
}

// bench-output.txt: the real BenchmarkEvaluation line, and lines in the
// shapes a batched benchmark (sub-benchmarks, ns/eval) and a baseline print.
func TestParseBench(t *testing.T) {
	lines, err := parseBench(strings.NewReader(string(read(t, "bench-output.txt"))))
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 3 {
		t.Fatalf("%d lines: %+v", len(lines), lines)
	}
	e, b := lines[0], lines[1]
	if e.Name != "BenchmarkEvaluation" || e.Pkg != "github.com/ebbscale/ebb/core/runner" || e.N != 2000 || e.NsOp != 1312530 || e.BOp != 25624 || e.Alloc != 402 {
		t.Errorf("first: %+v", e)
	}
	if b.Name != "BenchmarkCycle/batched-64" || b.perEval() != 200000 || b.Pkg != "github.com/ebbscale/ebb/core/host" {
		t.Errorf("batched: %+v", b)
	}
	if name := withRatios(lines, regexp.MustCompile("(?i)plain")); name != "BenchmarkPlainGRPC" {
		t.Fatalf("baseline %q", name)
	}
	if math.Abs(lines[0].Ratio-1312530.0/550000) > 1e-9 || math.Abs(lines[1].Ratio-200000.0/550000) > 1e-9 || lines[2].Ratio != 1 {
		t.Errorf("ratios %v %v %v", lines[0].Ratio, lines[1].Ratio, lines[2].Ratio)
	}
	if name := withRatios(lines[:1], regexp.MustCompile("(?i)plain")); name != "" {
		t.Errorf("a baseline found where none ran: %q", name)
	}
}

// chain-decisions.json is a recorded /v1/chains/{name} answer (newest
// first), read as the runner serves it.
func TestLogLatenessRecorded(t *testing.T) {
	body := read(t, "chain-decisions.json")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/chains/c-00000" || r.URL.Query().Get("n") == "" {
			http.NotFound(w, r)
			return
		}
		w.Write(body)
	}))
	defer srv.Close()
	at, err := recordTimes(srv.Client(), srv.URL, "c-00000", 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(at) != 3 || !at[0].After(at[1]) || at[0].Sub(at[1]) < 900*time.Millisecond {
		t.Fatalf("record times %v", at)
	}
	l, err := logLateness(srv.Client(), srv.URL, []string{"c-00000"}, at[2], at[0].Add(time.Second), time.Second)
	if err != nil || len(l) != 3 || l[0] != 0 {
		t.Errorf("lateness %v, %v", l, err)
	}
	if _, err := logLateness(srv.Client(), srv.URL, []string{"c-00000", "nope"}, at[2], at[0], time.Second); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("a missing chain: %v", err)
	}
}

// Lateness is counted against start + k·interval.
func TestChainLateness(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := []time.Time{start.Add(2100 * time.Millisecond), start.Add(50 * time.Millisecond), start.Add(1100 * time.Millisecond), start.Add(3500 * time.Millisecond)}
	got := chainLateness(at, start, start.Add(3*time.Second), time.Second)
	want := []float64{0.05, 0.1, 0.1}
	if len(got) != len(want) {
		t.Fatalf("%v, want %v (the one after the end left out)", got, want)
	}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-9 {
			t.Errorf("lateness %v, want %v", got, want)
		}
	}
	// A first evaluation before the seen start moves the schedule back.
	if got := chainLateness([]time.Time{start.Add(-20 * time.Millisecond), start.Add(time.Second)}, start, start.Add(time.Hour), time.Second); got[0] != 0 || math.Abs(got[1]-0.02) > 1e-9 {
		t.Errorf("early start: %v", got)
	}
	if p := percentile([]float64{5, 1, 4, 2, 3}, 0.5); p != 3 {
		t.Errorf("p50 %v", p)
	}
	if p := percentile([]float64{5, 1, 4, 2, 3}, 0.99); p != 5 {
		t.Errorf("p99 %v", p)
	}
}

func TestParseSizesAndParts(t *testing.T) {
	s, err := parseSizes("100, 1000:1s,10000:10s")
	if err != nil || len(s) != 3 || s[0] != (size{100, time.Second}) || s[2] != (size{10000, 10 * time.Second}) {
		t.Errorf("%v %v", s, err)
	}
	for _, bad := range []string{"", "x", "0", "10:fast", "10:1ms"} {
		if _, err := parseSizes(bad); err == nil {
			t.Errorf("-sizes %q accepted", bad)
		}
	}
	if p, err := parseParts("scale"); err != nil || !p["scale"] || !p["cycle"] || p["control"] {
		t.Errorf("scale: %v %v", p, err)
	}
	if _, err := parseParts("control,speed"); err == nil {
		t.Error("an unknown part accepted")
	}
	if got := quoteArgs(withoutNote([]string{"-only", "scale", "-note", "x y", "--note=z", "-sizes", "10:1s", "-jitter", "10%s"})); got != "-only scale -sizes 10:1s -jitter 10%s" {
		t.Errorf("command %q", got)
	}
	if got := sampleChains(10000, 4); strings.Join(got, ",") != "c-00000,c-02500,c-05000,c-07500" {
		t.Errorf("sample %v", got)
	}
	if got := sampleChains(3, 1000); len(got) != 3 || got[2] != "c-00002" {
		t.Errorf("sample of fewer chains than asked %v", got)
	}
	if count(1234567) != "1,234,567" || count(100) != "100" || count(1000) != "1,000" {
		t.Error(count(1234567), count(100), count(1000))
	}
}

func TestErrorKinds(t *testing.T) {
	log := `2026-12-01T13:45:00.000Z [INFO]  chain started: chain=c-00001
2026-12-01T13:45:01.000Z [ERROR] evaluation failed: error="chain c-00001: collect t-00001: context deadline exceeded"
2026-12-01T13:45:02.000Z [ERROR] evaluation failed: error="chain c-00002: collect t-00002: context deadline exceeded"
2026-12-01T13:45:03.000Z [ERROR] evaluation failed: error="chain c-00003: committing: disk full"
2026-12-01T13:45:04.000Z [ERROR] evaluation failed: error="a third kind"
`
	got := errorKinds(strings.NewReader(log), 2)
	want := map[string]int{`error="chain c-N: collect t-N: context deadline exceeded"`: 2, `error="chain c-N: committing: disk full"`: 1, "(other)": 1}
	if len(got) != len(want) {
		t.Fatalf("%v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%q: %d, want %d (all: %v)", k, got[k], v, got)
		}
	}
	if errorKinds(strings.NewReader("nothing failed\n"), 3) != nil {
		t.Error("kinds without errors")
	}
}

// A rerun of some sizes keeps the other rows; a size that never started
// says so in its row.
func TestScaleDocMergeAndRender(t *testing.T) {
	p := func(v float64) *float64 { return &v }
	d := scaleDoc{Machine: "nproc 2"}
	d.merge([]sizeResult{{Chains: 1000, Interval: 1, Window: 60, Due: 60000, Achieved: 30000, LatenessP50: p(0.5), LatenessP99: p(2), LatenessSource: "decision log", Note: "before"},
		{Chains: 10000, Interval: 10, StartHTTP: 2700, StartTimedOut: true, RunnerRSSPeak: 400, RunnerRSSEnd: 390}})
	d.merge([]sizeResult{{Chains: 100, Interval: 1, Window: 60, Due: 6000, Achieved: 6000, LatenessP50: p(0.002), LatenessP99: p(0.05), LatenessSource: "histogram"},
		{Chains: 1000, Interval: 1, Window: 60, Due: 60000, Achieved: 59000, Errors: 3, ErrorKinds: map[string]int{"timeout": 3}}})
	if len(d.Sizes) != 3 || d.Sizes[0].Chains != 100 || d.Sizes[1].Achieved != 59000 {
		t.Fatalf("merged %+v", d.Sizes)
	}
	s := renderScale(options{doc: "/r/BENCHMARKS.md", out: "/r/bench/out"}, d)
	for _, want := range []string{scaleBegin, scaleEnd, "| 100 | 1.0 s | 60 s | 100% (6,000 / 6,000) | 2 ms / 50 ms |",
		"| 1,000 | 1.0 s | 60 s | 98% (59,000 / 60,000), 3 errors |", "HTTP not up after 2700 s", "| **goal** (issue 18) |",
		"3× `evaluation failed: timeout`", "(bench/out/scale.svg)"} {
		if !strings.Contains(s, want) {
			t.Errorf("section lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "before") {
		t.Error("the replaced row's note is still there")
	}
}
