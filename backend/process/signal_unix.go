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

// signalGroup signals p's group: its id is the leader's pid (Setpgid
// with Pgid 0).
func signalGroup(p *os.Process, sig syscall.Signal) error { return groupSignal(p.Pid, sig) }

// lowerPriority sets the nice value of p's whole process group, every
// thread of it (Linux's PRIO_PGRP reaches each thread; processes and
// threads started later inherit it): a reserved instance's lower CPU
// priority. Threads the app started in the microseconds between its exec
// and this call from a thread not yet reniced keep the default.
func lowerPriority(p *os.Process, nice int) error {
	return syscall.Setpriority(syscall.PRIO_PGRP, p.Pid, nice)
}

// canFreeze: Backend.Freeze stops process groups.
const canFreeze = true

// stopGroup and contGroup suspend and resume the process group whose
// leader is pid (Backend.Freeze, Thaw).
func stopGroup(pid int) error { return groupSignal(pid, syscall.SIGSTOP) }
func contGroup(pid int) error { return groupSignal(pid, syscall.SIGCONT) }

func groupSignal(pid int, sig syscall.Signal) error {
	err := syscall.Kill(-pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}
