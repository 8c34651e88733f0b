package docker_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/backend/backendtest"
	"github.com/zeroscale/zeroscale/backend/docker"
	"github.com/zeroscale/zeroscale/internal/dockertest"
	"github.com/zeroscale/zeroscale/internal/testapp"
	"github.com/zeroscale/zeroscale/revision"
)

// TestContract runs the Backend contract with every instance fronted by
// an in-process queue-proxy, as the zeroscale Server runs them.
func TestContract(t *testing.T) {
	needEngine(t)
	backendtest.Run(t, func(t *testing.T, cfg backendtest.Config) backendtest.Harness {
		b := newBackend(t, docker.Options{Drain: cfg.Drain, Proxy: docker.QueueProxy(testQueueProxy)})
		return backendtest.Harness{Backend: b, Spec: appSpec(), Timeout: eventTimeout}
	})
}

// TestContractDirect runs the contract with instances reached at their
// published ports, no proxy in front.
func TestContractDirect(t *testing.T) {
	needEngine(t)
	backendtest.Run(t, func(t *testing.T, cfg backendtest.Config) backendtest.Harness {
		b := newBackend(t, docker.Options{Drain: cfg.Drain})
		return backendtest.Harness{Backend: b, Spec: appSpec(), Timeout: eventTimeout}
	})
}

// up deploys rev on b, scales it to n and returns its watch and its n
// ready instances.
func up(t *testing.T, b backend.Backend, rev revision.Revision, n int) (<-chan []backend.Instance, []backend.Instance) {
	t.Helper()
	ctx := t.Context()
	require.NoError(t, b.Deploy(ctx, rev))
	ch, err := b.Watch(ctx, rev.Name())
	require.NoError(t, err)
	require.NoError(t, b.Scale(ctx, rev.Name(), n))
	return ch, waitReady(t, ch, n)
}

// waitReady waits until rev has n ready instances and returns them.
func waitReady(t *testing.T, ch <-chan []backend.Instance, n int) []backend.Instance {
	t.Helper()
	deadline := time.After(eventTimeout)
	for {
		select {
		case snap, ok := <-ch:
			require.True(t, ok, "watch closed")
			ready := 0
			for _, in := range snap {
				if in.Serving() {
					ready++
				}
			}
			if ready == n && len(snap) == n {
				return snap
			}
		case <-deadline:
			t.Fatalf("no %d ready instances within %v", n, eventTimeout)
		}
	}
}

func get(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + path)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func TestContainerSpec(t *testing.T) {
	b := newBackend(t, docker.Options{Proxy: docker.QueueProxy(testQueueProxy)})
	spec := appSpec(withEnv("GREETING", "hi"))
	spec.Port = 9000
	spec.Resources = revision.Resources{CPULimitMillis: 500, CPURequestMillis: 250, MemoryLimitBytes: 64 << 20, MemoryRequestBytes: 32 << 20}
	rev := newRevision(t, "spec-00001", spec)
	ctx := t.Context()
	_, ready := up(t, b, rev, 1)
	inst := ready[0]

	for name, want := range map[string]string{"GREETING": "hi", "PORT": "9000", "K_REVISION": "spec-00001", "K_SERVICE": "spec", "K_CONFIGURATION": "spec"} {
		code, body := get(t, inst.Address, "/env?name="+name)
		assert.Equal(t, http.StatusOK, code)
		assert.Equal(t, want, body, "env %s", name)
	}
	st, err := b.Status(ctx, rev.Name())
	require.NoError(t, err)
	require.Len(t, st.Instances, 1)
	in := st.Instances[0]
	assert.Equal(t, backend.InstanceRunning, in.State)
	assert.True(t, strings.HasPrefix(in.AppAddress, "127.0.0.1:"), "published on loopback: %s", in.AppAddress)
	assert.NotEqual(t, in.AppAddress, inst.Address, "the proxy fronts the published port")
	assert.Contains(t, st.Message, testImage)
	tm := b.Timings(rev.Name())[0]
	assert.False(t, tm.Begin.After(tm.Created) || tm.Created.After(tm.Started) || tm.Started.After(tm.Listening) || tm.Listening.After(tm.Ready),
		"phases in order: %+v", tm)

	res, err := cli.ContainerInspect(ctx, containerOf(t, inst.ID), client.ContainerInspectOptions{})
	require.NoError(t, err)
	c := res.Container
	assert.Equal(t, b.Identity(), c.Config.Labels[docker.LabelIdentity])
	assert.Equal(t, rev.Name(), c.Config.Labels[docker.LabelRevision])
	assert.Equal(t, inst.ID, c.Config.Labels[docker.LabelInstance])
	assert.Equal(t, testImage, c.Config.Labels[docker.LabelImage])
	assert.Equal(t, "standard", c.Config.Labels[docker.LabelKind])
	assert.Equal(t, int64(500_000_000), c.HostConfig.NanoCPUs)
	assert.Equal(t, int64(256), c.HostConfig.CPUShares)
	assert.Equal(t, int64(64<<20), c.HostConfig.Memory)
	assert.Equal(t, int64(32<<20), c.HostConfig.MemoryReservation)
	for port, bindings := range c.HostConfig.PortBindings {
		assert.Equal(t, "9000/tcp", port.String())
		for _, pb := range bindings {
			assert.Equal(t, "127.0.0.1", pb.HostIP.String(), "never published on all interfaces")
		}
	}
	require.NoError(t, b.Remove(ctx, rev.Name()))
	assert.Empty(t, ownContainers(t, b.Identity()))
}

// TestReservedContainer: a reserved instance's container runs with the
// reserved profile's CPU and memory, labelled reserved; the standard one
// keeps the spec's.
func TestReservedContainer(t *testing.T) {
	b := newBackend(t, docker.Options{Proxy: docker.QueueProxy(testQueueProxy)})
	spec := appSpec()
	spec.Resources = revision.Resources{CPULimitMillis: 1000, MemoryLimitBytes: 256 << 20}
	spec.Scaling.IdleMode = revision.IdleModeReserve
	spec.Scaling.ReservedCPUMillis = new(int64(100))
	spec.Scaling.ReservedMemoryBytes = new(int64(32 << 20))
	rev := newRevision(t, "cheap-00001", spec)
	ctx := t.Context()
	ch, ready := up(t, b, rev, 1)
	require.NoError(t, b.ScaleReserved(ctx, rev.Name(), 1))
	var reserved backend.Instance
	for _, in := range waitReady(t, ch, 2) {
		if in.Reserved {
			reserved = in
		}
	}
	require.NotEmpty(t, reserved.ID, "one of the two is the reserved instance")
	code, _ := get(t, reserved.Address, "/")
	assert.Equal(t, http.StatusOK, code)
	for _, tc := range []struct {
		inst      backend.Instance
		kind      string
		nano, mem int64
	}{
		{ready[0], "standard", 1_000_000_000, 256 << 20},
		{reserved, "reserved", 100_000_000, 32 << 20},
	} {
		res, err := cli.ContainerInspect(ctx, containerOf(t, tc.inst.ID), client.ContainerInspectOptions{})
		require.NoError(t, err)
		c := res.Container
		assert.Equal(t, tc.kind, c.Config.Labels[docker.LabelKind], tc.inst.ID)
		assert.Equal(t, tc.nano, c.HostConfig.NanoCPUs, tc.inst.ID)
		assert.Equal(t, tc.mem, c.HostConfig.Memory, tc.inst.ID)
	}
	require.NoError(t, b.Remove(ctx, rev.Name()))
	assert.Empty(t, ownContainers(t, b.Identity()))
}

func TestDeployMissingImage(t *testing.T) {
	b := newBackend(t, docker.Options{})
	rev := newRevision(t, "missing-00001", revision.Spec{Image: "zeroscale-test/not-there:" + env.RunID})
	err := b.Deploy(t.Context(), rev)
	require.ErrorIs(t, err, backend.ErrInvalidArgument)
	assert.Contains(t, err.Error(), "zeroscale-test/not-there:"+env.RunID)
	assert.Contains(t, err.Error(), "docker build")
	assert.Contains(t, err.Error(), "docker load")
	_, err = b.Watch(t.Context(), rev.Name())
	require.ErrorIs(t, err, backend.ErrNotDeployed, "nothing deployed")

	noImage := newRevision(t, "cmd-00001", revision.Spec{Command: []string{"/bin/true"}})
	err = b.Deploy(t.Context(), noImage)
	require.ErrorIs(t, err, backend.ErrInvalidArgument)
	assert.Contains(t, err.Error(), "Spec.Image")
}

func TestEngineUnreachable(t *testing.T) {
	sock := t.TempDir() + "/no-engine.sock"
	t.Setenv("DOCKER_HOST", "unix://"+sock)
	_, err := docker.New(t.Context(), docker.Options{Identity: "unreachable"})
	require.ErrorIs(t, err, backend.ErrTransient)
	assert.Contains(t, err.Error(), sock)
	assert.Contains(t, err.Error(), "DOCKER_HOST")
	assert.Contains(t, err.Error(), "unreachable")
}

func TestBadOptions(t *testing.T) {
	for _, o := range []docker.Options{
		{Identity: "has space"},
		{Identity: strings.Repeat("x", 129)},
		{StopGrace: -time.Second},
		{MinRestartBackoff: time.Minute, MaxRestartBackoff: time.Second},
		{MaxInstances: -1},
		{LogTailLines: docker.MaxLogTailLines + 1},
	} {
		_, err := docker.New(t.Context(), o)
		require.ErrorIs(t, err, backend.ErrInvalidArgument, "%+v", o)
		assert.Contains(t, err.Error(), "Options.")
	}
}

// TestCrashLoop: an app that exits at once is replaced by new instances
// with growing backoff; Status shows the exit code and its last output.
func TestCrashLoop(t *testing.T) {
	b := newBackend(t, docker.Options{MinRestartBackoff: 50 * time.Millisecond, MaxRestartBackoff: time.Second})
	rev := newRevision(t, "crashy-00001", appSpec(withEnv(testapp.ModeEnv, string(testapp.Crash))))
	ctx := t.Context()
	require.NoError(t, b.Deploy(ctx, rev))
	ch, err := b.Watch(ctx, rev.Name())
	require.NoError(t, err)
	require.NoError(t, b.Scale(ctx, rev.Name(), 1))
	require.Eventually(t, func() bool {
		for {
			select {
			case snap := <-ch:
				for _, in := range snap {
					assert.False(t, in.Ready, "a crashing app is never ready")
				}
			default:
				st, err := b.Status(ctx, rev.Name())
				return err == nil && len(st.Instances) == 1 && st.Instances[0].Restarts >= 3
			}
		}
	}, eventTimeout, 10*time.Millisecond)
	var sl backend.InstanceStatus
	require.Eventually(t, func() bool {
		st, err := b.Status(ctx, rev.Name())
		require.NoError(t, err)
		sl = st.Instances[0]
		return len(st.CrashLooping()) == 1
	}, eventTimeout, 10*time.Millisecond, "the slot waits in backoff")
	require.NotNil(t, sl.LastExit)
	assert.Equal(t, testapp.ExitCrash, sl.LastExit.Code)
	assert.Contains(t, sl.LastExit.Reason, "code 3")
	assert.Contains(t, sl.LastExit.Output, "fatal: boom")
	assert.Contains(t, sl.LastExit.Output, "app starting")
	assert.Equal(t, sl.LastExit.Output, sl.Output)
	assert.True(t, sl.NextRestart.After(sl.LastExit.Time), "a backoff follows the crash")
	assert.True(t, strings.HasPrefix(sl.ID, rev.Name()+"-"), "the waiting slot names its last instance: %s", sl.ID)
	require.NoError(t, b.Remove(ctx, rev.Name()))
	assert.Empty(t, ownContainers(t, b.Identity()), "crashed containers are removed")
}

// TestCrashReplaced: a ready instance whose app exits is noticed through
// the engine's events, leaves the watch, and a new instance (new ID)
// takes its place.
func TestCrashReplaced(t *testing.T) {
	b := newBackend(t, docker.Options{Proxy: docker.QueueProxy(testQueueProxy)})
	rev := newRevision(t, "crash-00001", appSpec())
	ctx := t.Context()
	ch, ready := up(t, b, rev, 1)
	first := ready[0]
	_, _ = http.Get("http://" + first.Address + "/crash")
	second := waitReady(t, ch, 1)[0]
	assert.NotEqual(t, first.ID, second.ID, "a restart is a new instance")
	st, err := b.Status(ctx, rev.Name())
	require.NoError(t, err)
	require.Len(t, st.Instances, 1)
	sl := st.Instances[0]
	assert.Equal(t, second.ID, sl.ID)
	require.NotNil(t, sl.LastExit)
	assert.Equal(t, testapp.ExitCrashOnRequest, sl.LastExit.Code)
	assert.Contains(t, sl.LastExit.Output, "crashing on request")
	assert.Equal(t, 1, sl.Restarts)
	code, body := get(t, second.Address, "/")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "ok\n", body)
}

// TestStartTimeout: an app that never listens is removed after
// StartTimeout and counted as a crash.
func TestStartTimeout(t *testing.T) {
	b := newBackend(t, docker.Options{StartTimeout: 5 * time.Second, MinRestartBackoff: time.Minute, MaxRestartBackoff: time.Minute})
	rev := newRevision(t, "hang-00001", appSpec(withEnv(testapp.ModeEnv, string(testapp.Hang))))
	ctx := t.Context()
	require.NoError(t, b.Deploy(ctx, rev))
	require.NoError(t, b.Scale(ctx, rev.Name(), 1))
	var st backend.EngineStatus
	require.Eventually(t, func() bool {
		var err error
		st, err = b.Status(ctx, rev.Name())
		return err == nil && len(st.CrashLooping()) == 1
	}, eventTimeout, 10*time.Millisecond)
	sl := st.CrashLooping()[0]
	assert.Contains(t, sl.LastExit.Reason, "not ready within 5s")
	assert.Contains(t, sl.LastExit.Output, "app starting")
	assert.Len(t, st.Instances, 1, "the replacement waits for the backoff")
	assert.Empty(t, ownContainers(t, b.Identity()), "the hung container was removed")
}

// TestCloseRemovesEverything: Close drains and removes every container
// the backend created.
func TestCloseRemovesEverything(t *testing.T) {
	needEngine(t)
	id := identity(t)
	b, err := docker.New(t.Context(), docker.Options{Identity: id, StopGrace: time.Second})
	require.NoError(t, err)
	ctx := t.Context()
	for _, name := range []string{"close-a-00001", "close-b-00001"} {
		rev := newRevision(t, name, appSpec())
		require.NoError(t, b.Deploy(ctx, rev))
		ch, err := b.Watch(ctx, rev.Name())
		require.NoError(t, err)
		require.NoError(t, b.Scale(ctx, rev.Name(), 2))
		waitReady(t, ch, 2)
	}
	require.Len(t, ownContainers(t, id), 4)
	require.NoError(t, b.Close())
	assert.Empty(t, ownContainers(t, id))
	require.ErrorIs(t, b.Scale(ctx, "close-a-00001", 1), docker.ErrClosed)
	require.NoError(t, b.Close(), "Close is idempotent")
}

// TestKilledHostLeavesNoContainers SIGKILLs a host process running a
// Backend with two ready instances: its containers outlive it (Docker
// has no parent-death link), and a new Backend with the same identity
// removes them at New, while containers of other identities stay.
func TestKilledHostLeavesNoContainers(t *testing.T) {
	needEngine(t)
	id := identity(t)
	bystander := newBackend(t, docker.Options{})
	other := newRevision(t, "bystander-00001", appSpec())
	require.NoError(t, bystander.Deploy(t.Context(), other))
	och, err := bystander.Watch(t.Context(), other.Name())
	require.NoError(t, err)
	require.NoError(t, bystander.Scale(t.Context(), other.Name(), 1))
	waitReady(t, och, 1)

	exe, err := os.Executable()
	require.NoError(t, err)
	host := exec.Command(exe)
	host.Env = append(os.Environ(), hostEnv+"="+id, "ZEROSCALE_DOCKER_TEST_IMAGE="+testImage)
	host.Stderr = os.Stderr
	out, err := host.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, host.Start())
	t.Cleanup(func() {
		_ = host.Process.Kill()
		_ = host.Wait()
	})
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == "ready" {
				close(ready)
				return
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(eventTimeout):
		t.Fatalf("the host did not report 2 ready instances within %v", eventTimeout)
	}
	require.Len(t, ownContainers(t, id), 2)
	require.NoError(t, host.Process.Signal(syscall.SIGKILL))
	_ = host.Wait()
	require.Len(t, ownContainers(t, id), 2, "the killed host's containers are still there")

	restarted := newBackend(t, docker.Options{Identity: id})
	assert.Empty(t, ownContainers(t, id), "New removed the old run's containers")
	assert.Len(t, ownContainers(t, bystander.Identity()), 1, "another identity's container is untouched")
	_ = restarted
}

func TestScaleBeyondMax(t *testing.T) {
	b := newBackend(t, docker.Options{MaxInstances: 2})
	assert.Equal(t, 2, b.MaxInstances())
	rev := newRevision(t, "max-00001", appSpec())
	require.NoError(t, b.Deploy(t.Context(), rev))
	err := b.Scale(t.Context(), rev.Name(), 3)
	require.ErrorIs(t, err, backend.ErrInvalidArgument)
	assert.Contains(t, err.Error(), "MaxInstances")
}

// containerOf is the ID of instance id's container.
func containerOf(t *testing.T, id string) string {
	t.Helper()
	res, err := cli.ContainerList(t.Context(), client.ContainerListOptions{All: true,
		Filters: make(client.Filters).Add("label", docker.LabelInstance+"="+id)})
	require.NoError(t, err)
	require.Len(t, res.Items, 1, "containers of instance %s", id)
	return res.Items[0].ID
}

// TestOOMKilled: an app over its memory limit is killed by the kernel;
// Status says so.
func TestOOMKilled(t *testing.T) {
	b := newBackend(t, docker.Options{Proxy: docker.QueueProxy(testQueueProxy), MinRestartBackoff: time.Minute, MaxRestartBackoff: time.Minute})
	spec := appSpec()
	spec.Resources.MemoryLimitBytes = 32 << 20
	rev := newRevision(t, "oom-00001", spec)
	ctx := t.Context()
	_, ready := up(t, b, rev, 1)
	if resp, err := http.Get("http://" + ready[0].Address + "/alloc?mb=128"); err == nil {
		resp.Body.Close()
	}
	var st backend.EngineStatus
	require.Eventually(t, func() bool {
		var err error
		st, err = b.Status(ctx, rev.Name())
		return err == nil && len(st.CrashLooping()) == 1
	}, eventTimeout, 10*time.Millisecond)
	e := st.CrashLooping()[0].LastExit
	assert.Equal(t, 137, e.Code)
	assert.Contains(t, e.Reason, "OOMKilled")
}

// TestNameConflict: a container already holding the next instance's
// name is replaced when it carries this backend's identity (a leftover),
// and fails the instance with a clear reason otherwise.
func TestNameConflict(t *testing.T) {
	b := newBackend(t, docker.Options{MinRestartBackoff: time.Minute, MaxRestartBackoff: time.Minute})
	ctx := t.Context()
	squat := func(name string, labels map[string]string) string {
		res, err := cli.ContainerCreate(ctx, client.ContainerCreateOptions{Name: name,
			Config: &container.Config{Image: testImage, Labels: labels}})
		require.NoError(t, err)
		t.Cleanup(func() {
			_, _ = cli.ContainerRemove(context.Background(), res.ID, client.ContainerRemoveOptions{Force: true})
		})
		return res.ID
	}
	// Instance IDs count from 1 per backend: the first is "<rev>-1".
	own := squat("zs-"+b.Identity()+"-conf-00001-1", map[string]string{docker.LabelIdentity: b.Identity()})
	rev := newRevision(t, "conf-00001", appSpec())
	require.NoError(t, b.Deploy(ctx, rev))
	ch, err := b.Watch(ctx, rev.Name())
	require.NoError(t, err)
	require.NoError(t, b.Scale(ctx, rev.Name(), 1))
	waitReady(t, ch, 1)
	_, err = cli.ContainerInspect(ctx, own, client.ContainerInspectOptions{})
	require.Error(t, err, "our leftover was removed")

	squat("zs-"+b.Identity()+"-other-00001-2", nil)
	other := newRevision(t, "other-00001", appSpec())
	require.NoError(t, b.Deploy(ctx, other))
	require.NoError(t, b.Scale(ctx, other.Name(), 1))
	var st backend.EngineStatus
	require.Eventually(t, func() bool {
		st, err = b.Status(ctx, other.Name())
		return err == nil && len(st.CrashLooping()) == 1
	}, eventTimeout, 10*time.Millisecond)
	assert.Contains(t, st.CrashLooping()[0].LastExit.Reason, "does not own")
}

// TestOutput: with Options.Output and OutputFunc, every line a container
// writes reaches the host, named by revision and instance.
func TestOutput(t *testing.T) {
	var mu sync.Mutex
	var lines []string
	var out dockertest.Buffer
	b := newBackend(t, docker.Options{Output: &out, OutputFunc: func(rev, id, line string) {
		mu.Lock()
		defer mu.Unlock()
		lines = append(lines, rev+" "+id+" "+line)
	}})
	rev := newRevision(t, "out-00001", appSpec())
	ctx := t.Context()
	_, ready := up(t, b, rev, 1)
	inst := ready[0]
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(lines, "out-00001 "+inst.ID+" app starting")
	}, eventTimeout, 10*time.Millisecond)
	require.NoError(t, b.Remove(ctx, rev.Name()))
	assert.Contains(t, out.String(), "out-00001/"+inst.ID+": app starting\n")
	assert.Contains(t, out.String(), "out-00001/"+inst.ID+": got SIGTERM\n", "output is followed until the container stops")
}
