package main

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// daemon is an `ebb run` started by a test.
type daemon struct {
	t    *testing.T
	cmd  *exec.Cmd
	logs *syncBuffer
}

func (c *cli) start(env []string, args ...string) *daemon {
	c.t.Helper()
	cmd := exec.Command(c.ebb, args...)
	cmd.Env = append(os.Environ(), env...)
	d := &daemon{t: c.t, cmd: cmd, logs: &syncBuffer{}}
	cmd.Stderr = d.logs
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { cmd.Process.Kill() })
	return d
}

func (d *daemon) wait(what string, cond func() bool) {
	d.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			d.t.Fatalf("timed out waiting for %s; logs:\n%s", what, d.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// get returns the status of GET url with an optional bearer token and Host.
func get(url, token, host string) (int, string) {
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String()
}

func TestHTTPTokenHostCheckAndBindWarning(t *testing.T) {
	c := newCLI(t)
	const token = "tok-5f1c9e0a"
	port := freeAddr(t)[len("127.0.0.1:"):]
	cfg := c.write("ebb.hcl", c.config(`
http {
  address = "0.0.0.0:`+port+`"
}
log {
  level = "trace"
}`))
	d := c.start([]string{tokenEnv + "=" + token}, "run", "--config", cfg, "--state", filepath.Join(c.dir, "ebb.db"))
	base := "http://127.0.0.1:" + port
	d.wait("the API", func() bool { code, _ := get(base+"/v1/health", "", ""); return code == 200 })
	for _, path := range []string{"/v1/chains", "/v1/chains/optimizers", "/v1/ready", "/metrics", "/"} {
		if code, _ := get(base+path, "", ""); code != http.StatusUnauthorized && path != "/v1/ready" {
			t.Errorf("%s without the token: %d", path, code)
		}
		if code, body := get(base+path, "wrong", ""); code != http.StatusUnauthorized {
			t.Errorf("%s with a wrong token: %d %s", path, code, body)
		}
	}
	d.wait("chains with the token", func() bool {
		code, body := get(base+"/v1/chains", token, "")
		return code == 200 && strings.Contains(body, "optimizers")
	})
	if code, _ := get(base+"/metrics", token, ""); code != 200 {
		t.Errorf("/metrics with the token: %d", code)
	}
	// A kubelet's readiness probe carries no token: it gets the status, and
	// no chain's name.
	d.wait("ready without a token", func() bool {
		code, body := get(base+"/v1/ready", "", "")
		if strings.Contains(body, "optimizers") {
			t.Fatalf("/v1/ready without the token names a chain: %s", body)
		}
		return code == 200
	})
	if !strings.Contains(d.logs.String(), "listens beyond this host") {
		t.Errorf("no warning about the 0.0.0.0 bind:\n%s", d.logs.String())
	}
	if strings.Contains(d.logs.String(), token) {
		t.Fatalf("the token is in the log:\n%s", d.logs.String())
	}
}

func TestHostHeaderIsCheckedWithoutAToken(t *testing.T) {
	c := newCLI(t)
	addr := freeAddr(t)
	cfg := c.write("ebb.hcl", c.config(""))
	d := c.start(nil, "run", "--config", cfg, "--http", addr, "--state", filepath.Join(c.dir, "ebb.db"))
	d.wait("the API", func() bool { code, _ := get("http://"+addr+"/v1/health", "", ""); return code == 200 })
	if code, body := get("http://"+addr+"/v1/chains", "", "attacker.example:80"); code != http.StatusMisdirectedRequest {
		t.Errorf("a rebound name got %d %s", code, body)
	}
	if code, _ := get("http://"+addr+"/v1/chains", "", "localhost"); code != 200 {
		t.Errorf("localhost got %d", code)
	}
}

func TestSIGHUPAppliesLogLevelAndHTTPAddressAndNamesTheRest(t *testing.T) {
	c := newCLI(t)
	first, second := freeAddr(t), freeAddr(t)
	settings := func(addr, level, state string) string {
		return c.config(fmt.Sprintf(`
http {
  address = %q
}
log {
  level = %q
}
state {
  path = %q
}`, addr, level, state))
	}
	cfg := c.write("ebb.hcl", settings(first, "info", filepath.Join(c.dir, "a.db")))
	d := c.start(nil, "run", "--config", cfg)
	d.wait("the API", func() bool { code, _ := get("http://"+first+"/v1/health", "", ""); return code == 200 })
	if strings.Contains(d.logs.String(), "[DEBUG]") {
		t.Fatalf("debug lines at level info:\n%s", d.logs.String())
	}

	c.write("ebb.hcl", settings(second, "debug", filepath.Join(c.dir, "b.db")))
	d.cmd.Process.Signal(syscall.SIGHUP)
	d.wait("the new address", func() bool { code, _ := get("http://"+second+"/v1/health", "", ""); return code == 200 })
	d.wait("debug lines", func() bool { return strings.Contains(d.logs.String(), "[DEBUG]") })
	if code, _ := get("http://"+first+"/v1/health", "", ""); code != 0 {
		t.Errorf("the old address still answers: %d", code)
	}
	logs := d.logs.String()
	for _, want := range []string{"configuration reloaded", "log.level", "http.address", "apply only after a restart", "state.path"} {
		if !strings.Contains(logs, want) {
			t.Errorf("reload log lacks %q:\n%s", want, logs)
		}
	}
}
