package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// hangScript is a plugin that never finishes its start: its child sleeps
// and holds the output pipes after the script itself is killed.
const hangScript = "#!/bin/sh\nsleep 100000 &\nwait\n"

// runBounded runs ebb like cli.run, but fails the test instead of hanging
// when ebb does not exit within a minute.
func (c *cli) runBounded(args ...string) (string, string, int) {
	c.t.Helper()
	cmd := exec.Command(c.ebb, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); ok {
			return out.String(), errOut.String(), ee.ExitCode()
		} else if err != nil {
			c.t.Fatal(err)
		}
		return out.String(), errOut.String(), 0
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		c.t.Fatalf("ebb %s hangs", strings.Join(args, " "))
		return "", "", -1
	}
}

// swap replaces a plugin_dir entry with an executable script, or with the
// test plugin when script is empty.
func (c *cli) swap(name, script string) {
	c.t.Helper()
	p := filepath.Join(c.pluginDir, name)
	target, _ := filepath.EvalSymlinks(filepath.Join(c.pluginDir, "test-realizer"))
	tmp := p + ".new"
	var err error
	if script == "" {
		err = os.Symlink(target, tmp)
	} else {
		err = os.WriteFile(tmp, []byte(script), 0o700)
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		c.t.Fatal(err)
	}
}

// pluginPid finds the process running the plugin_dir entry name.
func (c *cli) pluginPid(name string) int {
	want := filepath.Join(c.pluginDir, name) + "\x00"
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.HasPrefix(string(b), want) {
			pid, _ := strconv.Atoi(e.Name())
			return pid
		}
	}
	return 0
}

func TestHangingPluginDoesNotHangTheCLI(t *testing.T) {
	t.Setenv(startTimeoutEnv, "500ms")
	c := newCLI(t)
	cfg := c.write("ebb.hcl", c.config(""))
	c.swap("test-collector", hangScript)

	_, errOut, code := c.runBounded("validate", cfg)
	if code != 1 || !strings.Contains(errOut, "did not finish its start") || !strings.Contains(errOut, cfg+":") {
		t.Errorf("validate: exit %d, %s", code, errOut)
	}
	out, errOut, code := c.runBounded("plugins", "--plugin-dir", c.pluginDir)
	if code != 0 || !strings.Contains(out, "did not finish its start") || !strings.Contains(out, "test-realizer") {
		t.Errorf("plugins: exit %d, %s %s", code, out, errOut)
	}
}

func TestRunSurvivesAPluginThatHangsAndRecovers(t *testing.T) {
	t.Setenv(startTimeoutEnv, "500ms")
	c := newCLI(t)
	cfg := c.write("ebb.hcl", c.config(""))
	addr := freeAddr(t)
	d := c.start(nil, "run", "--config", cfg, "--http", addr, "--state", filepath.Join(c.dir, "ebb.db"))
	body := func(path string) string { _, b := get("http://"+addr+path, "", ""); return b }
	d.wait("ready", func() bool { code, _ := get("http://"+addr+"/v1/ready", "", ""); return code == 200 })

	// The collector's binary is replaced by one that hangs; a reload asks
	// it for its info and is rejected, within the start timeout.
	c.swap("test-collector", hangScript)
	d.cmd.Process.Signal(syscall.SIGHUP)
	d.wait("the rejected reload", func() bool { return strings.Contains(d.logs.String(), "reload rejected") })

	// Its process dies and cannot be restarted: the chain says so.
	pid := c.pluginPid("test-collector")
	if pid == 0 {
		t.Fatal("no collector process")
	}
	syscall.Kill(pid, syscall.SIGKILL)
	d.wait("chain failed", func() bool {
		s := body("/v1/chains/optimizers")
		return strings.Contains(s, `"status": "failed"`) && strings.Contains(s, "did not finish its start")
	})
	if s := body("/v1/ready"); !strings.Contains(s, `"failed"`) || !strings.Contains(s, "optimizers") {
		t.Errorf("/v1/ready: %s", s)
	}

	// The real binary back: the chain recovers at its next retry.
	c.swap("test-collector", "")
	d.wait("chain running", func() bool { return strings.Contains(body("/v1/chains/optimizers"), `"status": "running"`) })

	// Hang it again and interrupt ebb while the restart is stuck.
	c.swap("test-collector", hangScript)
	syscall.Kill(c.pluginPid("test-collector"), syscall.SIGKILL)
	d.cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- d.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ebb run exited with %v\n%s", err, d.logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("ebb run did not stop on SIGINT\n%s", d.logs.String())
	}
}
