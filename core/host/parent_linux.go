package host

import (
	"os/exec"
	"syscall"
)

// bindToParent makes the kernel kill the plugin when the runner dies, even
// by SIGKILL, so a crashed runner leaves no plugin behind under init.
// (Pdeathsig follows the thread that started the process; Go keeps its
// threads alive, so in practice that is the runner's life.)
func bindToParent(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}
