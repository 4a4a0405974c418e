package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"text/template"
	"time"

	"github.com/ebbscale/ebb/core/runner"
	"github.com/ebbscale/ebb/core/state"
	"github.com/ebbscale/ebb/emulator/ams"
	"github.com/ebbscale/ebb/sdk"
	"github.com/ebbscale/ebb/sdk/sdktest"
)

// long skips a test under -short: these tests start real servers and run a
// whole scaling story.
func long(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test: skipped with -short")
	}
}

// ebbBinary is the real ebb binary, built once per test binary. It serves
// the builtin plugins by re-executing itself and emulates optimizers.
func ebbBinary(t *testing.T) string {
	t.Helper()
	return sdktest.Build(t, "github.com/ebbscale/ebb/cmd/ebb")
}

// ciRequired is true where a missing test dependency must fail, not skip.
func ciRequired() bool {
	v := strings.ToLower(os.Getenv("CI"))
	return v == "true" || v == "1"
}

// freeAddr returns a loopback address nobody listens on right now. A runner
// that is restarted keeps its address, so it cannot simply listen on :0.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// waitFor polls cond until it returns true or the deadline passes; what
// describes the awaited condition and state (called again on failure) says
// what was seen last. It bounds a wait, it asserts nothing about timing.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool, state func() string) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			seen := ""
			if state != nil {
				seen = "; last seen: " + state()
			}
			t.Fatalf("gave up after %s waiting for %s%s", limit, what, seen)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// --- the AMS emulator ---

// amsServer is the AMS emulator in this process over real HTTP, so the test
// can read its task counts directly (Stats) while collector-ams and the
// optimizer processes talk to it over the network.
type amsServer struct {
	emu   *ams.Emulator
	url   string
	group string
}

// amsHeartbeatTimeout is short so that optimizers that exited (drained
// units) leave AMS's list within seconds, as they would after Amoro's
// heart-beat-timeout.
const amsHeartbeatTimeout = 5 * time.Second

func startAMS(t *testing.T, group string) *amsServer {
	t.Helper()
	emu, err := ams.New(ams.Options{Groups: []ams.GroupConfig{{Name: group}}, HeartbeatTimeout: amsHeartbeatTimeout})
	if err != nil {
		t.Fatalf("AMS emulator: %v", err)
	}
	return &amsServer{emu: emu, url: serveAMS(t, emu), group: group}
}

func (a *amsServer) stats(t *testing.T) ams.GroupStats {
	t.Helper()
	s, err := a.emu.Stats(a.group)
	if err != nil {
		t.Fatalf("AMS stats: %v", err)
	}
	return s
}

// burst submits n tasks of duration d to one table: the next poll plans
// them all, so the collector sees the whole backlog at once.
func (a *amsServer) burst(t *testing.T, table string, n int, d time.Duration) {
	t.Helper()
	ds := make([]time.Duration, n)
	for i := range ds {
		ds[i] = d
	}
	if err := a.emu.Submit(a.group, table, ds...); err != nil {
		t.Fatalf("submitting the burst: %v", err)
	}
}

// registeredUnits lists the unit (job) ids of the optimizers AMS has
// registered, through its REST API as an operator would see them.
func (a *amsServer) registeredUnits() ([]string, error) {
	u := a.url + ams.APIPrefix + "/optimize/optimizerGroups/" + url.PathEscape(a.group) + "/optimizers?page=1&pageSize=1000"
	resp, err := http.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Code   int `json:"code"`
		Result struct {
			List []struct {
				JobID *string `json:"jobId"`
			} `json:"list"`
		} `json:"result"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", u, err)
	}
	if body.Code != 200 {
		return nil, fmt.Errorf("%s: code %d", u, body.Code)
	}
	var out []string
	for _, o := range body.Result.List {
		id := "(none)"
		if o.JobID != nil {
			id = *o.JobID
		}
		out = append(out, id)
	}
	slices.Sort(out)
	return out, nil
}

// --- the runner process ---

// ebbRunner is `ebb run` as a child process, restartable on the same state
// file and address. Its builtin plugins are its own children.
type ebbRunner struct {
	t         *testing.T
	bin       string
	cfgPath   string
	statePath string
	addr      string
	logPath   string
	extraEnv  []string

	mu    sync.Mutex
	cmd   *exec.Cmd
	done  chan struct{}
	lives int
}

func newRunner(t *testing.T, bin, dir, config string) *ebbRunner {
	t.Helper()
	cfgPath := filepath.Join(dir, "ebb.hcl")
	if err := os.WriteFile(cfgPath, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &ebbRunner{
		t: t, bin: bin, cfgPath: cfgPath,
		statePath: filepath.Join(dir, "ebb.db"),
		addr:      freeAddr(t),
		logPath:   filepath.Join(dir, "ebb.log"),
	}
	t.Cleanup(func() {
		r.stop()
		if t.Failed() {
			t.Logf("runner log (last lines of %s):\n%s", r.logPath, tail(r.logPath, 80))
		}
	})
	return r
}

// start runs `ebb run` and waits until every chain has evaluated once.
func (r *ebbRunner) start() {
	r.t.Helper()
	r.launch()
	r.awaitReady(60 * time.Second)
}

// launch runs `ebb run` without waiting for it.
func (r *ebbRunner) launch() {
	r.t.Helper()
	logf, err := os.OpenFile(r.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		r.t.Fatal(err)
	}
	cmd := exec.Command(r.bin, "run", "--config", r.cfgPath, "--http", r.addr, "--state", r.statePath)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), r.extraEnv...)
	if err := cmd.Start(); err != nil {
		logf.Close()
		r.t.Fatalf("starting ebb run: %v", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}()
	r.mu.Lock()
	r.cmd, r.done = cmd, done
	r.lives++
	r.mu.Unlock()
	fmt.Fprintf(logf, "=== e2e: started ebb run, pid %d (life %d)\n", cmd.Process.Pid, r.lives)
}

// awaitReady waits until /v1/ready answers 200.
func (r *ebbRunner) awaitReady(limit time.Duration) {
	r.t.Helper()
	r.mu.Lock()
	done := r.done
	r.mu.Unlock()
	waitFor(r.t, limit, "ebb run to be ready", func() bool {
		select {
		case <-done:
			r.t.Fatalf("ebb run exited at start:\n%s", tail(r.logPath, 40))
		default:
		}
		resp, err := http.Get("http://" + r.addr + "/v1/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, nil)
}

func (r *ebbRunner) pid() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return 0
	}
	select {
	case <-r.done:
		return 0
	default:
	}
	return r.cmd.Process.Pid
}

// kill SIGKILLs the runner. Its plugin processes must die with it (the host
// binds them to the runner with Pdeathsig); leaked lists those still alive
// after a grace of a few seconds, which the test then kills itself.
func (r *ebbRunner) kill() (leaked []int) {
	r.t.Helper()
	pid := r.pid()
	if pid == 0 {
		r.t.Fatal("kill: ebb run is not running")
	}
	plugins := pluginProcs(pid)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		r.t.Fatalf("SIGKILL ebb run: %v", err)
	}
	<-r.done
	deadline := time.Now().Add(5 * time.Second)
	for _, p := range plugins {
		for alive(p.pid) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if alive(p.pid) {
			leaked = append(leaked, p.pid)
			_ = syscall.Kill(p.pid, syscall.SIGKILL)
		}
	}
	return leaked
}

// stop ends the runner gracefully (SIGTERM), as at the end of a test.
func (r *ebbRunner) stop() {
	pid := r.pid()
	if pid == 0 {
		return
	}
	plugins := pluginProcs(pid)
	_ = syscall.Kill(pid, syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(pid, syscall.SIGKILL)
		<-r.done
		r.t.Errorf("ebb run did not stop within 30s of SIGTERM")
	}
	for _, p := range plugins {
		if alive(p.pid) {
			r.t.Errorf("plugin %s (pid %d) outlived a gracefully stopped runner", p.name, p.pid)
			_ = syscall.Kill(p.pid, syscall.SIGKILL)
		}
	}
}

// plugins lists the runner's live plugin processes.
func (r *ebbRunner) plugins() []proc {
	pid := r.pid()
	if pid == 0 {
		return nil
	}
	return pluginProcs(pid)
}

func (r *ebbRunner) getJSON(path string, v any) error {
	resp, err := http.Get("http://" + r.addr + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, b)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// chainView is GET /v1/chains/NAME: the chain and its decision log, which
// the view holds oldest first.
type chainView struct {
	Chain     runner.ChainStatus `json:"chain"`
	Decisions []state.Record     `json:"decisions"`
}

func (r *ebbRunner) chain(name string) (chainView, error) {
	var v chainView
	if err := r.getJSON("/v1/chains/"+url.PathEscape(name)+"?n="+strconv.Itoa(state.DefaultKeep), &v); err != nil {
		return v, err
	}
	slices.Reverse(v.Decisions)
	return v, nil
}

// metric reads one sample of ebb's own /metrics: the value of name with
// exactly the given labels among its label set (other labels ignored).
func (r *ebbRunner) metric(name string, labels map[string]string) (float64, bool, error) {
	resp, err := http.Get("http://" + r.addr + "/metrics")
	if err != nil {
		return 0, false, err
	}
	defer resp.Body.Close()
	return findSample(resp.Body, name, labels)
}

// --- processes ---

type proc struct {
	pid  int
	name string // the plugin for plugin-serve processes
}

// pluginProcs finds the children of pid that serve a plugin (`ebb
// plugin-serve NAME`), through /proc.
func pluginProcs(parent int) []proc {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []proc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || ppid(pid) != parent {
			continue
		}
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
		if i := slices.Index(args, "plugin-serve"); i >= 0 && i+1 < len(args) {
			out = append(out, proc{pid: pid, name: args[i+1]})
		}
	}
	slices.SortFunc(out, func(a, b proc) int { return strings.Compare(a.name, b.name) })
	return out
}

// ppid reads a process's parent from /proc/PID/stat; the command name in
// parentheses may contain spaces, so fields are counted after its end.
func ppid(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 2 {
		return -1
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

// alive is true for a process that exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return false
	}
	f := strings.Fields(string(b[i+1:]))
	return len(f) > 0 && f[0] != "Z" && f[0] != "X"
}

// tail returns the last n lines of a file, for failure reports.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// --- decisions ---

// decoded pairs a decision record with its decision.
type decoded struct {
	state.Record
	D sdk.Decision
}

func decodeRecords(recs []state.Record) ([]decoded, error) {
	out := make([]decoded, 0, len(recs))
	for _, r := range recs {
		d := decoded{Record: r}
		if len(r.Decision) > 0 {
			if err := json.Unmarshal(r.Decision, &d.D); err != nil {
				return nil, fmt.Errorf("record %d: decision: %w", r.Seq, err)
			}
		}
		out = append(out, d)
	}
	return out, nil
}

// describeLog renders the decision log with actions, one line each, for
// failure messages.
func describeLog(recs []state.Record) string {
	var b strings.Builder
	for _, r := range recs {
		if r.Status == "skipped" {
			continue
		}
		fmt.Fprintf(&b, "\n  #%d %s %s %s cap %d->%d: %s | %s", r.Seq, r.At.Format("15:04:05.000"), r.Status, r.Direction,
			r.CurrentCapacity, r.DesiredCapacity, r.Summary, r.Reason)
		if r.Error != "" {
			fmt.Fprintf(&b, " [error: %s]", r.Error)
		}
	}
	return b.String()
}

// render fills a text/template, failing the test on error.
func render(t *testing.T, tmpl string, data any) string {
	t.Helper()
	var b bytes.Buffer
	if err := template.Must(template.New("cfg").Parse(tmpl)).Execute(&b, data); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// httpGetJSON fetches a JSON document with a short deadline.
func httpGetJSON(ctx context.Context, u string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("GET %s: %s: %s", u, resp.Status, b)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
