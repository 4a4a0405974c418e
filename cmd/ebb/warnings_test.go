package main

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

const unusedRealizer = `
realizer "spare" {
  plugin = "test-realizer"
  config {
    dir = "/tmp/spare"
  }
}
`

// An empty file is an error, and the loader's warnings (an unused block)
// reach the user from validate.
func TestValidateShowsWarningsAndRejectsAnEmptyFile(t *testing.T) {
	c := newCLI(t)
	empty := c.write("empty.hcl", "\n# nothing yet\n")
	out, errOut, code := c.run("validate", empty)
	if code != 1 || strings.Contains(out, "valid") || !strings.Contains(errOut, empty+":1:1: Empty configuration") {
		t.Fatalf("empty file: exit %d\n%s%s", code, out, errOut)
	}

	path := c.write("config.hcl", c.config(unusedRealizer))
	out, errOut, code = c.run("validate", path)
	if code != 0 || !strings.Contains(out, "valid") {
		t.Fatalf("config with an unused block: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(errOut, path+":") || !strings.Contains(errOut, `warning: Unused realizer: realizer "spare" is not referenced by any chain`) {
		t.Fatalf("validate does not show the unused block's warning:\n%s", errOut)
	}
}

// ebb run logs the warnings at start and at each reload, and a reload whose
// plugin config is wrong is rejected at the attribute.
func TestRunShowsWarningsAndReloadChecksPluginConfig(t *testing.T) {
	c := newCLI(t)
	cfg := c.write("ebb.hcl", c.config(unusedRealizer))
	run := startRun(t, c, cfg, filepath.Join(c.dir, "ebb.db"))
	cmd, logs, wait := run.cmd, run.logs, run.wait
	if !strings.Contains(logs.String(), `configuration warning: `+cfg+":") || !strings.Contains(logs.String(), `realizer "spare" is not referenced`) {
		t.Fatalf("run does not log the unused block at start:\n%s", logs.String())
	}

	c.write("ebb.hcl", c.config(strings.Replace(unusedRealizer, `"spare"`, `"other"`, 1)))
	cmd.Process.Signal(syscall.SIGHUP)
	wait("the reload's warning", func() bool { return strings.Contains(logs.String(), `realizer "other" is not referenced`) })

	bad := `
realizer "k8s" {
  plugin = "realizer-k8s"
  config {
    mode = "units"
  }
}

chain "on-k8s" {
  collectors = [collector.demand]
  evaluators = [evaluator.dra]
  realizer   = realizer.k8s
  target     = "group-b"
  policy {
    max-parallelism = 4
  }
}
`
	c.write("ebb.hcl", c.config(bad))
	cmd.Process.Signal(syscall.SIGHUP)
	wait("the rejection", func() bool { return strings.Contains(logs.String(), "reload rejected") })
	if !strings.Contains(logs.String(), `Invalid config: mode \"units\"`) && !strings.Contains(logs.String(), `Invalid config: mode "units"`) {
		t.Fatalf("the reload's rejection does not name the bad mode:\n%s", logs.String())
	}
}
