package main

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// Plugin configs that their schemas accept but their plugins cannot use are
// reported by ebb validate at the attribute's FILE:LINE:COL, for every
// builtin plugin kind, instead of a "plugin down" loop at run time.
func TestValidateChecksEachPluginsConfig(t *testing.T) {
	c := newCLI(t)
	chain := func(name, collector, evaluator, realizer string) string {
		return fmt.Sprintf(`
chain %q {
  collectors = [collector.%s]
  evaluators = [evaluator.%s]
  realizer   = realizer.%s
  target     = %q
  policy {
    max-parallelism = 4
  }
}
`, name, collector, evaluator, realizer, name)
	}
	cases := []struct {
		name, block string
		// want[0] is the attribute's line:col and the message; the rest more
		// of the message.
		want []string
	}{
		{"k8s namespace", `
realizer "bad" {
  plugin = "realizer-k8s"
  config {
    namespace = "Not_A_Namespace!"
    mode      = "workload"
  }
}`, []string{`:5:5: Invalid config: namespace "Not_A_Namespace!"`, `(realizer "bad")`}},
		{"k8s mode", `
realizer "bad" {
  plugin = "realizer-k8s"
  config {
    mode = "units"
  }
}`, []string{`:5:5: Invalid config: mode "units": want "unit" or "workload"`}},
		{"process command", `
realizer "bad" {
  plugin = "realizer-process"
  config {
    command   = []
    state-dir = "` + c.dir + `/units-state"
  }
}`, []string{`:5:5: Invalid config: command is empty`}},
		{"ams url", `
collector "ams" {
  plugin = "collector-ams"
  config {
    url = "not a url"
  }
}`, []string{`:5:5: Invalid config: url "not a url": want an http or https URL`, `(collector "ams")`}},
		{"ams time zone", `
collector "ams" {
  plugin = "collector-ams"
  config {
    url                = "http://127.0.0.1:19090"
    signature-timezone = "Mars/Olympus_Mons"
  }
}`, []string{`:6:5: Invalid config: signature-timezone "Mars/Olympus_Mons"`}},
		{"dra unit-prefix", `
evaluator "bad" {
  plugin = "evaluator-dra"
  config {
    unit-prefix = "---"
  }
}`, []string{`:5:5: Invalid config: unit-prefix "---" has no letters or digits`, `(evaluator "bad")`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			collector, evaluator, realizer := "demand", "dra", "files"
			switch {
			case strings.HasPrefix(tc.block, "\nrealizer"):
				realizer = "bad"
			case strings.HasPrefix(tc.block, "\ncollector"):
				collector = "ams"
			default:
				evaluator = "bad"
			}
			// The block under test comes first, at line 2 of the file.
			src := tc.block + "\n" + c.config(chain("under-test", collector, evaluator, realizer))
			path := c.write("config.hcl", "\n"+strings.TrimPrefix(src, "\n"))
			out, errOut, code := c.run("validate", path)
			if code != 1 {
				t.Fatalf("exit %d, want 1\n%s%s", code, out, errOut)
			}
			for _, w := range tc.want[1:] {
				if !strings.Contains(errOut, w) {
					t.Errorf("output lacks %q:\n%s", w, errOut)
				}
			}
			if !strings.Contains(errOut, path+tc.want[0]) {
				t.Errorf("the problem is not at %s%s:\n%s", path, tc.want[0], errOut)
			}
		})
	}
}

// Validating a realizer-process config creates nothing (Configure creates
// its state-dir; validate must not), and a state-dir under a file is a
// problem at the attribute.
func TestValidateProcessConfigLeavesTheHostAlone(t *testing.T) {
	c := newCLI(t)
	stateDir := c.dir + "/not-yet/state"
	block := func(dir string) string {
		return `
realizer "bad" {
  plugin = "realizer-process"
  config {
    command   = ["/bin/sleep", "1000"]
    state-dir = "` + dir + `"
  }
}
` + c.config(`
chain "process" {
  collectors = [collector.demand]
  evaluators = [evaluator.dra]
  realizer   = realizer.bad
  target     = "process"
  policy {
    max-parallelism = 4
  }
}
`)
	}
	path := c.write("config.hcl", block(stateDir))
	out, errOut, code := c.run("validate", path)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(c.dir + "/not-yet"); !os.IsNotExist(err) {
		t.Fatalf("validate created the state-dir's parent: %v", err)
	}
	file := c.write("a-file", "x")
	path = c.write("config.hcl", block(file+"/state"))
	_, errOut, code = c.run("validate", path)
	if code != 1 || !strings.Contains(errOut, path+":6:5: Invalid config: state-dir "+file+"/state: "+file+" is not a directory") {
		t.Fatalf("state-dir under a file: exit %d\n%s", code, errOut)
	}
}
