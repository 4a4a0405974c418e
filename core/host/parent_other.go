//go:build !linux

package host

import "os/exec"

// bindToParent has no portable equivalent of Linux's Pdeathsig elsewhere.
func bindToParent(*exec.Cmd) {}
