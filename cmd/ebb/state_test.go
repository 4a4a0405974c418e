package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ebbscale/ebb/core/state"
)

// A damaged state file: ebb run refuses with the file's name and the way
// out instead of a stack trace; ebb state inspect says what is left; ebb
// state reset moves it aside and ebb run starts again.
func TestDamagedStateFile(t *testing.T) {
	c := newCLI(t)
	cfg := c.write("config.hcl", c.config(""))
	db := filepath.Join(c.dir, "ebb.db")
	s, err := state.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 300; i++ {
		if err := s.Commit("optimizers", state.ChainState{"dra": []byte(`{}`)}, &state.Record{At: time.Unix(int64(i), 0), Summary: "+1 unit", Reason: strings.Repeat("backlog ", 10)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	data, _ := os.ReadFile(db)
	if err := os.WriteFile(db, data[:16<<10], 0o600); err != nil {
		t.Fatal(err)
	}

	_, errOut, code := c.run("run", "--config", cfg, "--state", db, "--http", freeAddr(t))
	if code == 0 || !strings.Contains(errOut, db+" is damaged") || !strings.Contains(errOut, "ebb state reset "+db) {
		t.Fatalf("run on a damaged state file: exit %d\n%s", code, errOut)
	}
	if strings.Contains(errOut, "goroutine ") || strings.Contains(errOut, "panic") {
		t.Fatalf("run on a damaged state file printed a stack trace:\n%s", errOut)
	}

	out, errOut, code := c.run("state", "inspect", db)
	if code != 0 || !strings.Contains(out, "DAMAGED") {
		t.Fatalf("state inspect: exit %d\n%s%s", code, out, errOut)
	}

	out, errOut, code = c.run("state", "reset", db)
	if code != 0 || !strings.Contains(out, "moved "+db+" to "+db+".damaged-") {
		t.Fatalf("state reset: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(db); !os.IsNotExist(err) {
		t.Fatalf("the damaged file is still in place: %v", err)
	}
	s, err = state.Open(db)
	if err != nil {
		t.Fatalf("a fresh store after reset: %v", err)
	}
	s.Close()
	out, _, code = c.run("state", "inspect", db)
	if code != 0 || !strings.Contains(out, "healthy") {
		t.Fatalf("state inspect after reset: exit %d\n%s", code, out)
	}
}
