package state

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzStateFile feeds arbitrary bytes to ebb as its state file: Open either
// fails (with a DamagedError when bbolt cannot make sense of the file) or
// returns a store every operation of which works or fails cleanly; Inspect
// never fails on damage. Nothing panics or faults.
func FuzzStateFile(f *testing.F) {
	// A small store: Go's fuzzing engine slows to a crawl on inputs of
	// hundreds of kilobytes.
	seed := filepath.Join(f.TempDir(), "seed.db")
	s, err := Open(seed)
	if err != nil {
		f.Fatal(err)
	}
	for i := 0; i < 30; i++ {
		if err := s.Commit("chain-0", ChainState{"dra": []byte(`{"ramp":2}`)}, &Record{Summary: "+1 unit"}, nil); err != nil {
			f.Fatal(err)
		}
	}
	s.Close()
	good, err := os.ReadFile(seed)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	for _, n := range []int{0, 100, 4096, 10 << 10, 16 << 10} {
		if n < len(good) {
			f.Add(good[:n])
		}
	}
	flipped := append([]byte(nil), good...)
	for i := 8192; i+20 < len(flipped); i += 4096 {
		flipped[i+20] ^= 0xff
	}
	f.Add(flipped)

	f.Fuzz(func(t *testing.T, data []byte) {
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
		for _, chain := range []string{"chain-0", "chain-1", "new"} {
			_, _ = s.LoadState(chain)
			_, _ = s.Decisions(chain, 10)
			_ = s.Commit(chain, ChainState{"dra": []byte(`{}`)}, &Record{Summary: "x"}, nil)
		}
	})
}
