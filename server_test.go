package zeroscale_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zeroscale/zeroscale"
	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/backend/fake"
	"github.com/zeroscale/zeroscale/revision"
	"github.com/zeroscale/zeroscale/traffic"
)

// fixture is a Server on the fake backend, serving on loopback.
type fixture struct {
	t      *testing.T
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

func newFixture(t *testing.T, fo fake.Options, cfg revision.Config) *fixture {
	f := &fixture{t: t}
	newBackend := func(drain backend.DrainFunc) (backend.Backend, error) {
		fo.Drain = drain
		engine, err := fake.New(fo)
		f.engine = engine
		return crashing{engine, f}, err
	}
	srv, err := zeroscale.New(zeroscale.Options{NewBackend: newBackend, Config: cfg, OnEvent: func(e zeroscale.Event) {
		f.srv.Status() // the hook may call the Server
		f.mu.Lock()
		f.events = append(f.events, e)
		f.mu.Unlock()
	}})
	noErr(t, err)
	f.srv = srv
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	noErr(t, err)
	f.url = "http://" + ln.Addr().String()
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		noErr(t, srv.Shutdown(ctx))
		errIs(t, <-served, http.ErrServerClosed)
		noErr(t, f.engine.Close())
	})
	return f
}

func zeroCfg() revision.Config {
	cfg := revision.DefaultConfig()
	cfg.AllowZeroInitialScale, cfg.InitialScale = true, 0
	return cfg
}

// get sends GET path with Host host (and optional headers k, v, …).
func (f *fixture) get(host, path string, kv ...string) (int, string) {
	f.t.Helper()
	req, err := http.NewRequest("GET", f.url+path, nil)
	noErr(f.t, err)
	req.Host = host
	for i := 0; i+1 < len(kv); i += 2 {
		req.Header.Set(kv[i], kv[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	noErr(f.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	noErr(f.t, err)
	return resp.StatusCode, string(b)
}

func TestApplyRejectsInvalidSpecNamingTheField(t *testing.T) {
	f := newFixture(t, fake.Options{}, revision.Config{})
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
	errContains(t, err, "Name")
	if st := f.srv.Status(); len(st) != 0 {
		t.Errorf("an invalid spec created %+v", st)
	}
}

func TestBareHostByHeaderAndPath(t *testing.T) {
	f := newFixture(t, fake.Options{}, zeroCfg())
	_, err := f.srv.Apply(context.Background(), zeroscale.ServiceSpec{Name: "hello", Template: revision.Spec{Image: "x"}})
	noErr(t, err)
	code, body := f.get("hello.default.localhost", "/")
	eq(t, http.StatusOK, code)
	eq(t, "hello-00001\n", body)
	code, body = f.get("localhost:8080", "/", zeroscale.ServiceHeader, "hello")
	eq(t, http.StatusOK, code, body)
	code, body = f.get("127.0.0.1", "/hello/some/path")
	eq(t, http.StatusOK, code, body)
	code, _ = f.get("localhost", "/nope/")
	eq(t, http.StatusNotFound, code)
	code, _ = f.get("other.default.localhost", "/")
	eq(t, http.StatusNotFound, code)
}

// The path prefix is stripped before the app sees the request.
func TestPathPrefixStripped(t *testing.T) {
	f := newFixture(t, fake.Options{Handler: func(revision.Revision) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.URL.Path) })
	}}, zeroCfg())
	_, err := f.srv.Apply(context.Background(), zeroscale.ServiceSpec{Name: "hello", Template: revision.Spec{Image: "x"}})
	noErr(t, err)
	_, body := f.get("localhost", "/hello/a/b")
	eq(t, "/a/b", body)
}

// A new template gets traffic only once its first instance is ready;
// until then the old revision serves.
func TestUpdateMovesTrafficWhenReady(t *testing.T) {
	f := newFixture(t, fake.Options{}, revision.Config{}) // initial scale 1: revisions prove readiness
	f.crash = "hello-00002"                               // never ready
	ctx := context.Background()
	_, err := f.srv.Apply(ctx, zeroscale.ServiceSpec{Name: "hello", Template: revision.Spec{Image: "v1"}})
	noErr(t, err)
	eventually(t, func() bool {
		st, _ := f.srv.ServiceStatus("hello")
		return st.LatestReadyRevision == "hello-00001" && len(st.Traffic) == 1
	}, 10*time.Second, time.Millisecond)

	st, err := f.srv.Apply(ctx, zeroscale.ServiceSpec{Name: "hello", Template: revision.Spec{Image: "v2"}})
	noErr(t, err)
	eq(t, "hello-00002", st.LatestCreatedRevision)
	eq(t, "hello-00001", st.LatestReadyRevision)
	for range 20 {
		_, body := f.get("hello.default.localhost", "/")
		eq(t, "hello-00001\n", body)
	}
	cond, ok := st.Condition(zeroscale.ConditionReady)
	eq(t, ok, true)
	eq(t, zeroscale.ConditionTrue, cond.Status, "the previous split still serves: %+v", cond)

	_, err = f.srv.Apply(ctx, zeroscale.ServiceSpec{Name: "hello", Template: revision.Spec{Image: "v3"}})
	noErr(t, err)
	eventually(t, func() bool {
		_, body := f.get("hello.default.localhost", "/")
		return body == "hello-00003\n"
	}, 10*time.Second, time.Millisecond)
	st, err = f.srv.ServiceStatus("hello")
	noErr(t, err)
	eq(t, []zeroscale.TrafficTarget{{Revision: "hello-00003", Percent: 100}}, st.Traffic)
	eq(t, len(st.Revisions), 3)
	eq(t, "hello-00003", st.Revisions[0].Name, "newest first")
}

func TestDeleteAndShutdownStopEverything(t *testing.T) {
	f := newFixture(t, fake.Options{}, zeroCfg())
	ctx := context.Background()
	for _, name := range []string{"a", "b"} {
		_, err := f.srv.Apply(ctx, zeroscale.ServiceSpec{Name: name, Template: revision.Spec{Image: name}})
		noErr(t, err)
		code, _ := f.get(name+".default.localhost", "/")
		eq(t, http.StatusOK, code)
	}
	noErr(t, f.srv.Delete(ctx, "a"))
	code, _ := f.get("a.default.localhost", "/")
	eq(t, http.StatusNotFound, code)
	_, err := f.engine.Instances("a-00001")
	if err == nil {
		t.Error("a's revision is still in the backend")
	}
	errIs(t, f.srv.Delete(ctx, "a"), zeroscale.ErrNotFound)

	noErr(t, f.srv.Shutdown(ctx))
	_, err = f.engine.Instances("b-00001")
	if err == nil {
		t.Error("Shutdown left b's revision in the backend")
	}
	_, err = f.srv.Apply(ctx, zeroscale.ServiceSpec{Name: "c", Template: revision.Spec{Image: "c"}})
	errIs(t, err, zeroscale.ErrServerClosed)
}

func TestAdminJSON(t *testing.T) {
	f := newFixture(t, fake.Options{}, zeroCfg())
	_, err := f.srv.Apply(context.Background(), zeroscale.ServiceSpec{
		Name:     "hello",
		Template: revision.Spec{Image: "x"},
		Traffic:  []traffic.Target{{LatestRevision: true, Percent: 100, Tag: "current"}},
	})
	noErr(t, err)
	admin := httptest.NewServer(f.srv.AdminHandler())
	defer admin.Close()

	resp, err := http.Get(admin.URL + "/services/hello")
	noErr(t, err)
	defer resp.Body.Close()
	eq(t, http.StatusOK, resp.StatusCode)
	var st zeroscale.ServiceStatus
	noErr(t, json.NewDecoder(resp.Body).Decode(&st))
	eq(t, "hello", st.Name)
	eq(t, strings.HasPrefix(st.URL, "http://hello.default.localhost:"), true, st.URL)
	eq(t, "hello-00001", st.LatestReadyRevision)
	eq(t, len(st.Revisions), 1)
	active, ok := st.Revisions[0].Condition(zeroscale.ConditionActive)
	eq(t, ok, true)
	eq(t, zeroscale.ConditionFalse, active.Status)
	eq(t, zeroscale.ReasonNoTraffic, active.Reason)
	eq(t, slices.Contains(st.Traffic, zeroscale.TrafficTarget{Revision: "hello-00001", Percent: 100, Tag: "current",
		URL: strings.Replace(st.URL, "hello.", "current-hello.", 1)}), true, st.Traffic)

	resp2, err := http.Get(admin.URL + "/services/nope")
	noErr(t, err)
	resp2.Body.Close()
	eq(t, http.StatusNotFound, resp2.StatusCode)
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
		eq(t, tc.want, tc.e.String())
	}
}

func TestScaleFromZeroEvent(t *testing.T) {
	f := newFixture(t, fake.Options{StartDelay: 50 * time.Millisecond}, zeroCfg())
	_, err := f.srv.Apply(context.Background(), zeroscale.ServiceSpec{Name: "hello", Template: revision.Spec{Image: "x"}})
	noErr(t, err)
	code, _ := f.get("hello.default.localhost", "/")
	eq(t, http.StatusOK, code)
	var scaled []zeroscale.Event
	eventually(t, func() bool { // events are delivered asynchronously
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
	eq(t, 0, scaled[0].From)
	eq(t, 1, scaled[0].To)
	if scaled[0].ColdStart < 50*time.Millisecond {
		t.Errorf("cold start %v, shorter than the 50 ms start delay", scaled[0].ColdStart)
	}
}

func TestOptionsValidated(t *testing.T) {
	_, err := zeroscale.New(zeroscale.Options{WaitTimeout: -time.Second})
	errContains(t, err, "WaitTimeout")
	cfg := revision.DefaultConfig()
	cfg.MaxScaleUpRate = 0.5
	_, err = zeroscale.New(zeroscale.Options{Config: cfg})
	errContains(t, err, "MaxScaleUpRate")
	eq(t, errors.Is(err, zeroscale.ErrNotFound), false)
}

func noErr(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func errIs(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v, want %v", err, target)
	}
}

func errContains(t testing.TB, err error, s string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), s) {
		t.Fatalf("error %v, want one naming %q", err, s)
	}
}

func eq(t testing.TB, got, want any, msg ...any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v %v", got, want, msg)
	}
}

// eventually polls cond (real sockets and goroutines) until it holds or
// timeout passes.
func eventually(t testing.TB, cond func() bool, timeout, every time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", timeout)
		}
		time.Sleep(every)
	}
}

func TestMetricsOnAdmin(t *testing.T) {
	reg := prometheus.NewRegistry()
	srv, err := zeroscale.New(zeroscale.Options{NewBackend: func(drain backend.DrainFunc) (backend.Backend, error) {
		return fake.New(fake.Options{Drain: drain})
	}, Config: zeroCfg(), Registerer: reg})
	noErr(t, err)
	defer srv.Shutdown(context.Background())
	_, err = srv.Apply(context.Background(), zeroscale.ServiceSpec{Name: "hello", Template: revision.Spec{Image: "x"}})
	noErr(t, err)
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "http://hello.default.localhost/", nil))
	eq(t, rec.Code, http.StatusOK)

	rec = httptest.NewRecorder()
	srv.AdminHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	eq(t, rec.Code, http.StatusOK)
	for _, want := range []string{"zeroscale_activator_", "zeroscale_autoscaler_"} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("/metrics has no %s metric", want)
		}
	}
}

// A request to a new service waits for its first instance instead of
// getting 404.
func TestFirstRequestWaitsForFirstRevision(t *testing.T) {
	f := newFixture(t, fake.Options{StartDelay: 100 * time.Millisecond}, revision.Config{}) // initial scale 1
	_, err := f.srv.Apply(context.Background(), zeroscale.ServiceSpec{Name: "hello", Template: revision.Spec{Image: "x"}})
	noErr(t, err)
	code, body := f.get("hello.default.localhost", "/")
	eq(t, code, http.StatusOK, body)
	eq(t, body, "hello-00001\n")
}

// A transient Scale failure is retried: the held request is served.
func TestTransientScaleFailureRetried(t *testing.T) {
	f := newFixture(t, fake.Options{}, zeroCfg())
	_, err := f.srv.Apply(context.Background(), zeroscale.ServiceSpec{Name: "hello", Template: revision.Spec{Image: "x"}})
	noErr(t, err)
	f.engine.FailScale(2, backend.ErrTransient)
	code, body := f.get("hello.default.localhost", "/")
	eq(t, code, http.StatusOK, body)
}

// With RolloutDuration, a new revision takes traffic gradually (the
// route's rollout runs on the Server's table) and ends at 100 %.
func TestGradualRollout(t *testing.T) {
	f := newFixture(t, fake.Options{}, revision.Config{})
	ctx := context.Background()
	spec := func(image string) zeroscale.ServiceSpec {
		return zeroscale.ServiceSpec{Name: "hello", Template: revision.Spec{Image: image}, RolloutDuration: 2 * time.Second}
	}
	_, err := f.srv.Apply(ctx, spec("v1"))
	noErr(t, err)
	eventually(t, func() bool {
		st, _ := f.srv.ServiceStatus("hello")
		return len(st.Traffic) == 1 && st.Traffic[0].Revision == "hello-00001"
	}, 10*time.Second, time.Millisecond)
	_, err = f.srv.Apply(ctx, spec("v2"))
	noErr(t, err)
	var split []zeroscale.TrafficTarget
	eventually(t, func() bool { // v2 ready: the rollout starts with a small share
		st, _ := f.srv.ServiceStatus("hello")
		split = st.Traffic
		return len(split) == 2
	}, 10*time.Second, time.Millisecond)
	for _, tt := range split {
		if tt.Revision == "hello-00002" && tt.Percent > 50 {
			t.Errorf("the rollout started at %d %%, want a small first step", tt.Percent)
		}
	}
	eventually(t, func() bool {
		st, _ := f.srv.ServiceStatus("hello")
		return reflect.DeepEqual(st.Traffic, []zeroscale.TrafficTarget{{Revision: "hello-00002", Percent: 100}})
	}, 20*time.Second, 10*time.Millisecond)
}
