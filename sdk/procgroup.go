package sdk

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-plugin/runner"
)

// pipeGrace is how long a killed plugin's output pipes may stay open before
// they are closed from this side: long enough for its last log lines to be
// read, short enough that a process holding them cannot stall the runner.
const pipeGrace = time.Second

// groupRunner runs a plugin as the leader of its own process group, so that
// stopping it stops everything it started. go-plugin's own runner kills only
// the plugin's process and then waits for its output pipes to close; a child
// the plugin left behind (a shell script's `sleep`) holds them open forever,
// and with them every caller of Kill.
//
// The runner owns the output pipes, so it can also close them when a process
// that left the group still holds them. It implements go-plugin's
// runner.Runner and is installed as ClientConfig.RunnerFunc.
type groupRunner struct {
	cmd    *exec.Cmd
	sha256 []byte

	mu             sync.Mutex
	pid            int
	stdout, stderr *os.File // read ends
	exited         chan struct{}
	waitErr        error
}

var _ runner.Runner = (*groupRunner)(nil)

func newGroupRunner(cmd *exec.Cmd, sum []byte) *groupRunner {
	return &groupRunner{cmd: cmd, sha256: sum, exited: make(chan struct{})}
}

// prepare takes over what go-plugin set on its placeholder command: the
// environment carrying the handshake cookie, the client certificate and the
// socket directory.
func (r *groupRunner) prepare(spec *exec.Cmd) {
	if r.cmd.Env == nil {
		r.cmd.Env = spec.Env
	} else {
		r.cmd.Env = append(r.cmd.Env, spec.Env...)
	}
}

// Start checks the pin, then starts the process in its own group. Its stdin
// is /dev/null: a plugin outside the terminal's foreground group must not
// read the terminal.
func (r *groupRunner) Start(context.Context) error {
	if len(r.sha256) > 0 {
		if err := verifySHA256(r.cmd.Path, r.sha256); err != nil {
			return err
		}
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("plugin stdout: %w", err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return fmt.Errorf("plugin stderr: %w", err)
	}
	r.cmd.Stdout, r.cmd.Stderr = outW, errW
	ownGroup(r.cmd)
	err = r.cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		return err
	}
	r.mu.Lock()
	r.pid, r.stdout, r.stderr = r.cmd.Process.Pid, outR, errR
	r.mu.Unlock()
	go r.reap()
	return nil
}

// reap waits for the group leader; once it is gone, whatever it left in its
// group goes too.
func (r *groupRunner) reap() {
	err := r.cmd.Wait()
	r.mu.Lock()
	killGroup(r.pid)
	r.waitErr = err
	close(r.exited)
	r.mu.Unlock()
}

// Exited is true once the plugin's own process has ended, even while a
// leftover holds its pipes.
func (r *groupRunner) Exited() bool {
	select {
	case <-r.exited:
		return true
	default:
		return false
	}
}

// Wait waits for the plugin's process to end.
func (r *groupRunner) Wait(context.Context) error {
	<-r.exited
	return r.waitErr
}

// Kill kills the process group and, after a grace, closes the output pipes
// whoever still holds them. It does not wait.
func (r *groupRunner) Kill(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pid == 0 {
		return nil
	}
	select {
	case <-r.exited:
		// reap already killed the group; the pid may since belong to
		// someone else.
	default:
		killGroup(r.pid)
	}
	out, errs := r.stdout, r.stderr
	time.AfterFunc(pipeGrace, func() {
		out.Close()
		errs.Close()
	})
	return nil
}

func (r *groupRunner) Stdout() io.ReadCloser { return r.stdout }
func (r *groupRunner) Stderr() io.ReadCloser { return r.stderr }
func (r *groupRunner) Name() string          { return r.cmd.Path }

func (r *groupRunner) ID() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pid == 0 {
		return ""
	}
	return strconv.Itoa(r.pid)
}

// Pid is the plugin process's id, 0 before it started.
func (r *groupRunner) Pid() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pid
}

func (r *groupRunner) Diagnose(context.Context) string {
	return "the plugin must print the go-plugin handshake line first on stdout; is " + r.cmd.Path + " an ebb plugin for this platform?"
}

// The plugin runs beside the runner: addresses mean the same on both sides.
func (r *groupRunner) PluginToHost(network, addr string) (string, string, error) {
	return network, addr, nil
}

func (r *groupRunner) HostToPlugin(network, addr string) (string, string, error) {
	return network, addr, nil
}

// ErrChecksum is returned when a pinned plugin binary has another sha256.
var ErrChecksum = errors.New("checksum mismatch")

// FileSHA256 is the sha256 of a file's contents.
func FileSHA256(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return h.Sum(nil), nil
}

func verifySHA256(path string, want []byte) error {
	got, err := FileSHA256(path)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("%w: %s has sha256 %x, want %x", ErrChecksum, path, got, want)
	}
	return nil
}
