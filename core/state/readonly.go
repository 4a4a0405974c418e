package state

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// lockWait is how long OpenReadOnly waits for a running ebb to let go of the
// file before it reads a snapshot instead.
const lockWait = 200 * time.Millisecond

// snapshotTries bounds how often a snapshot is retaken when the running ebb
// commits while it is being copied.
const snapshotTries = 5

// OpenReadOnly opens the store for reading only, also while `ebb run` holds
// it. bbolt locks the file exclusively for its one writer, so when the lock is
// taken the store is read from a consistent copy instead (see snapshot). A
// missing or empty file is an empty store: nothing has been saved yet.
func OpenReadOnly(path string) (*Store, error) {
	if st, err := os.Stat(path); errors.Is(err, os.ErrNotExist) || (err == nil && st.Size() == 0) {
		// An empty file is one ebb run is about to initialize.
		return openEmpty(path)
	}
	b, err := openBolt(path, bolt.Options{ReadOnly: true, Timeout: lockWait}, true)
	if err == nil {
		return &Store{db: b.db, file: b.file, path: path, readOnly: true}, nil
	}
	if !errors.Is(err, berrors.ErrTimeout) {
		if IsDamaged(err) {
			return nil, err
		}
		return nil, fmt.Errorf("opening state %s: %w", path, err)
	}
	copyPath, cleanup, err := snapshot(path)
	if err != nil {
		return nil, fmt.Errorf("reading state %s while ebb runs: %w", path, err)
	}
	b, err = openBolt(copyPath, bolt.Options{ReadOnly: true, Timeout: lockWait}, true)
	if err != nil {
		cleanup()
		var dmg *DamagedError
		if errors.As(err, &dmg) {
			dmg.Path = path
			return nil, dmg
		}
		return nil, fmt.Errorf("reading a snapshot of state %s: %w", path, err)
	}
	return &Store{db: b.db, file: b.file, path: path, readOnly: true, cleanup: cleanup}, nil
}

// openEmpty is a read-only store with no chains, for a file not yet created.
func openEmpty(path string) (*Store, error) {
	dir, err := os.MkdirTemp("", "ebb-state-")
	if err != nil {
		return nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	s, err := Open(filepath.Join(dir, "empty.db"))
	if err != nil {
		cleanup()
		return nil, err
	}
	s.path, s.readOnly, s.cleanup = path, true, cleanup
	return s, nil
}

// snapshot copies a bbolt file that another process may be writing. bbolt
// never overwrites a page the latest committed meta page refers to until a
// later commit, and it writes the meta page last; so a copy taken while both
// meta pages stayed the same holds one whole committed state. When a commit
// lands during the copy, it is taken again.
func snapshot(path string) (string, func(), error) {
	dir, err := os.MkdirTemp("", "ebb-state-")
	if err != nil {
		return "", nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	dst := filepath.Join(dir, "snapshot.db")
	for try := 0; try < snapshotTries; try++ {
		before, err := metaPages(path)
		if err != nil {
			cleanup()
			return "", nil, err
		}
		if err := copyFile(path, dst); err != nil {
			cleanup()
			return "", nil, err
		}
		after, err := metaPages(path)
		if err != nil {
			cleanup()
			return "", nil, err
		}
		if bytes.Equal(before, after) {
			return dst, cleanup, nil
		}
	}
	cleanup()
	return "", nil, fmt.Errorf("the file changed during each of %d copies; try again", snapshotTries)
}

// metaPages returns bbolt's two meta pages. Their size is the page size
// written in the first one (after the 16-byte page header, the meta's
// magic and version).
func metaPages(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	head := make([]byte, 28)
	if _, err := io.ReadFull(f, head); err != nil {
		return nil, &DamagedError{Path: path, Cause: "too short for a state file"}
	}
	size := int64(binary.LittleEndian.Uint32(head[24:]))
	if size < 512 || size > 1<<16 {
		return nil, &DamagedError{Path: path, Cause: fmt.Sprintf("page size %d in its header", size)}
	}
	out := make([]byte, 2*size)
	n, err := f.ReadAt(out, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return out[:n], nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
