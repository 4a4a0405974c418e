package main

import (
	"bytes"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ebb dev leaves nothing running when its terminal closes (SIGHUP to its
// process group) or when it is SIGKILLed: no plugin, no optimizer.
func TestDevLeavesNothingRunning(t *testing.T) {
	for _, tc := range []struct {
		name string
		kill func(pid int)
	}{
		{"terminal closed", func(pid int) { syscall.Kill(-pid, syscall.SIGHUP) }},
		{"SIGKILL", func(pid int) { syscall.Kill(pid, syscall.SIGKILL) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCLI(t)
			trace := c.write("burst.csv", "submit,duration,table\n"+strings.Repeat("1,600,orders\n", 30))
			cmd := exec.Command(c.ebb, "dev", "--trace", trace, "--http", freeAddr(t))
			// Its own process group, as a shell gives a foreground job.
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			var out, errOut syncBuffer
			cmd.Stdout, cmd.Stderr = &out, &errOut
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			deadline := time.Now().Add(60 * time.Second)
			for !strings.Contains(out.String(), "dev-2") {
				if time.Now().After(deadline) {
					t.Fatalf("no optimizers started:\n%s\n%s", out.String(), errOut.String())
				}
				time.Sleep(100 * time.Millisecond)
			}
			if procs := processesOf(c.ebb); len(procs) < 4 {
				t.Fatalf("want ebb dev, plugins and optimizers running, found %q", procs)
			}
			tc.kill(cmd.Process.Pid)
			cmd.Wait()
			deadline = time.Now().Add(60 * time.Second)
			for {
				procs := processesOf(c.ebb)
				if len(procs) == 0 {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("left running: %q\n%s", procs, out.String())
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
}

// processesOf lists the processes running this test's ebb binary.
func processesOf(bin string) []string {
	out, _ := exec.Command("pgrep", "-a", "-f", bin).Output()
	var procs []string
	for _, l := range strings.Split(string(bytes.TrimSpace(out)), "\n") {
		if l != "" {
			procs = append(procs, l)
		}
	}
	return procs
}
