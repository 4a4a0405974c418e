package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// size is one scale run: chains chains ticking every interval.
type size struct {
	chains   int
	interval time.Duration
}

// parseSizes reads "100:1s,1000:1s,10000:10s"; an interval left out is 1s.
func parseSizes(s string) ([]size, error) {
	var out []size
	for _, part := range strings.Split(s, ",") {
		n, iv, _ := strings.Cut(strings.TrimSpace(part), ":")
		chains, err := strconv.Atoi(n)
		if err != nil || chains < 1 {
			return nil, fmt.Errorf("-sizes %q: %q is not a number of chains", s, n)
		}
		interval := time.Second
		if iv != "" {
			if interval, err = time.ParseDuration(iv); err != nil || interval < 100*time.Millisecond {
				return nil, fmt.Errorf("-sizes %q: interval %q: want a duration of at least 100ms", s, iv)
			}
		}
		out = append(out, size{chains, interval})
	}
	return out, nil
}

// sizeResult is one scale run's figures, as bench/out/scale.json keeps them.
type sizeResult struct {
	Chains   int     `json:"chains"`
	Interval float64 `json:"interval_seconds"`
	Window   float64 `json:"window_seconds"`
	// Due is chains × ceil(window / interval): every chain's ticks at
	// start + k·interval that fall in the window.
	Due      float64 `json:"due"`
	Achieved float64 `json:"achieved"`
	Errors   float64 `json:"errors"`
	// Missed is the runner's own count, when it exports one.
	Missed *float64 `json:"missed,omitempty"`
	// Lateness in seconds; nil when unknown. LatenessAbove: p99 lies beyond
	// the histogram's last finite bucket (the figure is that bound).
	LatenessP50    *float64 `json:"lateness_p50_seconds,omitempty"`
	LatenessP99    *float64 `json:"lateness_p99_seconds,omitempty"`
	LatenessAbove  bool     `json:"lateness_p99_above,omitempty"`
	LatenessSource string   `json:"lateness_source"`
	RunnerRSSPeak  float64  `json:"runner_rss_peak_mb"`
	RunnerRSSEnd   float64  `json:"runner_rss_end_mb"`
	PluginRSSPeak  float64  `json:"plugin_rss_peak_mb"`
	PluginRSSEnd   float64  `json:"plugin_rss_end_mb"`
	Plugins        int      `json:"plugin_processes_end"`
	CPUSeconds     float64  `json:"cpu_seconds"`
	// CPUPerEval is the runner's and its plugins' CPU in the window over the
	// evaluations achieved, in microseconds.
	CPUPerEval float64 `json:"cpu_per_evaluation_us"`
	// StartHTTP and StartReady are seconds from exec until /v1/health and
	// /v1/ready answer 200; StartReady is nil when ready never came.
	StartHTTP float64 `json:"start_http_seconds"`
	// StartTimedOut: the HTTP API did not answer within -start-timeout
	// (StartHTTP); nothing else was measured.
	StartTimedOut bool     `json:"start_timed_out,omitempty"`
	StartReady    *float64 `json:"start_ready_seconds,omitempty"`
	StoreMB       float64  `json:"store_mb"`
	// StoreGrowth is MB per minute over the window.
	StoreGrowth float64 `json:"store_growth_mb_per_minute"`
	// Progress is achieved evaluations against due over the window.
	Progress []progressPoint `json:"progress"`
	Measured string          `json:"measured"`
	Commit   string          `json:"commit"`
	// Command is the invocation that measured this row; Note is its -note.
	Command string `json:"command"`
	Note    string `json:"note,omitempty"`
	// ErrorKinds are the runner's "evaluation failed" messages, chain and
	// target names generalized, with how often each was logged.
	ErrorKinds map[string]int `json:"error_kinds,omitempty"`
	// Load is the machine's 1-minute load average at the window's start and
	// end (/proc/loadavg): others' work on a shared machine.
	Load [2]float64 `json:"load"`
}

type progressPoint struct {
	T        float64 `json:"t"`
	Achieved float64 `json:"achieved"`
	Due      float64 `json:"due"`
}

// scaleOptions are the scale runs' flags.
type scaleOptions struct {
	sizes []size
	// duration is the window each size runs after the HTTP API answers; at
	// least 5 intervals.
	duration     time.Duration
	scrapeEvery  time.Duration
	startTimeout time.Duration
	// lateness is "auto" (the runner's histogram when it has one, else the
	// decision log), "metric" or "log".
	lateness string
	// latenessChains bounds how many chains' decision logs are read.
	latenessChains int
	jitter         string
}

// plugins builds the canned plugins into a plugin_dir that host's trust
// rules accept: a directory of this user, mode 0700, binaries 0755.
func buildCanned(o options, tmp string) (string, error) {
	dir := filepath.Join(tmp, "plugins")
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", err
	}
	for _, name := range []string{"canned-collector", "canned-realizer"} {
		bin := filepath.Join(dir, name)
		cmd := exec.Command("go", "build", "-o", bin, "./bench/canned/cmd/"+name)
		cmd.Dir, cmd.Stderr = o.root, o.log
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("building %s: %w", name, err)
		}
		if err := os.Chmod(bin, 0o755); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// scaleConfig is N chains over the canned plugins and the builtin
// evaluator-dra, each its own target. The policy's timers are short so that
// decisions change within a run of a minute.
func scaleConfig(s size, pluginDir, statePath, addr, jitter string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %d chains at %s, generated by go run ./bench (scale)\n", s.chains, s.interval)
	fmt.Fprintf(&b, "plugin_dir = %q\nstate {\n  path = %q\n}\nhttp {\n  address = %q\n}\nlog {\n  level = \"info\"\n}\n\n", pluginDir, statePath, addr)
	b.WriteString(`collector "canned" {
  plugin = "canned-collector"
  config {
    period = "1m"
  }
}

evaluator "dra" {
  plugin = "evaluator-dra"
}

realizer "canned" {
  plugin = "canned-realizer"
  config {
    period = "1m"
  }
}
`)
	j := ""
	if jitter != "" {
		j = fmt.Sprintf("  jitter     = %q\n", jitter)
	}
	for i := range s.chains {
		fmt.Fprintf(&b, `
chain "c-%05d" {
  collectors = [collector.canned]
  evaluators = [evaluator.dra]
  realizer   = realizer.canned
  target     = "t-%05d"
  interval   = %q
%s  policy {
    min-parallelism           = 4
    max-parallelism           = 32
    executor-parallelism      = 4
    executor-idle-timeout     = "30s"
    scheduler-backlog-timeout = "2s"
    sustained-backlog-timeout = "2s"
    scale-up-cooldown         = "3s"
    scale-down-cooldown       = "5s"
    drain-timeout             = "20s"
    boot-timeout              = "30s"
  }
}
`, i, i, s.interval.String(), j)
	}
	return b.String()
}

// sampleChains names at most k of the n generated chains, evenly spread:
// lateness read from decision logs needs a sample, not 10,000 requests.
func sampleChains(n, k int) []string {
	k = max(min(n, k), 1)
	out := make([]string, k)
	for i := range out {
		out[i] = fmt.Sprintf("c-%05d", i*n/k)
	}
	return out
}

// freeAddr is a loopback address nothing listens on now.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// runSize runs `ebb run` on a generated config for one size and measures it.
func runSize(o options, so scaleOptions, ebb, pluginDir string, s size) (sizeResult, error) {
	window := max(so.duration, 5*s.interval)
	res := sizeResult{Chains: s.chains, Interval: s.interval.Seconds(), Window: window.Seconds(),
		Due: dueBy(s, window), Measured: time.Now().UTC().Format("2006-01-02")}
	dir, err := os.MkdirTemp("", "ebb-scale-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	addr, err := freeAddr()
	if err != nil {
		return res, err
	}
	cfgPath, statePath := filepath.Join(dir, "scale.hcl"), filepath.Join(dir, "ebb.db")
	if err := os.WriteFile(cfgPath, []byte(scaleConfig(s, pluginDir, statePath, addr, so.jitter)), 0o644); err != nil {
		return res, err
	}
	logFile, err := os.Create(filepath.Join(dir, "ebb.log"))
	if err != nil {
		return res, err
	}
	defer logFile.Close()

	cmd := exec.Command(ebb, "run", cfgPath)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, logFile, logFile
	started := time.Now()
	if err := cmd.Start(); err != nil {
		return res, err
	}
	pid := cmd.Process.Pid
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	smp := &sampler{pid: pid}
	stopSampling := smp.start(time.Second)
	defer func() {
		stopSampling()
		stopRunner(o, cmd, exited, smp.pids())
	}()
	fail := func(err error) (sizeResult, error) {
		return res, fmt.Errorf("%w (runner log: %s)", err, tail(logFile.Name(), 2000))
	}

	base := "http://" + addr
	client := &http.Client{Timeout: 30 * time.Second}
	poll := &http.Client{Timeout: time.Second}
	lastNote := time.Now()
	for !answers(poll, base+"/v1/health") {
		select {
		case err := <-exited:
			exited <- err
			return fail(fmt.Errorf("ebb run exited before its HTTP API answered: %v", err))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Since(started) > so.startTimeout {
			// What a run that never started shows is a figure too: the row
			// says so, with the memory the start took.
			t := smp.sampleNow()
			res.StartHTTP, res.StartTimedOut = so.startTimeout.Seconds(), true
			res.Load = [2]float64{loadAvg(), loadAvg()}
			res.RunnerRSSPeak, res.RunnerRSSEnd = mb(t.rootMem.hwm), mb(t.rootMem.rss)
			res.PluginRSSPeak, res.PluginRSSEnd, res.Plugins = mb(smp.peakOthers()), mb(t.othersRSS()), len(t.others)
			res.LatenessSource = "n/a: the HTTP API never answered"
			fmt.Fprintf(o.log, "scale %d: HTTP API not up after %s; giving up on this size\n", s.chains, so.startTimeout)
			return res, nil
		}
		if time.Since(lastNote) >= 10*time.Second {
			lastNote = time.Now()
			t := smp.last()
			fmt.Fprintf(o.log, "scale %d: starting, %s, runner RSS %.0f MB, %d other processes\n", s.chains,
				time.Since(started).Round(time.Second), mb(t.rootMem.rss), len(t.others))
		}
	}
	httpUp := time.Now()
	res.StartHTTP = httpUp.Sub(started).Seconds()
	fmt.Fprintf(o.log, "scale %d: HTTP up after %.1f s; measuring for %s\n", s.chains, res.StartHTTP, window)
	cpu0, store0 := smp.sampleNow().cpuTicks(), fileMB(statePath)
	res.Load[0] = loadAvg()
	end := httpUp.Add(window)

	readyAt := make(chan time.Time, 1)
	ctx, cancel := context.WithDeadline(context.Background(), end)
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			if answers(poll, base+"/v1/ready") {
				readyAt <- time.Now()
				return
			}
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()

	var last scrape
	for {
		next := time.Now().Add(so.scrapeEvery)
		if next.After(end) {
			next = end
		}
		select {
		case err := <-exited:
			exited <- err
			return fail(fmt.Errorf("ebb run exited during the run: %v", err))
		case <-time.After(time.Until(next)):
		}
		sc, err := getMetrics(client, base)
		if err != nil {
			return fail(err)
		}
		last = sc
		el := time.Since(httpUp)
		due := dueBy(s, min(el, window))
		res.Progress = append(res.Progress, progressPoint{T: el.Seconds(), Achieved: sc.achieved(), Due: due})
		t := smp.last()
		fmt.Fprintf(o.log, "scale %d: %3.0f/%.0f s, %.0f of %.0f due evaluations (%.0f%%), runner RSS %.0f MB, /metrics %.1f MB\n",
			s.chains, el.Seconds(), window.Seconds(), sc.achieved(), due, 100*sc.achieved()/due, mb(t.rootMem.rss), float64(sc.bytes)/1e6)
		if !time.Now().Before(end) {
			break
		}
	}
	final := smp.sampleNow()
	res.Load[1] = loadAvg()
	res.Achieved, res.Errors = last.achieved(), last.evaluations["error"]
	if last.hasMissed {
		res.Missed = &last.missed
	}
	res.CPUSeconds = float64(final.cpuTicks()-cpu0) / clockTicks
	if res.Achieved > 0 {
		res.CPUPerEval = 1e6 * res.CPUSeconds / res.Achieved
	}
	res.RunnerRSSPeak, res.RunnerRSSEnd = mb(final.rootMem.hwm), mb(final.rootMem.rss)
	res.PluginRSSPeak, res.PluginRSSEnd = mb(smp.peakOthers()), mb(final.othersRSS())
	res.Plugins = len(final.others)
	res.StoreMB = fileMB(statePath)
	res.StoreGrowth = (res.StoreMB - store0) / window.Minutes()
	if f, err := os.Open(logFile.Name()); err == nil {
		res.ErrorKinds = errorKinds(f, 5)
		f.Close()
	}
	select {
	case at := <-readyAt:
		v := at.Sub(started).Seconds()
		res.StartReady = &v
	default:
	}

	switch {
	case last.lateness != nil && so.lateness != "log":
		p50, _ := last.lateness.quantile(0.5)
		p99, above := last.lateness.quantile(0.99)
		res.LatenessP50, res.LatenessP99, res.LatenessAbove = &p50, &p99, above
		res.LatenessSource = "histogram " + latenessMetric
	case so.lateness == "metric":
		res.LatenessSource = "n/a: the runner exports no " + latenessMetric
	default:
		fmt.Fprintf(o.log, "scale %d: no %s; reading when each evaluation started from %d decision logs\n", s.chains, latenessMetric, min(s.chains, so.latenessChains))
		l, err := logLateness(client, base, sampleChains(s.chains, so.latenessChains), httpUp, end, s.interval)
		switch {
		case err != nil:
			// A runner too busy to answer is a finding, not a failed run.
			res.LatenessSource = "n/a: reading the decision logs failed: " + err.Error()
			fmt.Fprintf(o.log, "scale %d: %s\n", s.chains, res.LatenessSource)
		case len(l) > 0:
			p50, p99 := percentile(l, 0.5), percentile(l, 0.99)
			res.LatenessP50, res.LatenessP99 = &p50, &p99
			fallthrough
		default:
			res.LatenessSource = "decision log"
			if s.chains > so.latenessChains {
				res.LatenessSource = fmt.Sprintf("decision log of %d chains", so.latenessChains)
			}
		}
	}
	fmt.Fprintf(o.log, "scale %d: done: %s\n", s.chains, summary(res))
	return res, nil
}

// dueBy is how many ticks of a fixed-rate schedule (every chain at start +
// k·interval) are due el after the start. A tick due within the last 1% of
// an interval is not counted: its evaluation cannot have finished yet.
func dueBy(s size, el time.Duration) float64 {
	return float64(s.chains) * math.Ceil(el.Seconds()/s.interval.Seconds()-0.01)
}

func summary(r sizeResult) string {
	return fmt.Sprintf("%.0f/%.0f evaluations (%.0f%%), lateness p50 %s p99 %s, runner RSS %.0f MB (peak %.0f), plugins %.0f MB, %.0f µs CPU/evaluation, HTTP %.1f s, ready %s, store %.1f MB",
		r.Achieved, r.Due, 100*r.Achieved/r.Due, secs(r.LatenessP50), secs(r.LatenessP99), r.RunnerRSSEnd, r.RunnerRSSPeak,
		r.PluginRSSPeak, r.CPUPerEval, r.StartHTTP, secs(r.StartReady), r.StoreMB)
}

func answers(c *http.Client, url string) bool {
	resp, err := c.Get(url)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func getMetrics(c *http.Client, base string) (scrape, error) {
	resp, err := c.Get(base + "/metrics")
	if err != nil {
		return scrape{}, fmt.Errorf("scraping /metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return scrape{}, fmt.Errorf("scraping /metrics: %s", resp.Status)
	}
	return parseMetrics(resp.Body)
}

// stopRunner stops ebb as a user would (SIGTERM: it stops its plugins), and
// kills by pid whatever of the tree it started is left after 30 s.
func stopRunner(o options, cmd *exec.Cmd, exited chan error, pids []int) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		fmt.Fprintln(o.log, "scale: ebb run did not stop within 30 s of SIGTERM; killing it")
		_ = cmd.Process.Kill()
		<-exited
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if alive(pid) {
			fmt.Fprintf(o.log, "scale: plugin process %d outlived ebb run; killing it\n", pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// alive says whether pid still runs as the same child of ours: a pid whose
// parent is now init is an orphan of the runner (ours to kill), but one
// reused by an unrelated process would show another start; we only kill
// processes whose stat still reads as one of the canned or ebb binaries.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	p, err := parseStat(b)
	return err == nil && (p.comm == "ebb" || strings.HasPrefix(p.comm, "canned-")) && !strings.Contains(string(b), ") Z ")
}

// sampler reads the runner's process tree every second, for the peak of
// the plugins' memory (the runner's own peak is its VmHWM).
type sampler struct {
	pid    int
	mu     sync.Mutex
	recent tree
	peak   int64
	seen   map[int]bool
}

func (s *sampler) start(every time.Duration) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			s.sampleNow()
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

func (s *sampler) sampleNow() tree {
	t, err := readTree("/proc", s.pid)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		return s.recent
	}
	s.recent = t
	s.peak = max(s.peak, t.othersRSS())
	if s.seen == nil {
		s.seen = map[int]bool{}
	}
	for _, p := range t.others {
		s.seen[p.pid] = true
	}
	return t
}

func (s *sampler) last() tree {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.recent
}

func (s *sampler) peakOthers() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak
}

// pids are the descendants seen in any sample.
func (s *sampler) pids() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int
	for p := range s.seen {
		out = append(out, p)
	}
	return out
}

var generatedName = regexp.MustCompile(`\b([ct])-\d{5}\b`)

// errorKinds counts the runner log's "evaluation failed" lines by message,
// keeping at most max kinds (the rest count under "(other)").
func errorKinds(r io.Reader, max int) map[string]int {
	out := map[string]int{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		_, msg, ok := strings.Cut(sc.Text(), "evaluation failed:")
		if !ok {
			continue
		}
		msg = generatedName.ReplaceAllString(strings.TrimSpace(msg), "$1-N")
		if len(msg) > 300 {
			msg = msg[:300] + "..."
		}
		if _, seen := out[msg]; !seen && len(out) >= max {
			msg = "(other)"
		}
		out[msg]++
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// loadAvg is the 1-minute load average, 0 when unknown.
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

func mb(kb int64) float64 { return float64(kb) / 1024 }

func fileMB(path string) float64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return float64(st.Size()) / (1 << 20)
}

func secs(v *float64) string {
	switch {
	case v == nil || math.IsNaN(*v):
		return "n/a"
	case *v < 1:
		return fmt.Sprintf("%.0f ms", *v*1000)
	}
	return fmt.Sprintf("%.1f s", *v)
}

func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	st, _ := f.Stat()
	if st.Size() > n {
		f.Seek(-n, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

// runScale runs the scale sizes and the cycle benchmarks asked for, merges
// them into bench/out/scale.json (a short run starts afresh and keeps its
// figures out of it) and rewrites the scale section.
func runScale(o options, ebb, tmp string) error {
	jsonPath := filepath.Join(o.out, "scale.json")
	d := scaleDoc{}
	if !o.short {
		d = loadScaleDoc(jsonPath)
	}
	d.Machine = machine(o.root)
	rev := commit(o.root)
	if o.parts["scale"] {
		pluginDir, err := buildCanned(o, tmp)
		if err != nil {
			return err
		}
		var rows []sizeResult
		for _, s := range o.scale.sizes {
			r, err := runSize(o, o.scale, ebb, pluginDir, s)
			if err != nil {
				return fmt.Errorf("scale %d chains: %w", s.chains, err)
			}
			r.Commit, r.Command, r.Note = rev, o.command, o.note
			rows = append(rows, r)
		}
		d.merge(rows)
	}
	if o.parts["cycle"] {
		lines, err := runCycle(o, o.cycle)
		if err != nil {
			return err
		}
		base, err := regexp.Compile(o.cycle.baseline)
		if err != nil {
			return fmt.Errorf("-baseline: %w", err)
		}
		d.Cycle.Baseline = withRatios(lines, base)
		d.Cycle.Results, d.Cycle.Commit = lines, rev
		d.Cycle.Measured = time.Now().UTC().Format("2006-01-02")
		d.Cycle.Command = fmt.Sprintf("go test -run '^$' -bench '%s' -benchtime %s -benchmem %s", o.cycle.pattern, o.cycle.benchtime, strings.Join(o.cycle.pkgs, " "))
	}
	if len(d.Sizes) > 0 {
		if err := plotScale(filepath.Join(o.out, "scale.svg"), d.Sizes); err != nil {
			return err
		}
	}
	if !o.short {
		if err := d.save(jsonPath); err != nil {
			return err
		}
	}
	return rewrite(o.doc, scaleBegin, scaleEnd, renderScale(o, d))
}
