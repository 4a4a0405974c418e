package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fillStore writes a store big enough that truncating it cuts through its
// pages: several chains, each with state and a long decision log.
func fillStore(t testing.TB, path string) {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for c := 0; c < 3; c++ {
		chain := fmt.Sprintf("chain-%d", c)
		if err := s.SaveState(chain, ChainState{"dra": []byte(`{"ramp":4,"idle":{"u-1":"2026-01-01T00:00:00Z"}}`)}); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 200; i++ {
			r := &Record{At: time.Unix(int64(i), 0), Summary: "+1 unit", Reason: strings.Repeat("backlog ", 8), Status: "realized"}
			if err := s.Append(chain, r); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// A state file cut short (a full disk during a copy, a bad restore) is
// reported as damaged with the file's name and what to do, never a panic.
func TestTruncatedStateFileIsAClearError(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.db")
	fillStore(t, good)
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	for _, kb := range []int{10, 16, 64} {
		t.Run(fmt.Sprintf("%dKB", kb), func(t *testing.T) {
			if len(data) <= kb<<10 {
				t.Fatalf("store is only %d bytes; the test needs more than %d KB", len(data), kb)
			}
			path := filepath.Join(t.TempDir(), "ebb.db")
			if err := os.WriteFile(path, data[:kb<<10], 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := Open(path)
			if err == nil {
				s.Close()
				t.Fatalf("a state file truncated to %d KB opened without error", kb)
			}
			var dmg *DamagedError
			if !errors.As(err, &dmg) {
				t.Fatalf("error %q is not a DamagedError", err)
			}
			for _, want := range []string{path, "ebb state reset", "ebb state inspect"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
		})
	}
}

// A damaged page inside the decision log used to pass Open and panic on
// the first tick in Append and in GET /v1/chains/{name}.
func TestDamagedDecisionLogPageIsAClearError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ebb.db")
	fillStore(t, path)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Scribble over every page after the meta pages and the first few:
	// the decision log's leaves are among them.
	const page = 4096
	for off := 4 * page; off+page <= len(data); off += page {
		for i := 16; i < 64; i++ {
			data[off+i] = 0xff
		}
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path)
	if err == nil {
		// Whatever Open let through must fail cleanly when used.
		defer s.Close()
		for c := 0; c < 3; c++ {
			chain := fmt.Sprintf("chain-%d", c)
			_ = s.Append(chain, &Record{Summary: "x"})
			_, _ = s.Decisions(chain, 50)
			_, _ = s.LoadState(chain)
		}
		t.Fatalf("a store with scribbled pages opened without error")
	}
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "ebb state reset") {
		t.Fatalf("error %q does not name the file and the way out", err)
	}
}

// What a user can still learn from a damaged file, and the way out: reset
// moves it aside and the next Open starts empty.
func TestInspectAndResetADamagedFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ebb.db")
	fillStore(t, path)
	rep, err := Inspect(path)
	if err != nil || rep.Damage != "" || len(rep.Chains) != 3 || rep.Chains[0].Decisions != 200 || len(rep.Chains[0].Evaluators) != 1 {
		t.Fatalf("healthy file: report %+v, %v", rep, err)
	}

	data, _ := os.ReadFile(path)
	if err := os.WriteFile(path, data[:16<<10], 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err = Inspect(path)
	if err != nil {
		t.Fatalf("inspecting a damaged file: %v", err)
	}
	if rep.Damage == "" {
		t.Fatalf("a truncated file inspected as healthy: %+v", rep)
	}

	moved, err := Reset(path, time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if want := path + ".damaged-20261201T100000Z"; moved != want {
		t.Fatalf("moved to %s, want %s", moved, want)
	}
	if kept, _ := os.ReadFile(moved); len(kept) != 16<<10 {
		t.Fatalf("the damaged file was not kept as it was: %d bytes", len(kept))
	}
	s, err := Open(path)
	if err != nil {
		t.Fatalf("open after reset: %v", err)
	}
	defer s.Close()
	if st, err := s.LoadState("chain-0"); err != nil || len(st) != 0 {
		t.Fatalf("state after reset: %v, %v", st, err)
	}
	if _, err := Reset(path, time.Now()); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("reset of a file a running ebb holds: %v", err)
	}
}

// ebb plan reads the state that ebb run holds: bbolt's lock would block it,
// so it reads a snapshot, and sees what run committed last.
func TestReadOnlyOpenWhileTheRunnerHoldsTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ebb.db")
	w, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Commit("a", ChainState{"dra": []byte(`{"ramp":2}`)}, &Record{Summary: "+1 unit"}, nil); err != nil {
		t.Fatal(err)
	}
	r, err := OpenReadOnly(path)
	if err != nil {
		t.Fatalf("read-only open while held: %v", err)
	}
	st, err := r.LoadState("a")
	if err != nil || string(st["dra"]) != `{"ramp":2}` {
		t.Fatalf("state read while held: %q, %v", st["dra"], err)
	}
	if err := r.SaveState("a", ChainState{}); err == nil {
		t.Fatal("a read-only store accepted a write")
	}
	r.Close()
	// The writer is unaffected and keeps going.
	if err := w.Append("a", &Record{Summary: "none"}); err != nil {
		t.Fatal(err)
	}

	missing, err := OpenReadOnly(filepath.Join(t.TempDir(), "none.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer missing.Close()
	if st, err := missing.LoadState("a"); err != nil || len(st) != 0 {
		t.Fatalf("a missing file reads as %v, %v", st, err)
	}
}

// Damage that appears while ebb runs (a bad disk, another program writing
// the file) reaches bbolt through its memory map: the next Append or read
// of the log is an error naming the file, not a panic of the tick or of
// GET /v1/chains/{name}.
func TestDamageWhileOpenIsAnErrorNotAPanic(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ebb.db")
	fillStore(t, path)
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := f.Stat()
	junk := make([]byte, 4096)
	for i := range junk {
		junk[i] = 0xa5
	}
	for off := int64(2 * 4096); off < fi.Size(); off += 4096 {
		f.WriteAt(junk, off)
	}
	f.Close()
	failed := 0
	for c := 0; c < 3; c++ {
		chain := fmt.Sprintf("chain-%d", c)
		if _, err := s.Decisions(chain, 50); err != nil {
			failed++
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
		}
		if err := s.Append(chain, &Record{Summary: "x"}); err != nil {
			failed++
		}
	}
	if failed == 0 {
		t.Fatal("every call on a scribbled store succeeded")
	}
}

// A branch page that points back at itself made bbolt recurse until the
// stack overflowed, which no recover can catch; the page walk before bbolt
// reports it instead.
func TestCyclicPageIsAClearError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ebb.db")
	fillStore(t, path)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const ps = 4096
	cut := false
	for id := 2; (id+1)*ps <= len(data) && !cut; id++ {
		p := data[id*ps:]
		if binary.LittleEndian.Uint64(p) == uint64(id) && binary.LittleEndian.Uint16(p[8:]) == branchPage {
			// The first element's child is the page itself.
			binary.LittleEndian.PutUint64(p[pageHeader+8:], uint64(id))
			cut = true
		}
	}
	if !cut {
		t.Fatal("the store has no branch page to loop")
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path)
	if err == nil {
		s.Close()
		t.Fatal("a store with a page cycle opened")
	}
	if !IsDamaged(err) || !strings.Contains(err.Error(), "referenced twice") {
		t.Fatalf("error %v", err)
	}
	if rep, err := Inspect(path); err != nil || rep.Damage == "" {
		t.Fatalf("inspect of a cyclic store: %+v, %v", rep, err)
	}
}

// A database that bbolt panicked on is abandoned without bbolt's Close; its
// memory map used to stay, and with it the file's lock: the next Open in
// the same process waited a second and said another ebb held the file.
func TestAbandonedDamagedFileReleasesItsLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ebb.db")
	writeOldFormat(t, path, 2, 15)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[4096] = '.' // the second meta page names another page id
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenReadOnly(path); !IsDamaged(err) {
		t.Fatalf("read-only open of a damaged file: %v", err)
	}
	if _, err := Open(path); !IsDamaged(err) {
		t.Fatalf("open after an abandoned read-only open: %v, want the damage", err)
	}
	if _, err := Reset(path, time.Now()); err != nil {
		t.Fatalf("reset after the damaged file was abandoned: %v", err)
	}
}
