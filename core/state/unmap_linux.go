package state

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// unmapFile removes this process's memory maps of f. A flock belongs to the
// open file, and a memory map keeps the open file alive after its
// descriptor is closed: a damaged database abandoned with its map would
// keep its lock until the process exits, and the next Open in the same
// process (a test, a fuzzer, a reopen after `ebb state reset`) would wait
// for it and fail as if another ebb held the file. The database is never
// touched again after it is abandoned, so its map can go.
func unmapFile(f *os.File) {
	fi, err := f.Stat()
	if err != nil {
		return
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return
	}
	dev := fmt.Sprintf("%02x:%02x", unixMajor(st.Dev), unixMinor(st.Dev))
	maps, err := os.Open("/proc/self/maps")
	if err != nil {
		return
	}
	defer maps.Close()
	var ranges [][2]uintptr
	sc := bufio.NewScanner(maps)
	for sc.Scan() {
		// start-end perms offset major:minor inode path
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[3] != dev || fields[4] != strconv.FormatUint(st.Ino, 10) {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if ok && err1 == nil && err2 == nil && end > start {
			ranges = append(ranges, [2]uintptr{uintptr(start), uintptr(end - start)})
		}
	}
	for _, r := range ranges {
		syscall.Syscall(syscall.SYS_MUNMAP, r[0], r[1], 0)
	}
}

// unixMajor and unixMinor split a Linux device number (glibc's encoding).
func unixMajor(dev uint64) uint64 { return (dev>>8)&0xfff | (dev>>32)&^0xfff }
func unixMinor(dev uint64) uint64 { return dev&0xff | (dev>>12)&^0xff }
