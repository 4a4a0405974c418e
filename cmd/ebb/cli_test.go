package main

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// `ebb plugins NAME` shows a plugin's keys, and docs/plugins/NAME.md is
// exactly what `ebb plugins --markdown NAME` prints (a stale page fails).
func TestPluginsShowsKeys(t *testing.T) {
	c := newCLI(t)
	out, errOut, code := c.run("plugins", "evaluator-dra")
	if code != 0 {
		t.Fatalf("plugins evaluator-dra: exit %d: %s", code, errOut)
	}
	for _, want := range []string{"policy { } keys", "executor-idle-timeout", "duration", `"5m"`, "auto-restart.max-retries",
		"Drain a unit once it has been idle this long"} {
		if !strings.Contains(out, want) {
			t.Errorf("plugins evaluator-dra lacks %q:\n%s", want, out)
		}
	}
	out, _, _ = c.run("plugins", "realizer-process")
	if !strings.Contains(out, "command") || !strings.Contains(out, "required") || strings.Contains(out, "policy { }") {
		t.Errorf("plugins realizer-process:\n%s", out)
	}
	for _, name := range builtinNames() {
		out, errOut, code := c.run("plugins", "--markdown", name)
		if code != 0 {
			t.Fatalf("plugins --markdown %s: exit %d: %s", name, code, errOut)
		}
		page, err := os.ReadFile(filepath.Join("..", "..", "docs", "plugins", name+".md"))
		if err != nil || string(page) != out {
			t.Errorf("docs/plugins/%s.md is stale (run go generate ./cmd/ebb): %v", name, err)
		}
	}
	_, errOut, code = c.run("plugins", "no-such-plugin")
	if code != 1 || !strings.Contains(errOut, `unknown plugin "no-such-plugin"`) {
		t.Errorf("unknown plugin: exit %d: %s", code, errOut)
	}
}

// --plugin-dir works for every command that lists it, a directory that does
// not exist is an error, `ebb plugins --config` reads plugin_dir, and a
// binary that is not a plugin is named in one line.
func TestPluginDir(t *testing.T) {
	c := newCLI(t)
	noDir := c.write("nodir.hcl", strings.Replace(c.config(""), "plugin_dir = ", "# plugin_dir = ", 1))
	for _, args := range [][]string{
		{"validate", noDir, "--plugin-dir", c.pluginDir},
		{"plan", noDir, "-plugin-dir", c.pluginDir},
		{"plugins", "--plugin-dir", c.pluginDir},
		{"plugins", "--config", c.write("dir.hcl", c.config(""))},
	} {
		out, errOut, code := c.run(args...)
		if code != 0 || !strings.Contains(out+errOut, "") {
			t.Errorf("%v: exit %d\n%s%s", args, code, out, errOut)
		}
		if args[0] == "plugins" && !strings.Contains(out, filepath.Join(c.pluginDir, "test-collector")) {
			t.Errorf("%v does not list the plugin directory's plugins:\n%s", args, out)
		}
	}
	missing := filepath.Join(c.dir, "no-such-dir")
	for _, args := range [][]string{
		{"validate", noDir, "--plugin-dir", missing},
		{"plan", noDir, "--plugin-dir", missing},
		{"run", noDir, "--plugin-dir", missing},
		{"plugins", "--plugin-dir", missing},
	} {
		_, errOut, code := c.run(args...)
		if code != 1 || !strings.Contains(errOut, "--plugin-dir: plugin directory "+missing+" does not exist") {
			t.Errorf("%v: exit %d: %s", args, code, errOut)
		}
	}
	bad := c.write("baddir.hcl", strings.Replace(c.config(""), c.pluginDir, missing, 1))
	_, errOut, code := c.run("validate", bad)
	if code != 1 || !strings.Contains(errOut, bad+":2:14: Invalid plugin_dir: plugin directory "+missing+" does not exist") {
		t.Errorf("plugin_dir that does not exist: exit %d: %s", code, errOut)
	}

	script := filepath.Join(c.pluginDir, "not-a-plugin")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho hello\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := c.run("plugins", "--plugin-dir", c.pluginDir)
	want := `?        ` + script + ` (error: ` + script + ` is not an ebb plugin: it printed "hello" instead of the plugin handshake)`
	if code != 0 || !strings.Contains(out, want+"\n") || strings.Contains(out+errOut, "go-plugin") || errOut != "" {
		t.Errorf("a non-plugin binary: exit %d, want the line\n%s\ngot:\n%s%s", code, want, out, errOut)
	}
}

// `ebb run FILE` takes the configuration as its argument, like validate.
func TestRunTakesTheFileAsArgument(t *testing.T) {
	c := newCLI(t)
	cfg := c.write("ebb.hcl", c.config(""))
	cmd, _, logs := c.startRun(cfg)
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil || !strings.Contains(logs.String(), "config="+cfg) {
		t.Fatalf("ebb run %s: %v\n%s", cfg, err, logs.String())
	}
	// Plugins start and stop routinely; at info that is not news.
	for _, noise := range []string{"plugin process exited", "plugin started", "failed to exit gracefully"} {
		if strings.Contains(logs.String(), noise) {
			t.Errorf("info-level log says %q:\n%s", noise, logs.String())
		}
	}
	_, errOut, code := c.run("run", cfg, "--config", c.write("other.hcl", ""))
	if code != 1 || !strings.Contains(errOut, "two configurations") {
		t.Errorf("run FILE --config OTHER: exit %d: %s", code, errOut)
	}
}

// The JSON of the HTTP API and of plan --json reads one way: snake_case
// keys, enums by name, no zero times, no HTML escaping of "<".
func TestJSONIsConsistent(t *testing.T) {
	c := newCLI(t)
	cfg := c.write("ebb.hcl", c.config(""))
	cmd, addr, logs := c.startRun(cfg)
	var chains string
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(chains, `"phase": "`) {
		if time.Now().After(deadline) {
			t.Fatalf("no unit in the inventory:\n%s\n%s", chains, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
		chains = httpGet("http://" + addr + "/v1/chains")
	}
	detail := httpGet("http://" + addr + "/v1/chains/optimizers")
	cmd.Process.Signal(syscall.SIGTERM)
	cmd.Wait()
	plan, errOut, code := c.run("plan", cfg, "--json")
	if code != 0 {
		t.Fatalf("plan: exit %d: %s", code, errOut)
	}
	key := regexp.MustCompile(`"([^"]+)":`)
	for what, body := range map[string]string{"/v1/chains": chains, "/v1/chains/optimizers": detail, "plan --json": plan} {
		for _, m := range key.FindAllStringSubmatch(body, -1) {
			if k := m[1]; k != strings.ToLower(k) || strings.ContainsAny(k, " -") {
				t.Errorf("%s: key %q is not snake_case", what, k)
			}
		}
		for _, bad := range []string{`\u003c`, `\u003e`, "0001-01-01", `"phase": 3`, `"phase": 2`} {
			if strings.Contains(body, bad) {
				t.Errorf("%s contains %s:\n%s", what, bad, body)
			}
		}
	}
	if !strings.Contains(plan, `"phase": "`) || !strings.Contains(plan, " < min-parallelism") && !strings.Contains(plan, "floor") {
		t.Errorf("plan --json:\n%s", plan)
	}
}

func httpGet(url string) string {
	resp, err := http.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// startRun starts `ebb run FILE` on a free port and waits until it serves;
// it is killed when the test ends.
func (c *cli) startRun(cfg string) (*exec.Cmd, string, *syncBuffer) {
	c.t.Helper()
	addr := freeAddr(c.t)
	cmd := exec.Command(c.ebb, "run", cfg, "--http", addr, "--state", filepath.Join(c.dir, "ebb.db"))
	logs := &syncBuffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitHTTP(c.t, "http://"+addr+"/v1/health")
	return cmd, addr, logs
}
