//go:build unix

package sdktest

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

// atExit holds the write end of the watcher's pipe for the life of the
// process; the kernel closes it however the process ends (a failed test, a
// -timeout panic, SIGKILL), and that end-of-file is the watcher's cue.
var atExit *os.File

// removeAtExit starts a watcher that removes dir once this process is gone.
// The watcher has its own session, so a Ctrl-C to the test's process group
// does not stop it before it has cleaned up.
func removeAtExit(dir string) error {
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("cleanup pipe: %w", err)
	}
	defer r.Close()
	cmd := exec.Command("/bin/sh", "-c", `read -r _; rm -rf -- "$1"`, "sdktest-cleanup", dir)
	cmd.Stdin = r
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return fmt.Errorf("starting the cleanup of %s: %w", dir, err)
	}
	go cmd.Wait()
	atExit = w
	return nil
}
