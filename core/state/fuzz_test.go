package state

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzStateFile feeds damaged state files to ebb: Open either fails (with a
// DamagedError when bbolt cannot make sense of the file) or returns a store
// every operation of which works or fails cleanly, and what a successful
// Commit saved reads back; Inspect never fails on damage. Nothing panics,
// faults or hangs.
//
// The input is not the file itself but damage done to a sound one (of the
// current format, or of the format before group commits): where to cut it,
// and bytes to overwrite, three bytes each (offset, value). Random files
// almost never get past bbolt's magic number, and Go's fuzzing engine
// minimizes every new input it finds interesting: on a whole file of tens of
// kilobytes that took longer than a minute per input, so fuzzing made no
// progress at all. Small inputs keep it moving.
func FuzzStateFile(f *testing.F) {
	// Each input is written to a file, and Inspect takes a snapshot copy:
	// on a busy disk the directory and file operations, not the code
	// under test, set the pace. Memory is as good a disk for this.
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		if tmp, err := os.MkdirTemp("/dev/shm", "ebb-fuzz-"); err == nil {
			f.Cleanup(func() { os.RemoveAll(tmp) })
			f.Setenv("TMPDIR", tmp)
		}
	}
	dir := f.TempDir()
	bases := [2][]byte{soundFile(f, filepath.Join(dir, "new.db")), oldFile(f, filepath.Join(dir, "old.db"))}

	f.Add(false, uint16(0), []byte{})
	f.Add(true, uint16(0), []byte{})
	for _, cut := range []uint16{100, 4096, 10 << 10, 16 << 10} {
		f.Add(false, cut, []byte{})
	}
	var flips []byte
	for off := 8192; off+20 < len(bases[0]) && off < 1<<16; off += 4096 {
		flips = binary.BigEndian.AppendUint16(flips, uint16(off+20))
		flips = append(flips, 0xff)
	}
	f.Add(false, uint16(0), flips)
	f.Add(true, uint16(0), flips)
	// A branch or leaf page's element count, a page id in the meta page.
	f.Add(false, uint16(0), []byte{0x20, 0x0a, 0xff, 0x00, 0x40, 0x07})

	f.Fuzz(func(t *testing.T, old bool, cut uint16, edits []byte) {
		base := bases[0]
		if old {
			base = bases[1]
		}
		data := append([]byte(nil), base...)
		for ; len(edits) >= 3; edits = edits[3:] {
			data[int(binary.BigEndian.Uint16(edits))%len(data)] = edits[2]
		}
		if cut != 0 && int(cut) < len(data) {
			data = data[:cut]
		}
		path := filepath.Join(t.TempDir(), "ebb.db")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Inspect(path); err != nil && !IsDamaged(err) {
			t.Fatalf("inspect: %v", err)
		}
		s, err := Open(path)
		if err != nil {
			return
		}
		defer s.Close()
		// Durability is not under test; syncing made each input slow.
		s.db.NoSync = true
		s.SetRetention(Retention{Keep: 5, MaxAge: time.Hour})
		for i, chain := range []string{"chain-0", "chain-1", "new"} {
			_, _ = s.LoadState(chain)
			_, _ = s.LoadOutcomes(chain)
			_, _ = s.Decisions(chain, 10)
			want := fmt.Sprintf("state %d", i)
			r := &Record{At: time.Unix(int64(i), 0), Summary: "x", Status: "skipped", Direction: "none"}
			if err := s.Commit(chain, ChainState{"dra": []byte(want)}, r, nil); err != nil {
				continue
			}
			if st, err := s.LoadState(chain); err == nil && string(st["dra"]) != want {
				t.Fatalf("chain %s: committed %q, read %q", chain, want, st["dra"])
			}
			r.Status = "realized"
			_ = s.Finish(chain, ChainState{"dra": []byte("done")}, *r)
		}
	})
}

// soundFile is a small store of the current format: state, outcomes,
// compacted and plain records of two chains.
func soundFile(t testing.TB, path string) []byte {
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		chain := fmt.Sprintf("chain-%d", i%2)
		round(t, s, chain, t0.Add(time.Duration(i)*time.Minute), i%3 == 0, "steady")
	}
	s.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// oldFile is a small store as the release before group commits wrote it.
func oldFile(t testing.TB, path string) []byte {
	writeOldFormat(t, path, 2, 15)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
