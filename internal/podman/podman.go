// Package podman runs container images with Debian's podman, for the tests
// that run ebb's image (scripts/image, e2e's TestHelmChart).
package podman

import (
	"fmt"
	"os/exec"
	"strings"
)

// Podman is the podman binary and the global flags this host needs.
type Podman struct {
	bin    string
	global []string
}

// Find returns podman, or an error when it is not installed. On this
// project's CI host (cgroup v1) crun refuses to start containers ("cgroups
// in hybrid mode not supported") while runc works, so runc is used when it
// is installed.
func Find() (*Podman, error) {
	bin, err := exec.LookPath("podman")
	if err != nil {
		return nil, fmt.Errorf("podman is not installed (apt-get install podman runc): %w", err)
	}
	p := &Podman{bin: bin}
	if runc, err := exec.LookPath("runc"); err == nil {
		p.global = []string{"--runtime", runc}
	}
	return p, nil
}

// Command is `podman ARGS...`. For `run`, it adds --rm and modest
// RLIMIT_NOFILE and RLIMIT_NPROC limits: raising them to podman's defaults
// is refused on the same host.
func (p *Podman) Command(args ...string) *exec.Cmd {
	all := append([]string{}, p.global...)
	if len(args) > 0 && args[0] == "run" {
		all = append(all, "run", "--rm", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024")
		args = args[1:]
	}
	return exec.Command(p.bin, append(all, args...)...)
}

// Load loads an image archive and returns the name podman gave it.
func (p *Podman) Load(archive string) (string, error) {
	out, err := p.Command("load", "-i", archive).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("podman load -i %s: %w\n%s", archive, err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if ref, ok := strings.CutPrefix(line, "Loaded image: "); ok {
			return strings.TrimSpace(ref), nil
		}
	}
	return "", fmt.Errorf("podman load -i %s named no image:\n%s", archive, out)
}
