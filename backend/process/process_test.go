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
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/backend/process"
	"github.com/zeroscale/zeroscale/revision"
)

// eventTimeout bounds waits for real-process events (a start, an exit).
const eventTimeout = 20 * time.Second

func newBackend(t *testing.T, opts process.Options) *process.Backend {
	t.Helper()
	b, err := process.New(opts)
	noErr(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
		defer cancel()
		noErr(t, b.Shutdown(ctx))
	})
	return b
}

func deploy(t *testing.T, b *process.Backend, name, mode string, mods ...func(*revision.Spec)) revision.Revision {
	t.Helper()
	rev, err := appRevision(name, mode, mods...)
	noErr(t, err)
	noErr(t, b.Deploy(t.Context(), rev))
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
				check(t, in.Address != "", "instance %s published without an Address", in.ID)
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
	noErr(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	noErr(t, err)
	equal(t, resp.StatusCode, http.StatusOK, "GET %s: %s", url, body)
	return string(body)
}

// hold starts GET /hold?key=key on addr and returns once the response
// began; the returned func checks that the rest of the response arrives
// intact (call it after releasing key).
func hold(t *testing.T, addr, key string) (released func()) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/hold?key=" + key)
	noErr(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	body := bufio.NewReader(resp.Body)
	line, err := body.ReadString('\n')
	noErr(t, err)
	equal(t, line, "held\n")
	return func() {
		t.Helper()
		line, err := body.ReadString('\n')
		noErr(t, err, "the request in flight completed")
		equal(t, line, "released\n")
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
	rev := deploy(t, b, "hello-00001", modeServe, func(s *revision.Spec) {
		s.Env = append(s.Env, revision.EnvVar{Name: "GREETING", Value: "hi"})
	})
	ch, err := b.Watch(t.Context(), rev.Name())
	noErr(t, err)
	check(t, len(<-ch) == 0, "first snapshot is empty")

	noErr(t, b.Scale(t.Context(), rev.Name(), 2))
	snap := next(t, ch, "2 ready", readyCount(2))
	st, err := b.Status(t.Context(), rev.Name())
	noErr(t, err)
	var pids []int
	for i, in := range snap {
		equal(t, "ok\n", get(t, "http://"+in.Address+"/"))
		equal(t, "hi", get(t, "http://"+in.Address+"/env?name=GREETING"))
		equal(t, rev.Name(), get(t, "http://"+in.Address+"/env?name=K_REVISION"))
		equal(t, process.StateRunning, st.Instances[i].State)
		equal(t, in.Address, st.Instances[i].AppAddress, "no proxy: the app is the address")
		pids = append(pids, pidOf(st.Instances[i]))
	}
	check(t, snap[0].Address != snap[1].Address, "distinct addresses")

	noErr(t, b.Scale(t.Context(), rev.Name(), 0))
	next(t, ch, "no instance", empty)
	for _, pid := range pids {
		check(t, gone(pid), "pid %d still runs after scale 0", pid)
	}
	for _, in := range snap {
		check(t, strings.Contains(out.String(), rev.Name()+"/"+in.ID+": listening\n"), "output %q", out.String())
		check(t, strings.Contains(out.String(), rev.Name()+"/"+in.ID+": got SIGTERM\n"), "output %q", out.String())
	}
}

func TestParallelStart(t *testing.T) {
	const n = 8
	b := newBackend(t, process.Options{})
	rev := deploy(t, b, "many-00001", modeServe)
	ch, err := b.Watch(t.Context(), rev.Name())
	noErr(t, err)
	noErr(t, b.Scale(t.Context(), rev.Name(), n))
	next(t, ch, "all ready", readyCount(n))
	apps := make(map[string]bool)
	for _, in := range status(t, b, rev.Name()).Instances {
		apps[in.AppAddress] = true
		equal(t, get(t, "http://"+in.Address+"/"), "ok\n")
	}
	equal(t, len(apps), n, "distinct app addresses")
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
	rev := deploy(t, b, "drain-00001", modeServe)
	ch, err := b.Watch(t.Context(), rev.Name())
	noErr(t, err)
	noErr(t, b.Scale(t.Context(), rev.Name(), 1))
	inst := next(t, ch, "1 ready", readyCount(1))[0]

	// A request in flight when scale-down starts.
	released := hold(t, inst.Address, "k")

	noErr(t, b.Scale(t.Context(), rev.Name(), 0))
	drained := <-drainCalled
	equal(t, inst.ID, drained.ID)
	check(t, drained.Draining, "DrainFunc sees the instance as Draining")
	snap := next(t, ch, "the instance draining", func(s []backend.Instance) bool { return len(s) == 1 && s[0].Draining })
	check(t, snap[0].Ready, "a ready instance stays Ready while it drains")

	// Still serving while the hook holds the stop back.
	equal(t, "ok\n", get(t, "http://"+inst.Address+"/release?key=k"))
	released()
	close(drainRelease)
	next(t, ch, "no instance", empty)
}

// stepUntil advances fc in probe-sized steps until cond holds: probing
// and timeouts run on fc, the processes on real time.
func stepUntil(t *testing.T, fc *clocktesting.FakeClock, what string, cond func() bool) {
	t.Helper()
	eventually(t, func() bool {
		if cond() {
			return true
		}
		fc.Step(revision.AggressiveProbePeriod)
		return false
	}, eventTimeout, 5*time.Millisecond, what)
}

func status(t *testing.T, b *process.Backend, rev string) backend.RevisionStatus {
	t.Helper()
	st, err := b.Status(t.Context(), rev)
	noErr(t, err)
	return st
}

func TestCrashLoopBackoff(t *testing.T) {
	fc := clocktesting.NewFakeClock(time.Unix(1000, 0))
	b := newBackend(t, process.Options{
		Clock:             fc,
		MinRestartBackoff: time.Second,
		MaxRestartBackoff: 3 * time.Second,
	})
	rev := deploy(t, b, "crash-00001", modeCrash)
	noErr(t, b.Scale(t.Context(), rev.Name(), 1))

	// Each crash waits 1 s, 2 s, 3 s (capped), 3 s before the restart.
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 3 * time.Second, 3 * time.Second} {
		var in backend.InstanceStatus
		eventually(t, func() bool {
			st := status(t, b, rev.Name())
			if len(st.CrashLooping()) != 1 {
				return false
			}
			in = st.CrashLooping()[0]
			return in.Restarts == i
		}, eventTimeout, 5*time.Millisecond, "crash %d", i)
		check(t, !in.Ready, "not ready")
		check(t, in.LastExit != nil, "LastExit set")
		equal(t, 3, in.LastExit.Code)
		equal(t, "exit status 3", in.LastExit.Reason)
		check(t, slices.Contains(in.LastExit.Output, "fatal: boom"), "LastExit.Output %q", in.LastExit.Output)
		check(t, slices.Contains(in.Output, "app starting"), "Output %q", in.Output)
		equal(t, in.NextRestart, fc.Now().Add(want), "backoff before restart %d", i+1)
		fc.Step(want)
	}
}

func TestStartTimeout(t *testing.T) {
	fc := clocktesting.NewFakeClock(time.Unix(1000, 0))
	b := newBackend(t, process.Options{Clock: fc, StartTimeout: 5 * time.Second})
	rev := deploy(t, b, "hang-00001", modeHang)
	noErr(t, b.Scale(t.Context(), rev.Name(), 1))
	stepUntil(t, fc, "start timeout", func() bool {
		return len(status(t, b, rev.Name()).CrashLooping()) == 1
	})
	in := status(t, b, rev.Name()).Instances[0]
	equal(t, "not ready within 5s (Options.StartTimeout)", in.LastExit.Reason)
	equal(t, -1, in.LastExit.Code, "killed by a signal")
}

func TestStopGraceThenKill(t *testing.T) {
	fc := clocktesting.NewFakeClock(time.Unix(1000, 0))
	b := newBackend(t, process.Options{Clock: fc, StopGrace: 7 * time.Second})
	rev := deploy(t, b, "stubborn-00001", modeIgnoreTerm)
	ch, err := b.Watch(t.Context(), rev.Name())
	noErr(t, err)
	noErr(t, b.Scale(t.Context(), rev.Name(), 1))
	stepUntil(t, fc, "ready", func() bool {
		st := status(t, b, rev.Name())
		return len(st.Instances) == 1 && st.Instances[0].Ready
	})
	pid := pidOf(status(t, b, rev.Name()).Instances[0])

	noErr(t, b.Scale(t.Context(), rev.Name(), 0))
	eventually(t, func() bool {
		st := status(t, b, rev.Name())
		return len(st.Instances) == 1 && st.Instances[0].State == process.StateStopping
	}, eventTimeout, 5*time.Millisecond)
	check(t, !gone(pid), "the instance ignored SIGTERM and runs through its grace period")
	fc.Step(7 * time.Second)
	next(t, ch, "no instance", empty)
	check(t, gone(pid), "SIGKILLed after the grace period")
}

func TestVictimsNotReadyFirstThenYoungest(t *testing.T) {
	b := newBackend(t, process.Options{})
	rev := deploy(t, b, "victims-00001", modeServe, func(s *revision.Spec) {
		s.Readiness = revision.Probe{HTTPPath: "/ready", Period: 20 * time.Millisecond}
	})
	ch, err := b.Watch(t.Context(), rev.Name())
	noErr(t, err)
	var ids []string // in start order
	for n := 1; n <= 3; n++ {
		noErr(t, b.Scale(t.Context(), rev.Name(), n))
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
	noErr(t, err)
	get(t, "http://"+byID(<-current, ids[0]).Address+"/unready")
	next(t, ch, "the oldest not ready", func(s []backend.Instance) bool { return len(s) == 3 && !byID(s, ids[0]).Ready })

	noErr(t, b.Scale(t.Context(), rev.Name(), 2))
	left := next(t, ch, "2 left", func(s []backend.Instance) bool { return len(s) == 2 })
	check(t, left[0].ID == ids[1] && left[1].ID == ids[2], "left %+v, want %v: the not-ready one is stopped first", left, ids[1:])
	noErr(t, b.Scale(t.Context(), rev.Name(), 1))
	left = next(t, ch, "1 left", func(s []backend.Instance) bool { return len(s) == 1 })
	equal(t, ids[1], left[0].ID, "the youngest was stopped")
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
	rev := deploy(t, b, "phoenix-00001", modeServe)
	ch, err := b.Watch(t.Context(), rev.Name())
	noErr(t, err)
	noErr(t, b.Scale(t.Context(), rev.Name(), 1))
	inst := next(t, ch, "ready", readyCount(1))[0]

	_, err = http.Get("http://" + inst.Address + "/crash")
	check(t, err != nil, "the app exits while answering")
	again := next(t, ch, "ready again", readyCount(1))[0]
	equal(t, inst.ID+"-r1", again.ID, "a restart is a new instance with a new ID")
	check(t, again.Started.After(inst.Started), "Started %v is the restart's, after %v", again.Started, inst.Started)
	equal(t, inst.Address, again.Address, "the app keeps its port")
	st := status(t, b, rev.Name()).Instances[0]
	equal(t, 1, st.Restarts)
	equal(t, 4, st.LastExit.Code)
	check(t, slices.Contains(st.LastExit.Output, "crashing on request"), "LastExit.Output %q", st.LastExit.Output)
	check(t, strings.Contains(lines.String(), rev.Name()+" "+inst.ID+" crashing on request\n"), "OutputFunc got %q", lines.String())
}

func TestRemoveAndClose(t *testing.T) {
	goroutines := runtime.NumGoroutine()
	b, err := process.New(process.Options{})
	noErr(t, err)
	rev := deploy(t, b, "gone-00001", modeServe)
	other := deploy(t, b, "other-00001", modeServe)
	ch, err := b.Watch(t.Context(), rev.Name())
	noErr(t, err)
	och, err := b.Watch(t.Context(), other.Name())
	noErr(t, err)
	noErr(t, b.Scale(t.Context(), rev.Name(), 2))
	noErr(t, b.Scale(t.Context(), other.Name(), 2))
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

	noErr(t, b.Remove(t.Context(), rev.Name()))
	for range ch { // closed by Remove
	}
	for _, pid := range removed {
		check(t, gone(pid), "pid %d runs after Remove", pid)
	}
	errIs(t, b.Remove(t.Context(), rev.Name()), backend.ErrNotFound)
	errIs(t, b.Scale(t.Context(), rev.Name(), 1), backend.ErrNotFound)
	_, err = b.Status(t.Context(), rev.Name())
	errIs(t, err, backend.ErrNotFound)

	kept := pids(other.Name())
	ctx, cancel := context.WithTimeout(t.Context(), eventTimeout)
	defer cancel()
	noErr(t, b.Shutdown(ctx))
	for range och {
	}
	for _, pid := range kept {
		check(t, gone(pid), "pid %d runs after Close", pid)
	}
	errIs(t, b.Scale(t.Context(), other.Name(), 1), process.ErrClosed)
	errIs(t, b.Deploy(t.Context(), rev), backend.ErrInvalidArgument)
	noErr(t, b.Shutdown(ctx), "Close is idempotent")
	// Every goroutine of the Backend ended (the spawner, supervisors,
	// waiters, output readers, watch hooks).
	eventually(t, func() bool { return runtime.NumGoroutine() <= goroutines }, eventTimeout, 5*time.Millisecond,
		"goroutines back to %d (now %d)", goroutines, runtime.NumGoroutine())
}

func TestCloseTimeoutKills(t *testing.T) {
	b, err := process.New(process.Options{Drain: func(ctx context.Context, _ backend.Instance) error {
		<-ctx.Done() // a drain that never finishes on its own
		return ctx.Err()
	}})
	noErr(t, err)
	rev := deploy(t, b, "stuck-00001", modeIgnoreTerm)
	ch, err := b.Watch(t.Context(), rev.Name())
	noErr(t, err)
	noErr(t, b.Scale(t.Context(), rev.Name(), 1))
	next(t, ch, "ready", readyCount(1))
	pid := pidOf(status(t, b, rev.Name()).Instances[0])

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	errIs(t, b.Shutdown(ctx), context.Canceled)
	check(t, gone(pid), "Close killed the instance when its ctx ended")
}

func TestBadInput(t *testing.T) {
	b := newBackend(t, process.Options{MaxInstances: 3})
	rev := deploy(t, b, "bad-00001", modeServe)

	err := b.Scale(t.Context(), rev.Name(), -1)
	errIs(t, err, backend.ErrInvalidArgument)
	errContains(t, err, "n = -1, want 0–3")
	errIs(t, b.Scale(t.Context(), rev.Name(), 4), backend.ErrInvalidArgument)
	errIs(t, b.Scale(t.Context(), "nope-00001", 1), backend.ErrNotFound)
	_, err = b.Watch(t.Context(), "nope-00001")
	errIs(t, err, backend.ErrNotFound)

	changed, err := appRevision(rev.Name(), modeCrash)
	noErr(t, err)
	err = b.Deploy(t.Context(), changed)
	errIs(t, err, backend.ErrInvalidArgument)
	errContains(t, err, "different spec")
	noErr(t, b.Deploy(t.Context(), rev), "same spec again is a no-op")

	for name, spec := range map[string]revision.Spec{
		"image-00001":   {Image: "nginx"},
		"missing-00001": {Command: []string{"/no/such/binary"}},
		"dir-00001":     {Command: []string{"true"}, WorkingDir: "/no/such/dir"},
	} {
		r, err := revision.New(configOf(name), name, 1, spec, time.Time{})
		noErr(t, err)
		err = b.Deploy(t.Context(), r)
		errIs(t, err, backend.ErrInvalidArgument, name)
		errContains(t, err, "Spec.", name)
	}

	for _, o := range []process.Options{
		{StopGrace: -time.Second},
		{MinRestartBackoff: time.Minute, MaxRestartBackoff: time.Second},
		{MaxInstances: -1},
		{OutputTailLines: -1},
	} {
		_, err := process.New(o)
		errIs(t, err, backend.ErrInvalidArgument)
		errContains(t, err, "Options.")
	}
}

func noErr(t *testing.T, err error, msgAndArgs ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("%sunexpected error: %v", prefix(msgAndArgs), err)
	}
}

func errIs(t *testing.T, err, target error, msgAndArgs ...any) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%serror %v, want one wrapping %v", prefix(msgAndArgs), err, target)
	}
}

func errContains(t *testing.T, err error, sub string, msgAndArgs ...any) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), sub) {
		t.Fatalf("%serror %v, want one containing %q", prefix(msgAndArgs), err, sub)
	}
}

func equal[T comparable](t *testing.T, got, want T, msgAndArgs ...any) {
	t.Helper()
	if got != want {
		t.Fatalf("%sgot %v, want %v", prefix(msgAndArgs), got, want)
	}
}

func check(t *testing.T, ok bool, msgAndArgs ...any) {
	t.Helper()
	if !ok {
		t.Fatalf("check failed: %s", strings.TrimSuffix(prefix(msgAndArgs), ": "))
	}
}

// eventually polls cond until it holds; only for real-process events.
func eventually(t *testing.T, cond func() bool, timeout, poll time.Duration, msgAndArgs ...any) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%snot true within %v", prefix(msgAndArgs), timeout)
		}
		time.Sleep(poll)
	}
}

func prefix(msgAndArgs []any) string {
	if len(msgAndArgs) == 0 {
		return ""
	}
	format, _ := msgAndArgs[0].(string)
	return fmt.Sprintf(format, msgAndArgs[1:]...) + ": "
}

// A restarted app must not be taken for ready because another process
// listens on its port meanwhile: that process would get its traffic.
func TestRestartRefusesATakenPort(t *testing.T) {
	fc := clocktesting.NewFakeClock(time.Unix(1000, 0))
	b := newBackend(t, process.Options{Clock: fc, MinRestartBackoff: time.Second, MaxRestartBackoff: time.Second})
	rev := deploy(t, b, "squat-00001", modeServe)
	noErr(t, b.Scale(t.Context(), rev.Name(), 1))
	stepUntil(t, fc, "ready", func() bool {
		st := status(t, b, rev.Name())
		return len(st.Instances) == 1 && st.Instances[0].Ready
	})
	inst := status(t, b, rev.Name()).Instances[0]
	_, err := http.Get("http://" + inst.Address + "/crash")
	check(t, err != nil, "the app exits while answering")
	eventually(t, func() bool {
		return status(t, b, rev.Name()).Instances[0].State == process.StateBackOff
	}, eventTimeout, 5*time.Millisecond, "back-off after the crash")

	squatter, err := net.Listen("tcp", inst.AppAddress)
	noErr(t, err, "another process takes the app's port")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "impostor\n")
	})}
	go srv.Serve(squatter)
	stepUntil(t, fc, "a restart refused", func() bool {
		in := status(t, b, rev.Name()).Instances[0]
		check(t, !in.Ready, "ready while another process listens on its port")
		return in.Restarts >= 1 && in.LastExit != nil && strings.Contains(in.LastExit.Reason, "taken by another process")
	})
	noErr(t, srv.Close())

	stepUntil(t, fc, "ready again once the port is free", func() bool {
		return status(t, b, rev.Name()).Instances[0].Ready
	})
	equal(t, "ok\n", get(t, "http://"+inst.Address+"/"))
}
