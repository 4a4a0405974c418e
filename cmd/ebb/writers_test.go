package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestOneWriterIsAboutThePlatformObject: two differently named realizer
// blocks that act on the same object are refused, at the second chain's
// target, naming both chains; the realizer says what the object is, and a
// realizer that cannot say (the test plugin) is compared by its settings.
func TestOneWriterIsAboutThePlatformObject(t *testing.T) {
	c := newCLI(t)
	kube := c.write("kubeconfig", `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
users: [{name: u, user: {token: t}}]
current-context: x
`)
	kube2 := c.write("kubeconfig-copy", strings.Replace(strings.Replace(
		string(mustRead(t, kube)), "name: x", "name: other", 1), "current-context: x", "current-context: other", 1))
	chains := func(realizer, other string) string {
		return fmt.Sprintf(`
chain "one" {
  collectors = [collector.demand]
  evaluators = [evaluator.dra]
  realizer   = realizer.%s
  target     = "group-a"
  policy {
    max-parallelism      = 8
    executor-parallelism = 1
  }
}
chain "two" {
  collectors = [collector.demand]
  evaluators = [evaluator.dra]
  realizer   = realizer.%s
  target     = "group-a"
  policy {
    max-parallelism      = 8
    executor-parallelism = 1
  }
}
`, realizer, other)
	}
	base := func(blocks string) string {
		// The example's own chain goes: this test's two chains are the point.
		cfg := c.config(blocks)
		return cfg[:strings.Index(cfg, `chain "optimizers"`)] + blocks
	}
	for _, tc := range []struct {
		name, blocks, same string
	}{
		{"identical blocks of an old-style realizer", `
realizer "files2" {
  plugin = "test-realizer"
  config {
    dir = "` + c.units + `"
  }
}` + chains("files", "files2"), `plugin "test-realizer" with the same config and target`},
		{"process realizers sharing a state dir", processBlocks(c.dir+"/state", c.dir+"/./state") + chains("p1", "p2"),
			"state-dir " + c.dir + "/state, target group-a"},
		{"k8s realizers on one cluster and namespace", `
realizer "k1" {
  plugin = "realizer-k8s"
  config {
    kubeconfig     = "` + kube + `"
    image          = "apache/amoro:0.8"
    ams-thrift-uri = "thrift://ams:1261"
    name-prefix    = "a-"
  }
}
realizer "k2" {
  plugin = "realizer-k8s"
  config {
    kubeconfig     = "` + kube2 + `"
    image          = "apache/amoro:0.8"
    ams-thrift-uri = "thrift://ams:1261"
    name-prefix    = "b-"
  }
}` + chains("k1", "k2"), "cluster https://127.0.0.1:6443, namespace default, optimizer group group-a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := c.write("ebb.hcl", base(tc.blocks))
			_, errOut, code := c.runBounded("validate", cfg)
			if code != 1 {
				t.Fatalf("validate: exit %d, %s", code, errOut)
			}
			for _, want := range []string{cfg + ":", "Target realized twice", `Chain "two"`, `chain "one"`, tc.same} {
				if !strings.Contains(errOut, want) {
					t.Errorf("diagnostics lack %q:\n%s", want, errOut)
				}
			}
		})
	}

	// Different objects are fine: another state dir.
	ok := c.write("ok.hcl", base(processBlocks(c.dir+"/state1", c.dir+"/state2")+chains("p1", "p2")))
	if out, errOut, code := c.runBounded("validate", ok); code != 0 {
		t.Fatalf("two state dirs: exit %d, %s %s", code, out, errOut)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// processBlocks are realizer-process blocks p1 and p2 with other commands
// and the given state dirs.
func processBlocks(dir1, dir2 string) string {
	var b strings.Builder
	for i, dir := range []string{dir1, dir2} {
		fmt.Fprintf(&b, `
realizer "p%d" {
  plugin = "realizer-process"
  config {
    command   = ["sleep", "%d000"]
    state-dir = %q
  }
}`, i+1, i+1, dir)
	}
	return b.String()
}
