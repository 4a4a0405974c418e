package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times: 100 on every
// Linux architecture Go runs on (the kernel's HZ differs, USER_HZ does not).
const clockTicks = 100

// procStat is what the scale harness needs of /proc/<pid>/stat.
type procStat struct {
	pid, ppid int
	comm      string
	// utime, stime, cutime and cstime in clock ticks; cutime and cstime are
	// the children this process has reaped.
	utime, stime, cutime, cstime uint64
}

// cpu is the process's own CPU time plus that of its reaped children.
func (p procStat) cpu() uint64 { return p.utime + p.stime + p.cutime + p.cstime }

// parseStat reads one /proc/<pid>/stat line. The command name is in
// parentheses and may itself hold spaces and parentheses, so the fields are
// counted from the last ')'.
func parseStat(b []byte) (procStat, error) {
	var p procStat
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return p, fmt.Errorf("stat %q: no (comm)", truncate(b))
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:open])))
	if err != nil {
		return p, fmt.Errorf("stat %q: pid: %w", truncate(b), err)
	}
	p.pid, p.comm = pid, string(b[open+1:end])
	// After ")": field 3 (state) onwards; ppid is field 4, utime..cstime 14..17.
	f := strings.Fields(string(b[end+1:]))
	if len(f) < 15 {
		return p, fmt.Errorf("stat of pid %d: %d fields after the command, want at least 15", pid, len(f))
	}
	if p.ppid, err = strconv.Atoi(f[1]); err != nil {
		return p, fmt.Errorf("stat of pid %d: ppid: %w", pid, err)
	}
	for i, dst := range []*uint64{&p.utime, &p.stime, &p.cutime, &p.cstime} {
		v, err := strconv.ParseInt(f[11+i], 10, 64) // cutime and cstime are signed in the kernel
		if err != nil {
			return p, fmt.Errorf("stat of pid %d: field %d: %w", pid, 14+i, err)
		}
		*dst = uint64(max(v, 0))
	}
	return p, nil
}

func truncate(b []byte) string {
	if len(b) > 80 {
		return string(b[:80]) + "..."
	}
	return string(b)
}

// procMem is a process's resident memory from /proc/<pid>/status, in kB.
type procMem struct {
	rss, hwm int64 // VmRSS now, VmHWM its peak
}

func parseStatus(b []byte) (procMem, error) {
	var m procMem
	var seen int
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return m, fmt.Errorf("status %s: %q, want \"<n> kB\"", k, strings.TrimSpace(v))
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return m, fmt.Errorf("status %s: %w", k, err)
		}
		if k == "VmRSS" {
			m.rss = n
		} else {
			m.hwm = n
		}
		seen++
	}
	if seen != 2 {
		// A zombie or kernel thread has neither; its memory is gone.
		return procMem{}, nil
	}
	return m, nil
}

// tree is one sample of a process and all its descendants.
type tree struct {
	root    procStat
	rootMem procMem
	// others are the descendants (the plugin processes), with their memory.
	others    []procStat
	othersMem []procMem
}

// cpuTicks is the CPU time of the whole tree, reaped children included.
func (t tree) cpuTicks() uint64 {
	n := t.root.cpu()
	for _, p := range t.others {
		n += p.cpu()
	}
	return n
}

// othersRSS is the descendants' resident memory now, in kB.
func (t tree) othersRSS() int64 {
	var n int64
	for _, m := range t.othersMem {
		n += m.rss
	}
	return n
}

// readTree samples root and its descendants under procRoot (/proc). A
// process that exits while it is read is left out.
func readTree(procRoot string, root int) (tree, error) {
	entries, err := os.ReadDir(procRoot)
	if err != nil {
		return tree{}, err
	}
	children := map[int][]procStat{}
	var t tree
	found := false
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(procRoot, e.Name(), "stat"))
		if err != nil {
			continue // gone meanwhile, or not ours to read
		}
		p, err := parseStat(b)
		if err != nil {
			return tree{}, err
		}
		if pid == root {
			t.root, found = p, true
		}
		children[p.ppid] = append(children[p.ppid], p)
	}
	if !found {
		return tree{}, fmt.Errorf("process %d is gone", root)
	}
	if t.rootMem, err = readMem(procRoot, root); err != nil {
		return tree{}, err
	}
	queue := []int{root}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		for _, c := range children[pid] {
			m, err := readMem(procRoot, c.pid)
			if err != nil {
				continue
			}
			t.others, t.othersMem = append(t.others, c), append(t.othersMem, m)
			queue = append(queue, c.pid)
		}
	}
	return t, nil
}

func readMem(procRoot string, pid int) (procMem, error) {
	b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "status"))
	if err != nil {
		return procMem{}, err
	}
	return parseStatus(b)
}
