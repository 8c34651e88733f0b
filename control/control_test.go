package control_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/zeroscale/zeroscale/activator"
	"github.com/zeroscale/zeroscale/autoscaler"
	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/backend/fake"
	"github.com/zeroscale/zeroscale/control"
	"github.com/zeroscale/zeroscale/revision"
	"github.com/zeroscale/zeroscale/stats"
)

// waitFor bounds, in real time, each wait for the controller's
// goroutines (which run on the fake clock without it being stepped).
const waitFor = 10 * time.Second

// env is a Controller on the fake backend and a fake clock, its
// activator served on loopback.
type env struct {
	t      *testing.T
	clk    *clocktesting.FakeClock
	engine *fake.Backend
	ctl    *control.Controller
	url    string

	mu     sync.Mutex
	events []control.Event
}

// pickHeader routes by the Revision header: the host's routing.
type pickHeader struct{}

func (pickHeader) PickRevision(r *http.Request) (string, error) {
	if rev := r.Header.Get("Revision"); rev != "" {
		return rev, nil
	}
	return "", errors.New("no Revision header")
}

func newEnv(t *testing.T, fo fake.Options, wrap func(*fake.Backend) backend.Backend) *env {
	return newEnvWith(t, fo, wrap, nil)
}

// newEnvWith is newEnv with mod applied to the Controller's options.
func newEnvWith(t *testing.T, fo fake.Options, wrap func(*fake.Backend) backend.Backend, mod func(*control.Options)) *env {
	e := &env{t: t, clk: clocktesting.NewFakeClock(time.Unix(1_700_000_000, 0))}
	fo.Clock = e.clk
	cfg := autoscaler.DefaultConfig()
	cfg.AllowZeroInitialScale, cfg.InitialScale = true, 0
	o := control.Options{
		NewBackend: func(drain backend.DrainFunc) (backend.Backend, error) {
			fo.Drain = drain
			b, err := fake.New(fo)
			e.engine = b
			if err != nil || wrap == nil {
				return b, err
			}
			return wrap(b), nil
		},
		Config:    cfg,
		Activator: activator.Options{Picker: pickHeader{}},
		OnEvent: func(ev control.Event) {
			e.mu.Lock()
			e.events = append(e.events, ev)
			e.mu.Unlock()
		},
		Clock: e.clk,
	}
	if mod != nil {
		mod(&o)
	}
	ctl, err := control.New(o)
	require.NoError(t, err)
	e.ctl = ctl
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		_ = ctl.Run(ctx)
	}()
	front := httptest.NewServer(ctl.Activator())
	e.url = front.URL
	t.Cleanup(func() {
		// First: Shutdown answers held requests, which front.Close
		// would wait for.
		sctx, scancel := context.WithTimeout(context.Background(), waitFor)
		defer scancel()
		assert.NoError(t, ctl.Shutdown(sctx))
		front.Close()
		cancel()
		<-ran
	})
	return e
}

func (e *env) revision(name string, cc int) revision.Revision {
	e.t.Helper()
	r, err := revision.New("hello", name, 1, revision.Spec{Image: "example.com/hello", ContainerConcurrency: cc}, e.clk.Now())
	require.NoError(e.t, err)
	return r
}

// get sends GET / for rev and returns the status code and body.
func (e *env) get(rev string) (int, string) {
	req, err := http.NewRequest(http.MethodGet, e.url, nil)
	if err != nil {
		return 0, err.Error()
	}
	req.Header.Set("Revision", rev)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// atZero waits until the initial decision (scale 0) was applied.
func (e *env) atZero(rev string) {
	e.t.Helper()
	require.Eventually(e.t, func() bool { return e.status(rev).Applied == 0 }, waitFor, time.Millisecond)
}

func (e *env) eventsOf(kind control.EventKind) []control.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []control.Event
	for _, ev := range e.events {
		if ev.Kind == kind {
			out = append(out, ev)
		}
	}
	return out
}

func (e *env) status(rev string) control.Status {
	e.t.Helper()
	st, err := e.ctl.Status(rev)
	require.NoError(e.t, err)
	return st
}

func TestScaleFromZeroReadyAndEvents(t *testing.T) {
	e := newEnv(t, fake.Options{}, nil)
	r := e.revision("hello-00001", 0)
	require.NoError(t, e.ctl.Add(t.Context(), r))
	st := e.status(r.Name())
	assert.True(t, st.Ready, "initial scale 0: Ready at once")
	assert.Zero(t, st.Serving)
	require.Len(t, e.eventsOf(control.EventReady), 1)
	assert.Equal(t, "InitialScaleZero", e.eventsOf(control.EventReady)[0].Reason)

	code, body := e.get(r.Name()) // held, wakes the revision
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "hello-00001\n", body)
	// The activator may serve before the Controller's own record of the
	// snapshot and of the accepted Scale is updated.
	require.Eventually(t, func() bool {
		st = e.status(r.Name())
		return st.Serving == 1 && st.Applied == 1
	}, waitFor, time.Millisecond)
	assert.Equal(t, 1, st.Decision.Scale)
	require.Eventually(t, func() bool { return len(e.eventsOf(control.EventScaled)) == 1 }, waitFor, time.Millisecond)
	assert.Equal(t, 0, e.eventsOf(control.EventScaled)[0].From)
	assert.Equal(t, 1, e.eventsOf(control.EventScaled)[0].To)
	assert.Equal(t, []string{r.Name()}, e.ctl.Revisions())
}

func TestAddTwiceAndUnknown(t *testing.T) {
	e := newEnv(t, fake.Options{}, nil)
	r := e.revision("hello-00001", 0)
	require.NoError(t, e.ctl.Add(t.Context(), r))
	require.ErrorIs(t, e.ctl.Add(t.Context(), r), control.ErrExists)
	require.ErrorIs(t, e.ctl.Remove(t.Context(), "nope-00001"), control.ErrUnknownRevision)
	_, err := e.ctl.Status("nope-00001")
	require.ErrorIs(t, err, control.ErrUnknownRevision)
	require.ErrorIs(t, e.ctl.Add(t.Context(), revision.Revision{}), backend.ErrInvalidArgument)
}

// failingWatch is an engine whose Watch always fails permanently.
type failingWatch struct{ *fake.Backend }

func (failingWatch) Watch(context.Context, string) (<-chan []backend.Instance, error) {
	return nil, fmt.Errorf("watch refused: %w", backend.ErrInvalidArgument)
}

func TestAddRollsBackAHalfFailedStart(t *testing.T) {
	e := newEnv(t, fake.Options{}, func(b *fake.Backend) backend.Backend { return failingWatch{b} })
	r := e.revision("hello-00001", 0)
	err := e.ctl.Add(t.Context(), r)
	require.ErrorContains(t, err, "watch refused")
	_, err = e.engine.Desired(r.Name())
	require.ErrorIs(t, err, backend.ErrNotDeployed, "deployed, then removed again")
	_, ok := e.ctl.Activator().Load(r.Name())
	assert.False(t, ok, "the activator forgot it")
	assert.Empty(t, e.ctl.Revisions())
	code, _ := e.get(r.Name())
	assert.Equal(t, http.StatusNotFound, code)
	// The name is free again.
	require.ErrorContains(t, e.ctl.Add(t.Context(), r), "watch refused")
}

// TestTransientScaleErrorsRetried: a transient refusal is retried with
// back-off on the clock until the engine accepts; a permanent one is
// status and an event, and the next decision is applied.
func TestTransientScaleErrorsRetried(t *testing.T) {
	e := newEnv(t, fake.Options{}, nil)
	r := e.revision("hello-00001", 0)
	require.NoError(t, e.ctl.Add(t.Context(), r))
	e.atZero(r.Name())
	e.engine.FailScale(3, backend.ErrTransient)
	res := make(chan int, 1)
	go func() {
		code, _ := e.get(r.Name())
		res <- code
	}()
	// Each retry waits on the clock: 100 ms, 200 ms, 400 ms. Step it in
	// small steps, never past the activator's 10 s hold.
	var stepped time.Duration
	sawTransient := false
	require.Eventually(t, func() bool {
		st := e.status(r.Name())
		sawTransient = sawTransient || backend.IsTransient(st.ScaleErr)
		if st.Applied == 1 || stepped >= 3*time.Second {
			return st.Applied == 1
		}
		e.clk.Step(10 * time.Millisecond)
		stepped += 10 * time.Millisecond
		return false
	}, waitFor, time.Millisecond)
	assert.True(t, sawTransient, "the transient refusal showed in Status meanwhile")
	assert.GreaterOrEqual(t, stepped, 700*time.Millisecond, "the retries waited out 100+200+400 ms of back-off")
	require.Equal(t, http.StatusOK, <-res)
	st := e.status(r.Name())
	assert.NoError(t, st.ScaleErr)
	assert.Equal(t, 1, st.Applied)
	assert.Empty(t, e.eventsOf(control.EventScaleFailed), "transient errors are retried, not reported")
}

func TestPermanentScaleErrorIsStatusAndEvent(t *testing.T) {
	e := newEnv(t, fake.Options{}, nil)
	r := e.revision("hello-00001", 0)
	require.NoError(t, e.ctl.Add(t.Context(), r))
	e.atZero(r.Name())
	e.engine.FailScale(1, backend.ErrInvalidArgument)
	go e.get(r.Name()) // held until the wait deadline
	require.Eventually(t, func() bool { return len(e.eventsOf(control.EventScaleFailed)) == 1 }, waitFor, time.Millisecond)
	st := e.status(r.Name())
	require.ErrorIs(t, st.ScaleErr, backend.ErrInvalidArgument)
	assert.Equal(t, 0, st.Applied, "the last accepted scale stands")
	assert.Equal(t, 1, e.eventsOf(control.EventScaleFailed)[0].To)
}

// TestDecisionCappedAtEngineLimit: a decision above the engine's
// InstanceLimiter is applied at the cap, never refused, and shows in
// Status and as an event.
func TestDecisionCappedAtEngineLimit(t *testing.T) {
	e := newEnv(t, fake.Options{MaxInstances: 2}, nil)
	r := e.revision("hello-00001", 1)
	require.NoError(t, e.ctl.Add(t.Context(), r))
	// 5 requests waiting at concurrency 1: the autoscaler wants 8.
	e.ctl.Reporter().Report(r.Name(), stats.Stat{Instance: "activator", AverageConcurrency: 5, RequestCount: 5})
	require.Eventually(t, func() bool { return e.status(r.Name()).Serving == 2 }, waitFor, time.Millisecond)
	st := e.status(r.Name())
	assert.Greater(t, st.Decision.Scale, 2, "the autoscaler wants more")
	assert.Equal(t, 2, st.Applied)
	assert.Equal(t, 2, st.Cap)
	assert.NoError(t, st.ScaleErr)
	caps := e.eventsOf(control.EventScaleCapped)
	require.Len(t, caps, 1)
	assert.Equal(t, 2, caps[0].To)
}

// TestRemoveDrainsInOrder: an in-flight request finishes with 200 while
// the revision is removed; then the engine and the activator have
// forgotten it.
func TestRemoveDrainsInOrder(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	e := newEnv(t, fake.Options{Handler: func(revision.Revision) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			entered <- struct{}{}
			<-release
			fmt.Fprint(w, "done")
		})
	}}, nil)
	r := e.revision("hello-00001", 0)
	require.NoError(t, e.ctl.Add(t.Context(), r))
	res := make(chan string, 1)
	go func() {
		code, body := e.get(r.Name())
		res <- fmt.Sprint(code, " ", body)
	}()
	<-entered
	removed := make(chan error, 1)
	go func() { removed <- e.ctl.Remove(t.Context(), r.Name()) }()
	require.Eventually(t, func() bool {
		snap, err := e.engine.Instances(r.Name())
		return err == nil && len(snap) == 1 && snap[0].Draining
	}, waitFor, time.Millisecond, "published Draining")
	select {
	case err := <-removed:
		t.Fatalf("Remove returned (%v) with a request in flight", err)
	default:
	}
	close(release)
	assert.Equal(t, "200 done", <-res)
	require.NoError(t, <-removed)
	_, err := e.engine.Desired(r.Name())
	require.ErrorIs(t, err, backend.ErrNotDeployed)
	_, ok := e.ctl.Activator().Load(r.Name())
	assert.False(t, ok)
	assert.Empty(t, e.ctl.Revisions())
}

// TestManyRevisions: revisions scale independently and a removal
// leaves the others serving.
func TestManyRevisions(t *testing.T) {
	e := newEnv(t, fake.Options{}, nil)
	const n = 5
	for i := range n {
		require.NoError(t, e.ctl.Add(t.Context(), e.revision(fmt.Sprintf("hello-%05d", i+1), 0)))
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			name := fmt.Sprintf("hello-%05d", i+1)
			code, body := e.get(name)
			assert.Equal(t, http.StatusOK, code)
			assert.Equal(t, name+"\n", body)
		})
	}
	wg.Wait()
	require.NoError(t, e.ctl.Remove(t.Context(), "hello-00002"))
	code, body := e.get("hello-00003")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "hello-00003\n", body)
	assert.Len(t, e.ctl.Revisions(), n-1)
}

func TestNewRejectsBadOptions(t *testing.T) {
	_, err := control.New(control.Options{})
	require.ErrorContains(t, err, "NewBackend (or NewProxiedBackend) is required")
	_, err = control.New(control.Options{
		NewBackend: func(backend.DrainFunc) (backend.Backend, error) { return nil, nil },
		Activator:  activator.Options{Picker: pickHeader{}},
	})
	require.ErrorContains(t, err, "nil Backend")
	cfg := autoscaler.DefaultConfig()
	cfg.StableWindow = 2 * time.Hour
	_, err = control.New(control.Options{
		NewBackend: func(backend.DrainFunc) (backend.Backend, error) { return fake.New(fake.Options{}) },
		Config:     cfg,
	})
	require.ErrorContains(t, err, "StableWindow")
}
