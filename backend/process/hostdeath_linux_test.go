package process_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestHostDeathKillsInstances SIGKILLs a host process that runs a Backend
// and checks its instance dies with it (the parent-death signal): no
// instance outlives the host.
func TestHostDeathKillsInstances(t *testing.T) {
	exe, err := os.Executable()
	require.NoError(t, err)
	host := exec.Command(exe)
	host.Env = hostCommandEnv()
	out, err := host.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, host.Start())
	t.Cleanup(func() {
		_ = host.Process.Kill()
		_ = host.Wait()
	})

	pids := make(chan int, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var pid int
			if _, err := fmt.Sscanf(sc.Text(), "instance-pid %d", &pid); err == nil {
				pids <- pid
				return
			}
		}
	}()
	var pid int
	select {
	case pid = <-pids:
	case <-time.After(eventTimeout):
		t.Fatalf("the host did not report a ready instance within %v", eventTimeout)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	require.True(t, !gone(pid), "instance %d runs while its host runs", pid)
	require.NoError(t, host.Process.Kill())
	_ = host.Wait()
	require.Eventually(t, func() bool { return gone(pid) }, eventTimeout, 5*time.Millisecond,
		"instance %d to die with its host", pid)
}
