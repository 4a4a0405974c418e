package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ebbscale/ebb/sdk/sdktest"
)

// These tests run the real ebb binary as a user would.

type cli struct {
	t         *testing.T
	ebb       string
	dir       string
	pluginDir string
	snap      string
	units     string
}

func newCLI(t *testing.T) *cli {
	t.Helper()
	c := &cli{t: t, ebb: sdktest.Build(t, "github.com/ebbscale/ebb/cmd/ebb"), dir: t.TempDir()}
	c.pluginDir = testPlugins(t, c.dir)
	c.snap = filepath.Join(c.dir, "snapshot.json")
	c.units = filepath.Join(c.dir, "units")
	c.write("snapshot.json", `{"tasks": 9}`)
	return c
}

// testPlugins makes dir/plugins, a plugin_dir with the test collector and
// realizer.
func testPlugins(t testing.TB, dir string) string {
	t.Helper()
	pluginDir := filepath.Join(dir, "plugins")
	bin := sdktest.Build(t, "github.com/ebbscale/ebb/core/testdata/testplugin")
	os.MkdirAll(pluginDir, 0o755)
	for _, n := range []string{"test-collector", "test-realizer"} {
		if err := os.Symlink(bin, filepath.Join(pluginDir, n)); err != nil {
			t.Fatal(err)
		}
	}
	return pluginDir
}

func (c *cli) write(name, content string) string {
	c.t.Helper()
	p := filepath.Join(c.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		c.t.Fatal(err)
	}
	return p
}

func (c *cli) run(args ...string) (string, string, int) {
	c.t.Helper()
	return c.runEnv(nil, args...)
}

// config is a chain of the test collector, the builtin DRA evaluator and
// the test realizer.
func (c *cli) config(extra string) string {
	return fmt.Sprintf(`
plugin_dir = %q

collector "demand" {
  plugin = "test-collector"
  config {
    file = %q
  }
}

evaluator "dra" {
  plugin = "evaluator-dra"
}

realizer "files" {
  plugin = "test-realizer"
  config {
    dir = %q
  }
}

chain "optimizers" {
  collectors = [collector.demand]
  evaluators = [evaluator.dra]
  realizer   = realizer.files
  target     = "group-a"
  interval   = "100ms"
  timeout    = "10s"
  policy {
    min-parallelism      = 2
    max-parallelism      = 8
    executor-parallelism = 1
  }
}
%s`, c.pluginDir, c.snap, c.units, extra)
}

func TestValidate(t *testing.T) {
	c := newCLI(t)
	good := c.write("good.hcl", c.config(""))
	out, errOut, code := c.run("validate", good)
	if code != 0 || !strings.Contains(out, "valid (1 chain)") {
		t.Fatalf("valid config: exit %d, %s %s", code, out, errOut)
	}

	bad := c.write("bad.hcl", strings.Replace(strings.Replace(c.config(""),
		"max-parallelism      = 8", "max-parallelism      = 1", 1),
		"file = ", "flie = ", 1))
	_, errOut, code = c.run("validate", bad)
	if code != 1 {
		t.Fatalf("invalid config: exit %d", code)
	}
	// Every problem, each at its place: the typo in a plugin's config, and
	// the evaluator's own policy check (min > max).
	for _, want := range []string{bad + ":7:5: ", `"flie"`, bad + ":30:5: ", "min-parallelism 2 is above max-parallelism 1"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("diagnostics lack %q:\n%s", want, errOut)
		}
	}

	// Plugins that cannot be trusted or found, reported where they are named.
	pinned := c.write("pinned.hcl", strings.Replace(strings.Replace(c.config(""),
		`plugin = "test-collector"`, `plugin = "test-collector"
  sha256 = "`+strings.Repeat("ab", 32)+`"`, 1),
		`plugin = "test-realizer"`, `plugin = "no-such-realizer"`, 1))
	_, errOut, code = c.run("validate", pinned)
	if code != 1 || !strings.Contains(errOut, pinned+":6:12: ") || !strings.Contains(errOut, "checksum mismatch") ||
		!strings.Contains(errOut, pinned+":17:12: ") || !strings.Contains(errOut, `unknown plugin "no-such-realizer"`) {
		t.Fatalf("pin and unknown plugin: exit %d\n%s", code, errOut)
	}

	_, errOut, code = c.run("validate", filepath.Join(c.dir, "missing.hcl"))
	if code != 1 || !strings.Contains(errOut, "missing.hcl") {
		t.Fatalf("missing file: exit %d, %s", code, errOut)
	}
}

func TestPlanJSON(t *testing.T) {
	c := newCLI(t)
	cfg := c.write("ebb.hcl", c.config(""))
	out, errOut, code := c.run("plan", cfg, "optimizers", "--json")
	if code != 0 {
		t.Fatalf("plan: exit %d: %s", code, errOut)
	}
	var got struct {
		Evaluations []struct {
			Snapshot struct {
				Demand struct {
					PlannedTasks int64 `json:"planned_tasks"`
				}
			}
			Decision struct {
				Add []struct {
					UnitID string `json:"unit_id"`
				}
				Reason string
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("plan --json is not JSON: %v\n%s", err, out)
	}
	ev := got.Evaluations[0]
	if ev.Snapshot.Demand.PlannedTasks != 9 || len(ev.Decision.Add) != 2 || !strings.Contains(ev.Decision.Reason, "floor") {
		t.Fatalf("plan: %+v", ev)
	}
	if entries, _ := os.ReadDir(c.units); len(entries) != 0 {
		t.Fatalf("plan realized something: %d entries", len(entries))
	}
	out, _, code = c.run("plan", cfg)
	if code != 0 || !strings.Contains(out, "chain optimizers -> target group-a") || !strings.Contains(out, "decision  +2 units") {
		t.Fatalf("plan text: exit %d\n%s", code, out)
	}
}

func TestPluginsAndVersion(t *testing.T) {
	c := newCLI(t)
	out, errOut, code := c.run("plugins", "--plugin-dir", c.pluginDir)
	if code != 0 {
		t.Fatalf("plugins: %d %s", code, errOut)
	}
	rows := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) >= 4 {
			rows[f[0]] = f[1] + " " + f[3]
		}
	}
	for name, want := range map[string]string{"evaluator-dra": "evaluator builtin",
		"test-collector": "collector " + filepath.Join(c.pluginDir, "test-collector"),
		"test-realizer":  "realizer " + filepath.Join(c.pluginDir, "test-realizer")} {
		if rows[name] != want {
			t.Errorf("plugins: %s is %q, want %q:\n%s", name, rows[name], want, out)
		}
	}
	out, _, _ = c.run("version")
	if !strings.HasPrefix(out, "ebb ") || !strings.Contains(out, "plugin protocol 2") {
		t.Fatalf("version: %q", out)
	}
}

// syncBuffer collects a process's stderr while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freeAddr(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestRunReloadsOnSIGHUP(t *testing.T) {
	c := newCLI(t)
	cfg := c.write("ebb.hcl", c.config(""))
	addr := freeAddr(t)
	cmd := exec.Command(c.ebb, "run", "--config", cfg, "--http", addr, "--state", filepath.Join(c.dir, "ebb.db"))
	var logs syncBuffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()

	get := func(path string) string {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	wait := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; logs:\n%s", what, logs.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	wait("ready", func() bool { return strings.Contains(get("/v1/ready"), "ready") })

	// A broken config is rejected with its diagnostics; the old one runs on.
	c.write("ebb.hcl", c.config(`chain "broken" { nonsense = 1 }`))
	cmd.Process.Signal(syscall.SIGHUP)
	wait("the rejection", func() bool { return strings.Contains(logs.String(), "reload rejected") })
	if !strings.Contains(logs.String(), "ebb.hcl:") {
		t.Fatalf("rejection does not name the place:\n%s", logs.String())
	}
	if !strings.Contains(get("/v1/chains"), `"running": true`) {
		t.Fatal("the running chain stopped after a rejected reload")
	}

	// A good new config adds a chain; the existing one keeps going.
	second := strings.ReplaceAll(strings.ReplaceAll(c.config(""), "plugin_dir = ", "# "), `chain "optimizers"`, `chain "second"`)
	second = second[strings.Index(second, `chain "second"`):]
	second = strings.Replace(second, `target     = "group-a"`, `target     = "group-b"`, 1)
	c.write("ebb.hcl", c.config(second))
	cmd.Process.Signal(syscall.SIGHUP)
	wait("the second chain", func() bool { return strings.Contains(get("/v1/chains/second"), `"ticks"`) })
	if !strings.Contains(get("/metrics"), `ebb_evaluations_total{chain="optimizers",result="ok"}`) {
		t.Fatal("metrics lack the first chain's evaluations")
	}

	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ebb run exited with %v\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("ebb run did not stop on SIGTERM")
	}
}

// TestPlanAgainstAMSEmulator is issue 4's acceptance: `ebb plan` with
// collector-ams against `ebb emulate ams` prints a correct snapshot, with an
// emulated optimizer registered and busy.
func TestPlanAgainstAMSEmulator(t *testing.T) {
	c := newCLI(t)
	rest, metricsAddr := freeAddr(t), freeAddr(t)
	start := func(args ...string) {
		cmd := exec.Command(c.ebb, args...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	}
	start("emulate", "ams", "--addr", rest, "--metrics-addr", metricsAddr, "--group", "group-a")
	waitHTTP(t, "http://"+metricsAddr+"/metrics")
	start("emulate", "optimizer", "-a", "http://"+rest, "-g", "group-a", "-p", "2", "-id", "group-a-7", "-hb", "1000", "--poll", "100ms")
	resp, err := http.Post("http://"+rest+"/emulator/v1/control/submit", "application/json",
		strings.NewReader(`{"group":"group-a","table":"orders","durations":["1h","1h","1h","1h","1h"]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	cfg := c.write("ams.hcl", fmt.Sprintf(`
collector "ams" {
  plugin = "collector-ams"
  config {
    url         = "http://%s"
    metrics-url = "http://%s/metrics"
  }
}
evaluator "dra" {
  plugin = "evaluator-dra"
}
plugin_dir = %q
realizer "files" {
  plugin = "test-realizer"
  config {
    dir = %q
  }
}
chain "amoro" {
  collectors = [collector.ams]
  evaluators = [evaluator.dra]
  realizer   = realizer.files
  target     = "group-a"
  policy {
    min-parallelism      = 2
    max-parallelism      = 8
    executor-parallelism = 2
  }
}`, rest, metricsAddr, c.pluginDir, c.units))
	type planOut struct {
		Evaluations []struct {
			Snapshot struct {
				Complete bool
				Demand   struct {
					PlannedTasks int64 `json:"planned_tasks"`
					RunningTasks int64 `json:"running_tasks"`
				}
				Workers []struct {
					UnitID      string `json:"unit_id"`
					Threads     int64
					BusyThreads int64 `json:"busy_threads"`
					BusyKnown   bool  `json:"busy_known"`
				}
			}
		}
	}
	var got planOut
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, errOut, code := c.run("plan", cfg, "--json")
		if code != 0 {
			t.Fatalf("plan: exit %d: %s", code, errOut)
		}
		got = planOut{}
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatal(err)
		}
		s := got.Evaluations[0].Snapshot
		// The optimizer holds two tasks once it has polled; three wait.
		if s.Complete && s.Demand.RunningTasks == 2 && s.Demand.PlannedTasks == 3 {
			if len(s.Workers) != 1 || s.Workers[0].UnitID != "group-a-7" || s.Workers[0].BusyThreads != 2 || !s.Workers[0].BusyKnown {
				t.Fatalf("workers: %+v", s.Workers)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("snapshot never showed 2 running and 3 planned: %+v", s)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func waitHTTP(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never answered: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDev runs `ebb dev` on a short burst: the floor is provisioned, the
// burst scales up real optimizer processes, the page and API answer, and
// when it stops no optimizer or plugin process is left behind.
func TestDev(t *testing.T) {
	c := newCLI(t)
	trace := c.write("burst.csv", "submit,duration,table\n"+strings.Repeat("1,60,orders\n", 30))
	addr := freeAddr(t)
	cmd := exec.Command(c.ebb, "dev", "--trace", trace, "--http", addr, "--for", "25s")
	var out, errOut syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitHTTP(t, "http://"+addr+"/v1/health")
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(out.String(), "dev-2") {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("no scale-up beyond the floor:\n%s\n%s", out.String(), errOut.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	resp, err := http.Get("http://" + addr + "/v1/chains/dev")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"direction": "up"`) {
		t.Fatalf("decision log lacks the scale-up: %s", body)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("ebb dev: %v\n%s\n%s", err, out.String(), errOut.String())
	}
	text := out.String()
	for _, want := range []string{"+1 unit (dev-1): below the floor", "releasing every optimizer"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	// Every process ebb dev started ran this test's binary; none may remain.
	procs, _ := exec.Command("pgrep", "-f", c.ebb).Output()
	if len(bytes.TrimSpace(procs)) > 0 {
		t.Fatalf("processes left behind: %s", procs)
	}
}

// The example the README points at must stay valid with every builtin
// realizer it offers, including with Terraform-style single-dash flags.
func TestExampleConfigIsValid(t *testing.T) {
	c := newCLI(t)
	example, err := filepath.Abs("../../config.hcl")
	if err != nil {
		t.Fatal(err)
	}
	// The emulated optimizer is ./ebb, as the README builds it: validate
	// checks that the command exists, so run where ./ebb is.
	work := t.TempDir()
	if err := os.Symlink(c.ebb, filepath.Join(work, "ebb")); err != nil {
		t.Fatal(err)
	}
	validate := func(args ...string) (string, string, int) {
		cmd := exec.Command(c.ebb, append([]string{"validate", example}, args...)...)
		cmd.Dir = work
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return out.String(), errOut.String(), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return out.String(), errOut.String(), 0
	}
	for _, args := range [][]string{
		nil,
		{"-var", "realizer=process", "-var=cluster=dev", "-var", "optimizer=emulated"},
		{"-var", "realizer=flink"},
		{"-var", "realizer=spark"},
	} {
		out, errOut, code := validate(args...)
		if code != 0 || !strings.Contains(out, "valid (1 chain)") {
			t.Errorf("%v: exit %d\n%s%s", args, code, out, errOut)
		}
	}
	// Amoro's optimizer.sh is not installed here: validate says so at the
	// command's line instead of the chain failing at run time.
	if _, err := os.Stat("/opt/amoro/bin/optimizer.sh"); os.IsNotExist(err) {
		_, errOut, code := validate("-var", "realizer=process")
		if code != 1 || !strings.Contains(errOut, "config.hcl:") || !strings.Contains(errOut, "/opt/amoro/bin/optimizer.sh") {
			t.Errorf("the process realizer without Amoro installed: exit %d\n%s", code, errOut)
		}
	}
	_, errOut, code := validate("-var", "realizer=nope")
	if code != 1 || !strings.Contains(errOut, "config.hcl:") {
		t.Errorf("a realizer that does not exist: exit %d\n%s", code, errOut)
	}
}

func TestLongFlags(t *testing.T) {
	got := strings.Join(longFlags([]string{"plan", "-var", "a=1", "-var=b=2", "-json", "-v", "--", "-var"}), " ")
	if want := "plan --var a=1 --var=b=2 --json -v -- -var"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// A runner killed with SIGKILL takes its plugin processes with it.
func TestPluginsDieWithTheRunner(t *testing.T) {
	c := newCLI(t)
	cfg := c.write("ebb.hcl", c.config(""))
	addr := freeAddr(t)
	cmd := exec.Command(c.ebb, "run", "--config", cfg, "--http", addr, "--state", filepath.Join(c.dir, "ebb.db"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	waitHTTP(t, "http://"+addr+"/v1/health")
	var children []string
	deadline := time.Now().Add(60 * time.Second)
	for len(children) < 3 {
		out, _ := exec.Command("pgrep", "-P", fmt.Sprint(cmd.Process.Pid)).Output()
		children = strings.Fields(string(out))
		if time.Now().After(deadline) {
			t.Fatalf("the runner started %d plugin processes, want 3", len(children))
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	deadline = time.Now().Add(30 * time.Second)
	for {
		alive := 0
		for _, pid := range children {
			if _, err := os.Stat("/proc/" + pid); err == nil {
				alive++
			}
		}
		if alive == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d plugin processes outlived the runner", alive)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
