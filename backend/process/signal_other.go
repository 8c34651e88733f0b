//go:build !unix

package process

import (
	"errors"
	"os"
	"syscall"
)

// sysProcAttr is empty: these systems have neither process groups in the
// POSIX sense nor a parent-death signal, so only the instance's own
// process is stopped and it can outlive a host that is killed.
func sysProcAttr() *syscall.SysProcAttr { return nil }

// terminate has no polite signal to send here: it kills the process.
func terminate(p *os.Process) error { return kill(p) }

func kill(p *os.Process) error {
	err := p.Kill()
	if errors.Is(err, os.ErrProcessDone) {
		return nil
	}
	return err
}

// lowerPriority is not supported here: a reserved instance runs at the
// default priority.
func lowerPriority(*os.Process, int) error { return nil }

// canFreeze: without process groups there is nothing to stop as a
// whole; Backend.Freeze fails.
const canFreeze = false

func stopGroup(int) error { return errors.ErrUnsupported }
func contGroup(int) error { return errors.ErrUnsupported }
