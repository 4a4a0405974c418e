package process

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"syscall"
	"time"
)

// procStat is what /proc/<pid>/stat says about a process that matters here.
type procStat struct {
	State byte
	Pgrp  int
	// StartTicks is when the process started, in clock ticks since boot:
	// with the pid it identifies a process for the life of the machine.
	StartTicks uint64
}

// readStat reads /proc/<pid>/stat; a missing process is os.ErrNotExist.
func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	return parseStat(b)
}

// parseStat parses a /proc/<pid>/stat line. The command name (field 2) is
// in parentheses and may itself hold spaces and parentheses, so fields are
// counted from the last ')'.
func parseStat(b []byte) (procStat, error) {
	end := bytes.LastIndexByte(b, ')')
	if end < 0 {
		return procStat{}, errors.New("malformed /proc stat: no command name")
	}
	f := bytes.Fields(b[end+1:])
	// f[0] is field 3 (state), so field n is f[n-3].
	const startField = 22
	if len(f) < startField-2 || len(f[0]) != 1 {
		return procStat{}, fmt.Errorf("malformed /proc stat: %d fields after the command name", len(f))
	}
	pgrp, err := strconv.Atoi(string(f[5-3]))
	if err != nil {
		return procStat{}, fmt.Errorf("malformed /proc stat pgrp: %w", err)
	}
	start, err := strconv.ParseUint(string(f[startField-3]), 10, 64)
	if err != nil {
		return procStat{}, fmt.Errorf("malformed /proc stat starttime: %w", err)
	}
	return procStat{State: f[0][0], Pgrp: pgrp, StartTicks: start}, nil
}

// readNulList reads a NUL-separated /proc file (cmdline, environ).
func readNulList(pid int, name string) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, name))
	if err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return nil, nil
	}
	b = bytes.TrimSuffix(b, []byte{0})
	parts := bytes.Split(b, []byte{0})
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = string(p)
	}
	return out, nil
}

// otherCommand is liveness's one verdict that a moment can change: read
// while the unit's process is in an exec (a wrapper script starting its
// program, /usr/bin/env starting bash), its command line and environment
// may be neither the old nor the new one's.
const otherCommand = "pid now runs another command"

// liveness says whether a recorded unit process is still the one that was
// started. reason explains a dead verdict. A process that seems to run
// another command is looked at again over about 30 ms before that is
// believed: a unit taken for dead while it execs would be started twice.
func liveness(rec *record) (alive bool, reason string) {
	wait := time.Millisecond
	for range 5 {
		if alive, reason = livenessOnce(rec); alive || reason != otherCommand {
			return alive, reason
		}
		time.Sleep(wait)
		wait *= 2
	}
	return alive, reason
}

func livenessOnce(rec *record) (alive bool, reason string) {
	st, err := readStat(rec.Pid)
	if err != nil {
		return false, "process is gone"
	}
	if st.State == 'Z' || st.State == 'X' {
		return false, "process exited"
	}
	if st.StartTicks != rec.ProcStart {
		return false, "pid now belongs to another process"
	}
	argv, aerr := readNulList(rec.Pid, "cmdline")
	if aerr == nil && slices.Equal(argv, rec.Argv) {
		return true, ""
	}
	// A wrapper script that execs its program changes the command line but
	// keeps the environment the unit was started with.
	env, eerr := readNulList(rec.Pid, "environ")
	if eerr == nil && slices.Contains(env, tokenEnv+"="+rec.Token) {
		return true, ""
	}
	// A process that is exiting has released its memory, so both read
	// empty: with the same start time it is still the unit, on its way out.
	if aerr == nil && eerr == nil && len(argv) == 0 && len(env) == 0 {
		return true, ""
	}
	return false, otherCommand
}

// findByToken looks for the live process group leader started with the
// unit's token: the unit of an intent record whose plugin died before it
// recorded the pid. Units lead their own process group, so children that
// inherited the token are not mistaken for it.
func findByToken(token string) (pid int, st procStat, ok bool) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, procStat{}, false
	}
	want := tokenEnv + "=" + token
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 1 {
			continue
		}
		st, err := readStat(pid)
		if err != nil || st.Pgrp != pid || st.State == 'Z' || st.State == 'X' {
			continue
		}
		// Processes of other users cannot be read: not ours anyway.
		if env, err := readNulList(pid, "environ"); err == nil && slices.Contains(env, want) {
			return pid, st, true
		}
	}
	return 0, procStat{}, false
}

// signalGroup signals the unit's process group, which holds the unit and
// any children it started. A group that is already gone is not an error.
func signalGroup(pid int, sig syscall.Signal) error {
	if pid <= 1 {
		return fmt.Errorf("refusing to signal process group %d", pid)
	}
	if err := syscall.Kill(-pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal %v to process group %d: %w", sig, pid, err)
	}
	return nil
}
