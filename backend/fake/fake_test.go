package fake_test

import (
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/backend/backendtest"
	"github.com/zeroscale/zeroscale/backend/fake"
	"github.com/zeroscale/zeroscale/revision"
)

// bound is a safety net on waits for goroutines and sockets; every wait
// is for an event the test caused, never for time to pass.
const bound = 10 * time.Second

type env struct {
	t      *testing.T
	clk    *clocktesting.FakeClock
	b      *fake.Backend
	drains *recorder
}

// recorder is a DrainFunc that records calls and can block them.
type recorder struct {
	mu     sync.Mutex
	ids    []string
	called chan string   // one value per call
	block  chan struct{} // when non-nil, calls wait for it or ctx
}

func (r *recorder) drain(ctx context.Context, inst backend.Instance) error {
	r.mu.Lock()
	r.ids = append(r.ids, inst.ID)
	block := r.block
	r.mu.Unlock()
	r.called <- inst.ID
	if block == nil {
		return nil
	}
	select {
	case <-block:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *recorder) calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ids)
}

func newEnv(t *testing.T, opts fake.Options) *env {
	t.Helper()
	e := &env{t: t, clk: clocktesting.NewFakeClock(time.Unix(1_700_000_000, 0)), drains: &recorder{called: make(chan string, 100)}}
	opts.Clock = e.clk
	opts.Drain = e.drains.drain
	if opts.Handler == nil {
		opts.Handler = func(revision.Revision) http.Handler { return backendtest.App() }
	}
	b, err := fake.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	e.b = b
	return e
}

func (e *env) rev(config string) revision.Revision {
	e.t.Helper()
	rev, err := revision.New(config, config+"-00001", 1, revision.Spec{Image: "img"}, e.clk.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	return rev
}

// deploy deploys config's revision and returns its name and a watch
// whose first (empty) snapshot has been read.
func (e *env) deploy(config string) (string, <-chan []backend.Instance) {
	e.t.Helper()
	rev := e.rev(config)
	if err := e.b.Deploy(e.t.Context(), rev); err != nil {
		e.t.Fatal(err)
	}
	ch, err := e.b.Watch(e.t.Context(), rev.Name())
	if err != nil {
		e.t.Fatal(err)
	}
	<-ch
	return rev.Name(), ch
}

// upOne deploys config's revision and scales it to one instance, ready
// at once (no start delay).
func (e *env) upOne(config string) (string, <-chan []backend.Instance, backend.Instance) {
	e.t.Helper()
	rev, ch := e.deploy(config)
	e.scale(rev, 1)
	return rev, ch, e.until(ch, "one ready instance", is("i1+ready"))[0]
}

func (e *env) scale(rev string, n int) {
	e.t.Helper()
	if err := e.b.Scale(e.t.Context(), rev, n); err != nil {
		e.t.Fatal(err)
	}
}

// until reads ch until a snapshot satisfies cond.
func (e *env) until(ch <-chan []backend.Instance, desc string, cond func([]backend.Instance) bool) []backend.Instance {
	e.t.Helper()
	timeout := time.After(bound)
	for {
		select {
		case s, ok := <-ch:
			if !ok {
				e.t.Fatalf("watch closed waiting for %s", desc)
			}
			if cond(s) {
				return s
			}
		case <-timeout:
			e.t.Fatalf("no snapshot with %s", desc)
		}
	}
}

// now fails the test unless rev's current snapshot is want.
func (e *env) now(rev, want, when string) {
	e.t.Helper()
	s, err := e.b.Instances(rev)
	if err != nil || ids(s) != want {
		e.t.Fatalf("%s: instances %q, error %v; want %q", when, ids(s), err, want)
	}
}

func (e *env) drainCalled(want string) {
	e.t.Helper()
	select {
	case id := <-e.drains.called:
		if id != want {
			e.t.Fatalf("DrainFunc called for %s, want %s", id, want)
		}
	case <-time.After(bound):
		e.t.Fatalf("DrainFunc not called for %s", want)
	}
}

func ids(s []backend.Instance) string {
	var out []string
	for _, in := range s {
		st := ""
		if in.Ready {
			st += "+ready"
		}
		if in.Draining {
			st += "+draining"
		}
		out = append(out, strings.TrimPrefix(in.ID, in.Revision+"-")+st)
	}
	return strings.Join(out, " ")
}

func is(want string) func([]backend.Instance) bool {
	return func(s []backend.Instance) bool { return ids(s) == want }
}

func get(addr, path string) (string, error) {
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestNewRejectsBadOptions(t *testing.T) {
	for _, tc := range []struct {
		opts fake.Options
		want string
	}{
		{fake.Options{StartDelay: -1}, "Options.StartDelay"},
		{fake.Options{StartJitter: -time.Second}, "Options.StartJitter"},
		{fake.Options{DrainTimeout: -1}, "Options.DrainTimeout"},
		{fake.Options{DrainDelay: -1}, "Options.DrainDelay"},
		{fake.Options{MaxInstances: -3}, "Options.MaxInstances = -3"},
	} {
		if _, err := fake.New(tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v) = %v, want an error naming %s", tc.opts, err, tc.want)
		}
	}
}

func TestBadCalls(t *testing.T) {
	e := newEnv(t, fake.Options{MaxInstances: 5})
	ctx := t.Context()
	if err := e.b.Deploy(ctx, revision.Revision{}); !errors.Is(err, backend.ErrInvalidArgument) {
		t.Errorf("Deploy(zero revision) = %v, want ErrInvalidArgument", err)
	}
	rev, _ := e.deploy("a")
	if err := e.b.Scale(ctx, rev, 6); !errors.Is(err, backend.ErrInvalidArgument) || !strings.Contains(err.Error(), "[0, 5]") {
		t.Errorf("Scale above MaxInstances = %v, want ErrInvalidArgument naming [0, 5]", err)
	}
	nilHandler := newEnv(t, fake.Options{Handler: func(revision.Revision) http.Handler { return nil }})
	if err := nilHandler.b.Deploy(ctx, nilHandler.rev("a")); !errors.Is(err, backend.ErrInvalidArgument) {
		t.Errorf("Deploy with a nil handler = %v, want ErrInvalidArgument", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := e.b.Scale(cancelled, rev, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("Scale with a cancelled ctx = %v, want context.Canceled", err)
	}
}

func TestDefaultHandler(t *testing.T) {
	b, err := fake.New(fake.Options{}) // real clock, ready at once
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	rev, err := revision.New("a", "a-00001", 1, revision.Spec{Image: "img"}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := b.Deploy(ctx, rev); err != nil {
		t.Fatal(err)
	}
	if err := b.Scale(ctx, "a-00001", 1); err != nil {
		t.Fatal(err)
	}
	snap, err := b.Instances("a-00001")
	if err != nil || len(snap) != 1 || !snap[0].Ready {
		t.Fatalf("Instances = %v, %v; want one ready instance at once", snap, err)
	}
	if body, err := get(snap[0].Address, "/"); err != nil || body != "a-00001\n" {
		t.Errorf("GET = %q, %v; want the revision name", body, err)
	}
}

func TestStartDelayOnClock(t *testing.T) {
	e := newEnv(t, fake.Options{StartDelay: 2 * time.Second})
	rev, ch := e.deploy("a")
	e.scale(rev, 2)
	e.until(ch, "two starting", is("i1 i2"))
	e.clk.Step(2*time.Second - 1)
	e.now(rev, "i1 i2", "before the start delay passed")
	e.clk.Step(1)
	e.b.Flush()
	e.now(rev, "i1+ready i2+ready", "after the start delay and Flush")
	s := e.until(ch, "two ready", is("i1+ready i2+ready"))
	if !s[0].Started.Equal(time.Unix(1_700_000_000, 0)) {
		t.Errorf("Started = %v, want the clock's time at Scale", s[0].Started)
	}
}

// readyOrder scales to n with jitter and returns, step by step of 100 ms,
// the instances that became ready.
func readyOrder(t *testing.T, seed uint64) []string {
	e := newEnv(t, fake.Options{StartJitter: 10 * time.Second, Seed: seed})
	rev, _ := e.deploy("a")
	const n = 8
	e.scale(rev, n)
	var order []string
	seen := make(map[string]bool)
	for step := 0; len(seen) < n; step++ {
		if step > 101 {
			t.Fatalf("not all ready after 10 s of jitter: %v", order)
		}
		e.clk.Step(100 * time.Millisecond)
		e.b.Flush()
		s, err := e.b.Instances(rev)
		if err != nil {
			t.Fatal(err)
		}
		var batch []string
		for _, in := range s {
			if in.Ready && !seen[in.ID] {
				seen[in.ID] = true
				batch = append(batch, in.ID)
			}
		}
		order = append(order, strings.Join(batch, "+"))
	}
	return order
}

// The longest delays neither panic (Int64N of StartJitter+1) nor wrap
// to a negative, instant start.
func TestLongestStartDelayAndJitter(t *testing.T) {
	e := newEnv(t, fake.Options{StartDelay: math.MaxInt64, StartJitter: math.MaxInt64})
	rev, ch := e.deploy("a")
	e.scale(rev, 1)
	e.until(ch, "one starting", is("i1"))
	e.clk.Step(24 * time.Hour)
	e.b.Flush()
	e.now(rev, "i1", "after a day")
}

func TestJitterDeterministicPerSeed(t *testing.T) {
	a, b, c := readyOrder(t, 7), readyOrder(t, 7), readyOrder(t, 8)
	if !slices.Equal(a, b) {
		t.Errorf("same seed, different ready order:\n%v\n%v", a, b)
	}
	if slices.Equal(a, c) {
		t.Errorf("seeds 7 and 8 gave the same ready order %v", a)
	}
}

func TestVictimsNotReadyFirstThenYoungest(t *testing.T) {
	e := newEnv(t, fake.Options{StartDelay: time.Second})
	rev, ch := e.deploy("a")
	e.scale(rev, 2)
	e.clk.Step(time.Second)
	e.until(ch, "two ready", is("i1+ready i2+ready"))
	e.scale(rev, 4)
	e.until(ch, "two more starting", is("i1+ready i2+ready i3 i4"))
	e.scale(rev, 3)
	// i4 never became ready: stopped at once, without draining.
	e.until(ch, "i4 gone", is("i1+ready i2+ready i3"))
	e.scale(rev, 1)
	e.until(ch, "i3 gone, i2 gone", is("i1+ready"))
	if got := e.drains.calls(); !slices.Equal(got, []string{"a-00001-i2"}) {
		t.Errorf("drained %v, want only the youngest ready instance a-00001-i2", got)
	}
}

func TestFailScale(t *testing.T) {
	e := newEnv(t, fake.Options{})
	rev, _ := e.deploy("a")
	ctx := t.Context()
	e.b.FailScale(2, backend.ErrTransient)
	if err := e.b.Scale(ctx, rev, -1); !errors.Is(err, backend.ErrInvalidArgument) {
		t.Fatalf("invalid Scale = %v, want ErrInvalidArgument (it must not use up an injected failure)", err)
	}
	for i := range 2 {
		if err := e.b.Scale(ctx, rev, 3); !backend.IsTransient(err) {
			t.Fatalf("Scale #%d = %v, want the injected transient error", i+1, err)
		}
	}
	if n, _ := e.b.Desired(rev); n != 0 {
		t.Fatalf("failed Scale calls changed the desired scale to %d", n)
	}
	e.scale(rev, 3)
	if n, _ := e.b.Desired(rev); n != 3 {
		t.Fatalf("Desired = %d after Scale(3), want 3", n)
	}
	e.b.FailScale(1, backend.ErrInvalidArgument)
	if err := e.b.Scale(ctx, rev, 1); !errors.Is(err, backend.ErrInvalidArgument) || backend.IsTransient(err) {
		t.Fatalf("Scale = %v, want the injected permanent error", err)
	}
}

func TestCrashDuringStart(t *testing.T) {
	e := newEnv(t, fake.Options{StartDelay: time.Second})
	rev, ch := e.deploy("a")
	if err := e.b.CrashStarts(rev, 1); err != nil {
		t.Fatal(err)
	}
	e.scale(rev, 1)
	e.until(ch, "i1 starting", is("i1"))
	e.clk.Step(time.Second)
	e.until(ch, "i1 crashed and replaced", is("i2"))
	e.clk.Step(time.Second)
	e.until(ch, "the replacement ready", is("i2+ready"))
	if got := e.drains.calls(); len(got) != 0 {
		t.Errorf("crashed instance was drained: %v", got)
	}
	if err := e.b.CrashStarts("nope-00001", 1); !errors.Is(err, backend.ErrNotDeployed) {
		t.Errorf("CrashStarts(unknown) = %v, want ErrNotDeployed", err)
	}
}

func TestKillWhileServing(t *testing.T) {
	e := newEnv(t, fake.Options{})
	_, ch, inst := e.upOne("a")
	// The hold never gets released: only the kill can end it.
	cut := make(chan error, 1)
	go func() {
		_, err := get(inst.Address, backendtest.PathHold+"?key=k")
		cut <- err
	}()
	if err := e.b.Kill(inst.ID); err != nil {
		t.Fatal(err)
	}
	e.until(ch, "replaced", is("i2+ready"))
	select {
	case err := <-cut:
		if err == nil {
			t.Error("request on a killed instance completed")
		}
	case <-time.After(bound):
		t.Fatal("request on a killed instance did not end")
	}
	if _, err := get(inst.Address, "/"); err == nil {
		t.Error("killed instance still answers")
	}
	if got := e.drains.calls(); len(got) != 0 {
		t.Errorf("killed instance was drained: %v", got)
	}
	if err := e.b.Kill(inst.ID); !errors.Is(err, fake.ErrNoInstance) {
		t.Errorf("Kill of a dead instance = %v, want ErrNoInstance", err)
	}
}

func TestFailThenRestart(t *testing.T) {
	e := newEnv(t, fake.Options{})
	rev, ch, inst := e.upOne("a")
	if err := e.b.Fail(inst.ID, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	e.until(ch, "not ready", is("i1"))
	if n, _ := e.b.Desired(rev); n != 1 {
		t.Fatalf("Desired = %d, want 1", n)
	}
	e.clk.Step(5*time.Second - 1)
	e.now(rev, "i1", "before the restart")
	e.clk.Step(1)
	e.b.Flush()
	e.now(rev, "i2+ready", "after the restart and Flush")
	e.until(ch, "restarted as i2", is("i2+ready"))
	if got := e.drains.calls(); len(got) != 0 {
		t.Errorf("failed instance was drained: %v", got)
	}
	if err := e.b.Fail(inst.ID, time.Second); !errors.Is(err, fake.ErrNoInstance) {
		t.Errorf("Fail of a dead instance = %v, want ErrNoInstance", err)
	}
	if err := e.b.Fail("a-00001-i2", 0); err != nil {
		t.Fatal(err)
	}
	e.until(ch, "killed at once and replaced", is("i3+ready"))
}

func TestSetReady(t *testing.T) {
	e := newEnv(t, fake.Options{StartDelay: time.Hour})
	rev, ch := e.deploy("a")
	e.scale(rev, 1)
	inst := e.until(ch, "starting", is("i1"))[0]
	if err := e.b.SetReady(inst.ID, true); err != nil {
		t.Fatal(err)
	}
	e.until(ch, "ready early", is("i1+ready"))
	if e.clk.HasWaiters() {
		t.Error("the pending start is still scheduled after SetReady(true)")
	}
	if err := e.b.SetReady(inst.ID, false); err != nil {
		t.Fatal(err)
	}
	e.until(ch, "not ready", is("i1"))
	if body, err := get(inst.Address, "/"); err != nil || body != "ok\n" {
		t.Errorf("not-ready instance: GET = %q, %v; want it still serving", body, err)
	}
	// It was ready once, so scale-down drains it.
	e.scale(rev, 0)
	e.drainCalled(inst.ID)
	e.until(ch, "gone", is(""))
	if err := e.b.SetReady(inst.ID, true); !errors.Is(err, fake.ErrNoInstance) {
		t.Errorf("SetReady of a stopped instance = %v, want ErrNoInstance", err)
	}
}

func TestDrainTimeoutCutsTheStop(t *testing.T) {
	e := newEnv(t, fake.Options{DrainTimeout: 5 * time.Second})
	e.drains.block = make(chan struct{}) // never released: only the timeout ends it
	rev, ch, inst := e.upOne("a")
	e.scale(rev, 0)
	e.drainCalled(inst.ID)
	e.until(ch, "draining", is("i1+ready+draining"))
	e.clk.Step(5*time.Second - 1)
	if _, err := get(inst.Address, "/"); err != nil {
		t.Fatalf("instance stopped before the drain timeout: %v", err)
	}
	e.clk.Step(1)
	e.until(ch, "stopped at the timeout", is(""))
}

func TestSlowDrain(t *testing.T) {
	e := newEnv(t, fake.Options{})
	e.b.SetDrainDelay(3 * time.Second)
	rev, ch, inst := e.upOne("a")
	e.scale(rev, 0)
	e.drainCalled(inst.ID) // returns at once; the delay still holds the stop
	e.clk.Step(3*time.Second - 1)
	if body, err := get(inst.Address, "/"); err != nil || body != "ok\n" {
		t.Fatalf("draining instance during its delay: GET = %q, %v", body, err)
	}
	e.now(rev, "i1+ready+draining", "during the delay")
	e.clk.Step(1)
	e.until(ch, "stopped after the delay", is(""))
}

func TestRemoveLifecycle(t *testing.T) {
	e := newEnv(t, fake.Options{})
	e.drains.block = make(chan struct{})
	ctx := t.Context()
	rev, ch, inst := e.upOne("a")
	if err := e.b.Remove(ctx, rev); err != nil {
		t.Fatal(err)
	}
	e.drainCalled(inst.ID)
	if err := e.b.Scale(ctx, rev, 1); !errors.Is(err, backend.ErrNotDeployed) {
		t.Errorf("Scale while removing = %v, want ErrNotDeployed", err)
	}
	if err := e.b.Deploy(ctx, e.rev("a")); !backend.IsTransient(err) {
		t.Errorf("Deploy while removing = %v, want ErrTransient", err)
	}
	if err := e.b.Remove(ctx, rev); err != nil {
		t.Errorf("Remove while removing = %v, want nil", err)
	}
	close(e.drains.block)
	for range ch {
	}
	if err := e.b.Remove(ctx, rev); !errors.Is(err, backend.ErrNotDeployed) {
		t.Errorf("Remove after removal = %v, want ErrNotDeployed", err)
	}
	if _, err := get(inst.Address, "/"); err == nil {
		t.Error("instance of a removed revision still answers")
	}
	if err := e.b.Deploy(ctx, e.rev("a")); err != nil {
		t.Errorf("Deploy after removal = %v, want nil", err)
	}
}

func TestClose(t *testing.T) {
	e := newEnv(t, fake.Options{})
	rev, ch, inst := e.upOne("a")
	if err := e.b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.b.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if _, ok := <-ch; ok {
		t.Error("watch open after Close")
	}
	if _, err := get(inst.Address, "/"); err == nil {
		t.Error("instance answers after Close")
	}
	ctx := t.Context()
	for name, err := range map[string]error{
		"Deploy": e.b.Deploy(ctx, e.rev("b")),
		"Scale":  e.b.Scale(ctx, rev, 1),
		"Remove": e.b.Remove(ctx, rev),
	} {
		if !errors.Is(err, fake.ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
	if _, err := e.b.Watch(ctx, rev); !errors.Is(err, fake.ErrClosed) {
		t.Errorf("Watch after Close = %v, want ErrClosed", err)
	}
}
