package k8slab

import "syscall"

// sysProcAttr kills the child if the test process dies, so no
// component or container outlives a crashed test binary.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
