package zeroscale_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/zeroscale/zeroscale"
	"github.com/zeroscale/zeroscale/autoscaler"
	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/backend/fake"
	"github.com/zeroscale/zeroscale/revision"
	"github.com/zeroscale/zeroscale/traffic"
)

// fixture is a Server on the fake backend, serving on loopback.
type fixture struct {
	t      *testing.T
	clk    *clocktesting.FakeClock // the Server's and the backend's
	engine *fake.Backend
	srv    *zeroscale.Server
	url    string

	mu     sync.Mutex
	events []zeroscale.Event
	crash  string // a revision whose instances all crash at start
}

// crashing makes every instance of fixture.crash crash at start.
type crashing struct {
	*fake.Backend
	f *fixture
}

func (c crashing) Deploy(ctx context.Context, r revision.Revision) error {
	if err := c.Backend.Deploy(ctx, r); err != nil {
		return err
	}
	if r.Name() == c.f.crash {
		return c.Backend.CrashStarts(r.Name(), 1<<20)
	}
	return nil
}

// newFixture is a Server on the fake backend, both on f.clk (fo.Clock,
// else a new fake clock): time passes only when the test steps it.
func newFixture(t *testing.T, fo fake.Options, cfg autoscaler.Config) *fixture {
	f := &fixture{t: t}
	if fo.Clock == nil {
		fo.Clock = clocktesting.NewFakeClock(time.Unix(1_700_000_000, 0))
	}
	f.clk = fo.Clock.(*clocktesting.FakeClock)
	newBackend := func(drain backend.DrainFunc) (backend.Backend, error) {
		fo.Drain = drain
		engine, err := fake.New(fo)
		f.engine = engine
		return crashing{engine, f}, err
	}
	srv, err := zeroscale.New(zeroscale.Options{NewBackend: newBackend, Config: cfg, Clock: fo.Clock, OnEvent: func(e zeroscale.Event) {
		f.srv.Status() // the hook may call the Server
		f.mu.Lock()
		f.events = append(f.events, e)
		f.mu.Unlock()
	}})
	require.NoError(t, err)
	f.srv = srv
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f.url = "http://" + ln.Addr().String()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		require.NoError(t, srv.Shutdown(ctx))
		require.ErrorIs(t, <-served, http.ErrServerClosed)
		require.NoError(t, f.engine.Close())
	})
	return f
}

func zeroCfg() autoscaler.Config {
	cfg := autoscaler.DefaultConfig()
	cfg.AllowZeroInitialScale, cfg.InitialScale = true, 0
	return cfg
}

// get sends GET path with Host host (and optional headers k, v, …).
func (f *fixture) get(host, path string, kv ...string) (int, string) {
	f.t.Helper()
	req, err := http.NewRequest("GET", f.url+path, nil)
	require.NoError(f.t, err)
	req.Host = host
	for i := 0; i+1 < len(kv); i += 2 {
		req.Header.Set(kv[i], kv[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(f.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(f.t, err)
	return resp.StatusCode, string(b)
}

// response is one request's outcome, for getAsync.
type response struct {
	code int
	body string
	err  error
}

// getAsync sends GET path with Host host on a goroutine of its own: a
// request the activator holds until the test steps the clock.
func (f *fixture) getAsync(host, path string) <-chan response {
	ch := make(chan response, 1)
	go func() {
		req, err := http.NewRequest("GET", f.url+path, nil)
		if err != nil {
			ch <- response{err: err}
			return
		}
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			ch <- response{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		ch <- response{code: resp.StatusCode, body: string(b), err: err}
	}()
	return ch
}

// stepUntil steps f.clk by step, at most limit in all, until done
// reports true, and returns the clock time stepped. The real-time bound
// only covers the goroutines' scheduling.
func (f *fixture) stepUntil(step, limit time.Duration, done func() bool) time.Duration {
	f.t.Helper()
	var stepped time.Duration
	require.Eventually(f.t, func() bool {
		if done() {
			return true
		}
		if stepped < limit {
			f.clk.Step(step)
			stepped += step
		}
		return false
	}, 10*time.Second, time.Millisecond)
	return stepped
}

// received returns a done func for stepUntil that is true once ch has
// delivered, storing the value in *v.
func received[T any](ch <-chan T, v *T) func() bool {
	return func() bool {
		select {
		case *v = <-ch:
			return true
		default:
			return false
		}
	}
}

func TestApplyRejectsInvalidSpecNamingTheField(t *testing.T) {
	f := newFixture(t, fake.Options{}, autoscaler.Config{})
	bad := -1
	_, err := f.srv.Apply(context.Background(), zeroscale.ServiceSpec{
		Name:     "hello",
		Template: revision.Spec{Image: "x", ContainerConcurrency: 5000, Scaling: revision.Scaling{MinScale: &bad}},
		Traffic:  []traffic.Target{{LatestRevision: true, Percent: 90}},
	})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"Spec.ContainerConcurrency", "min-scale", "traffic"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	_, err = f.srv.Apply(context.Background(), zeroscale.ServiceSpec{Name: "Not_A_Label", Template: revision.Spec{Image: "x"}})
	require.ErrorContains(t, err, "Name")
	if st := f.srv.Status(); len(st) != 0 {
		t.Errorf("an invalid spec created %+v", st)
	}
}

func TestBareHostByHeaderAndPath(t *testing.T) {
	f := newFixture(t, fake.Options{}, zeroCfg())
	_, err := f.srv.Apply(context.Background(), zeroscale.ServiceSpec{Name: "hello", Template: revision.Spec{Image: "x"}})
	require.NoError(t, err)
	code, body := f.get("hello.default.localhost", "/")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "hello-00001\n", body)
	code, body = f.get("localhost:8080", "/", zeroscale.ServiceHeader, "hello")
	require.Equal(t, http.StatusOK, code, body)
	code, body = f.get("127.0.0.1", "/hello/some/path")
	require.Equal(t, http.StatusOK, code, body)
	code, _ = f.get("localhost", "/nope/")
	require.Equal(t, http.StatusNotFound, code)
	code, _ = f.get("other.default.localhost", "/")
	require.Equal(t, http.StatusNotFound, code)
}

// The path prefix is stripped before the app sees the request.
func TestPathPrefixStripped(t *testing.T) {
	f := newFixture(t, fake.Options{Handler: func(revision.Revision) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.URL.Path) })
	}}, zeroCfg())
	_, err := f.srv.Apply(context.Background(), zeroscale.ServiceSpec{Name: "hello", Template: revision.Spec{Image: "x"}})
	require.NoError(t, err)
	_, body := f.get("localhost", "/hello/a/b")
	require.Equal(t, "/a/b", body)
}

// A new template gets traffic only once its first instance is ready;
// until then the old revision serves.
func TestUpdateMovesTrafficWhenReady(t *testing.T) {
	f := newFixture(t, fake.Options{}, autoscaler.Config{}) // initial scale 1: revisions prove readiness
	f.crash = "hello-00002"                                 // never ready
	ctx := context.Background()
	_, err := f.srv.Apply(ctx, zeroscale.ServiceSpec{Name: "hello", Template: revision.Spec{Image: "v1"}})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		st, _ := f.srv.ServiceStatus("hello")
		return st.LatestReadyRevision == "hello-00001" && len(st.Traffic) == 1
	}, 10*time.Second, time.Millisecond)

	st, err := f.srv.Apply(ctx, zeroscale.ServiceSpec{Name: "hello", Template: revision.Spec{Image: "v2"}})
	require.NoError(t, err)
	require.Equal(t, "hello-00002", st.LatestCreatedRevision)
	require.Equal(t, "hello-00001", st.LatestReadyRevision)
	for range 20 {
		_, body := f.get("hello.default.localhost", "/")
		require.Equal(t, "hello-00001\n", body)
	}
	cond, ok := st.Condition(zeroscale.ConditionReady)
	require.Equal(t, true, ok)
	require.Equal(t, zeroscale.ConditionTrue, cond.Status, "the previous split still serves: %+v", cond)

	_, err = f.srv.Apply(ctx, zeroscale.ServiceSpec{Name: "hello", Template: revision.Spec{Image: "v3"}})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		_, body := f.get("hello.default.localhost", "/")
		return body == "hello-00003\n"
	}, 10*time.Second, time.Millisecond)
	st, err = f.srv.ServiceStatus("hello")
	require.NoError(t, err)
	require.Equal(t, []zeroscale.TrafficStatus{{Revision: "hello-00003", Percent: 100}}, st.Traffic)
	require.Equal(t, 3, len(st.Revisions))
	require.Equal(t, "hello-00003", st.Revisions[0].Name, "newest first")
}

func TestDeleteAndShutdownStopEverything(t *testing.T) {
	f := newFixture(t, fake.Options{}, zeroCfg())
	ctx := context.Background()
	for _, name := range []string{"a", "b"} {
		_, err := f.srv.Apply(ctx, zeroscale.ServiceSpec{Name: name, Template: revision.Spec{Image: name}})
		require.NoError(t, err)
		code, _ := f.get(name+".default.localhost", "/")
		require.Equal(t, http.StatusOK, code)
	}
	require.NoError(t, f.srv.Delete(ctx, "a"))
	code, _ := f.get("a.default.localhost", "/")
	require.Equal(t, http.StatusNotFound, code)
	_, err := f.engine.Instances("a-00001")
	if err == nil {
		t.Error("a's revision is still in the backend")
	}
	require.ErrorIs(t, f.srv.Delete(ctx, "a"), zeroscale.ErrServiceNotFound)
	require.NoError(t, f.srv.Shutdown(ctx))
	_, err = f.engine.Instances("b-00001")
	if err == nil {
		t.Error("Shutdown left b's revision in the backend")
	}
	_, err = f.srv.Apply(ctx, zeroscale.ServiceSpec{Name: "c", Template: revision.Spec{Image: "c"}})
	require.ErrorIs(t, err, zeroscale.ErrServerClosed)
}

func TestAdminJSON(t *testing.T) {
	f := newFixture(t, fake.Options{}, zeroCfg())
	_, err := f.srv.Apply(context.Background(), zeroscale.ServiceSpec{
		Name:     "hello",
		Template: revision.Spec{Image: "x"},
		Traffic:  []traffic.Target{{LatestRevision: true, Percent: 100, Tag: "current"}},
	})
	require.NoError(t, err)
	admin := httptest.NewServer(f.srv.AdminHandler())
	defer admin.Close()

	// Serve records the data port and the autoscaler's first decision
	// sets Active, both asynchronously: poll as a status reader would.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		resp, err := http.Get(admin.URL + "/services/hello")
		if !assert.NoError(c, err) {
			return
		}
		defer resp.Body.Close()
		assert.Equal(c, http.StatusOK, resp.StatusCode)
		var st zeroscale.ServiceStatus
		if !assert.NoError(c, json.NewDecoder(resp.Body).Decode(&st)) {
			return
		}
		assert.Equal(c, "hello", st.Name)
		assert.True(c, strings.HasPrefix(st.URL, "http://hello.default.localhost:"), st.URL)
		assert.Equal(c, "hello-00001", st.LatestReadyRevision)
		if !assert.Len(c, st.Revisions, 1) {
			return
		}
		active, ok := st.Revisions[0].Condition(zeroscale.ConditionActive)
		assert.True(c, ok, "Active condition")
		assert.Equal(c, zeroscale.ConditionFalse, active.Status)
		assert.Equal(c, zeroscale.ReasonNoTraffic, active.Reason)
		assert.Contains(c, st.Traffic, zeroscale.TrafficStatus{Revision: "hello-00001", Percent: 100, Tag: "current",
			URL: strings.Replace(st.URL, "hello.", "current-hello.", 1)})
	}, 10*time.Second, 5*time.Millisecond)

	resp2, err := http.Get(admin.URL + "/services/nope")
	require.NoError(t, err)
	resp2.Body.Close()
	require.Equal(t, http.StatusNotFound, resp2.StatusCode)
}

func TestEventString(t *testing.T) {
	for _, tc := range []struct {
		e    zeroscale.Event
		want string
	}{
		{zeroscale.Event{Kind: zeroscale.EventScaled, Service: "hello", From: 0, To: 1, ColdStart: 180 * time.Millisecond}, "hello: 0 → 1 instances (cold start 180 ms)"},
		{zeroscale.Event{Kind: zeroscale.EventScaled, Service: "hello", From: 1, To: 0, Reason: "NoTraffic", Idle: 90 * time.Second}, "hello: 1 → 0 instances (NoTraffic for 90 s)"},
		{zeroscale.Event{Kind: zeroscale.EventScaled, Service: "hello", From: 1, To: 3}, "hello: 1 → 3 instances"},
		{zeroscale.Event{Kind: zeroscale.EventTrafficChanged, Service: "hello", Message: "hello-00001 100 %"}, "hello: traffic hello-00001 100 %"},
		{zeroscale.Event{Kind: zeroscale.EventRevisionFailed, Service: "hello", Revision: "hello-00002", Reason: "TimedOut"}, "hello: revision hello-00002 RevisionFailed (TimedOut)"},
	} {
		require.Equal(t, tc.want, tc.e.String())
	}
}

// A start from zero is reported with its cold start, measured on the
// Server's clock.
func TestScaleFromZeroEvent(t *testing.T) {
	f := newFixture(t, fake.Options{StartDelay: 50 * time.Millisecond}, zeroCfg())
	_, err := f.srv.Apply(context.Background(), zeroscale.ServiceSpec{Name: "hello", Template: revision.Spec{Image: "x"}})
	require.NoError(t, err)
	var r response
	f.stepUntil(10*time.Millisecond, 5*time.Second, received(f.getAsync("hello.default.localhost", "/"), &r))
	require.NoError(t, r.err)
	require.Equal(t, http.StatusOK, r.code)
	var scaled []zeroscale.Event
	require.Eventually(t, func() bool { // events are delivered asynchronously
		f.mu.Lock()
		defer f.mu.Unlock()
		scaled = scaled[:0]
		for _, e := range f.events {
			if e.Kind == zeroscale.EventScaled {
				scaled = append(scaled, e)
			}
		}
		return len(scaled) > 0
	}, 10*time.Second, time.Millisecond)
	require.Equal(t, 0, scaled[0].From)
	require.Equal(t, 1, scaled[0].To)
	assert.GreaterOrEqual(t, scaled[0].ColdStart, 50*time.Millisecond, "the cold start includes the start delay")
}

func TestOptionsValidated(t *testing.T) {
	_, err := zeroscale.New(zeroscale.Options{WaitTimeout: -time.Second})
	require.ErrorContains(t, err, "WaitTimeout")
	cfg := autoscaler.DefaultConfig()
	cfg.MaxScaleUpRate = 0.5
	_, err = zeroscale.New(zeroscale.Options{Config: cfg})
	require.ErrorContains(t, err, "MaxScaleUpRate")
}

func TestMetricsOnAdmin(t *testing.T) {
	reg := prometheus.NewRegistry()
	srv, err := zeroscale.New(zeroscale.Options{NewBackend: func(drain backend.DrainFunc) (backend.Backend, error) {
		return fake.New(fake.Options{Drain: drain})
	}, Config: zeroCfg(), Registerer: reg})
	require.NoError(t, err)
	defer srv.Shutdown(context.Background())
	_, err = srv.Apply(context.Background(), zeroscale.ServiceSpec{Name: "hello", Template: revision.Spec{Image: "x"}})
	require.NoError(t, err)
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "http://hello.default.localhost/", nil))
	require.Equal(t, http.StatusOK, rec.Code)

	rec = httptest.NewRecorder()
	srv.AdminHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	require.Equal(t, http.StatusOK, rec.Code)
	for _, want := range []string{"zeroscale_activator_", "zeroscale_autoscaler_"} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("/metrics has no %s metric", want)
		}
	}
}

// A request to a new service waits for its first instance instead of
// getting 404.
func TestFirstRequestWaitsForFirstRevision(t *testing.T) {
	f := newFixture(t, fake.Options{StartDelay: 100 * time.Millisecond}, autoscaler.Config{}) // initial scale 1
	_, err := f.srv.Apply(context.Background(), zeroscale.ServiceSpec{Name: "hello", Template: revision.Spec{Image: "x"}})
	require.NoError(t, err)
	var r response
	stepped := f.stepUntil(10*time.Millisecond, 5*time.Second, received(f.getAsync("hello.default.localhost", "/"), &r))
	require.NoError(t, r.err)
	require.Equal(t, http.StatusOK, r.code, r.body)
	require.Equal(t, "hello-00001\n", r.body)
	assert.GreaterOrEqual(t, stepped, 100*time.Millisecond, "served once the instance started")
	code, _ := f.get("other.default.localhost", "/")
	assert.Equal(t, http.StatusNotFound, code, "other hosts are not affected")
}

// A transient Scale failure is retried after a back-off on the
// Server's clock: the held request is served.
func TestTransientScaleFailureRetried(t *testing.T) {
	f := newFixture(t, fake.Options{}, zeroCfg())
	_, err := f.srv.Apply(context.Background(), zeroscale.ServiceSpec{Name: "hello", Template: revision.Spec{Image: "x"}})
	require.NoError(t, err)
	require.Eventually(t, func() bool { // the initial scale 0 was applied
		st, _ := f.srv.ServiceStatus("hello")
		return len(st.Revisions) == 1 && st.Revisions[0].AppliedScale == 0
	}, 10*time.Second, time.Millisecond)
	f.engine.FailScale(2, backend.ErrTransient)
	// The retries wait 100 ms, then 200 ms; step in small steps, far
	// from the activator's 10 s hold.
	var r response
	stepped := f.stepUntil(10*time.Millisecond, 5*time.Second, received(f.getAsync("hello.default.localhost", "/"), &r))
	require.NoError(t, r.err)
	require.Equal(t, http.StatusOK, r.code)
	assert.GreaterOrEqual(t, stepped, 300*time.Millisecond, "served only after both back-offs")
}

// With RolloutDuration, a new revision takes traffic gradually (the
// route's rollout runs on the Server's table, on its clock) and ends at
// 100 %.
func TestGradualRollout(t *testing.T) {
	f := newFixture(t, fake.Options{}, autoscaler.Config{})
	ctx := context.Background()
	spec := func(image string) zeroscale.ServiceSpec {
		return zeroscale.ServiceSpec{Name: "hello", Template: revision.Spec{Image: image}, RolloutDuration: 2 * time.Second}
	}
	traffic := func() []zeroscale.TrafficStatus {
		st, _ := f.srv.ServiceStatus("hello")
		return st.Traffic
	}
	_, err := f.srv.Apply(ctx, spec("v1"))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		tr := traffic()
		return len(tr) == 1 && tr[0].Revision == "hello-00001"
	}, 10*time.Second, time.Millisecond)
	_, err = f.srv.Apply(ctx, spec("v2"))
	require.NoError(t, err)
	var split []zeroscale.TrafficStatus
	require.Eventually(t, func() bool { // v2 ready: the rollout starts with a small share
		split = traffic()
		return len(split) == 2
	}, 10*time.Second, time.Millisecond)
	for _, tt := range split {
		if tt.Revision == "hello-00002" {
			assert.LessOrEqual(t, tt.Percent, 50, "a small first step")
		}
	}
	// The rollout's steps wait on the clock: 2 s of it end at 100 %.
	stepped := f.stepUntil(100*time.Millisecond, 10*time.Second, func() bool {
		return reflect.DeepEqual([]zeroscale.TrafficStatus{{Revision: "hello-00002", Percent: 100}}, traffic())
	})
	assert.GreaterOrEqual(t, stepped, time.Second, "the rollout took clock time")
}
