//go:build linux

package process

import "syscall"

// sysProcAttr puts the instance in its own process group, so stopping it
// reaches every process it forked, and asks the kernel to SIGKILL it when
// the thread that started it dies (see spawner), so no instance outlives
// the host.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
