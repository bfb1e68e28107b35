//go:build unix

package cluster

import (
	"os/exec"
	"syscall"
)

// setProcessGroup puts the shell in its own process group and makes
// cancellation kill the whole group, so that a canceled command does not
// leave its children running.
func setProcessGroup(c *exec.Cmd) {
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	c.Cancel = func() error {
		return syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
	}
}
