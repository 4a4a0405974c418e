//go:build linux

package state

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// A full disk in the middle of a commit must not leave the evaluators' new
// state saved while the decision that goes with it is neither logged nor
// carried out. The disk is filled for real: the child process gets a file
// size limit (RLIMIT_FSIZE) at the store's current size, so the write that
// needs the file to grow fails with EFBIG as it would with ENOSPC.
func TestCommitOnAFullDiskSavesNeitherStateNorDecision(t *testing.T) {
	if path := os.Getenv("EBB_FULLDISK_STORE"); path != "" {
		fullDiskChild(t, path)
		return
	}
	path := filepath.Join(t.TempDir(), "ebb.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SaveState("a", ChainState{"dra": []byte(`{"ramp":1}`)}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	cmd := exec.Command(os.Args[0], "-test.run", "^TestCommitOnAFullDiskSavesNeitherStateNorDecision$", "-test.v")
	cmd.Env = append(os.Environ(), "EBB_FULLDISK_STORE="+path)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "commit failed:") {
		t.Fatalf("child: %v\n%s", err, out)
	}

	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, err := s.LoadState("a")
	if err != nil {
		t.Fatal(err)
	}
	if string(st["dra"]) != `{"ramp":1}` {
		t.Fatalf("after the failed commit the evaluator state is %s, want the old {\"ramp\":1}", st["dra"])
	}
	for _, chain := range []string{"a", "other-0", "other-4"} {
		if recs, _ := s.Decisions(chain, 10); len(recs) != 0 {
			t.Fatalf("after the failed commit the log of %s holds %d decisions", chain, len(recs))
		}
	}
}

// fullDiskChild commits a small state and a decision too big for the space
// left, under a file size limit.
func fullDiskChild(t *testing.T, path string) {
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	// Without this, exceeding the limit kills the process with SIGXFSZ.
	signalIgnoreXFSZ()
	lim := &syscall.Rlimit{Cur: uint64(fi.Size()), Max: uint64(fi.Size())}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, lim); err != nil {
		t.Skipf("cannot limit the file size: %v", err)
	}
	// Small commits of other chains share the transaction of the one that
	// does not fit: each of them fails with it, and none is half saved.
	release := holdWriter(t, s)
	errs := make(chan error, 6)
	for i := range 5 {
		go func() {
			errs <- s.Commit(fmt.Sprintf("other-%d", i), ChainState{"dra": []byte(`{}`)}, &Record{Summary: "none"}, nil)
		}()
	}
	go func() {
		rec := &Record{Summary: "+4 units", Reason: strings.Repeat("backlog of 4000 tasks; ", 20000)}
		errs <- s.Commit("a", ChainState{"dra": []byte(`{"ramp":8}`)}, rec, nil)
	}()
	waitQueued(t, s, 6)
	release()
	for range 6 {
		if err := <-errs; err == nil {
			t.Fatal("a commit sharing a transaction that needs more space than the disk has succeeded")
		} else {
			t.Logf("commit failed: %v", err)
		}
	}
}
