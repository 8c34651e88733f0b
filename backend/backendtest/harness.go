package backendtest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/revision"
)

// Config is what the suite asks of each engine it gets.
type Config struct {
	// Drain is the DrainFunc the engine must call before it stops an
	// instance. The suite records every call, checks from inside it
	// (with a new Backend.Watch) that the engine already publishes the
	// instance Draining, and, in the drain test, blocks in it until it
	// has checked the instance still serves. So the engine must not hold
	// a lock that Watch needs while it calls the DrainFunc.
	Drain backend.DrainFunc
}

// Harness is one engine under test, made fresh for every subtest.
type Harness struct {
	// Backend is the engine, constructed with Config.Drain as its
	// DrainFunc and a drain timeout longer than Timeout (the suite holds
	// one drain open for a few waits). Required.
	Backend backend.Backend

	// Spec is a valid spec whose instances serve App (see ServeApp). The
	// suite derives revisions from it: it only appends the environment
	// variable BACKENDTEST_VARIANT to make a different spec. Required.
	Spec revision.Spec

	// Client reaches instance addresses. Nil means a client that dials
	// Instance.Address directly, without keep-alives. Engines whose
	// addresses are not reachable from the test (pod IPs) give one whose
	// transport dials through a tunnel.
	Client *http.Client

	// Timeout bounds, in real time, every single wait for the engine to
	// converge (instances ready, gone, drained, watch closed). Zero means
	// 10 s; real engines set it to their worst start time plus margin.
	Timeout time.Duration

	// Crash, when set, makes inst's app exit as a crash would (the
	// engine then restarts it: a new instance with a new ID). Nil means
	// the suite sends GET PathCrash to inst, which the out-of-process app
	// (ServeApp) answers by exiting; in-process engines (the fake) set
	// it.
	Crash func(ctx context.Context, inst backend.Instance) error

	// Advance, when set, is called about every PollInterval while the
	// suite waits, to move an engine that runs on a fake clock forward
	// (for example: step the clock by the start delay if anything waits
	// on it). Engines on the real clock leave it nil.
	Advance func()
}

// PollInterval is how often, in real time, the suite calls
// Harness.Advance and re-checks conditions it cannot be notified of
// (an address stopping to answer, a DrainFunc call).
const PollInterval = 10 * time.Millisecond

const (
	defaultTimeout = 10 * time.Second
	maxBody        = 4096 // bytes of a response body the suite reads
)

// Run runs the whole Backend contract as subtests of t. newHarness is
// called once per subtest with that subtest's t (register cleanup,
// such as closing the engine, with t.Cleanup) and must return a fresh
// engine built with cfg.
//
// Run checks: Deploy is idempotent, starts nothing, and rejects a known
// name with another spec (ErrInvalidArgument); Scale, Remove and Watch
// of an unknown revision fail with ErrNotDeployed and a negative scale with
// ErrInvalidArgument; scaling 0→N→0 converges, every instance keeps its
// ID, Started and Address, answers HTTP once ready, is drained (DrainFunc
// called) before it leaves if it was ever seen ready, never reappears,
// and stops answering once gone, and the DrainFunc is called only once
// the engine publishes the instance Draining; repeating Scale changes
// nothing (no instance replaced); an app that crashes is restarted as a
// new instance with a new ID while the crashed one leaves; Remove
// of a scaled revision drains and stops everything and closes the watch;
// a watch closes when its ctx is done; many goroutines calling Deploy,
// Scale and Watch at once are safe (run with -race) and the engine still
// converges; a request in flight when scale-down starts completes with
// 200, because the engine publishes the instance Draining, calls the
// DrainFunc and keeps the instance serving until the DrainFunc returns.
// For an engine that implements backend.Freezer, it also checks that
// Freeze publishes the instances Frozen (Ready, not Serving), drains
// them, and suspends them (a request sent to one is not answered until
// Thaw); Thaw resumes the same instances (the held request completes,
// nothing new starts); and Scale 0, Remove and Close stop frozen
// instances. Those subtests skip on other engines.
// An engine that implements backend.Reserver is also checked against
// its rules: ScaleReserved takes 0 or 1 (ErrInvalidArgument otherwise,
// ErrNotDeployed for an unknown revision), a reserved instance is listed
// with Reserved set, serves, is not counted or replaced by Scale (Scale
// 0 leaves it, repeating ScaleReserved keeps it), is drained before it
// stops, and a crashed one comes back as a new reserved instance.
func Run(t *testing.T, newHarness func(t *testing.T, cfg Config) Harness) {
	t.Helper()
	for _, tc := range []struct {
		name string
		fn   func(e *env)
	}{
		{"DeployIdempotent", testDeployIdempotent},
		{"BadInput", testBadInput},
		{"ScaleUpAndDown", testScaleUpAndDown},
		{"ScaleIdempotent", testScaleIdempotent},
		{"RemoveWhileScaled", testRemoveWhileScaled},
		{"WatchClosedOnCancel", testWatchClosedOnCancel},
		{"Concurrent", testConcurrent},
		{"DrainBeforeStop", testDrainBeforeStop},
		{"RestartIsNewInstance", testRestartIsNewInstance},
		{"FreezeThaw", testFreezeThaw},
		{"FreezeRemove", testFreezeRemove},
		{"FreezeClose", testFreezeClose},
		{"Reserved", testReserved},
	} {
		t.Run(tc.name, func(t *testing.T) {
			drains := &drainLog{calls: make(map[string]*drainCall), freezes: make(map[string]*drainCall)}
			h := newHarness(t, Config{Drain: drains.drain})
			if h.Backend == nil {
				t.Fatal("backendtest: Harness.Backend is nil")
			}
			if h.Timeout <= 0 {
				h.Timeout = defaultTimeout
			}
			if h.Client == nil {
				h.Client = &http.Client{Transport: &http.Transport{
					DialContext:       (&net.Dialer{Timeout: h.Timeout}).DialContext,
					DisableKeepAlives: true,
				}}
			}
			drains.mu.Lock()
			drains.backend, drains.timeout = h.Backend, h.Timeout
			drains.mu.Unlock()
			tc.fn(&env{t: t, h: h, drains: drains, crashed: make(map[string]bool)})
		})
	}
}

// env is one subtest's view of its engine.
type env struct {
	t      *testing.T
	h      Harness
	drains *drainLog
	// crashed are the instances the suite crashed: they leave without
	// being drained. Test goroutine only.
	crashed map[string]bool
}

// crash makes inst's app exit (Harness.Crash, else GET PathCrash).
func (e *env) crash(inst backend.Instance) {
	e.t.Helper()
	e.crashed[inst.ID] = true
	if e.h.Crash != nil {
		if err := e.h.Crash(e.t.Context(), inst); err != nil {
			e.t.Fatalf("Harness.Crash(%s): %v", inst.ID, err)
		}
		return
	}
	// The app exits while answering: an error is the expected outcome.
	code, body, err := e.get(e.t.Context(), inst.Address, PathCrash)
	if err == nil && code == http.StatusNotImplemented {
		e.t.Fatalf("GET %s on instance %s: status %d %q: the app cannot crash on request (serve ServeApp's app, or set Harness.Crash)", PathCrash, inst.ID, code, body)
	}
}

// revision returns revision <config>-00001 running the harness spec, or a
// different spec when variant is not 0.
func (e *env) revision(config string, variant int) revision.Revision {
	e.t.Helper()
	spec := e.h.Spec
	if variant != 0 {
		spec.Env = append(slices.Clip(spec.Env), revision.EnvVar{Name: "BACKENDTEST_VARIANT", Value: fmt.Sprint(variant)})
	}
	rev, err := revision.New(config, config+"-00001", 1, spec, time.Unix(0, 0))
	if err != nil {
		e.t.Fatalf("backendtest: Harness.Spec: %v", err)
	}
	return rev
}

// deploy deploys a fresh revision of config and returns its name.
func (e *env) deploy(config string) string {
	e.t.Helper()
	rev := e.revision(config, 0)
	if err := e.h.Backend.Deploy(e.t.Context(), rev); err != nil {
		e.t.Fatalf("Deploy(%s): %v", rev.Name(), err)
	}
	return rev.Name()
}

func (e *env) scale(rev string, n int) {
	e.t.Helper()
	if err := e.h.Backend.Scale(e.t.Context(), rev, n); err != nil {
		e.t.Fatalf("Scale(%s, %d): %v", rev, n, err)
	}
}

// eventually waits until cond holds, calling Advance and re-checking
// every PollInterval, and fails the test after Timeout.
func (e *env) eventually(desc string, cond func() bool) {
	e.t.Helper()
	deadline := time.NewTimer(e.h.Timeout)
	defer deadline.Stop()
	tick := time.NewTicker(PollInterval)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
			if e.h.Advance != nil {
				e.h.Advance()
			}
		case <-deadline.C:
			e.t.Fatalf("timed out after %v waiting for %s", e.h.Timeout, desc)
		}
	}
}

// get does GET path on addr and returns the status and body.
func (e *env) get(ctx context.Context, addr, path string) (int, string, error) {
	ctx, cancel := context.WithTimeout(ctx, e.h.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := e.h.Client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	return resp.StatusCode, string(b), err
}

// mustOK fails the test unless GET / on inst answers 200 "ok\n".
func (e *env) mustOK(inst backend.Instance) {
	e.t.Helper()
	code, body, err := e.get(e.t.Context(), inst.Address, PathOK)
	if err != nil || code != http.StatusOK || body != "ok\n" {
		e.t.Fatalf("GET http://%s%s on instance %s: status %d, body %q, error %v; want 200 \"ok\\n\"",
			inst.Address, PathOK, inst.ID, code, body, err)
	}
}

// waitDead waits until addr stops answering: the instance was stopped.
func (e *env) waitDead(inst backend.Instance) {
	e.t.Helper()
	e.eventually(fmt.Sprintf("instance %s at %s to stop answering after it left the watch", inst.ID, inst.Address), func() bool {
		_, _, err := e.get(e.t.Context(), inst.Address, PathOK)
		return err != nil
	})
}

// drainLog is the suite's DrainFunc: it records calls, checks the
// engine published the instance Draining before calling, and can hold
// calls open.
type drainLog struct {
	mu      sync.Mutex
	backend backend.Backend       // set once the harness exists
	timeout time.Duration         // Harness.Timeout
	calls   map[string]*drainCall // instance ID → call
	freezes map[string]*drainCall // instance ID → call before a freeze
	gate    chan struct{}         // when non-nil, calls wait for it to close
}

// drainCall is one DrainFunc call.
type drainCall struct {
	arg backend.Instance
	// problem is why the engine's own watch, read from inside the call,
	// did not show arg Draining ("" if it did, or could not say).
	problem string
}

func (d *drainLog) drain(ctx context.Context, inst backend.Instance) error {
	call := &drainCall{arg: inst, problem: d.checkPublished(ctx, inst)}
	d.mu.Lock()
	if inst.Frozen && !inst.Draining {
		d.freezes[inst.ID] = call
	} else {
		d.calls[inst.ID] = call
	}
	gate := d.gate
	d.mu.Unlock()
	if gate == nil {
		return nil
	}
	select {
	case <-gate:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// checkPublished reads the current snapshot of inst's revision from a
// new watch: the engine must already list inst as Draining (as Frozen,
// for the drain before a freeze). A revision
// being removed may no longer be watchable; that proves nothing either
// way. The read is bounded, so an engine that holds a lock while it
// calls the DrainFunc is reported rather than deadlocked.
func (d *drainLog) checkPublished(ctx context.Context, inst backend.Instance) string {
	d.mu.Lock()
	b, timeout := d.backend, d.timeout
	d.mu.Unlock()
	if b == nil {
		return ""
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	result := make(chan string, 1)
	go func() {
		ch, err := b.Watch(wctx, inst.Revision)
		if err != nil {
			result <- ""
			return
		}
		select {
		case snap := <-ch:
			for _, in := range snap {
				if in.ID == inst.ID && (in.Draining || inst.Frozen && in.Frozen) {
					result <- ""
					return
				}
			}
			result <- "the DrainFunc was called before the engine published the instance Draining (or Frozen): current snapshot " + format(snap)
		case <-wctx.Done():
			result <- ""
		}
	}()
	select {
	case p := <-result:
		return p
	case <-wctx.Done():
		return fmt.Sprintf("Watch(%s) from inside the DrainFunc did not return within %v: does the engine hold a lock while it calls the DrainFunc?", inst.Revision, timeout)
	}
}

// called returns the DrainFunc call for id, if any.
func (d *drainLog) called(id string) (*drainCall, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	c, ok := d.calls[id]
	return c, ok
}

// frozen returns the DrainFunc call before id was frozen, if any.
func (d *drainLog) frozen(id string) (*drainCall, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	c, ok := d.freezes[id]
	return c, ok
}

// hold makes later DrainFunc calls wait; the returned func releases them.
func (d *drainLog) hold() (release func()) {
	gate := make(chan struct{})
	d.mu.Lock()
	d.gate = gate
	d.mu.Unlock()
	var once sync.Once
	return func() { once.Do(func() { close(gate) }) }
}
