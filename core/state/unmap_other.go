//go:build !linux

package state

import "os"

// unmapFile is Linux-only (it reads /proc/self/maps); elsewhere an
// abandoned database keeps its map, and its lock, until the process exits.
func unmapFile(*os.File) {}
