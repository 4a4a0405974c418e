package main

import (
	"net/http"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// running is an `ebb run` started by a test, ready to serve.
type running struct {
	t    *testing.T
	cmd  *exec.Cmd
	addr string
	logs *syncBuffer
	done bool
}

// startRun starts `ebb run` on cfg and state file db and waits until its
// chains are ready; it is stopped when the test ends.
func startRun(t *testing.T, c *cli, cfg, db string) *running {
	t.Helper()
	r := &running{t: t, addr: freeAddr(t), logs: &syncBuffer{}}
	r.cmd = exec.Command(c.ebb, "run", "--config", cfg, "--http", r.addr, "--state", db)
	r.cmd.Stderr = r.logs
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.stop)
	r.wait("ready", func() bool {
		resp, err := http.Get("http://" + r.addr + "/v1/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return r
}

// wait polls cond for up to a minute.
func (r *running) wait(what string, cond func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			r.t.Fatalf("timed out waiting for %s; logs:\n%s", what, r.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends ebb run with SIGTERM and waits for it.
func (r *running) stop() {
	if !r.done {
		r.done = true
		r.cmd.Process.Signal(syscall.SIGTERM)
		r.cmd.Wait()
	}
}
