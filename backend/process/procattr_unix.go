//go:build unix && !linux

package process

import "syscall"

// sysProcAttr puts the instance in its own process group so stopping it
// reaches every process it forked. These systems have no parent-death
// signal: an instance can outlive a host that is SIGKILLed.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
