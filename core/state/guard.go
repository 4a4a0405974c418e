package state

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime/debug"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// DamagedError says the state file cannot be trusted. bbolt panics (or
// faults on its memory map) on pages it cannot parse; every call into it
// goes through guard, so a damaged file is this error instead of a crash.
type DamagedError struct {
	Path  string
	Cause string
}

func (e *DamagedError) Error() string {
	return fmt.Sprintf("state file %s is damaged (%s). Nothing in it is needed to run: "+
		"units are read from the platform again, and evaluators start over with fresh idle timers and ramps. "+
		"Run `ebb state reset %s` to move it aside (it is kept as a .damaged copy) and start ebb again; "+
		"`ebb state inspect %s` shows what can still be read from it",
		e.Path, e.Cause, e.Path, e.Path)
}

// IsDamaged tells whether err (or what it wraps) is a DamagedError.
func IsDamaged(err error) bool {
	var d *DamagedError
	return errors.As(err, &d)
}

// guard runs f, turning a panic or a memory fault inside bbolt into a
// DamagedError. bbolt rolls back the transaction it was in when f panics, so
// the file is no worse than before.
func guard(path string, f func() error) (err error) {
	// A page id past the end of the file makes bbolt read outside its
	// memory map: without this the runtime would kill the process.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = &DamagedError{Path: path, Cause: fmt.Sprint(r)}
		}
	}()
	return f()
}

// walk reads every key of every bucket, so that a damaged page is found
// when the store is opened rather than in the middle of a tick.
func walk(tx *bolt.Tx) error {
	var visit func(b *bolt.Bucket) error
	visit = func(b *bolt.Bucket) error {
		return b.ForEach(func(k, v []byte) error {
			if v == nil {
				child := b.Bucket(k)
				if child == nil {
					return fmt.Errorf("key %q is neither a value nor a bucket", k)
				}
				return visit(child)
			}
			return nil
		})
	}
	return tx.ForEach(func(_ []byte, b *bolt.Bucket) error { return visit(b) })
}

// check walks the store, then lets bbolt check its own invariants (pages
// referenced twice, live pages on the freelist) that a walk cannot see and
// that would let the next write overwrite live data. The walk goes first:
// bbolt's check runs in a goroutine of its own, where a fault on a page
// outside the file could not be recovered.
func check(path string, db *bolt.DB) error {
	return guard(path, func() error {
		return db.View(func(tx *bolt.Tx) error {
			// A meta page claiming more pages than the file holds would
			// send the walk and bbolt's check out of the file, or through
			// billions of page ids.
			if st, err := os.Stat(db.Path()); err == nil && tx.Size() > st.Size() {
				return &DamagedError{Path: path, Cause: fmt.Sprintf("its header claims %d bytes, the file has %d", tx.Size(), st.Size())}
			}
			if err := walk(tx); err != nil {
				return &DamagedError{Path: path, Cause: err.Error()}
			}
			var first error
			for err := range tx.Check() {
				// Drain the channel: bbolt's checker blocks until read.
				if first == nil {
					first = &DamagedError{Path: path, Cause: err.Error()}
				}
			}
			return first
		})
	})
}

// boltFile is an open bbolt database and the file under it. After a panic
// inside bbolt its locks may still be held (a panic in Begin happens before
// the deferred rollback is set up), so a damaged database is never used
// again nor closed through bbolt, whose Close would wait on those locks
// forever: its memory map is removed (unmapFile) and the file closed, which
// releases its flock.
type boltFile struct {
	db   *bolt.DB
	file *os.File
}

// abandon closes the file under a database that bbolt panicked in.
func (b boltFile) abandon() {
	if b.file != nil {
		unmapFile(b.file)
		b.file.Close()
	}
}

// openBolt opens a bbolt file without letting a damaged one crash the
// process, and checks it unless opts is for reading a file known to be
// damaged (Inspect).
func openBolt(path string, opts bolt.Options, checked bool) (boltFile, error) {
	if err := precheck(path); err != nil && checked {
		if IsDamaged(err) {
			return boltFile{}, err
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return boltFile{}, fmt.Errorf("reading %s: %w", path, err)
		}
	}
	var b boltFile
	opts.OpenFile = func(name string, flag int, mode os.FileMode) (*os.File, error) {
		f, err := os.OpenFile(name, flag, mode)
		b.file = f
		return f, err
	}
	err := guard(path, func() error {
		var err error
		b.db, err = bolt.Open(path, 0o600, &opts)
		return err
	})
	if IsDamaged(err) {
		b.abandon()
		return boltFile{}, err
	}
	// Once the file is open, whatever bbolt rejects (a bad magic number,
	// checksum or version; "file size too small") is about its content;
	// a lock held elsewhere and the operating system's errors are not.
	var pathErr *fs.PathError
	if err != nil && b.file != nil && !errors.Is(err, berrors.ErrTimeout) && !errors.As(err, &pathErr) {
		err = &DamagedError{Path: path, Cause: err.Error()}
	}
	if err != nil {
		return boltFile{}, err
	}
	if checked {
		if err := check(path, b.db); err != nil {
			b.abandon()
			return boltFile{}, err
		}
	}
	return b, nil
}
