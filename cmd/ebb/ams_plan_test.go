package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ebbscale/ebb/emulator/ams"
)

// amsChain is a chain of collector-ams, the builtin DRA evaluator and the
// test realizer on group.
func (c *cli) amsChain(rest, metrics, group, policy string) string {
	return c.write(group+".hcl", fmt.Sprintf(`
plugin_dir = %q
collector "ams" {
  plugin = "collector-ams"
  config {
    url         = %q
    metrics-url = %q
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
chain "amoro" {
  collectors = [collector.ams]
  evaluators = [evaluator.dra]
  realizer   = realizer.files
  target     = %q
  policy {
%s
  }
}`, c.pluginDir, rest, metrics, c.units, group, policy))
}

func (c *cli) unit(id string, size int) {
	c.t.Helper()
	if err := os.MkdirAll(c.units, 0o755); err != nil {
		c.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.units, id), []byte(fmt.Sprintf(`{"size":%d,"phase":"running"}`, size)), 0o644); err != nil {
		c.t.Fatal(err)
	}
}

// A task walk that sees fewer tasks than AMS's gauges never leads to a
// drain: the snapshot is incomplete with both figures, so neither the
// evaluator nor the runner's staleness rule lets a drain through. Three units of two threads run
// six tasks with max-parallelism 4, so with complete data one is drained.
func TestPlanNeverDrainsOnAMisreadWalk(t *testing.T) {
	c := newCLI(t)
	e, err := ams.New(ams.Options{Groups: []ams.GroupConfig{{Name: "g"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Submit("g", "orders", time.Hour, time.Hour, time.Hour, time.Hour, time.Hour, time.Hour); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"u-1", "u-2", "u-3"} {
		if _, err := e.StartOptimizer("g", u, 2); err != nil {
			t.Fatal(err)
		}
		c.unit(u, 2)
	}
	// The misread: process listings come back empty, as AMS 0.9 answers a
	// client that asks without a category.
	var misread atomic.Bool
	h := e.Handler()
	rest := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if misread.Load() && strings.HasSuffix(r.URL.Path, "/optimizing-processes") {
			w.Write([]byte(`{"message":"success","code":200,"result":{"list":[],"total":0}}`))
			return
		}
		h.ServeHTTP(w, r)
	}))
	defer rest.Close()
	metrics := httptest.NewServer(e.MetricsHandler())
	defer metrics.Close()
	cfg := c.amsChain(rest.URL, metrics.URL+"/metrics", "g", "min-parallelism = 0\n    max-parallelism = 4\n    executor-parallelism = 2")

	// Complete data: the unit above the ceiling is drained.
	out, errOut, code := c.run("plan", cfg)
	if code != 0 || !strings.Contains(out, "decision  drain u-") {
		t.Fatalf("control: exit %d, want a drain:\n%s%s", code, out, errOut)
	}
	misread.Store(true)
	out, errOut, code = c.run("plan", cfg)
	if code != 0 {
		t.Fatalf("plan: exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"task lists show 0 tasks (0 planned, 0 scheduled, 0 running) but AMS's gauges show 6 (pending_tasks 0, executing_tasks 6)",
		"running 6", // demand from the gauges: scale-up still sees the work
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "decision  drain") {
		t.Fatalf("a misread walk led to a drain:\n%s", out)
	}
}

// A group AMS scales itself is refused: the decision is no change, and
// ebb plan says which property of which group and how to hand it over.
func TestPlanRefusesAGroupAMSScales(t *testing.T) {
	c := newCLI(t)
	e, err := ams.New(ams.Options{Groups: []ams.GroupConfig{ams.AMSScaledGroup("amoro-dra")}})
	if err != nil {
		t.Fatal(err)
	}
	rest := httptest.NewServer(e.Handler())
	defer rest.Close()
	metrics := httptest.NewServer(e.MetricsHandler())
	defer metrics.Close()
	// The floor alone would add a unit.
	cfg := c.amsChain(rest.URL, metrics.URL+"/metrics", "amoro-dra", "min-parallelism = 2\n    max-parallelism = 8\n    executor-parallelism = 2")
	out, errOut, code := c.run("plan", cfg)
	if code != 0 {
		t.Fatalf("plan: exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		`CONFLICT  collector "ams": optimizer group "amoro-dra": dynamic-allocation.enabled=true: AMS's own dynamic allocation scales it`,
		"To hand it to ebb, set dynamic-allocation.enabled=false",
		"decision  no action",
		"[refused: +1 unit",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan output lacks %q:\n%s", want, out)
		}
	}
}
