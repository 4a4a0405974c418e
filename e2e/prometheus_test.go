package e2e

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	process "github.com/ebbscale/ebb/plugins/realizer-process"
	"github.com/ebbscale/ebb/sdk"
)

// promConfig is a chain whose floor makes exactly one decision with
// actions: collector-ams and evaluator-dra as before, realizer-process
// running emulated optimizers, so no cluster is needed.
const promConfig = `
collector "ams" {
  plugin = "collector-ams"
  config {
    url               = "{{.AMS}}"
    metrics-url       = "{{.AMS}}/metrics"
    heartbeat-timeout = "5s"
  }
}

evaluator "dra" {
  plugin = "evaluator-dra"
}

realizer "local" {
  plugin = "realizer-process"
  config {
    command   = ["{{.Ebb}}", "emulate", "optimizer", "-a", "{ams}", "-g", "{group}", "-p", "{threads}", "-id", "{unit}", "-hb", "1000", "--poll", "200ms"]
    vars      = { ams = "{{.AMS}}" }
    state-dir = "{{.Units}}"
    boot-time = "1s"
  }
}

chain "{{.Chain}}" {
  collectors = [collector.ams]
  evaluators = [evaluator.dra]
  realizer   = realizer.local
  target     = "{{.Group}}"
  interval   = "1s"
  policy {
    min-parallelism      = 2
    max-parallelism      = 8
    executor-parallelism = 2
  }
}
`

// TestPrometheusScrapesDecisions: a real Prometheus server scrapes ebb's
// /metrics, and the decision counter read back through PromQL is the value
// ebb itself exposes.
func TestPrometheusScrapesDecisions(t *testing.T) {
	long(t)
	promBin, err := exec.LookPath("prometheus")
	if err != nil {
		if ciRequired() {
			t.Fatalf("prometheus not found (install Debian's prometheus package): %v", err)
		}
		t.Skipf("prometheus not found (install Debian's prometheus package): %v", err)
	}
	bin := ebbBinary(t)
	dir := t.TempDir()
	a := startAMS(t, "prom")
	units := filepath.Join(dir, "units")
	cfg := render(t, promConfig, map[string]any{"AMS": a.url, "Ebb": bin, "Units": units, "Chain": "prom", "Group": "prom"})
	// Registered before the runner's own cleanup, so it runs after the
	// runner has stopped and cannot start the floor again.
	t.Cleanup(func() { releaseProcessUnits(t, bin, units, a.url) })
	r := newRunner(t, bin, dir, cfg)
	r.start()

	// The floor's one scale-up; after it the counter stays put.
	labels := map[string]string{"chain": "prom", "direction": "up", "outcome": "realized"}
	var want float64
	waitFor(t, time.Minute, "ebb to count the floor's scale-up", func() bool {
		v, ok, err := r.metric("ebb_decisions_total", labels)
		want = v
		return err == nil && ok && v >= 1
	}, nil)

	promAddr := freeAddr(t)
	promDir := t.TempDir()
	promCfg := filepath.Join(promDir, "prometheus.yml")
	if err := os.WriteFile(promCfg, []byte(fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: ebb
    scrape_interval: 1s
    scrape_timeout: 1s
    static_configs:
      - targets: ['%s']
`, r.addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(promDir, "prometheus.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	prom := exec.Command(promBin, "--config.file="+promCfg, "--storage.tsdb.path="+filepath.Join(promDir, "data"),
		"--web.listen-address="+promAddr)
	prom.Stdout, prom.Stderr = logf, logf
	if err := prom.Start(); err != nil {
		t.Fatalf("starting prometheus: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = prom.Wait(); logf.Close(); close(exited) }()
	t.Cleanup(func() {
		_ = prom.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = prom.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("prometheus log:\n%s", tail(logPath, 30))
		}
	})

	query := `ebb_decisions_total{job="ebb",chain="prom",direction="up",outcome="realized"}`
	var got float64
	var seen string
	waitFor(t, time.Minute, "Prometheus to return ebb's decision counter", func() bool {
		select {
		case <-exited:
			t.Fatalf("prometheus exited:\n%s", tail(logPath, 30))
		default:
		}
		v, ok, err := promQuery(promAddr, query)
		seen = fmt.Sprintf("value %v, found %v, error %v", v, ok, err)
		got = v
		return err == nil && ok && v == want
	}, func() string { return seen })

	// Both sides still agree: ebb's own counter did not move meanwhile.
	now, ok, err := r.metric("ebb_decisions_total", labels)
	if err != nil || !ok || now != got {
		t.Errorf("ebb exposes %v (found %v, err %v), Prometheus returned %v", now, ok, err, got)
	}
	if up, ok, err := promQuery(promAddr, `up{job="ebb"}`); err != nil || !ok || up != 1 {
		t.Errorf("up{job=\"ebb\"} = %v (found %v, err %v), want 1", up, ok, err)
	}

	// The per-chain DRA figures (README: metrics), read back through PromQL:
	// the floor of 2 threads is one unit of 2, added once; at rest there is
	// no backlog and the ramp is at its first step.
	sel := `{job="ebb",chain="prom",target="prom"}`
	for _, c := range []struct {
		query string
		want  float64
	}{
		{"ebb_evaluator_desired_threads" + sel, 2},
		{"ebb_evaluator_effective_threads" + sel, 2},
		{"ebb_evaluator_registered_threads" + sel, 2},
		{"ebb_evaluator_booting_threads" + sel, 0},
		{"ebb_evaluator_draining_threads" + sel, 0},
		{"ebb_evaluator_backlog_seconds" + sel, 0},
		{"ebb_evaluator_ramp_step" + sel, 1},
		{`ebb_chain_units_total{job="ebb",chain="prom",target="prom",action="add"}`, 1},
		{`sum(ebb_chain_suppressed_decisions_total{job="ebb",chain="prom"}) or vector(0)`, 0},
	} {
		waitFor(t, time.Minute, "Prometheus to return "+c.query, func() bool {
			v, ok, err := promQuery(promAddr, c.query)
			seen = fmt.Sprintf("value %v, found %v, error %v", v, ok, err)
			return err == nil && ok && v == c.want
		}, func() string { return seen + fmt.Sprintf(", want %v", c.want) })
	}
}

// promQuery runs an instant query and returns the single sample's value.
func promQuery(addr, query string) (float64, bool, error) {
	var res struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	u := "http://" + addr + "/api/v1/query?query=" + url.QueryEscape(query)
	if err := httpGetJSON(context.Background(), u, &res); err != nil {
		return 0, false, err
	}
	if res.Status != "success" {
		return 0, false, fmt.Errorf("query %s: %s", query, res.Error)
	}
	switch len(res.Data.Result) {
	case 0:
		return 0, false, nil
	case 1:
	default:
		return 0, false, fmt.Errorf("query %s: %d series, want one", query, len(res.Data.Result))
	}
	s, ok := res.Data.Result[0].Value[1].(string)
	if !ok {
		return 0, false, fmt.Errorf("query %s: value %v is not a string", query, res.Data.Result[0].Value[1])
	}
	v, err := strconv.ParseFloat(s, 64)
	return v, err == nil, err
}

// findSample finds a sample in a Prometheus text exposition: the series of
// name whose labels include the given ones.
func findSample(r io.Reader, name string, labels map[string]string) (float64, bool, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(r)
	if err != nil {
		return 0, false, fmt.Errorf("parsing /metrics: %w", err)
	}
	fam, ok := families[name]
	if !ok {
		return 0, false, nil
	}
	for _, m := range fam.GetMetric() {
		have := map[string]string{}
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		match := true
		for k, v := range labels {
			if have[k] != v {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue(), true, nil
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true, nil
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true, nil
		}
	}
	return 0, false, nil
}

// releaseProcessUnits force-removes the units realizer-process started:
// they outlive the runner by design (a restarted ebb finds them again).
func releaseProcessUnits(t *testing.T, bin, stateDir, amsURL string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := fmt.Sprintf(`{"command":[%q,"emulate","optimizer","-a",%q],"state-dir":%q}`, bin, amsURL, stateDir)
	rz := process.New()
	if err := rz.Configure(ctx, []byte(cfg)); err != nil {
		t.Errorf("releasing units: %v", err)
		return
	}
	target := sdk.Target{Chain: "prom", Name: "prom"}
	units, err := rz.Inventory(ctx, target)
	if err != nil {
		t.Errorf("releasing units: %v", err)
		return
	}
	var d sdk.Decision
	for _, u := range units {
		d.Remove = append(d.Remove, sdk.UnitRemove{UnitID: u.ID, Force: true})
	}
	if len(d.Remove) == 0 {
		return
	}
	if _, err := rz.Realize(ctx, sdk.RealizeRequest{Target: target, Decision: d, RequestID: "e2e-cleanup"}); err != nil {
		t.Errorf("releasing units: %v", err)
	}
}
