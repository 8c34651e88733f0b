package process_test

import (
	"bufio"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale/backend/process"
)

// startWrappedHost re-executes the test binary as a host whose one
// instance runs wrap (see hostWrapEnv) and returns the host and the pids
// its output names: "instance-pid N" from the host and
// "grandchild-pid N" from the instance's wrapper.
func startWrappedHost(t *testing.T, wrap string) (host *exec.Cmd, instance, grandchild int) {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	host = exec.Command(exe)
	host.Env = hostCommandEnv(hostWrapEnv + "=" + wrap)
	out, err := host.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, host.Start())
	t.Cleanup(func() {
		_ = host.Process.Kill()
		_ = host.Wait()
	})
	type pids struct{ instance, grandchild int }
	got := make(chan pids, 1)
	go func() {
		var p pids
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) < 2 {
				continue
			}
			n, _ := strconv.Atoi(f[len(f)-1])
			switch f[len(f)-2] {
			case "instance-pid":
				p.instance = n
			case "grandchild-pid":
				p.grandchild = n
			}
			if p.instance > 0 && p.grandchild > 0 {
				got <- p
				break
			}
		}
		_, _ = bufio.NewReader(out).WriteTo(discard{}) // keep the host's stdout flowing
	}()
	select {
	case p := <-got:
		instance, grandchild = p.instance, p.grandchild
	case <-time.After(eventTimeout):
		t.Fatalf("the host did not report its instance and the wrapper's child within %v", eventTimeout)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(instance, syscall.SIGKILL)
		_ = syscall.Kill(grandchild, syscall.SIGKILL)
	})
	require.False(t, gone(instance), "instance %d runs while its host runs", instance)
	require.False(t, gone(grandchild), "the wrapper's child %d runs while its host runs", grandchild)
	return host, instance, grandchild
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// TestHostDeathKillsForkedProcesses SIGKILLs a host whose instance is a
// shell wrapper that forked a child and exec'd the app: the
// parent-death signal reaches only the direct child, so before the
// guard the forked child lived on with PPID 1.
func TestHostDeathKillsForkedProcesses(t *testing.T) {
	host, instance, grandchild := startWrappedHost(t,
		`sleep 1000 & echo "grandchild-pid $!"; exec "$0"`)

	require.NoError(t, host.Process.Kill())
	_ = host.Wait()
	require.Eventually(t, func() bool { return gone(instance) }, eventTimeout, 5*time.Millisecond,
		"instance %d dies with its host", instance)
	require.Eventually(t, func() bool { return gone(grandchild) }, eventTimeout, 5*time.Millisecond,
		"the process %d the instance forked dies with its host", grandchild)
}

// TestNewRemovesLeftovers: a process that left its instance's process
// group (setsid) survives its host's SIGKILL; the next Backend started
// on the machine finds it by its marker and kills it.
func TestNewRemovesLeftovers(t *testing.T) {
	host, instance, escaped := startWrappedHost(t,
		`setsid sleep 1000 & echo "grandchild-pid $!"; exec "$0"`)

	require.NoError(t, host.Process.Kill())
	_ = host.Wait()
	require.Eventually(t, func() bool { return gone(instance) }, eventTimeout, 5*time.Millisecond,
		"instance %d dies with its host", instance)
	require.False(t, gone(escaped), "the process %d that left the group outlives its host", escaped)

	b, err := process.New(process.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	require.Eventually(t, func() bool { return gone(escaped) }, eventTimeout, 5*time.Millisecond,
		"New kills the leftover %d of a host that is gone", escaped)
}

// TestNewSparesLiveHosts: New never touches the instances of a host that
// still runs (another test, another program on the machine).
func TestNewSparesLiveHosts(t *testing.T) {
	_, instance, escaped := startWrappedHost(t,
		`setsid sleep 1000 & echo "grandchild-pid $!"; exec "$0"`)
	b, err := process.New(process.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	require.False(t, gone(instance), "instance %d of a live host survives New", instance)
	require.False(t, gone(escaped), "process %d of a live host survives New", escaped)
}
