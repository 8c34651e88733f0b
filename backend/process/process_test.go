package process_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/backend/process"
	"github.com/zeroscale/zeroscale/internal/testapp"
	"github.com/zeroscale/zeroscale/revision"
)

// eventTimeout bounds waits for real-process events (a start, an exit).
const eventTimeout = 20 * time.Second

func newBackend(t *testing.T, opts process.Options) *process.Backend {
	t.Helper()
	b, err := process.New(opts)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
		defer cancel()
		require.NoError(t, b.Shutdown(ctx))
	})
	return b
}

func deploy(t *testing.T, b *process.Backend, name string, mode testapp.Mode, mods ...func(*revision.Spec)) revision.Revision {
	t.Helper()
	rev, err := appRevision(name, mode, mods...)
	require.NoError(t, err)
	require.NoError(t, b.Deploy(t.Context(), rev))
	return rev
}

// next returns the first snapshot from ch that satisfies ok, checking
// every snapshot read has an Address for every instance.
func next(t *testing.T, ch <-chan []backend.Instance, what string, ok func([]backend.Instance) bool) []backend.Instance {
	t.Helper()
	timeout := time.After(eventTimeout)
	var last []backend.Instance
	for {
		select {
		case snap, open := <-ch:
			if !open {
				t.Fatalf("watch closed while waiting for %s; last snapshot %+v", what, last)
			}
			for _, in := range snap {
				// Addresses are bound when an instance is created.
				require.NotEmpty(t, in.Address, "instance %s published without an Address", in.ID)
			}
			if ok(snap) {
				return snap
			}
			last = snap
		case <-timeout:
			t.Fatalf("no snapshot with %s within %v; last %+v", what, eventTimeout, last)
		}
	}
}

func readyCount(n int) func([]backend.Instance) bool {
	return func(s []backend.Instance) bool {
		ready := 0
		for _, in := range s {
			if in.Ready && !in.Draining {
				ready++
			}
		}
		return ready == n && len(s) == n
	}
}

func empty(s []backend.Instance) bool { return len(s) == 0 }

// get fetches url and returns its body.
func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.EqualValues(t, http.StatusOK, resp.StatusCode, "GET %s: %s", url, body)
	return string(body)
}

// hold starts GET /hold?key=key on addr and returns once the response
// began; the returned func checks that the rest of the response arrives
// intact (call it after releasing key).
func hold(t *testing.T, addr, key string) (released func()) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/hold?key=" + key)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	body := bufio.NewReader(resp.Body)
	line, err := body.ReadString('\n')
	require.NoError(t, err)
	require.EqualValues(t, "held\n", line)
	return func() {
		t.Helper()
		line, err := body.ReadString('\n')
		require.NoError(t, err, "the request in flight completed")
		require.EqualValues(t, "released\n", line)
	}
}

// gone reports whether pid no longer runs (reaped, or a zombie).
func gone(pid int) bool {
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return true
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return os.IsNotExist(err)
	}
	// The state follows the parenthesised command name.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}

// lockedBuffer is an io.Writer safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestScaleServesAndStops(t *testing.T) {
	var out lockedBuffer
	b := newBackend(t, process.Options{Output: &out})
	rev := deploy(t, b, "hello-00001", testapp.Serve, func(s *revision.Spec) {
		s.Env = append(s.Env, revision.EnvVar{Name: "GREETING", Value: "hi"})
	})
	ch, err := b.Watch(t.Context(), rev.Name())
	require.NoError(t, err)
	require.Empty(t, <-ch, "first snapshot is empty")
	require.NoError(t, b.Scale(t.Context(), rev.Name(), 2))
	snap := next(t, ch, "2 ready", readyCount(2))
	st, err := b.Status(t.Context(), rev.Name())
	require.NoError(t, err)
	var pids []int
	for i, in := range snap {
		require.EqualValues(t, "ok\n", get(t, "http://"+in.Address+"/"))
		require.EqualValues(t, "hi", get(t, "http://"+in.Address+"/env?name=GREETING"))
		require.EqualValues(t, get(t, "http://"+in.Address+"/env?name=K_REVISION"), rev.Name())
		require.EqualValues(t, backend.InstanceRunning, st.Instances[i].State)
		require.EqualValues(t, st.Instances[i].AppAddress, in.Address, "no proxy: the app is the address")
		pids = append(pids, pidOf(st.Instances[i]))
	}
	require.True(t, snap[0].Address != snap[1].Address, "distinct addresses")
	require.NoError(t, b.Scale(t.Context(), rev.Name(), 0))
	next(t, ch, "no instance", empty)
	for _, pid := range pids {
		require.True(t, gone(pid), "pid %d still runs after scale 0", pid)
	}
	for _, in := range snap {
		require.Contains(t, out.String(), rev.Name()+"/"+in.ID+": listening on ", "output %q", out.String())
		require.Contains(t, out.String(), rev.Name()+"/"+in.ID+": got SIGTERM\n", "output %q", out.String())
	}
}

func TestParallelStart(t *testing.T) {
	const n = 8
	b := newBackend(t, process.Options{})
	rev := deploy(t, b, "many-00001", testapp.Serve)
	ch, err := b.Watch(t.Context(), rev.Name())
	require.NoError(t, err)
	require.NoError(t, b.Scale(t.Context(), rev.Name(), n))
	next(t, ch, "all ready", readyCount(n))
	apps := make(map[string]bool)
	for _, in := range status(t, b, rev.Name()).Instances {
		apps[in.AppAddress] = true
		require.EqualValues(t, "ok\n", get(t, "http://"+in.Address+"/"))
	}
	require.EqualValues(t, n, len(apps), "distinct app addresses")
}

func TestDrainBeforeStop(t *testing.T) {
	drainCalled := make(chan backend.Instance, 1)
	drainRelease := make(chan struct{})
	b := newBackend(t, process.Options{Drain: func(ctx context.Context, inst backend.Instance) error {
		drainCalled <- inst
		select {
		case <-drainRelease:
		case <-ctx.Done():
		}
		return nil
	}})
	rev := deploy(t, b, "drain-00001", testapp.Serve)
	ch, err := b.Watch(t.Context(), rev.Name())
	require.NoError(t, err)
	require.NoError(t, b.Scale(t.Context(), rev.Name(), 1))
	inst := next(t, ch, "1 ready", readyCount(1))[0]

	// A request in flight when scale-down starts.
	released := hold(t, inst.Address, "k")
	require.NoError(t, b.Scale(t.Context(), rev.Name(), 0))
	drained := <-drainCalled
	require.EqualValues(t, drained.ID, inst.ID)
	require.True(t, drained.Draining, "DrainFunc sees the instance as Draining")
	snap := next(t, ch, "the instance draining", func(s []backend.Instance) bool { return len(s) == 1 && s[0].Draining })
	require.True(t, snap[0].Ready, "a ready instance stays Ready while it drains")

	// Still serving while the hook holds the stop back.
	require.EqualValues(t, "ok\n", get(t, "http://"+inst.Address+"/release?key=k"))
	released()
	close(drainRelease)
	next(t, ch, "no instance", empty)
}

// stepUntil advances fc in probe-sized steps until cond holds: probing
// and timeouts run on fc, the processes on real time.
func stepUntil(t *testing.T, fc *clocktesting.FakeClock, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, func() bool {
		if cond() {
			return true
		}
		fc.Step(revision.AggressiveProbePeriod)
		return false
	}, eventTimeout, 5*time.Millisecond, what)
}

func status(t *testing.T, b *process.Backend, rev string) backend.EngineStatus {
	t.Helper()
	st, err := b.Status(t.Context(), rev)
	require.NoError(t, err)
	return st
}

func TestCrashLoopBackoff(t *testing.T) {
	fc := clocktesting.NewFakeClock(time.Unix(1000, 0))
	b := newBackend(t, process.Options{
		Clock:             fc,
		MinRestartBackoff: time.Second,
		MaxRestartBackoff: 3 * time.Second,
	})
	rev := deploy(t, b, "crash-00001", testapp.Crash)
	require.NoError(t, b.Scale(t.Context(), rev.Name(), 1))

	// Each crash waits 1 s, 2 s, 3 s (capped), 3 s before the restart.
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 3 * time.Second} {
		var in backend.InstanceStatus
		require.Eventually(t, func() bool {
			st := status(t, b, rev.Name())
			if len(st.CrashLooping()) != 1 {
				return false
			}
			in = st.CrashLooping()[0]
			return in.Restarts == i
		}, eventTimeout, 5*time.Millisecond, "crash %d", i)
		require.True(t, !in.Ready, "not ready")
		require.True(t, in.LastExit != nil, "LastExit set")
		require.Equal(t, testapp.ExitCrash, in.LastExit.Code)
		require.EqualValues(t, "exit status 3", in.LastExit.Reason)
		require.Contains(t, in.LastExit.Output, "fatal: boom", "LastExit.Output %q", in.LastExit.Output)
		require.Contains(t, in.Output, "app starting", "Output %q", in.Output)
		require.EqualValues(t, fc.Now().Add(want), in.NextRestart, "backoff before restart %d", i+1)
		fc.Step(want)
	}
}

func TestStartTimeout(t *testing.T) {
	fc := clocktesting.NewFakeClock(time.Unix(1000, 0))
	b := newBackend(t, process.Options{Clock: fc, StartTimeout: 5 * time.Second})
	rev := deploy(t, b, "hang-00001", testapp.Hang)
	require.NoError(t, b.Scale(t.Context(), rev.Name(), 1))
	stepUntil(t, fc, "start timeout", func() bool {
		return len(status(t, b, rev.Name()).CrashLooping()) == 1
	})
	in := status(t, b, rev.Name()).Instances[0]
	require.EqualValues(t, "not ready within 5s (Options.StartTimeout)", in.LastExit.Reason)
	require.EqualValues(t, -1, in.LastExit.Code, "killed by a signal")
}

func TestStopGraceThenKill(t *testing.T) {
	fc := clocktesting.NewFakeClock(time.Unix(1000, 0))
	b := newBackend(t, process.Options{Clock: fc, StopGrace: 7 * time.Second})
	rev := deploy(t, b, "stubborn-00001", testapp.IgnoreTerm)
	ch, err := b.Watch(t.Context(), rev.Name())
	require.NoError(t, err)
	require.NoError(t, b.Scale(t.Context(), rev.Name(), 1))
	stepUntil(t, fc, "ready", func() bool {
		st := status(t, b, rev.Name())
		return len(st.Instances) == 1 && st.Instances[0].Ready
	})
	pid := pidOf(status(t, b, rev.Name()).Instances[0])
	require.NoError(t, b.Scale(t.Context(), rev.Name(), 0))
	require.Eventually(t, func() bool {
		st := status(t, b, rev.Name())
		return len(st.Instances) == 1 && st.Instances[0].State == backend.InstanceStopping
	}, eventTimeout, 5*time.Millisecond)
	require.True(t, !gone(pid), "the instance ignored SIGTERM and runs through its grace period")
	fc.Step(7 * time.Second)
	next(t, ch, "no instance", empty)
	require.True(t, gone(pid), "SIGKILLed after the grace period")
}

func TestVictimsNotReadyFirstThenYoungest(t *testing.T) {
	b := newBackend(t, process.Options{})
	rev := deploy(t, b, "victims-00001", testapp.Serve, func(s *revision.Spec) {
		s.Readiness = revision.Probe{HTTPPath: "/ready", Period: 20 * time.Millisecond}
	})
	ch, err := b.Watch(t.Context(), rev.Name())
	require.NoError(t, err)
	var ids []string // in start order
	for n := 1; n <= 3; n++ {
		require.NoError(t, b.Scale(t.Context(), rev.Name(), n))
		snap := next(t, ch, fmt.Sprintf("%d ready", n), readyCount(n))
		for _, in := range snap {
			if !slices.Contains(ids, in.ID) {
				ids = append(ids, in.ID)
			}
		}
	}
	byID := func(s []backend.Instance, id string) backend.Instance {
		for _, in := range s {
			if in.ID == id {
				return in
			}
		}
		t.Fatalf("no instance %s in %+v", id, s)
		return backend.Instance{}
	}
	// The oldest turns not ready: it goes first, then the youngest.
	current, err := b.Watch(t.Context(), rev.Name())
	require.NoError(t, err)
	get(t, "http://"+byID(<-current, ids[0]).Address+"/unready")
	next(t, ch, "the oldest not ready", func(s []backend.Instance) bool { return len(s) == 3 && !byID(s, ids[0]).Ready })
	require.NoError(t, b.Scale(t.Context(), rev.Name(), 2))
	left := next(t, ch, "2 left", func(s []backend.Instance) bool { return len(s) == 2 })
	require.True(t, left[0].ID == ids[1] && left[1].ID == ids[2], "left %+v, want %v: the not-ready one is stopped first", left, ids[1:])
	require.NoError(t, b.Scale(t.Context(), rev.Name(), 1))
	left = next(t, ch, "1 left", func(s []backend.Instance) bool { return len(s) == 1 })
	require.EqualValues(t, left[0].ID, ids[1], "the youngest was stopped")
}

func TestCrashedInstanceRestarts(t *testing.T) {
	var lines lockedBuffer
	b := newBackend(t, process.Options{
		MinRestartBackoff: time.Millisecond,
		MaxRestartBackoff: time.Millisecond,
		OutputFunc: func(rev, id, line string) {
			fmt.Fprintf(&lines, "%s %s %s\n", rev, id, line)
		},
	})
	rev := deploy(t, b, "phoenix-00001", testapp.Serve)
	ch, err := b.Watch(t.Context(), rev.Name())
	require.NoError(t, err)
	require.NoError(t, b.Scale(t.Context(), rev.Name(), 1))
	inst := next(t, ch, "ready", readyCount(1))[0]

	_, err = http.Get("http://" + inst.Address + "/crash")
	require.Error(t, err, "the app exits while answering")
	again := next(t, ch, "ready again", readyCount(1))[0]
	require.EqualValues(t, again.ID, inst.ID+"-r1", "a restart is a new instance with a new ID")
	require.True(t, again.Started.After(inst.Started), "Started %v is the restart's, after %v", again.Started, inst.Started)
	require.EqualValues(t, again.Address, inst.Address, "the app keeps its port")
	st := status(t, b, rev.Name()).Instances[0]
	require.EqualValues(t, 1, st.Restarts)
	require.Equal(t, testapp.ExitCrashOnRequest, st.LastExit.Code)
	require.Contains(t, st.LastExit.Output, "crashing on request", "LastExit.Output %q", st.LastExit.Output)
	require.Contains(t, lines.String(), rev.Name()+" "+inst.ID+" crashing on request\n", "OutputFunc got %q", lines.String())
}

func TestRemoveAndClose(t *testing.T) {
	goroutines := runtime.NumGoroutine()
	b, err := process.New(process.Options{})
	require.NoError(t, err)
	rev := deploy(t, b, "gone-00001", testapp.Serve)
	other := deploy(t, b, "other-00001", testapp.Serve)
	ch, err := b.Watch(t.Context(), rev.Name())
	require.NoError(t, err)
	och, err := b.Watch(t.Context(), other.Name())
	require.NoError(t, err)
	require.NoError(t, b.Scale(t.Context(), rev.Name(), 2))
	require.NoError(t, b.Scale(t.Context(), other.Name(), 2))
	next(t, ch, "2 ready", readyCount(2))
	next(t, och, "2 ready", readyCount(2))
	pids := func(name string) []int {
		var out []int
		for _, in := range status(t, b, name).Instances {
			out = append(out, pidOf(in))
		}
		return out
	}
	removed := pids(rev.Name())
	require.NoError(t, b.Remove(t.Context(), rev.Name()))
	for range ch { // closed by Remove
	}
	for _, pid := range removed {
		require.True(t, gone(pid), "pid %d runs after Remove", pid)
	}
	require.ErrorIs(t, b.Remove(t.Context(), rev.Name()), backend.ErrNotDeployed)
	require.ErrorIs(t, b.Scale(t.Context(), rev.Name(), 1), backend.ErrNotDeployed)
	_, err = b.Status(t.Context(), rev.Name())
	require.ErrorIs(t, err, backend.ErrNotDeployed)

	kept := pids(other.Name())
	ctx, cancel := context.WithTimeout(t.Context(), eventTimeout)
	defer cancel()
	require.NoError(t, b.Shutdown(ctx))
	for range och {
	}
	for _, pid := range kept {
		require.True(t, gone(pid), "pid %d runs after Close", pid)
	}
	require.ErrorIs(t, b.Scale(t.Context(), other.Name(), 1), process.ErrClosed)
	require.ErrorIs(t, b.Deploy(t.Context(), rev), backend.ErrInvalidArgument)
	require.NoError(t, b.Shutdown(ctx), "Close is idempotent")
	// Every goroutine of the Backend ended (the spawner, supervisors,
	// waiters, output readers, watch hooks). Eventually runs the
	// condition on a goroutine of its own: one more. A failure lists
	// the goroutines left, so it names the one that outlived Shutdown.
	if !assert.Eventually(t, func() bool { return runtime.NumGoroutine() <= goroutines+1 }, eventTimeout, 5*time.Millisecond,
		"goroutines back to %d", goroutines) {
		var stacks strings.Builder
		_ = pprof.Lookup("goroutine").WriteTo(&stacks, 1)
		t.Fatalf("goroutines left after Shutdown:\n%s", stacks.String())
	}
}

func TestCloseTimeoutKills(t *testing.T) {
	b, err := process.New(process.Options{Drain: func(ctx context.Context, _ backend.Instance) error {
		<-ctx.Done() // a drain that never finishes on its own
		return ctx.Err()
	}})
	require.NoError(t, err)
	rev := deploy(t, b, "stuck-00001", testapp.IgnoreTerm)
	ch, err := b.Watch(t.Context(), rev.Name())
	require.NoError(t, err)
	require.NoError(t, b.Scale(t.Context(), rev.Name(), 1))
	next(t, ch, "ready", readyCount(1))
	pid := pidOf(status(t, b, rev.Name()).Instances[0])

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	require.ErrorIs(t, b.Shutdown(ctx), context.Canceled)
	require.True(t, gone(pid), "Close killed the instance when its ctx ended")
}

func TestBadInput(t *testing.T) {
	b := newBackend(t, process.Options{MaxInstances: 3})
	rev := deploy(t, b, "bad-00001", testapp.Serve)

	err := b.Scale(t.Context(), rev.Name(), -1)
	require.ErrorIs(t, err, backend.ErrInvalidArgument)
	require.ErrorContains(t, err, "n = -1, want 0–3")
	require.ErrorIs(t, b.Scale(t.Context(), rev.Name(), 4), backend.ErrInvalidArgument)
	require.ErrorIs(t, b.Scale(t.Context(), "nope-00001", 1), backend.ErrNotDeployed)
	_, err = b.Watch(t.Context(), "nope-00001")
	require.ErrorIs(t, err, backend.ErrNotDeployed)

	changed, err := appRevision(rev.Name(), testapp.Crash)
	require.NoError(t, err)
	err = b.Deploy(t.Context(), changed)
	require.ErrorIs(t, err, backend.ErrInvalidArgument)
	require.ErrorContains(t, err, "different spec")
	require.NoError(t, b.Deploy(t.Context(), rev), "same spec again is a no-op")

	for name, spec := range map[string]revision.Spec{
		"image-00001":   {Image: "nginx"},
		"missing-00001": {Command: []string{"/no/such/binary"}},
		"dir-00001":     {Command: []string{"true"}, WorkingDir: "/no/such/dir"},
	} {
		r, err := revision.New(configOf(name), name, 1, spec, time.Time{})
		require.NoError(t, err)
		err = b.Deploy(t.Context(), r)
		require.ErrorIs(t, err, backend.ErrInvalidArgument, name)
		require.ErrorContains(t, err, "Spec.", name)
	}

	for _, o := range []process.Options{
		{StopGrace: -time.Second},
		{MinRestartBackoff: time.Minute, MaxRestartBackoff: time.Second},
		{MaxInstances: -1},
		{OutputTailLines: -1},
	} {
		_, err := process.New(o)
		require.ErrorIs(t, err, backend.ErrInvalidArgument)
		require.ErrorContains(t, err, "Options.")
	}
}

// A restarted app must not be taken for ready because another process
// listens on its port meanwhile: that process would get its traffic.
func TestRestartRefusesATakenPort(t *testing.T) {
	fc := clocktesting.NewFakeClock(time.Unix(1000, 0))
	b := newBackend(t, process.Options{Clock: fc, MinRestartBackoff: time.Second, MaxRestartBackoff: time.Second})
	rev := deploy(t, b, "squat-00001", testapp.Serve)
	require.NoError(t, b.Scale(t.Context(), rev.Name(), 1))
	stepUntil(t, fc, "ready", func() bool {
		st := status(t, b, rev.Name())
		return len(st.Instances) == 1 && st.Instances[0].Ready
	})
	inst := status(t, b, rev.Name()).Instances[0]
	_, err := http.Get("http://" + inst.Address + "/crash")
	require.Error(t, err, "the app exits while answering")
	require.Eventually(t, func() bool {
		return status(t, b, rev.Name()).Instances[0].State == backend.InstanceBackOff
	}, eventTimeout, 5*time.Millisecond, "back-off after the crash")

	squatter, err := net.Listen("tcp", inst.AppAddress)
	require.NoError(t, err, "another process takes the app's port")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "impostor\n")
	})}
	go srv.Serve(squatter)
	stepUntil(t, fc, "a restart refused", func() bool {
		in := status(t, b, rev.Name()).Instances[0]
		require.True(t, !in.Ready, "ready while another process listens on its port")
		return in.Restarts >= 1 && in.LastExit != nil && strings.Contains(in.LastExit.Reason, "taken by another process")
	})
	require.NoError(t, srv.Close())

	stepUntil(t, fc, "ready again once the port is free", func() bool {
		return status(t, b, rev.Name()).Instances[0].Ready
	})
	require.EqualValues(t, "ok\n", get(t, "http://"+inst.Address+"/"))
}
