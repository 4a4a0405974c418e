//go:build unix

package host

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// ErrUntrusted is a plugin binary that someone other than the runner's user
// (or root) could have written.
var ErrUntrusted = errors.New("untrusted plugin")

// trusted refuses to run an unpinned external plugin that another user could
// have replaced, as ssh refuses such keys: the file, the directory it really
// lives in and plugin_dir must each be owned by the runner's user or root
// and be writable by neither group nor others. A sha256 pin vouches for the
// binary itself, so a pinned plugin skips this.
func trusted(f Found, pluginDir string) error {
	real, err := filepath.EvalSymlinks(f.Path)
	if err != nil {
		return fmt.Errorf("plugin %q: %w", f.Name, err)
	}
	paths := []string{real, filepath.Dir(real)}
	if pluginDir != "" && pluginDir != filepath.Dir(real) {
		paths = append(paths, pluginDir)
	}
	uid := uint32(os.Getuid())
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("plugin %q: %w", f.Name, err)
		}
		sys, ok := st.Sys().(*syscall.Stat_t)
		if !ok {
			continue
		}
		switch {
		case sys.Uid != uid && sys.Uid != 0:
			return fmt.Errorf("%w %q: %s is owned by uid %d, not by this user (uid %d) or root; "+
				"chown it, or pin the binary with sha256 = \"<its sha256>\"", ErrUntrusted, f.Name, p, sys.Uid, uid)
		case st.Mode().Perm()&0o022 != 0:
			return fmt.Errorf("%w %q: %s is writable by group or others (mode %04o); "+
				"run chmod go-w on it, or pin the binary with sha256 = \"<its sha256>\"", ErrUntrusted, f.Name, p, st.Mode().Perm())
		}
	}
	return nil
}

// fileStamp names a file's content as it is now without reading it: device,
// inode, size and modification time. Replacing a binary (a new inode) or
// rewriting it (a new mtime) gives a new stamp. A pinned binary is checked
// against its sha256 again whenever it is started.
func fileStamp(st os.FileInfo) string {
	s := fmt.Sprintf("%d\x00%d", st.Size(), st.ModTime().UnixNano())
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		s += fmt.Sprintf("\x00%d\x00%d", sys.Dev, sys.Ino)
	}
	return s
}
