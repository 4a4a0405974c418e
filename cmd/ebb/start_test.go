package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ebbscale/ebb/core/config"
	"github.com/ebbscale/ebb/core/host"
	"github.com/ebbscale/ebb/internal/chaingen"
	"github.com/ebbscale/ebb/sdk"
	"github.com/ebbscale/ebb/sdk/sdktest"
)

// builtinHost is a host whose builtins are served by the real ebb binary, as
// ebb run's is.
func builtinHost(t testing.TB) *host.Host {
	t.Helper()
	return host.New(host.Options{Self: sdktest.Build(t, "github.com/ebbscale/ebb/cmd/ebb"), Builtins: builtinNames()})
}

func writeChains(t testing.TB, s chaingen.Spec) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "chains.hcl")
	if err := os.WriteFile(p, chaingen.Config(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// Loading N chains that share one evaluator block with K distinct policies
// starts one process per plugin, not one per chain, and loading it again
// (a reload) starts none.
func TestValidationStartsOneProcessPerPlugin(t *testing.T) {
	const chains, policies, plugins = 300, 5, 3 // collector-ams, evaluator-dra, realizer-process
	h := builtinHost(t)
	defer h.Close()
	path := writeChains(t, chaingen.Spec{Chains: chains, Policies: policies})
	cfg, diags := config.Load(path, nil, h)
	if diags.HasErrors() {
		t.Fatal(config.FormatDiagnostics(diags))
	}
	if len(cfg.Chains) != chains {
		t.Fatalf("%d chains loaded, want %d", len(cfg.Chains), chains)
	}
	if n := h.Launches(); n > plugins {
		t.Errorf("loading %d chains started %d plugin processes, want at most %d (one per plugin)", chains, n, plugins)
	}
	before := h.Launches()
	if _, diags := config.Load(path, nil, h); diags.HasErrors() {
		t.Fatal(config.FormatDiagnostics(diags))
	}
	if n := h.Launches() - before; n != 0 {
		t.Errorf("loading the same chains again started %d processes, want none", n)
	}
	// The policies reached the plugin: each chain has its own max-parallelism.
	var p struct {
		Max int `json:"max-parallelism"`
	}
	if err := json.Unmarshal(cfg.Chains[3].Policy["dra"], &p); err != nil || p.Max != 16 {
		t.Errorf("chain c3's policy %s, %v: want max-parallelism 16", cfg.Chains[3].Policy["dra"], err)
	}
}

// Every bad chain gets its own error at its own policy key, although the
// plugin was asked once per distinct policy.
func TestValidationNamesEveryBadChain(t *testing.T) {
	spec := chaingen.Spec{Chains: 60, Policies: 3, Bad: 7}
	h := builtinHost(t)
	defer h.Close()
	path := writeChains(t, spec)
	_, diags := config.Load(path, nil, h)
	got := config.FormatDiagnostics(diags)
	var want []string
	for i := 0; i < spec.Chains; i += spec.Bad {
		// min-parallelism is the chain's eighth line.
		want = append(want, fmt.Sprintf("%s:%d:5: Invalid policy: min-parallelism %d is above max-parallelism %d (evaluator \"dra\").",
			path, chaingen.ChainLine(spec, i)+7, (i%3+1)*4+4, (i%3+1)*4))
	}
	if strings.TrimSpace(got) != strings.Join(want, "\n") {
		t.Errorf("diagnostics:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
	if n := h.Launches(); n > 3 {
		t.Errorf("%d plugin processes started, want at most 3", n)
	}
}

// perQuestion is the way ebb validated before: every policy, config and
// target question started (and killed) a process of its own. It stays as
// the baseline of BenchmarkStart.
type perQuestion struct {
	*host.Host
	fresh    func() *host.Host
	launches int64
}

func (p *perQuestion) once(f func(h *host.Host)) {
	h := p.fresh()
	defer h.Close()
	f(h)
	p.launches += h.Launches()
}

func (p *perQuestion) ValidatePolicy(plugin string, policy json.RawMessage) (out []sdk.PolicyProblem, err error) {
	p.once(func(h *host.Host) { out, err = h.ValidatePolicy(plugin, policy) })
	return out, err
}

func (p *perQuestion) ValidateConfig(kind sdk.Kind, plugin, pin string, cfg json.RawMessage) (out []sdk.Problem, err error) {
	p.once(func(h *host.Host) { out, err = h.ValidateConfig(kind, plugin, pin, cfg) })
	return out, err
}

func (p *perQuestion) TargetIdentities(plugin, pin string, cfg json.RawMessage, targets []string) (out []string, err error) {
	p.once(func(h *host.Host) { out, err = h.TargetIdentities(plugin, pin, cfg, targets) })
	return out, err
}

// BenchmarkStart loads and validates N generated chains through real plugin
// processes (ebb's builtins through the real host), as ebb validate and the
// start of ebb run do: "cold" with a new host, "reload" on a host that has
// loaded the same file before (SIGHUP), "distinct" with a policy per chain,
// and "per-question", the old way (a process per policy, config and target
// question; with a policy per chain, as many as before the loader asked
// about each policy text once), as the baseline.
//
//	go test -run XXX -bench BenchmarkStart -benchtime 1x ./cmd/ebb/
func BenchmarkStart(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		same := writeChains(b, chaingen.Spec{Chains: n, Policies: 4})
		distinct := writeChains(b, chaingen.Spec{Chains: n, Policies: n})
		load := func(b *testing.B, path string, r config.Resolver) {
			b.Helper()
			if _, diags := config.Load(path, nil, r); diags.HasErrors() {
				b.Fatal(config.FormatDiagnostics(diags))
			}
		}
		run := func(name, path string, reload bool) {
			b.Run(fmt.Sprintf("chains=%d/%s", n, name), func(b *testing.B) {
				var launches int64
				var cpu time.Duration
				for b.Loop() {
					b.StopTimer()
					h := builtinHost(b)
					if reload {
						load(b, path, h)
					}
					before, cpu0 := h.Launches(), cpuTime()
					b.StartTimer()
					load(b, path, h)
					b.StopTimer()
					launches += h.Launches() - before
					h.Close()
					cpu += cpuTime() - cpu0
					b.StartTimer()
				}
				b.ReportMetric(float64(launches)/float64(b.N), "launches/op")
				b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
			})
		}
		run("cold", same, false)
		run("reload", same, true)
		run("distinct", distinct, false)
		if n > 1000 {
			continue // the old way takes minutes here
		}
		b.Run(fmt.Sprintf("chains=%d/per-question", n), func(b *testing.B) {
			var launches int64
			var cpu time.Duration
			for b.Loop() {
				cpu0 := cpuTime()
				h := builtinHost(b)
				p := &perQuestion{Host: h, fresh: func() *host.Host { return builtinHost(b) }}
				// Distinct policies: the loader asks about each policy
				// text once, and the old way asked once per chain.
				load(b, distinct, p)
				launches += h.Launches() + p.launches
				h.Close()
				cpu += cpuTime() - cpu0
			}
			b.ReportMetric(float64(launches)/float64(b.N), "launches/op")
			b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
		})
	}
}

// cpuTime is the CPU this process and its waited-for children (stopped
// plugin processes) have used: on a shared machine it varies less than the
// wall clock.
func cpuTime() time.Duration {
	var self, children syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children)
	tv := func(t syscall.Timeval) time.Duration { return time.Duration(t.Nano()) }
	return tv(self.Utime) + tv(self.Stime) + tv(children.Utime) + tv(children.Stime)
}

// BenchmarkRunStart is ebb run as a user starts it, over N chains of test
// plugins that answer at once: seconds until /v1/health answers (http-s)
// and, up to 1,000 chains, until /v1/ready (every chain evaluated once).
//
//	go test -run XXX -bench BenchmarkRunStart -benchtime 1x ./cmd/ebb/
func BenchmarkRunStart(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("chains=%d", n), func(b *testing.B) {
			ebb, dir := sdktest.Build(b, "github.com/ebbscale/ebb/cmd/ebb"), b.TempDir()
			head := testHead(b, testPlugins(b, dir), filepath.Join(dir, "snapshot.json"), filepath.Join(dir, "units"))
			cfg := writeChains(b, chaingen.Spec{Chains: n, Policies: 4, Head: head})
			var httpUp, ready time.Duration
			for b.Loop() {
				addr := freeAddr(b)
				began := time.Now()
				cmd := exec.Command(ebb, "run", "--config", cfg, "--http", addr, "--state", filepath.Join(b.TempDir(), "ebb.db"), "--log-level", "error")
				var logs syncBuffer
				cmd.Stderr = &logs
				if err := cmd.Start(); err != nil {
					b.Fatal(err)
				}
				exited := make(chan struct{})
				go func() { cmd.Wait(); close(exited) }()
				poll := func(path string) time.Duration {
					for deadline := time.Now().Add(5 * time.Minute); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
						if code, _ := get("http://"+addr+path, "", ""); code == 200 {
							return time.Since(began)
						}
						select {
						case <-exited:
							b.Fatalf("ebb run exited before %s answered:\n%s", path, logs.String())
						default:
						}
					}
					b.Fatalf("%s never answered 200:\n%s", path, logs.String())
					return 0
				}
				httpUp += poll("/v1/health")
				if n <= 1000 {
					ready += poll("/v1/ready")
				}
				cmd.Process.Signal(syscall.SIGTERM)
				<-exited
			}
			b.ReportMetric(httpUp.Seconds()/float64(b.N), "http-s")
			if n <= 1000 {
				b.ReportMetric(ready.Seconds()/float64(b.N), "ready-s")
			}
		})
	}
}

// starts sums ebb_plugin_starts_total of a running ebb by purpose.
func starts(t *testing.T, addr string) map[string]int {
	t.Helper()
	code, body := get("http://"+addr+"/metrics", "", "")
	if code != 200 {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	out := map[string]int{}
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, "ebb_plugin_starts_total{") {
			continue
		}
		_, purpose, _ := strings.Cut(line, `purpose="`)
		purpose, _, _ = strings.Cut(purpose, `"`)
		var n int
		fmt.Sscanf(line[strings.LastIndex(line, " ")+1:], "%d", &n)
		out[purpose] += n
	}
	return out
}

// ebb run with hundreds of chains starts each plugin once to validate and
// once to serve the chains, and a SIGHUP reload of the same chains starts
// nothing; a reload that adds a chain with a new policy asks only about it.
func TestRunStartsAProcessPerPluginNotPerChain(t *testing.T) {
	c := newCLI(t)
	spec := chaingen.Spec{Chains: 100, Policies: 5, Head: testHead(t, c.pluginDir, c.snap, c.units)}
	src := string(chaingen.Config(spec))
	cfg := c.write("chains.hcl", src)
	r := startRun(t, c, cfg, filepath.Join(c.dir, "ebb.db"))

	got := starts(t, r.addr)
	if got["validate"] == 0 || got["validate"] > 3 || got["run"] == 0 || got["run"] > 3 {
		t.Fatalf("plugin starts for %d chains over 3 plugins: %v, want 1 to 3 to validate and 1 to 3 to run", spec.Chains, got)
	}

	reloaded := func(n int) {
		t.Helper()
		r.cmd.Process.Signal(syscall.SIGHUP)
		r.wait("the reload", func() bool { return strings.Count(r.logs.String(), "configuration reloaded") >= n })
	}
	reloaded(1)
	if again := starts(t, r.addr); again["validate"] != got["validate"] || again["run"] != got["run"] {
		t.Errorf("reloading the same chains started processes: %v, before %v", again, got)
	}

	c.write("chains.hcl", src+`
chain "new" {
  collectors = [collector.ams]
  evaluators = [evaluator.dra]
  realizer   = realizer.proc
  target     = "g-new"
  policy {
    max-parallelism      = 400
    executor-parallelism = 4
  }
}
`)
	reloaded(2)
	r.wait("the new chain", func() bool { code, _ := get("http://"+r.addr+"/v1/chains/new", "", ""); return code == 200 })
	if again := starts(t, r.addr); again["validate"] > got["validate"]+1 || again["run"] != got["run"] {
		t.Errorf("adding one chain started %v processes, before %v: want at most one more to validate", again, got)
	}
}

// testHead is chaingen's head over the CLI's test plugins and the builtin
// evaluator-dra, with no demand: chains evaluate at once and change nothing.
func testHead(t testing.TB, pluginDir, snap, units string) string {
	t.Helper()
	if err := os.WriteFile(snap, []byte(`{"tasks": 0}`), 0o644); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`plugin_dir = %q

collector "ams" {
  plugin = "test-collector"
  config {
    file = %q
  }
}

evaluator "dra" {
  plugin = "evaluator-dra"
}

realizer "proc" {
  plugin = "test-realizer"
  config {
    dir = %q
  }
}
`, pluginDir, snap, units)
}
