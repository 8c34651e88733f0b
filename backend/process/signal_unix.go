//go:build unix

package process

import (
	"errors"
	"os"
	"syscall"
)

// terminate asks the instance's whole process group to stop (SIGTERM).
func terminate(p *os.Process) error { return signalGroup(p, syscall.SIGTERM) }

// kill SIGKILLs the instance's whole process group. It is also sent after
// the group leader exited, to reap anything it left running.
func kill(p *os.Process) error { return signalGroup(p, syscall.SIGKILL) }

func signalGroup(p *os.Process, sig syscall.Signal) error {
	// The group id is the leader's pid (Setpgid with Pgid 0).
	err := syscall.Kill(-p.Pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// lowerPriority sets the nice value of p's whole process group, every
// thread of it (Linux's PRIO_PGRP reaches each thread; processes and
// threads started later inherit it): a reserved instance's lower CPU
// priority. Threads the app started in the microseconds between its exec
// and this call from a thread not yet reniced keep the default.
func lowerPriority(p *os.Process, nice int) error {
	return syscall.Setpriority(syscall.PRIO_PGRP, p.Pid, nice)
}
