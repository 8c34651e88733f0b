package main

import (
	"os/exec"
	"syscall"
)

// setParentDeathSignal kills a role if the orchestrator dies.
func setParentDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
